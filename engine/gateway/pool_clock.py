"""The operator's clock of the main pool: the gateway runs a POOL_MARK (a NAV per
share sample for the time-weighted NAV, docs/pools.md) every ``[pools.main]
nav_sample_s`` seconds, and executes each request, deposit or redemption, once it
is due, so no provider chooses the moment its deposit mints or its redemption
pays; a due redemption whose owner no longer holds its shares free is cancelled
rather than retried, so the owner cannot keep it pending by moving its shares away
and bring them back at a moment it picks. All sequenced and journaled like any
command: the clock sends what the owner could send. A refused execution is sent
again after RETRY_S, doubling with each refusal up to RETRY_MAX_S, and a frozen
owner's requests, and all while the pool account is frozen, are left alone (the
core refuses them): a request the equity
guard holds for hours, or many of them, cannot fill the journal with refusals."""

from __future__ import annotations

import numpy as np

from engine.config import Config
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind

RETRY_S = 1.0
"""A due request whose execution was refused (no NAV, an empty treasury, the equity guard) is sent again after this,"""
RETRY_MAX_S = 60.0
"""doubled after each further refusal, up to this."""


class PoolClock:
    """When the next NAV sample is due (none with nav_sample_s 0) and which requests
    to execute; nothing without a main pool."""

    def __init__(self, config: Config) -> None:
        main, terms = config.file.pools.main, config.venue.main_pool
        self.configured = main is not None and terms is not None
        self.interval = main.nav_sample_s if self.configured else 0
        self.share_asset = terms.share_asset if terms is not None else 0
        self.pool_account = terms.account if terms is not None else -1
        self.last = None
        self.retry: dict[int, tuple[float, float]] = {}  # request id sent -> (when to send it again, the wait)

    def commands(self, now: float, engine, ts: int) -> np.ndarray:
        """The commands to run at monotonic time ``now`` and wall-clock ``ts`` (ns):
        the POOL_MARK when one is due (one at the first call), then for each request
        of ``engine`` due at ``ts``, by id, for its owner: a POOL_REDEEM executing it,
        or a POOL_CANCEL of a redemption whose shares the owner no longer holds free."""
        if not self.configured:
            return np.zeros(0, dtype=COMMAND_DTYPE)
        mark = self.interval > 0 and (self.last is None or now - self.last >= self.interval)
        if mark:
            self.last = now
        due = [] if engine.is_frozen(self.pool_account) else [
            request for request in engine.pool_due_requests(ts) if not engine.is_frozen(request[1])]
        due_ids = {request[0] for request in due}
        self.retry = {rid: retry for rid, retry in self.retry.items() if rid in due_ids}
        due = [request for request in due if now >= self.retry.get(request[0], (now, 0.0))[0]]
        commands = np.zeros(int(mark) + len(due), dtype=COMMAND_DTYPE)
        commands["asset"] = self.share_asset
        if mark:
            commands[0]["kind"] = CommandKind.POOL_MARK
        for row, (rid, account, held) in enumerate(due, start=int(mark)):
            commands[row]["kind"] = CommandKind.POOL_REDEEM if held else CommandKind.POOL_CANCEL
            commands[row]["account"] = account
            commands[row]["order_id"] = rid
            wait = min(2 * self.retry[rid][1], RETRY_MAX_S) if rid in self.retry else RETRY_S
            self.retry[rid] = (now + wait, wait)
        return commands
