"""Cancel-on-disconnect across a takeover: the accounts the previous gateway
had registered (engine/gateway/cod_registry.py) are awaited for the session
timeout; one whose session logs on again with cancel-on-disconnect in time
keeps its orders, the orders of the others are mass-cancelled like a silent
session's. Meanwhile the registry holds the live cancel-on-disconnect accounts,
those still awaited, and those whose mass cancel is not yet committed in the
journal, so a gateway that dies before it is leaves them to the next one."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from engine.gateway.cod_registry import CodRegistry

log = logging.getLogger("engine.gateway")


class CodRecovery:
    """The awaited accounts, the end of their wait (on the gateway's observed
    clock, which starts at 0 when the loop starts) and the registry kept up to date."""

    def __init__(self, registry: CodRegistry, awaited: frozenset[int], grace_s: float) -> None:
        self.registry = registry
        self.awaited = awaited
        self.grace_end = grace_s
        self.cancelling: dict[int, int] = {}  # account -> seq of its mass cancel, until the journal committed it
        if awaited:
            log.info("cancel-on-disconnect: accounts %s have %.0f ms to log on again with cancel-on-disconnect, "
                     "or their orders are cancelled", sorted(awaited), grace_s * 1000)

    def sessions_changed(self, live: frozenset[int], lost: frozenset[int]) -> None:
        """Sessions with cancel-on-disconnect came or went: ``live`` accounts have
        one now (an awaited one is no longer awaited), ``lost`` ones lost theirs
        and wait for their mass cancel. Records the registry's new set."""
        self.awaited -= live
        self.registry.record(live | lost | self.awaited | frozenset(self.cancelling))

    def cancelled(self, accounts: Iterable[int], seq: int) -> None:
        """The accounts' mass cancels were sequenced up to ``seq``: they stay
        registered until the journal has committed it."""
        for account in accounts:
            self.cancelling[account] = seq

    def committed(self, seq: int) -> bool:
        """The journal committed up to ``seq``: forget the cancels it holds; True
        if any was forgotten (the registry is then to be recorded again)."""
        done = [account for account, at in self.cancelling.items() if at <= seq]
        for account in done:
            del self.cancelling[account]
        return bool(done)

    def overdue(self, now: float) -> frozenset[int]:
        """The awaited accounts once their wait has ended (``now`` on the observed
        clock), no longer awaited from then on; the caller cancels their orders."""
        if not self.awaited or now < self.grace_end:
            return frozenset()
        overdue, self.awaited = self.awaited, frozenset()
        log.info("cancel-on-disconnect: accounts %s did not log on again in time: cancelling their orders",
                 sorted(overdue))
        return overdue
