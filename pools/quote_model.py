"""The main pool's quoting arithmetic: two-sided prices around an option's mark,
widened and skewed by the pool's position and free margin, put on the tick grid
and inside the bands; and the size of a delta hedge (docs/quoter.md).

Pure functions of numbers: no gateway, no clock. The quoting process
(pools/quoter.py) feeds them what GetChain, GetInstruments and GetMargin say.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from engine.reference.bands import Band, band_around


class QuoteParams(NamedTuple):
    """How wide and how skewed the pool quotes (configs/pools.toml, [quotes])."""

    half_spread_bps: float     # the half spread of a flat pool with unlimited liquidity, bps of the mark
    min_half_ticks: int        # ... and at least this many ticks
    impact: float              # k of the price impact k S^2 / theo |delta| (n / l)
    max_position: float        # |net position| (underlying tokens) beyond which the side adding to it stops


class Quote(NamedTuple):
    """A bid and an ask in price units; None: that side is not quoted."""

    bid: int | None
    ask: int | None


NO_QUOTE = Quote(None, None)


def impact_slope(theo: float, spot: float, delta: float, impact: float) -> float:
    """lambda = k S^2 / theo |delta|: the price move (price units) per unit of
    position over liquidity; S and theo in the same price units."""
    return impact * spot * spot / theo * abs(delta)


def fair_quote(theo: float, spot: float, delta: float, position: float, size: float, liquidity: float,
               params: QuoteParams, tick: int) -> tuple[float, float]:
    """The unrounded (bid, ask) around ``theo``: with lambda = impact_slope,
    x = position / liquidity and y = size / (2 liquidity) (position, size and
    liquidity in underlying tokens), mid = theo - lambda x and half spread
    max(theo b, m tick) + lambda (|x| / 2 + y): the side that reduces the
    position moves towards the market by lambda |x| / 2, the other away by
    3 lambda |x| / 2. ``liquidity`` must be positive."""
    slope = impact_slope(theo, spot, delta, params.impact)
    x = position / liquidity
    y = size / (2.0 * liquidity)
    mid = theo - slope * x
    half = max(theo * params.half_spread_bps / 10_000.0, params.min_half_ticks * tick) + slope * (abs(x) / 2 + y)
    return mid - half, mid + half


def execution_band(reference: int, last_trade: int, static_bps: int, dynamic_bps: int, tick: int) -> Band | None:
    """The prices an order may rest or trade at without a band refusing it: the
    static band around the reference intersected with the dynamic band around
    the last trade, where each exists (engine/reference/bands.py)."""
    bands = [b for b in (band_around(reference, static_bps, tick), band_around(last_trade, dynamic_bps, tick))
             if b is not None]
    if not bands:
        return None
    return max(lo for lo, _ in bands), min(hi for _, hi in bands)


def on_grid(bid: float, ask: float, tick: int, band: Band | None, max_price: int) -> Quote:
    """Round the bid down and the ask up to the tick grid (never narrower), then
    clip both into ``band`` (and (0, max_price]) with the bid below the ask;
    a side with no room left is None."""
    lo, hi = band if band is not None else (tick, max_price // tick * tick)
    lo = max(lo, tick)
    hi = min(hi, max_price // tick * tick)
    if hi - lo < tick:
        return NO_QUOTE
    ticks_bid = math.floor(bid / tick) if math.isfinite(bid) else -1
    ticks_ask = math.ceil(ask / tick) if math.isfinite(ask) else hi // tick + 1
    # Clip the tick counts, not the floats: a huge float never becomes a huge int.
    b = min(max(ticks_bid, lo // tick), hi // tick - 1) * tick
    a = max(min(ticks_ask, hi // tick), lo // tick + 1) * tick
    if b >= a:
        return NO_QUOTE
    return Quote(b, a)


def quote(theo: int, spot: float, delta: float, position: float, size: float, liquidity: float,
          params: QuoteParams, tick: int, band: Band | None, max_price: int) -> Quote:
    """The pool's quote in one series: ``fair_quote`` on the tick grid inside
    the band; nothing without a positive mark, spot or liquidity (the pool has no
    free margin); no bid once the pool is ``max_position`` long, no ask once it
    is that short."""
    if theo <= 0 or spot <= 0 or liquidity <= 0 or not math.isfinite(delta):
        return NO_QUOTE
    bid, ask = fair_quote(float(theo), spot, delta, position, size, liquidity, params, tick)
    out = on_grid(bid, ask, tick, band, max_price)
    if position >= params.max_position:
        out = out._replace(bid=None)
    if position <= -params.max_position:
        out = out._replace(ask=None)
    return out


def hedge_size(net_delta: float, threshold: float, max_order: float) -> float:
    """Underlying tokens to buy (positive) or sell (negative) against a net
    delta: nothing while |delta| <= threshold, else the opposite of the delta,
    at most ``max_order``."""
    if abs(net_delta) <= threshold:
        return 0.0
    return -math.copysign(min(abs(net_delta), max_order), net_delta)


def hedge_price(side_buy: bool, reference: int, slippage_bps: float, tick: int, band: Band | None,
                max_price: int) -> int | None:
    """The IOC limit price of a hedge: ``slippage_bps`` through the spot
    reference, on the tick grid, inside the band; None when there is no room."""
    if reference <= 0:
        return None
    lo, hi = band if band is not None else (tick, max_price // tick * tick)
    lo, hi = max(lo, tick), min(hi, max_price // tick * tick)
    if lo > hi:
        return None
    # One division of exact products: 2,500,000 x 1.005 would land a hair under a tick.
    if side_buy:
        price = math.floor(reference * (10_000 + slippage_bps) / (10_000 * tick)) * tick
    else:
        price = math.ceil(reference * (10_000 - slippage_bps) / (10_000 * tick)) * tick
    return min(max(price, lo), hi)
