"""Option re-marking: the marks and short margins of a whole option chain from
each series' underlying spot and a volatility surface, in one vectorised
Black-Scholes pass, as the integers SET_REFERENCE and SET_OPTION_RISK take,
and the greeks of the same pass as the gateway publishes them (PublishGreeks).

The surface is a flat volatility per underlying with per-expiry overrides. The
spot and the strike are in the series' quote asset; margins are converted to
USD with the quote's USD price, since the core holds them in USD x 1e8.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

import msgspec
import numpy as np

from engine.instruments import expiry_time_of
from engine.schemas import InstrumentInfo
from engine.schemas_greeks import SeriesGreeks
from feeds.options import MarginRates, black_scholes, core_option_risk, short_margin, years_to_expiry


class VolSurface(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The volatility of one underlying's series: ``vol`` for every expiry but
    those in ``expiries`` (ISO date -> vol)."""

    underlying: str
    vol: float
    expiries: dict[str, float] = {}

    def __post_init__(self) -> None:
        for vol in (self.vol, *self.expiries.values()):
            if not math.isfinite(vol) or vol < 0:
                raise ValueError(f"{self.underlying}: volatilities must be finite and not negative, got {vol}")
        for expiry in self.expiries:
            try:
                date.fromisoformat(expiry)
            except ValueError:
                raise ValueError(f"{self.underlying}: expiry {expiry!r} is not an ISO date") from None

    def at(self, expiry: str) -> float:
        """The volatility of the series expiring on ``expiry`` (ISO date)."""
        return self.expiries.get(expiry, self.vol)


class SeriesRisk(NamedTuple):
    """One series' new values in core integers, and its greeks (floats, for the gateway)."""

    instrument: int
    mark: int          # premium per contract, price units on the tick grid (SET_REFERENCE)
    initial: int       # short margin, USD x 1e8 per quantity unit (SET_OPTION_RISK)
    maintenance: int
    greeks: SeriesGreeks


def series_greeks(instrument: int, delta: float, gamma: float, vega: float, theta: float,
                  vol: float) -> SeriesGreeks:
    """The SeriesGreeks of one series from numpy values, as plain floats."""
    return SeriesGreeks(instrument, float(delta), float(gamma), float(vega), float(theta), float(vol))


def remark_chain(series: Sequence[InstrumentInfo], spot: Sequence[float], quote_usd: Sequence[float],
                 vol: Sequence[float], rate: float, now: datetime, rates: MarginRates) -> list[SeriesRisk]:
    """Marks and margins of ``series`` (option InstrumentInfo) at ``now``, given per
    series the underlying's spot in the quote asset, the quote's USD price and the
    volatility. One Black-Scholes pass over the whole chain; the conversion to
    integers is vectorised per group of series sharing their sizes; the greeks
    are Black-Scholes', per unit of underlying in the quote asset. ValueError
    (from feeds/options.py) when an input or a result is out of the core's range."""
    if not series:
        return []
    strike = np.array([float(s.strike) for s in series])
    is_call = np.array([s.right == "C" for s in series])
    years_of = {(expiry, at): years_to_expiry(date.fromisoformat(expiry), now, expiry_time_of(at))
                for expiry, at in {(s.expiry, s.expiry_time) for s in series}}
    years = np.array([years_of[s.expiry, s.expiry_time] for s in series])
    spots = np.asarray(spot, dtype=np.float64)
    to_usd = np.asarray(quote_usd, dtype=np.float64)
    vols = np.asarray(vol, dtype=np.float64)
    greeks = black_scholes(spots, strike, years, vols, rate, is_call)
    initial = short_margin(greeks.mark, spots, strike, is_call, rates.initial_base, rates.initial_min) * to_usd
    maintenance = short_margin(greeks.mark, spots, strike, is_call, rates.maintenance_base,
                               rates.maintenance_min) * to_usd
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(series):
        groups[(s.contract_size or "1", s.price_scale, s.tick_size, s.qty_scale, s.max_price)].append(i)
    marks, initials, maintenances = (np.empty(len(series), dtype=np.int64) for _ in range(3))
    for (contract_size, price_scale, tick_size, qty_scale, max_price), rows in groups.items():
        units = core_option_risk(greeks.mark[rows], initial[rows], maintenance[rows],
                                 contract_size=Decimal(contract_size), price_scale=price_scale,
                                 tick_size=tick_size, qty_scale=qty_scale, max_price=max_price)
        marks[rows], initials[rows], maintenances[rows] = units
    return [SeriesRisk(s.instrument, int(marks[k]), int(initials[k]), int(maintenances[k]),
                       series_greeks(s.instrument, greeks.delta[k], greeks.gamma[k], greeks.vega[k],
                                     greeks.theta[k], vols[k]))
            for k, s in enumerate(series)]
