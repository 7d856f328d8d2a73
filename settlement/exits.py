"""Forced exits off chain: the exit watcher (vault ExitRequested events -> engine account
freezes) and the exit queue (which pending requests the next batch may serve).

The protocol (the vault's doc comment): a wallet calls `requestExit`; once the request is
final, the watcher freezes its account in the engine (orders cancelled, new orders and
withdrawals refused), which leaves nothing of it to settle after the freeze; the next batch
that settles every record up to the freeze names the wallet in `served`; the wallet then takes
its whole balance with `escape` once that batch is final. A request the operator does not serve within the vault's
`exitWindow` lets anyone freeze the whole vault.

The engine is the truth for what is frozen (a freeze is idempotent: ACCOUNT_IS_FROZEN means
done), so the watcher keeps no state of its own that matters: after a crash it rescans.
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from engine.core.types import EventKind
from engine.core.types import Reject as CoreReject
from engine.schemas import Reject
from settlement.accounts import AddressBook, AddressBookError
from settlement.gateway_link import reject_name
from settlement.source import FillSource
from settlement.vault import Vault

log = logging.getLogger(__name__)


class ExitError(Exception):
    """The engine refused a freeze for a reason the watcher cannot fix."""


class EngineFreezes(Protocol):
    """What the exit watcher needs from the engine (in-process or through the gateway)."""

    def freeze_account(self, account: int) -> str | None:
        """Freeze one account; None if frozen now, else the reject code's name."""
        ...


def exit_requests(vault: Vault, from_block: int, to_block: int, max_blocks: int = 5_000) -> list[str]:
    """Wallets of the ExitRequested events in [from_block, to_block], in block order."""
    wallets = []
    while from_block <= to_block:
        end = min(to_block, from_block + max_blocks - 1)
        for entry in vault.contract.events.ExitRequested().get_logs(from_block=from_block, to_block=end):
            wallets.append(entry["args"]["wallet"])
        from_block = end + 1
    return wallets


class ExitWatcher:
    """Freezes the engine account of each wallet whose exit request is final (the
    `finalized` block, or `confirmations` deep on chains without it)."""

    def __init__(self, vault: Vault, from_block: int, book: AddressBook, engine: EngineFreezes,
                 confirmations: int | None = None) -> None:
        self.vault = vault
        self.book = book
        self.engine = engine
        self.confirmations = confirmations
        self._from_block = from_block   # scan hint only: a freeze is idempotent

    def final_block(self) -> int:
        """The newest block whose exit requests count."""
        if self.confirmations is None:
            return self.vault.w3.eth.get_block("finalized")["number"]
        return self.vault.w3.eth.block_number - self.confirmations + 1

    def poll(self) -> int:
        """Freeze the accounts of the final exit requests not scanned yet; the number frozen now.
        A wallet without an account has nothing to freeze: the operator serves it as it is."""
        final = self.final_block()
        frozen = 0
        for wallet in exit_requests(self.vault, self._from_block, final):
            try:
                account = self.book.account(wallet)
            except AddressBookError:
                log.info("exit request of %s, a wallet without an account: nothing to freeze", wallet)
                continue
            outcome = self.engine.freeze_account(account)
            if outcome == "ACCOUNT_IS_FROZEN":
                continue
            if outcome is not None:
                raise ExitError(f"freeze of account {account} ({wallet}) refused by the engine: {outcome}")
            frozen += 1
        self._from_block = max(self._from_block, final + 1)
        return frozen


class ExitQueue:
    """The exit requests pending on a vault and which of them a batch may serve: a wallet
    whose account is frozen in the source with nothing of it left after the batch, or a
    wallet without an account (nothing of it was ever settled)."""

    def __init__(self, vault: Vault, book: AddressBook, from_block: int) -> None:
        self.vault = vault
        self.book = book
        self._from_block = from_block
        self._requested: set[str] = set()

    def pending(self) -> list[str]:
        """Wallets with an exit request the vault has not seen served, sorted."""
        latest = self.vault.w3.eth.block_number
        self._requested.update(exit_requests(self.vault, self._from_block, latest))
        self._from_block = latest + 1
        self._requested = {wallet for wallet in self._requested if not self.vault.wallet_state(wallet)[1]}
        return sorted(self._requested)

    def servable(self, source: FillSource, last_id: int) -> tuple[str, ...]:
        """The pending requests a batch that ends at record `last_id` may serve."""
        pending = self.pending()
        if not pending:
            return ()
        # Freezes first, the next record after: a freeze the source shows was committed after
        # every record of its account, so the next record read later cannot hide one of them.
        freezes = source.freezes()
        fills, withdrawals = source.read(last_id, 1)
        following = [int(ids[0]) for ids in (fills["fill_id"], withdrawals["withdrawal_id"]) if len(ids)]
        covered = freezes[freezes["freeze_id"] < np.uint64(min(following))] if following else freezes
        frozen = set(covered["account"].tolist())
        served = []
        for wallet in pending:
            try:
                account = self.book.account(wallet)
            except AddressBookError:
                served.append(wallet)
                continue
            if account in frozen:
                served.append(wallet)
        return tuple(served)


class GatewayFreezes:
    """EngineFreezes through the gateway, with an operator key's Client."""

    def __init__(self, client) -> None:
        self.client = client

    def freeze_account(self, account: int) -> str | None:
        reply = self.client.freeze_account(account)
        return reject_name(reply.code) if isinstance(reply, Reject) else None


class InProcessFreezes:
    """EngineFreezes over a MatchingEngine in this process (tests, demo)."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def freeze_account(self, account: int) -> str | None:
        event = self.engine.freeze_account(account)[0]
        return None if event.kind != EventKind.REJECTED else CoreReject(event.reason).name
