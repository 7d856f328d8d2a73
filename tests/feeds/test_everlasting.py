"""Everlasting option marks and greeks (feeds/everlasting.py) against the
funded basket of expiring options they stand for, parity and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.everlasting import everlasting
from feeds.options import black_scholes

PROFILE = settings(max_examples=100, deadline=None)
EPS = np.finfo(float).eps

spots = st.floats(1.0, 10_000.0)
moneyness = st.floats(0.5, 2.0)       # strike / spot
vols = st.floats(0.1, 1.5)
funding_years = st.floats(1 / 365, 30 / 365)
rights = st.booleans()


# Panels of the quadrature in r = sqrt(t / T): geometric near 0, where the
# time value of a near-the-money option rises over a span of r ~ |ln(S/K)| /
# (sigma sqrt(T)) that can be 1e-6 wide, then even up to r = 10, beyond which
# the weight e^{-r^2} < 1e-43 leaves less than an ulp of S.
PANELS = np.concatenate([[0.0], np.geomspace(1e-9, 1.0, 400), np.linspace(1.0, 10.0, 400)[1:]])


def basket(spot, strike, vol, period, is_call, nodes=40):
    """The funded basket by direct integration: Black-Scholes (zero rate) over
    maturities t, weighted e^{-t/T} / T. With t = T r^2 the integral is
    int_0^inf BS(T r^2) e^{-r^2} 2r dr, smooth in r (the time value grows like
    sqrt(t) = r sqrt(T)), summed exactly (math.fsum) over Gauss-Legendre panels.

    scipy's quad is not used: near the money it stops at an error estimate a
    few ulps wide while being hundreds of ulps off (a kink of width 1e-6 at 0)."""
    x, w = np.polynomial.legendre.leggauss(nodes)
    lo, hi = PANELS[:-1, None], PANELS[1:, None]
    r = (lo + hi) / 2 + (hi - lo) / 2 * x
    marks = black_scholes(spot, strike, period * r * r, vol, 0.0, is_call).mark
    return math.fsum((marks * np.exp(-r * r) * 2 * r * (hi - lo) / 2 * w).ravel())


@PROFILE
@given(spots, st.one_of(moneyness, st.sampled_from([1.0, 1 - 1e-7, 1 + 1e-5])), vols, funding_years, rights)
def test_closed_form_equals_funded_basket(spot, m, vol, period, is_call):
    strike = spot * m
    closed = float(everlasting(spot, strike, vol, period, is_call).mark)
    numeric = basket(spot, strike, vol, period, is_call)
    ulp = EPS * max(spot, strike)
    # The quadrature has converged: half again as many nodes per panel moves it by
    # rounding only.
    assert basket(spot, strike, vol, period, is_call, nodes=60) == pytest.approx(numeric, rel=0, abs=4 * ulp)
    # Each Black-Scholes mark is exact to 16 ulps of max(S, K) (test_option_pricing's
    # BOUND_EPS), so their weighted mean (the weights sum to 1) is too; the closed
    # form adds a few ulps of its much smaller time value. 32 ulps of max(S, K):
    # at the money, where the time value is K / u (u about 40 at 7 days and 50%),
    # a formula 3e-13 off in relative terms already fails.
    assert closed == pytest.approx(numeric, rel=0, abs=32 * ulp)


def test_closed_form_by_hand():
    # S = K = 100, sigma = 0.5, T = 7 days: u = sqrt(1 + 8 / (0.25 x 7/365)) = 40.8
    # V = K / u = 2.4474 (the same for call and put at the money)
    u = math.sqrt(1 + 8 / (0.25 * 7 / 365))
    call = everlasting(100.0, 100.0, 0.5, 7 / 365, True)
    put = everlasting(100.0, 100.0, 0.5, 7 / 365, False)
    assert float(call.mark) == pytest.approx(100 / u, rel=1e-15) == pytest.approx(2.44736, abs=1e-5)
    assert float(put.mark) == float(call.mark)
    # Delta at the strike: (1 + u) / 2u for the call, (1 - u) / 2u for the put.
    assert float(call.delta) == pytest.approx((1 + u) / (2 * u), rel=1e-14)
    assert float(put.delta) == pytest.approx((1 - u) / (2 * u), rel=1e-14)
    # Funding: the time value over the period, per year.
    assert float(call.funding_rate) == pytest.approx(float(call.time_value) / (7 / 365), rel=1e-15)


@PROFILE
@given(spots, moneyness, vols, funding_years)
def test_put_call_parity(spot, m, vol, period):
    strike = spot * m
    call = everlasting(spot, strike, vol, period, True)
    put = everlasting(spot, strike, vol, period, False)
    # call = (S - K)^+ + V, put = (K - S)^+ + V with the same V: the difference
    # rounds twice (each sum and the subtraction), half an ulp of max(S, K) each.
    assert float(call.mark - put.mark) == pytest.approx(spot - strike, rel=0, abs=4 * EPS * max(spot, strike))
    assert float(call.delta - put.delta) == pytest.approx(1.0, abs=4 * EPS)
    assert call.gamma == put.gamma and call.vega == put.vega and call.time_value == put.time_value


@PROFILE
@given(spots, moneyness, vols, funding_years, rights)
def test_greeks_match_finite_differences_of_mark(spot, m, vol, period, is_call):
    strike = spot * m
    result = everlasting(spot, strike, vol, period, is_call)

    def price(s=spot, v=vol):
        return float(everlasting(s, strike, v, period, is_call).mark)

    # The mark's curvature scale in spot is S / u (the time value falls off as
    # x^(-u/2)); steps are a small share of it. Central differences err by
    # h^2 f'''/6 (the relative part) plus the rounding of marks near max(S, K),
    # a few ulps of it divided by h or h^2 (the absolute part).
    u = math.sqrt(1 + 8 / (vol * vol * period))
    size = max(spot, strike)
    h = 1e-5 * spot / u
    delta = (price(s=spot + h) - price(s=spot - h)) / (2 * h)
    assert delta == pytest.approx(result.delta, rel=1e-6, abs=4 * EPS * size / h)
    h = 1e-3 * spot / u
    second = (price(s=spot + h) - 2 * float(result.mark) + price(s=spot - h)) / (h * h)
    assert second == pytest.approx(result.gamma, rel=1e-3, abs=8 * EPS * size / (h * h))
    h = 1e-5 * vol
    vega = (price(v=vol + h) - price(v=vol - h)) / (2 * h)
    assert vega == pytest.approx(result.vega, rel=1e-5, abs=4 * EPS * size / h)


rows = st.tuples(spots, moneyness, vols, funding_years, rights)


@PROFILE
@given(st.lists(rows, min_size=1, max_size=20))
def test_vectorised_equals_scalar(batch):
    spot, m, vol, period, is_call = (np.array(column) for column in zip(*batch, strict=True))
    vector = everlasting(spot, spot * m, vol, period, is_call)
    for i, (s, mi, v, t, c) in enumerate(batch):
        scalar = everlasting(s, s * mi, v, t, c)
        for a, b in zip(vector, scalar, strict=True):
            np.testing.assert_allclose(a[i], b, rtol=1e-13, atol=1e-300)


def test_deep_out_of_the_money_underflows_to_zero_quietly():
    with np.errstate(all="raise"):
        far = everlasting(1.0, 10_000.0, 0.01, 1 / 365, True)
    assert float(far.mark) == 0.0 and float(far.delta) == 0.0


@pytest.mark.parametrize(("args", "name"), [
    ((0.0, 100.0, 0.5, 0.02, True), "spot"),
    ((100.0, -1.0, 0.5, 0.02, True), "strike"),
    ((100.0, 100.0, 0.0, 0.02, True), "vol"),
    ((100.0, 100.0, 0.5, 0.0, True), "funding_years"),
    ((100.0, 100.0, 0.5, math.inf, True), "funding_years"),
    ((100.0, 100.0, 0.5, 0.02, "call"), "is_call"),
])
def test_everlasting_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        everlasting(*args)
