"""Combining the usable sources of one asset: the median, with sources that
disagree with it beyond a threshold flagged and left out.

The median of an even count is the floor of the mean of the two middle prices
(integers in, an integer out). A source is an outlier when
``|price - median| * 10_000 > outlier_bps * median``; the result is the median
of the others. When every source is an outlier (e.g. two sources far apart)
there is no price: disagreement is not a reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from engine.units import BPS
from feeds.update import PriceUpdate


class Combined(msgspec.Struct, frozen=True):
    """One asset's combined price (None when no source is left) and who made it."""

    price: int | None
    used: tuple[str, ...]       # sources in the final median
    flagged: tuple[str, ...]    # sources left out as outliers
    timestamp: int = 0          # the oldest timestamp among the used updates


def median(prices: Sequence[int]) -> int:
    """The median of a non-empty list of integers (floor of the middle pair's mean)."""
    ordered = sorted(prices)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) // 2


def combine(updates: Sequence[PriceUpdate], outlier_bps: int) -> Combined:
    """The median of ``updates`` (already checked usable) without the outliers."""
    if not updates:
        return Combined(None, (), ())
    centre = median([u.price for u in updates])
    kept, outliers = [], []
    for u in updates:
        (kept if abs(u.price - centre) * BPS <= outlier_bps * centre else outliers).append(u)
    flagged = tuple(sorted(u.source for u in outliers))
    if not kept:
        return Combined(None, (), flagged)
    return Combined(median([u.price for u in kept]), tuple(sorted(u.source for u in kept)), flagged,
                    min(u.timestamp for u in kept))
