"""Option marks, greeks and short-option margin (Black-Scholes, vectorised numpy).

Floats stop here: ``core_option_risk`` turns marks and margins into the integers
the core uses (price units on the tick grid, USD x 1e8 per quantity unit), with
the rounding rule and the limit of engine/units.py.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time
from decimal import Decimal
from fractions import Fraction
from typing import Literal, NamedTuple

import msgspec
import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from engine.instruments import InstrumentSpec
from engine.units import MAX_MARGIN_PER_QTY, USD_PRICE_SCALE, margin_per_qty

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_SECONDS_PER_YEAR = 365 * 86_400
_MIN_SD = 1e-12
"""Below this ``vol * sqrt(years)`` an option is priced at expiry: its time value
is under 1e-12 of spot and d1 could overflow."""


class SeriesName(msgspec.Struct, frozen=True):
    """The parts of an option symbol such as ``BTC-20261231-100000-C``."""

    underlying: str
    expiry: date
    strike: Decimal
    is_call: bool


def parse_series(symbol: str) -> SeriesName:
    """Split ``UNDERLYING-YYYYMMDD-STRIKE-C|P`` (split from the right, so the
    underlying may hold dots or dashes); ValueError says what is wrong."""
    parts = symbol.rsplit("-", 3)
    if len(parts) != 4 or not parts[0]:
        raise ValueError(f"option symbol {symbol!r} is not UNDERLYING-YYYYMMDD-STRIKE-C|P")
    underlying, expiry_text, strike_text, right = parts
    if len(expiry_text) != 8 or not expiry_text.isascii() or not expiry_text.isdigit():
        raise ValueError(f"option symbol {symbol!r}: expiry {expiry_text!r} is not YYYYMMDD")
    try:
        expiry = date(int(expiry_text[:4]), int(expiry_text[4:6]), int(expiry_text[6:]))
    except ValueError:
        raise ValueError(f"option symbol {symbol!r}: expiry {expiry_text!r} is not a calendar date") from None
    whole, _, fraction = strike_text.partition(".")
    if not (whole.isascii() and whole.isdigit() and (not fraction or fraction.isascii() and fraction.isdigit())):
        raise ValueError(f"option symbol {symbol!r}: strike {strike_text!r} is not a decimal number")
    strike = Decimal(strike_text)
    if strike <= 0:
        raise ValueError(f"option symbol {symbol!r}: strike must be positive")
    if right not in ("C", "P"):
        raise ValueError(f"option symbol {symbol!r}: right {right!r} is not 'C' or 'P'")
    return SeriesName(underlying, expiry, strike, right == "C")


def years_to_expiry(expiry: date, now: datetime, expiry_time_utc: time = time(8, 0)) -> float:
    """ACT/365 year fraction from the timezone-aware ``now`` to ``expiry`` at
    ``expiry_time_utc`` (a naive time read as UTC); 0.0 once expired."""
    if now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if expiry_time_utc.tzinfo is not None:
        raise ValueError("expiry_time_utc must be a naive time (it is read as UTC)")
    seconds = (datetime.combine(expiry, expiry_time_utc, tzinfo=UTC) - now).total_seconds()
    return max(seconds, 0.0) / _SECONDS_PER_YEAR


class Greeks(NamedTuple):
    """Black-Scholes value and sensitivities per 1 unit of underlying (numpy
    arrays; numpy scalars when every input was a scalar)."""

    mark: FloatArray
    delta: FloatArray
    gamma: FloatArray
    vega: FloatArray   # dPrice/dSigma, per 1.00 of vol
    theta: FloatArray  # dPrice/dt, per year of calendar time


def black_scholes(
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    years: npt.ArrayLike,
    vol: npt.ArrayLike,
    rate: npt.ArrayLike,
    is_call: npt.ArrayLike,
) -> Greeks:
    """European option value and greeks, without dividends; arguments broadcast.

    Where ``vol * sqrt(years)`` is below 1e-12 (expiry or zero vol) the option is worth
    its discounted forward intrinsic value ``max(±(S - K e^{-rT}), 0)``: delta is
    a step (one half exactly at the forward strike), gamma and vega are 0 and
    theta is the carry of the discounted strike."""
    s = as_floats("spot", spot, "> 0")
    k = as_floats("strike", strike, "> 0")
    t = as_floats("years", years, ">= 0")
    v = as_floats("vol", vol, ">= 0")
    r = as_floats("rate", rate)
    s, k, t, v, r, call = np.broadcast_arrays(s, k, t, v, r, as_bools("is_call", is_call))

    w = np.where(call, 1.0, -1.0)  # +1 call, -1 put
    discounted_strike = k * np.exp(-r * t)
    sqrt_t = np.sqrt(t)
    sd = v * sqrt_t
    live = sd > _MIN_SD
    safe_sd = np.where(live, sd, 1.0)
    d1 = np.log(s / discounted_strike) / safe_sd + 0.5 * sd
    d2 = d1 - sd
    step = np.heaviside(w * (s - discounted_strike), 0.5)
    n1 = np.where(live, ndtr(w * d1), step)
    n2 = np.where(live, ndtr(w * d2), step)
    pdf = np.where(live, np.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi), 0.0)

    # Cancellation can leave a far out-of-the-money mark a rounding error below its bound.
    lower_bound = np.maximum(w * (s - discounted_strike), 0.0)
    mark = np.maximum(w * (s * n1 - discounted_strike * n2), lower_bound)
    gamma = pdf / (s * safe_sd)
    theta = -0.5 * v * v * s * s * gamma - w * r * discounted_strike * n2
    return Greeks(mark, w * n1, gamma, s * pdf * sqrt_t, theta)


def short_margin(
    mark: npt.ArrayLike,
    spot: npt.ArrayLike,
    strike: npt.ArrayLike,
    is_call: npt.ArrayLike,
    base_rate: float = 0.15,
    min_rate: float = 0.10,
) -> FloatArray:
    """Margin of a SHORT option per 1 unit of underlying (CBOE / Deribit style).

    The premium plus a share of the underlying, less the out-of-the-money
    amount, but never less than a minimum share::

        call: mark + max(base_rate * spot - max(strike - spot, 0), min_rate * spot)
        put:  mark + max(base_rate * spot - max(spot - strike, 0), min_rate * strike)

    The put floor uses the strike because a short put can lose at most the strike.
    Arguments broadcast; ``0 < min_rate <= base_rate < 1``."""
    _check_rates("base_rate", base_rate, "min_rate", min_rate)
    m = as_floats("mark", mark, ">= 0")
    s = as_floats("spot", spot, "> 0")
    k = as_floats("strike", strike, "> 0")
    call = as_bools("is_call", is_call)
    otm = np.where(call, np.maximum(k - s, 0.0), np.maximum(s - k, 0.0))
    minimum = min_rate * np.where(call, s, k)
    return m + np.maximum(base_rate * s - otm, minimum)


class MarginRates(msgspec.Struct, frozen=True, kw_only=True):
    """``short_margin`` rates for initial and maintenance margin; maintenance
    never asks for more than initial."""

    initial_base: float = 0.15
    initial_min: float = 0.10
    maintenance_base: float = 0.10
    maintenance_min: float = 0.075

    def __post_init__(self) -> None:
        _check_rates("initial_base", self.initial_base, "initial_min", self.initial_min)
        _check_rates("maintenance_base", self.maintenance_base, "maintenance_min", self.maintenance_min)
        if self.maintenance_base > self.initial_base or self.maintenance_min > self.initial_min:
            raise ValueError("maintenance rates must not exceed initial rates")


class OptionRiskUnits(NamedTuple):
    """What the core holds per option instrument, in its integers (int64
    arrays; numpy scalars when every input was a scalar)."""

    mark_price: IntArray           # premium per contract, price units, on the tick grid
    initial_per_qty: IntArray      # USD x 1e8 per quantity unit
    maintenance_per_qty: IntArray  # USD x 1e8 per quantity unit, <= initial_per_qty


def core_option_risk(
    greeks_mark_per_underlying: npt.ArrayLike,
    im_per_underlying: npt.ArrayLike,
    mm_per_underlying: npt.ArrayLike,
    *,
    contract_size: Decimal | float,
    price_scale: int,
    tick_size: int,
    qty_scale: int,
    max_price: int,
) -> OptionRiskUnits:
    """Convert per-underlying USD marks and margins to core integers (broadcast).

    The mark is the premium per contract (``contract_size`` underlying) rounded
    to the nearest tick (half up), between one tick and ``max_price`` rounded
    down to the tick grid. Margins are USD per contract x 1e8 / ``qty_scale``,
    rounded up exactly so they are never understated, and at least 1."""
    if not math.isfinite(contract_size) or contract_size <= 0:
        raise ValueError("contract_size must be positive and finite")
    for name, value in (("price_scale", price_scale), ("tick_size", tick_size),
                        ("qty_scale", qty_scale), ("max_price", max_price)):
        if value <= 0:
            raise ValueError(f"{name} must be positive")
    if max_price < tick_size:
        raise ValueError("max_price must be at least one tick")
    mark = as_floats("greeks_mark_per_underlying", greeks_mark_per_underlying, ">= 0")
    im = as_floats("im_per_underlying", im_per_underlying, ">= 0")
    mm = as_floats("mm_per_underlying", mm_per_underlying, ">= 0")
    mark, im, mm = np.broadcast_arrays(mark, im, mm)
    if np.any(mm > im):
        raise ValueError("maintenance margin must not exceed initial margin")

    size = Fraction(contract_size)
    ticks = np.floor(mark * float(size * price_scale / tick_size) + 0.5)
    ticks = np.clip(ticks, 1, max_price // tick_size).astype(np.int64)
    initial = _margin_units("initial margin", im, size, qty_scale)
    maintenance = _margin_units("maintenance margin", mm, size, qty_scale)
    return OptionRiskUnits(ticks * tick_size, initial, maintenance)


def option_risk(
    series: SeriesName,
    spot_usd: float,
    vol: float,
    rate: float,
    now: datetime,
    rates: MarginRates,
    *,
    contract_size: Decimal | float,
    price_scale: int,
    tick_size: int,
    qty_scale: int,
    max_price: int,
) -> OptionRiskUnits:
    """Core mark and short margins for one series at ``now`` (expiry at 08:00 UTC)."""
    strike = float(series.strike)
    greeks = black_scholes(spot_usd, strike, years_to_expiry(series.expiry, now), vol, rate, series.is_call)
    initial = short_margin(greeks.mark, spot_usd, strike, series.is_call, rates.initial_base, rates.initial_min)
    maintenance = short_margin(
        greeks.mark, spot_usd, strike, series.is_call, rates.maintenance_base, rates.maintenance_min
    )
    return core_option_risk(
        greeks.mark, initial, maintenance, contract_size=contract_size, price_scale=price_scale,
        tick_size=tick_size, qty_scale=qty_scale, max_price=max_price,
    )


def as_floats(name: str, value: npt.ArrayLike, bound: Literal["", "> 0", ">= 0"] = "") -> FloatArray:
    """``value`` as float64; ValueError naming ``name`` if not finite or out of ``bound``."""
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    if (bound == "> 0" and np.any(array <= 0)) or (bound == ">= 0" and np.any(array < 0)):
        raise ValueError(f"{name} must be {bound}")
    return array


def _margin_units(name: str, usd: FloatArray, contract_size: Fraction, qty_scale: int) -> IntArray:
    """``max(margin_per_qty(usd x contract_size, qty_scale), 1)`` per element, as
    int64. Vectorised in floats where the product is clearly not an integer; where
    it is within rounding of one, ``engine.units.margin_per_qty`` decides exactly."""
    product = (usd * float(contract_size * USD_PRICE_SCALE / qty_scale)).ravel()
    if np.any(product > MAX_MARGIN_PER_QTY):
        raise ValueError(f"{name} per quantity unit is above the core's limit of 1e15 (USD x 1e8)")
    units = np.ceil(product).astype(np.int64)
    near_integer = np.abs(product - np.rint(product)) <= 4 * np.spacing(product)
    units[near_integer] = [margin_per_qty(Fraction(x) * contract_size, qty_scale) if x > 0 else 1
                           for x in usd.ravel()[near_integer]]
    return np.maximum(units, 1).reshape(usd.shape)[()]  # [()]: a numpy scalar for 0-d input


def as_bools(name: str, value: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """``value`` as a bool array; ValueError naming ``name`` if it is not boolean."""
    array = np.asarray(value)
    if array.dtype != np.bool_:
        raise ValueError(f"{name} must be boolean")
    return array


def _check_rates(base_name: str, base: float, min_name: str, minimum: float) -> None:
    """Require ``0 < minimum <= base < 1``."""
    if not 0 < minimum <= base < 1:
        raise ValueError(f"need 0 < {min_name} <= {base_name} < 1, got {minimum} and {base}")


def instrument_option_risk(
    spec: InstrumentSpec, spot_usd: float, vol: float, rate: float, now: datetime,
    rates: MarginRates = MarginRates(),
) -> OptionRiskUnits:
    """``option_risk`` for an option InstrumentSpec: its terms and sizes."""
    terms = spec.option
    if terms is None:
        raise ValueError(f"{spec.symbol} is not an option series")
    series = SeriesName(spec.base, terms.expiry_date, Decimal(terms.strike), terms.is_call)
    return option_risk(series, spot_usd, vol, rate, now, rates, contract_size=Decimal(terms.contract_size),
                       price_scale=spec.price_scale, tick_size=spec.tick_size, qty_scale=spec.qty_scale,
                       max_price=spec.max_price)
