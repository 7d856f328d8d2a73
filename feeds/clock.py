"""Clocks the feed process and the sources read time from: the system clock in
production, a manual clock in tests so nothing sleeps."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Time in ns since the Unix epoch, and a way to wait for it."""

    def now(self) -> int:
        """Current time, ns since the epoch."""
        ...

    def sleep_until(self, when: int) -> None:
        """Return once ``now() >= when``."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> int:
        """``time.time_ns()``."""
        return time.time_ns()

    def sleep_until(self, when: int) -> None:
        """Sleep until ``when`` (at once if it has passed)."""
        delay = (when - time.time_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)


class ManualClock:
    """A clock that moves only when told to (tests, offline runs)."""

    def __init__(self, start: int = 0) -> None:
        self.time = start

    def now(self) -> int:
        """The time it was last set to."""
        return self.time

    def sleep_until(self, when: int) -> None:
        """Jump to ``when`` (never backwards)."""
        self.time = max(self.time, when)

    def advance(self, ns: int) -> int:
        """Move forward by ``ns`` and return the new time."""
        self.time += ns
        return self.time
