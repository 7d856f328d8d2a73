"""Rate-limited warnings: bad input must not flood the gateway's log."""

from __future__ import annotations

import logging
import time
from collections import defaultdict


class Throttle:
    """Log lines of one kind at most `per_second` a second, then one summary line."""

    def __init__(self, log: logging.Logger, per_second: int = 20) -> None:
        self.log = log
        self.per_second = per_second
        self.window = 0.0
        self.count: dict[str, int] = defaultdict(int)

    def warn(self, kind: str, message: str, *args) -> None:
        """Log a warning of ``kind`` unless that kind already filled this second."""
        now = time.monotonic()
        if now - self.window >= 1.0:
            self.flush()
            self.window = now
        self.count[kind] += 1
        if self.count[kind] <= self.per_second:
            self.log.warning(message, *args)

    def flush(self) -> None:
        """Log how many lines of each kind were left out, and start counting anew."""
        for kind, n in self.count.items():
            if n > self.per_second:
                self.log.warning("%d more %s in the last second (not logged one by one)", n - self.per_second, kind)
        self.count.clear()
