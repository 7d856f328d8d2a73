"""Perpetual (everlasting) option series in the core's integers: per series
its mark, its payoff (the FUND command's two prices) and its margin per
quantity unit, long or short (SET_OPTION_RISK), from one vectorised pass of
the everlasting closed form over a chain (docs/funding.md), with the greeks
of that pass as the gateway publishes them (theta: minus the funding rate)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from engine.instruments import InstrumentSpec
from engine.schemas import InstrumentInfo
from engine.schemas_greeks import SeriesGreeks
from feeds.everlasting import EverlastingGreeks, everlasting, perpetual_margin
from feeds.options import IntArray, core_option_risk
from feeds.remark import series_greeks

__all__ = ["PerpetualMoves", "PerpetualRisk", "PerpetualSeriesRisk", "perpetual_risk", "remark_perpetuals",
           "series_perpetual_risk"]

SECONDS_PER_YEAR = 365 * 86_400   # ACT/365, as feeds.options.years_to_expiry


class PerpetualMoves(NamedTuple):
    """The underlying moves the margins are computed for (fractions of spot)."""

    initial: float = 0.15
    maintenance: float = 0.10


class PerpetualRisk(NamedTuple):
    """What the core takes per series (int64 arrays, or numpy scalars), and the
    float greeks they came from (the gateway publishes those; the core never sees them)."""

    mark_price: IntArray           # premium per contract, price units on the tick grid (FUND, SET_REFERENCE)
    payoff_price: IntArray         # intrinsic value per contract, price units, at most the mark (FUND)
    initial_per_qty: IntArray      # USD x 1e8 per quantity unit, long or short (SET_OPTION_RISK)
    maintenance_per_qty: IntArray
    greeks: EverlastingGreeks      # per 1 unit of underlying, in the quote asset


def perpetual_risk(spot: npt.ArrayLike, strike: npt.ArrayLike, vol: npt.ArrayLike, funding_period_s: npt.ArrayLike,
                   is_call: npt.ArrayLike, quote_usd: npt.ArrayLike = 1.0, moves: PerpetualMoves = PerpetualMoves(),
                   *, contract_size: Decimal | float, price_scale: int, tick_size: int, qty_scale: int,
                   max_price: int) -> PerpetualRisk:
    """Marks, payoffs and margins of perpetual series sharing their sizes
    (arguments broadcast): spot and strike in the quote asset, margins in USD
    through ``quote_usd`` (USD per quote unit). The payoff is floored to a price
    unit and capped at the mark, so the funding rate mark - payoff is never
    negative and never overstated by the rounding."""
    years = np.asarray(funding_period_s, dtype=np.float64) / SECONDS_PER_YEAR
    greeks = everlasting(spot, strike, vol, years, is_call)
    to_usd = np.asarray(quote_usd, dtype=np.float64)
    initial = perpetual_margin(spot, strike, vol, years, is_call, moves.initial) * to_usd
    maintenance = perpetual_margin(spot, strike, vol, years, is_call, moves.maintenance) * to_usd
    units = core_option_risk(greeks.mark, initial, maintenance, contract_size=contract_size,
                             price_scale=price_scale, tick_size=tick_size, qty_scale=qty_scale, max_price=max_price)
    payoff = greeks.mark - greeks.time_value
    payoff_units = np.floor(payoff * float(contract_size) * price_scale).astype(np.int64)
    return PerpetualRisk(units.mark_price, np.minimum(payoff_units, units.mark_price), units.initial_per_qty,
                         units.maintenance_per_qty, greeks)


def series_perpetual_risk(spec: InstrumentSpec, spot: float, vol: float, quote_usd: float = 1.0,
                          moves: PerpetualMoves = PerpetualMoves()) -> PerpetualRisk:
    """``perpetual_risk`` of one perpetual InstrumentSpec: its terms and sizes."""
    terms = spec.option
    if terms is None or not terms.is_perpetual:
        raise ValueError(f"{spec.symbol} is not a perpetual option series")
    return perpetual_risk(spot, float(terms.strike), vol, terms.funding_period_s, terms.is_call, quote_usd, moves,
                          contract_size=Decimal(terms.contract_size), price_scale=spec.price_scale,
                          tick_size=spec.tick_size, qty_scale=spec.qty_scale, max_price=spec.max_price)


class PerpetualSeriesRisk(NamedTuple):
    """One perpetual series' new values in core integers, and its greeks (the feed process sends them)."""

    instrument: int
    mark: int            # SET_REFERENCE and FUND's mark
    payoff: int          # FUND's payoff
    initial: int         # SET_OPTION_RISK, long or short
    maintenance: int
    greeks: SeriesGreeks  # theta: minus the funding rate, (mark - payoff) / T a year


def remark_perpetuals(series: Sequence[InstrumentInfo], spot: Sequence[float], quote_usd: Sequence[float],
                      vol: Sequence[float], moves: PerpetualMoves = PerpetualMoves()) -> list[PerpetualSeriesRisk]:
    """``perpetual_risk`` of perpetual InstrumentInfos (the feed process's listing),
    given per series the underlying's spot in the quote asset, the quote's USD
    price and the volatility; one vectorised pass per group of series sharing
    their sizes. ValueError when an input or a result is out of the core's range."""
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(series):
        groups[(s.contract_size or "1", s.price_scale, s.tick_size, s.qty_scale, s.max_price)].append(i)
    spots, to_usd, vols = (np.asarray(a, dtype=np.float64) for a in (spot, quote_usd, vol))
    out: list[PerpetualSeriesRisk | None] = [None] * len(series)
    for (contract_size, price_scale, tick_size, qty_scale, max_price), rows in groups.items():
        members = [series[i] for i in rows]
        risk = perpetual_risk(spots[rows], np.array([float(s.strike) for s in members]), vols[rows],
                              np.array([s.funding_period_s for s in members]),
                              np.array([s.right == "C" for s in members]), to_usd[rows], moves,
                              contract_size=Decimal(contract_size), price_scale=price_scale, tick_size=tick_size,
                              qty_scale=qty_scale, max_price=max_price)
        g = risk.greeks
        for k, i in enumerate(rows):
            iid = series[i].instrument
            out[i] = PerpetualSeriesRisk(iid, int(risk.mark_price[k]), int(risk.payoff_price[k]),
                                         int(risk.initial_per_qty[k]), int(risk.maintenance_per_qty[k]),
                                         series_greeks(iid, g.delta[k], g.gamma[k], g.vega[k], -g.funding_rate[k],
                                                       vols[i]))
    return out
