"""The operator's clock of the main pool: the gateway runs a POOL_MARK (a NAV per
share sample for the time-weighted NAV, docs/pools.md) every ``[pools.main]
nav_sample_s`` seconds, sequenced and journaled like any command."""

from __future__ import annotations

import numpy as np

from engine.config import Config
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind


class PoolClock:
    """When the next NAV sample is due; none without a main pool or with nav_sample_s 0."""

    def __init__(self, config: Config) -> None:
        main, terms = config.file.pools.main, config.venue.main_pool
        self.interval = main.nav_sample_s if main is not None and terms is not None else 0
        self.share_asset = terms.share_asset if terms is not None else 0
        self.last = None

    def commands(self, now: float) -> np.ndarray:
        """The POOL_MARK to run at monotonic time ``now`` (one at the first call), or none."""
        commands = np.zeros(0, dtype=COMMAND_DTYPE)
        if self.interval <= 0 or (self.last is not None and now - self.last < self.interval):
            return commands
        self.last = now
        commands = np.zeros(1, dtype=COMMAND_DTYPE)
        commands["kind"] = CommandKind.POOL_MARK
        commands["asset"] = self.share_asset
        return commands
