"""Margins of perpetual series (feeds/everlasting.py perpetual_margin) and
their conversion to the core's integers with the FUND prices (feeds/perpetual.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.defaults import DEFAULT_OPTIONS, perpetual_series
from feeds.everlasting import everlasting, perpetual_margin
from feeds.perpetual import PerpetualMoves, perpetual_risk, series_perpetual_risk

PROFILE = settings(max_examples=100, deadline=None)
EPS = np.finfo(float).eps


@PROFILE
@given(st.floats(1.0, 10_000.0), st.floats(0.5, 2.0), st.floats(0.1, 1.5), st.floats(1 / 365, 30 / 365),
       st.booleans(), st.floats(0.01, 0.5))
def test_margin_is_delta_gamma_floored_by_revaluation_and_bounds_every_move(spot, m, vol, period, is_call, move):
    strike = spot * m
    margin = float(perpetual_margin(spot, strike, vol, period, is_call, move))
    # The formula from u and V directly.
    u = math.sqrt(1 + 8 / (vol * vol * period))
    g = everlasting(spot, strike, vol, period, is_call)
    value = float(g.time_value)
    delta_gamma = abs(float(g.delta)) * spot * move + (u * u - 1) * value * move * move / 8
    # Float rounding of a few terms of size max(S, K): a handful of ulps of it.
    tol = 64 * EPS * max(spot, strike)
    assert margin >= delta_gamma - tol
    # A short loses at most the margin on any move up to ``move`` either way
    # (the mark is convex in S: the worst is at an end, where it is revalued).
    now = float(g.mark)
    for step in np.linspace(-move, move, 21):
        assert float(everlasting(spot * (1 + step), strike, vol, period, is_call).mark) - now <= margin + tol
    assert margin == pytest.approx(max(delta_gamma, max(
        float(everlasting(spot * (1 + s), strike, vol, period, is_call).mark) - now for s in (-move, move))),
        rel=0, abs=tol)


def test_margin_covers_a_long_s_funding_for_a_period_and_more():
    # Over a grid of strikes, vols and periods the 15% margin is at least 2.6
    # funding periods of funding (V / T a year): measured 2.63 at worst (a put
    # struck at 0.925 S, 100% vol, 7 days), so 2 periods is a safe floor.
    for strike in np.linspace(50, 200, 31):
        for vol in (0.3, 0.6, 1.0):
            for period in (1 / 365, 3 / 365, 7 / 365):
                for is_call in (True, False):
                    g = everlasting(100.0, strike, vol, period, is_call)
                    margin = float(perpetual_margin(100.0, strike, vol, period, is_call, 0.15))
                    assert margin >= 2 * float(g.funding_rate) * period


def test_perpetual_margin_rejects_a_bad_move():
    with pytest.raises(ValueError, match="move"):
        perpetual_margin(100.0, 100.0, 0.5, 0.01, True, 1.0)


def test_core_integers_of_a_btc_call():
    spec = perpetual_series("WBTC", "BTC", "100000", "C", 3 * 86_400)
    out = perpetual_risk(np.array([90_000.0, 110_000.0]), 100_000.0, 0.6, 3 * 86_400, True,
                         contract_size=1, price_scale=spec.price_scale, tick_size=spec.tick_size,
                         qty_scale=spec.qty_scale, max_price=spec.max_price)
    g = everlasting(np.array([90_000.0, 110_000.0]), 100_000.0, 0.6, 3 / 365, True)
    assert (out.mark_price % spec.tick_size == 0).all()
    assert np.abs(out.mark_price - g.mark * spec.price_scale).max() <= spec.tick_size / 2
    # the payoff: 0 out of the money, $10,000 a contract in it, in price units
    assert out.payoff_price.tolist() == [0, 10_000 * spec.price_scale]
    assert (out.payoff_price <= out.mark_price).all()
    assert (out.maintenance_per_qty < out.initial_per_qty).all()
    one = series_perpetual_risk(spec, 90_000.0, 0.6, moves=PerpetualMoves())
    assert int(one.mark_price) == int(out.mark_price[0]) and int(one.initial_per_qty) == int(out.initial_per_qty[0])


def test_a_dated_series_has_no_perpetual_risk():
    with pytest.raises(ValueError, match="not a perpetual"):
        series_perpetual_risk(DEFAULT_OPTIONS[0], 90_000.0, 0.6)
