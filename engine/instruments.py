"""Instrument specifications: what the core needs to trade one book.

Prices in the core are integers in *price units* (``price_scale`` units per
one unit of the quote asset), quantities integers in *quantity units*
(``qty_scale`` units per one unit of the base asset). Tick and lot sizes are
multiples of those units, so the core itself can reject an off-tick price or
an off-lot quantity. See docs/matching.md.
"""

from __future__ import annotations

import datetime
from decimal import Decimal, InvalidOperation

import msgspec

EXPIRY_TIME_UTC = datetime.time(8, 0)
"""A dated series expires at this time (UTC) of its expiry date unless its terms name
another (``OptionTerms.expiry_time``): trading stops and it settles at the TWAP of the
window before it (feeds/twap.py)."""


def expiry_time_of(text: str) -> datetime.time:
    """The UTC time of day an ``expiry_time`` names: "HH:MM" or "HH:MM:SS"; "" is
    EXPIRY_TIME_UTC. ValueError for anything else."""
    if not text:
        return EXPIRY_TIME_UTC
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(len(p) == 2 and p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"option expiry_time {text!r} is not HH:MM or HH:MM:SS (UTC)")
    try:
        return datetime.time(*map(int, parts))
    except ValueError:
        raise ValueError(f"option expiry_time {text!r} is not a time of day") from None


def expiry_instant_ns(expiry: str, expiry_time: str = "") -> int:
    """The instant an option expiring on ``expiry`` (ISO date) at ``expiry_time``
    (UTC, "" for EXPIRY_TIME_UTC) stops trading, ns since the epoch."""
    instant = datetime.datetime.combine(datetime.date.fromisoformat(expiry), expiry_time_of(expiry_time),
                                        tzinfo=datetime.UTC)
    return int(instant.timestamp()) * 10**9


class OptionTerms(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What makes an instrument an option series on its ``base`` asset (the
    underlying). Orders trade contracts; the price is the premium per contract
    in the quote asset. A fill moves only the premium: positions are kept by the
    engine and margined (docs/matching.md, "Options")."""

    expiry: str = ""            # ISO date, e.g. "2026-12-31"; "" for a perpetual series
    strike: str                 # decimal, quote per whole underlying token
    right: str                  # "C" (call) or "P" (put)
    contract_size: str = "1"    # underlying tokens per contract (decimal)
    funding_period_s: int = 0   # perpetual (everlasting) series: funding period T in seconds; 0: dated
    expiry_time: str = ""       # dated series: "HH:MM[:SS]" UTC of the expiry date; "": EXPIRY_TIME_UTC

    def __post_init__(self) -> None:
        if self.funding_period_s < 0 or self.funding_period_s > 10 * 366 * 86_400:
            raise ValueError(f"option funding_period_s {self.funding_period_s} must be in [0, 10 years]")
        if self.funding_period_s and (self.expiry or self.expiry_time):
            raise ValueError("a perpetual option series (funding_period_s > 0) has no expiry")
        expiry_time_of(self.expiry_time)
        if not self.funding_period_s:
            try:
                datetime.date.fromisoformat(self.expiry)
            except ValueError:
                raise ValueError(f"option expiry {self.expiry!r} is not an ISO date (YYYY-MM-DD)") from None
        for name in ("strike", "contract_size"):
            try:
                value = Decimal(getattr(self, name))
            except InvalidOperation:
                raise ValueError(f"option {name} {getattr(self, name)!r} is not a decimal") from None
            if not value.is_finite() or value <= 0:
                raise ValueError(f"option {name} must be positive")
        if self.right not in ("C", "P"):
            raise ValueError(f"option right must be 'C' or 'P', not {self.right!r}")

    @property
    def is_call(self) -> bool:
        return self.right == "C"

    @property
    def is_perpetual(self) -> bool:
        """An everlasting series: no expiry, funding every ``funding_period_s``."""
        return self.funding_period_s > 0

    @property
    def expiry_date(self) -> datetime.date:
        return datetime.date.fromisoformat(self.expiry)

    @property
    def expiry_ns(self) -> int:
        """The expiry instant, nanoseconds since the epoch (``expiry_time``, by default
        EXPIRY_TIME_UTC, of the expiry date); 0 for a perpetual series, which never expires."""
        return 0 if self.is_perpetual else expiry_instant_ns(self.expiry, self.expiry_time)


class InstrumentSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Static description of one tradable instrument: a spot pair, or an option
    series on ``base`` when ``option`` is set."""

    symbol: str
    base: str
    quote: str
    tick_size: int = 1
    lot_size: int = 1
    min_qty: int = 1
    max_qty: int = 10**12
    max_price: int = 10**13
    static_band_bps: int = 0
    dynamic_band_bps: int = 0
    price_scale: int = 1
    qty_scale: int = 1
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    option: OptionTerms | None = None

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("instrument symbol must not be empty")
        for name in ("tick_size", "lot_size", "min_qty", "max_qty", "max_price", "price_scale", "qty_scale"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{self.symbol}: {name} must be positive")
        if self.max_price > 10**14:
            raise ValueError(f"{self.symbol}: max_price above 1e14 price units could overflow band arithmetic")
        if self.max_qty > 10**15:
            raise ValueError(f"{self.symbol}: max_qty above 1e15 quantity units")
        if self.min_qty > self.max_qty:
            raise ValueError(f"{self.symbol}: min_qty above max_qty")
        if not 0 <= self.taker_fee_bps <= 1_000:
            raise ValueError(f"{self.symbol}: taker_fee_bps must be in [0, 1000]")
        if not -self.taker_fee_bps <= self.maker_fee_bps <= 1_000:
            # A maker rebate is paid out of the taker fee of the same fill.
            raise ValueError(f"{self.symbol}: maker_fee_bps must be in [-taker_fee_bps, 1000]")
        for name in ("static_band_bps", "dynamic_band_bps"):
            if not 0 <= getattr(self, name) < 10_000:
                raise ValueError(f"{self.symbol}: {name} must be in [0, 10000)")

    @property
    def is_option(self) -> bool:
        return self.option is not None

    def price_to_units(self, price: Decimal | str | int) -> int:
        """Convert a decimal price to integer price units; raise if not exact."""
        units = Decimal(price) * self.price_scale
        if units != units.to_integral_value():
            raise ValueError(f"{self.symbol}: price {price} is finer than one price unit")
        return int(units)

    def qty_to_units(self, qty: Decimal | str | int) -> int:
        """Convert a decimal quantity to integer quantity units; raise if not exact."""
        units = Decimal(qty) * self.qty_scale
        if units != units.to_integral_value():
            raise ValueError(f"{self.symbol}: quantity {qty} is finer than one quantity unit")
        return int(units)

    def price_from_units(self, units: int) -> Decimal:
        """Integer price units back to a decimal price."""
        return Decimal(units) / self.price_scale

    def qty_from_units(self, units: int) -> Decimal:
        """Integer quantity units back to a decimal quantity."""
        return Decimal(units) / self.qty_scale
