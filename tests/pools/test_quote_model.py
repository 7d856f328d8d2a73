"""The quoting arithmetic (pools/quote_model.py): examples worked by hand, and
properties over random inputs: bid below ask, on the tick grid, inside the band;
the spread never narrows as the position grows or as free margin shrinks."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.reference.bands import band_around
from pools.quote_model import (
    NO_QUOTE,
    QuoteParams,
    execution_band,
    fair_quote,
    hedge_price,
    hedge_size,
    impact_slope,
    on_grid,
    quote,
)

PARAMS = QuoteParams(half_spread_bps=100.0, min_half_ticks=1, impact=0.1, max_position=1_000.0)
MAX_PRICE = 10**12


def test_flat_pool_quotes_the_base_spread_around_the_mark():
    # Flat pool, delta 0: no impact, half spread 1% of 100,000 = 1,000.
    assert quote(100_000, 2_500_000, 0.0, 0.0, 1.0, 1e9, PARAMS, 100, None, MAX_PRICE) == (99_000, 101_000)


def test_impact_by_hand():
    # lambda = 0.1 x 2,500,000^2 / 100,000 x 0.5 = 3,125,000; position 10 over
    # liquidity 1,000 -> x = 0.01, size 2 -> y = 0.001.
    slope = impact_slope(100_000, 2_500_000, -0.5, 0.1)
    assert slope == pytest.approx(3_125_000, rel=1e-12)
    bid, ask = fair_quote(100_000, 2_500_000, -0.5, 10.0, 2.0, 1_000.0, PARAMS, 100)
    mid, half = 100_000 - 31_250, 1_000 + 3_125_000 * (0.005 + 0.001)
    assert (bid, ask) == (pytest.approx(mid - half, rel=1e-12), pytest.approx(mid + half, rel=1e-12))
    # A long pool lowers both prices (it wants to sell); a short one raises them.
    short_bid, short_ask = fair_quote(100_000, 2_500_000, -0.5, -10.0, 2.0, 1_000.0, PARAMS, 100)
    assert short_bid > bid and short_ask > ask


def test_rounding_widens_and_clips_inside_the_band():
    assert on_grid(99_050.0, 100_950.0, 100, None, MAX_PRICE) == (99_000, 101_000)
    band = band_around(100_000, 500, 100)                       # [95,000, 105,000]
    assert on_grid(50_000.0, 200_000.0, 100, band, MAX_PRICE) == (95_000, 105_000)
    # Skewed past the band: both sides pinned inside it, bid still below ask.
    assert on_grid(200_000.0, 210_000.0, 100, band, MAX_PRICE) == (104_900, 105_000)
    assert on_grid(1_000.0, 2_000.0, 100, band, MAX_PRICE) == (95_000, 95_100)
    # A band narrower than a tick has no room for two sides.
    assert on_grid(99_000.0, 101_000.0, 100, (100_000, 100_000), MAX_PRICE) == NO_QUOTE


def test_no_quote_without_mark_spot_or_liquidity():
    for theo, spot, liquidity in ((0, 1.0, 1.0), (100, 0.0, 1.0), (100, 1.0, 0.0), (100, 1.0, -5.0)):
        assert quote(theo, spot, 0.5, 0.0, 1.0, liquidity, PARAMS, 1, None, MAX_PRICE) == NO_QUOTE


def test_max_position_quotes_only_the_reducing_side():
    params = PARAMS._replace(max_position=5.0)
    long = quote(100_000, 2_500_000, 0.5, 5.0, 1.0, 1e6, params, 100, None, MAX_PRICE)
    short = quote(100_000, 2_500_000, 0.5, -5.0, 1.0, 1e6, params, 100, None, MAX_PRICE)
    assert long.bid is None and long.ask is not None
    assert short.ask is None and short.bid is not None


def test_execution_band_intersects_the_bands_that_exist():
    assert execution_band(100_000, 0, 1_000, 500, 100) == (90_000, 110_000)
    assert execution_band(100_000, 104_000, 1_000, 500, 100) == (98_800, 109_200)
    assert execution_band(0, 0, 1_000, 500, 100) is None


def test_hedge_size_and_price():
    assert hedge_size(0.9, 1.0, 5.0) == 0.0
    assert hedge_size(3.0, 1.0, 5.0) == -3.0
    assert hedge_size(-30.0, 1.0, 5.0) == 5.0
    band = (2_250_000, 2_750_000)
    assert hedge_price(True, 2_500_000, 50, 100, band, MAX_PRICE) == 2_512_500
    assert hedge_price(False, 2_500_000, 50, 100, band, MAX_PRICE) == 2_487_500
    assert hedge_price(True, 2_500_000, 5_000, 100, band, MAX_PRICE) == 2_750_000   # clipped to the band
    assert hedge_price(True, 0, 50, 100, band, MAX_PRICE) is None


# -- properties --

ticks = st.sampled_from([1, 5, 100, 10_000])
theos = st.integers(1, 10**9)
spots = st.floats(1.0, 1e10)
deltas = st.floats(-1.0, 1.0)
positions = st.floats(-1e4, 1e4)
sizes = st.floats(1e-3, 1e3)
liquidities = st.floats(1e-3, 1e9)
params = st.builds(QuoteParams, st.floats(0.0, 5_000.0), st.integers(1, 10), st.floats(0.0, 10.0),
                   st.floats(1e-3, 1e5))
band_bps = st.integers(0, 9_999)


@given(theos, spots, deltas, positions, sizes, liquidities, params, ticks, band_bps, st.integers(0, 10**9))
def test_bid_below_ask_on_grid_inside_the_band(theo, spot, delta, position, size, liquidity, p, tick, bps,
                                               last_trade):
    band = execution_band(theo, last_trade, bps, bps // 2, tick)
    q = quote(theo, spot, delta, position, size, liquidity, p, tick, band, MAX_PRICE)
    for price in (q.bid, q.ask):
        if price is not None:
            assert price % tick == 0 and 0 < price <= MAX_PRICE
            assert band is None or band[0] <= price <= band[1]
    if q.bid is not None and q.ask is not None:
        assert q.bid < q.ask


@given(theos, spots, deltas, positions, positions, sizes, liquidities, params, ticks)
def test_spread_widens_with_the_position(theo, spot, delta, a, b, size, liquidity, p, tick):
    small, large = sorted((abs(a), abs(b)))
    narrow = fair_quote(theo, spot, delta, small, size, liquidity, p, tick)
    wide = fair_quote(theo, spot, delta, math.copysign(large, a), size, liquidity, p, tick)
    # Relative tolerance: the spreads are sums of float products of up to ~1e30.
    assert wide[1] - wide[0] >= (narrow[1] - narrow[0]) * (1 - 1e-12)


@given(st.floats(1.0, 1e9), st.floats(0.0, 1e9), ticks)
def test_the_grid_never_narrows_a_quote(bid, width, tick):
    ask = bid + width + 1e-3
    q = on_grid(bid, ask, tick, None, 10**12)
    if bid >= tick:
        assert q.bid <= bid and q.ask >= ask


@given(theos, spots, deltas, positions, sizes, st.floats(1.0, 1e9), st.floats(0.0, 1.0), st.floats(0.0, 1.0),
       params, ticks)
def test_spread_and_skew_widen_as_free_margin_shrinks(theo, spot, delta, position, size, collateral, u1, u2, p,
                                                      tick):
    # Margin usage u: free collateral = collateral (1 - u); liquidity is proportional to it.
    low, high = sorted((u1, u2))
    if high >= 1.0:
        return
    loose = fair_quote(theo, spot, delta, position, size, collateral * (1 - low), p, tick)
    tight = fair_quote(theo, spot, delta, position, size, collateral * (1 - high), p, tick)
    assert tight[1] - tight[0] >= (loose[1] - loose[0]) * (1 - 1e-12)
    loose_skew = abs(theo - (loose[0] + loose[1]) / 2)
    tight_skew = abs(theo - (tight[0] + tight[1]) / 2)
    assert tight_skew >= loose_skew * (1 - 1e-9) - 1e-6 * theo


@given(st.floats(-1e6, 1e6), st.floats(0.0, 1e3), st.floats(1e-3, 1e3))
def test_hedge_reduces_the_delta_and_never_overshoots(delta, threshold, max_order):
    size = hedge_size(delta, threshold, max_order)
    assert abs(size) <= max_order
    if abs(delta) <= threshold:
        assert size == 0.0
    else:
        assert math.copysign(1.0, size) == -math.copysign(1.0, delta) and abs(delta + size) <= abs(delta)
