"""The one interface every price source speaks: ``PriceUpdate`` (asset, price,
confidence, timestamp, source, market status) and the ``Source`` protocol.

Prices and confidences are integers in USD x 1e8 (``engine.units.USD_PRICE_SCALE``),
not ``Decimal``: it is the unit SET_ASSET_PRICE takes, the unit of a Chainlink USD
answer, and integers compare, sort and take medians exactly and cheaply; a source
converts once, at its edge, with ``usd_units`` (exact) or ``usd_units_rounded``
(a float model such as GBM, or a finer oracle answer). Timestamps are integer
nanoseconds since the Unix epoch, the clock's own unit (feeds/clock.py).
"""

from __future__ import annotations

import enum
from decimal import Decimal
from fractions import Fraction
from typing import Protocol

import msgspec

from engine.units import USD_PRICE_SCALE, usd_price_units

NS_PER_SECOND = 1_000_000_000


class MarketStatus(enum.StrEnum):
    """What the source says about the asset's home market when it priced it
    (feeds/market_status.py says what the feed process does with it)."""

    OPEN = "open"          # the regular session trades it
    CLOSED = "closed"      # the market is closed
    HALTED = "halted"      # the market is open but this stock is halted (LULD pause, regulatory halt)
    UNKNOWN = "unknown"


class PriceUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """One price of one asset from one source."""

    asset: str               # asset symbol, as in the venue config (e.g. "AMZNX")
    price: int               # USD x 1e8 per whole token, > 0
    confidence: int          # half-width of the source's confidence interval, USD x 1e8; 0 if none given
    timestamp: int           # when the source priced it, ns since the Unix epoch
    source: str              # the source's name in the feeds config
    market: MarketStatus = MarketStatus.UNKNOWN


class Source(Protocol):
    """A price source of one asset. ``poll`` never blocks: it returns the updates that
    became available by ``now`` (ns since the epoch, from the injected clock), oldest first."""

    name: str
    asset: str

    def poll(self, now: int) -> list[PriceUpdate]:
        """Updates available by ``now`` and not returned before."""
        ...


def usd_units(usd: Decimal | Fraction | int | str) -> int:
    """An exact decimal USD price to USD x 1e8 (ValueError if finer or out of range)."""
    return usd_price_units(Fraction(Decimal(usd)) if isinstance(usd, str) else usd)


def usd_units_rounded(usd: Decimal | Fraction | float) -> int:
    """A USD price rounded half-even to the nearest 1e-8 USD (at least one unit)."""
    return max(1, round(Fraction(usd) * USD_PRICE_SCALE))
