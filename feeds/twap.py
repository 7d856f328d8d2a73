"""Settlement prices of dated option series: each underlying's reference
history and its time-weighted average over the window before expiry.

The reference is a step function: each price the feed process sent holds
from its timestamp until the next one. The TWAP over [start, end] is the
exact integral of that function divided by the window's length (a Fraction);
the history must reach back to ``start`` (a price at or before it), otherwise
there is no settlement price and the series waits for an operator.
The settlement price sent to the core is floored to a whole price unit of the
series (``settlement_units``).
"""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction

DEFAULT_WINDOW_NS = 30 * 60 * 10**9
"""The settlement window: the last 30 minutes before expiry."""


class ReferenceHistory:
    """(timestamp ns, USD x 1e8) references of one asset, oldest first, kept for
    ``keep_ns`` before the newest (plus the last point before that, which still
    holds at the cut-off)."""

    def __init__(self, keep_ns: int) -> None:
        if keep_ns <= 0:
            raise ValueError("keep_ns must be positive")
        self.keep_ns = keep_ns
        self.times: list[int] = []
        self.prices: list[int] = []

    def add(self, ts: int, price: int) -> None:
        """Record a price from ``ts`` on; ValueError if ts goes back in time."""
        if self.times and ts < self.times[-1]:
            raise ValueError(f"reference at {ts} is older than the last one at {self.times[-1]}")
        if self.times and ts == self.times[-1]:
            self.prices[-1] = price
            return
        self.times.append(ts)
        self.prices.append(price)
        cut = bisect_right(self.times, ts - self.keep_ns) - 1
        if cut > 0:
            del self.times[:cut]
            del self.prices[:cut]

    def twap(self, start: int, end: int) -> Fraction | None:
        """The time-weighted average price over [start, end] (end > start), or None
        when the history does not reach back to ``start``."""
        if end <= start:
            raise ValueError("the window must have a positive length")
        first = bisect_right(self.times, start) - 1
        if first < 0:
            return None
        area = 0
        for i in range(first, len(self.times)):
            begin = max(self.times[i], start)
            if begin >= end:
                break
            until = min(self.times[i + 1], end) if i + 1 < len(self.times) else end
            area += self.prices[i] * (until - begin)
        return Fraction(area, end - start)


def settlement_units(twap_usd: Fraction, quote_usd: int, price_scale: int) -> int:
    """The settlement price in the series' price units per whole underlying token:
    the underlying's USD TWAP over the premium asset's USD price, floored."""
    if quote_usd <= 0:
        raise ValueError("the premium asset needs a positive USD price")
    return int(twap_usd * price_scale / quote_usd)
