"""Option marks, greeks, short margin and their conversion to core integers."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.options import (
    MarginRates,
    SeriesName,
    black_scholes,
    core_option_risk,
    option_risk,
    parse_series,
    short_margin,
    years_to_expiry,
)

PROFILE = settings(max_examples=300, deadline=None)

# Away from expiry and zero vol, where finite differences of the mark are smooth.
spots = st.floats(1.0, 10_000.0)
moneyness = st.floats(0.5, 2.0)  # strike / spot
years = st.floats(0.05, 3.0)
vols = st.floats(0.05, 1.5)
interest_rates = st.floats(-0.02, 0.10)
rights = st.booleans()

CORE = {"contract_size": 1, "price_scale": 100, "tick_size": 5, "qty_scale": 1000, "max_price": 10**6 + 3}


def greeks_floats(spot, strike, t, vol, rate, is_call):
    """black_scholes with every result as a float array, for comparisons."""
    return [np.asarray(x, dtype=float) for x in black_scholes(spot, strike, t, vol, rate, is_call)]


# -- black_scholes --


def test_hull_example():
    call = black_scholes(42.0, 40.0, 0.5, 0.20, 0.10, True)
    put = black_scholes(42.0, 40.0, 0.5, 0.20, 0.10, False)
    assert round(float(call.mark), 2) == 4.76
    assert round(float(put.mark), 2) == 0.81
    assert float(call.delta) == pytest.approx(0.7791, abs=1e-4)
    assert float(put.delta) == pytest.approx(call.delta - 1.0)
    assert call.gamma == put.gamma and call.vega == put.vega
    assert call.gamma > 0 and call.vega > 0 and call.theta < 0


def test_atm_call_delta_above_half_with_positive_rate():
    assert 0.5 < black_scholes(100.0, 100.0, 1.0, 0.3, 0.05, True).delta < 1.0
    assert -0.5 < black_scholes(100.0, 100.0, 1.0, 0.3, 0.05, False).delta < 0.0


@PROFILE
@given(spots, moneyness, years, vols, interest_rates)
def test_put_call_parity(spot, m, t, vol, rate):
    strike = spot * m
    call, put = greeks_floats(spot, strike, t, vol, rate, True), greeks_floats(spot, strike, t, vol, rate, False)
    forward_value = spot - strike * math.exp(-rate * t)
    assert call[0] - put[0] == pytest.approx(forward_value, abs=1e-9 * spot)
    assert call[1] - put[1] == pytest.approx(1.0, abs=1e-12)


@PROFILE
@given(spots, moneyness, years, vols, interest_rates, rights)
def test_greeks_match_finite_differences_of_mark(spot, m, t, vol, rate, is_call):
    strike = spot * m
    mark, delta, gamma, vega, theta = greeks_floats(spot, strike, t, vol, rate, is_call)

    def price(s=spot, t=t, v=vol):
        return float(black_scholes(s, strike, t, v, rate, is_call).mark)

    # Steps scale with the width of the price curve, spot * vol * sqrt(t).
    width = spot * vol * math.sqrt(t)
    h = 1e-4 * width
    assert (price(s=spot + h) - price(s=spot - h)) / (2 * h) == pytest.approx(delta, rel=1e-6, abs=1e-9)
    h = 3e-3 * width
    second = (price(s=spot + h) - 2 * mark + price(s=spot - h)) / (h * h)
    assert second == pytest.approx(gamma, rel=2e-3, abs=1e-6 / spot)
    h = 1e-4 * vol
    assert (price(v=vol + h) - price(v=vol - h)) / (2 * h) == pytest.approx(vega, rel=1e-5, abs=1e-8 * spot)
    h = 1e-4 * t
    assert -(price(t=t + h) - price(t=t - h)) / (2 * h) == pytest.approx(theta, rel=1e-5, abs=1e-8 * spot)


# Rounding allowed in the no-arbitrage bounds, in units of max(spot, discounted
# strike) -- not of the mark: a mark is the difference s N(d1) - K' N(d2) of two
# terms up to that size (at zero vol or expiry exactly s - K'), so an in-the-money
# mark of 0.76 from s ~ K' ~ 100 carries the rounding of numbers near 100. The
# bounds here use math.exp, black_scholes numpy's exp, which is not correctly
# rounded and may differ from libm's by a few ulps depending on the CPU's SIMD
# kernel. Counting ulps of max(s, K'): the two exps (up to 4 + 1) and their
# products with the strike (0.5 + 0.5), two ndtr values (up to 2 each), the two
# products with them (0.5 each) and the subtraction (0.5): 11.5, rounded up to 16.
# That is about 3.6e-15 relative: a mark off by a hundred-millionth of a cent on
# a $100 underlying still fails (test_no_arbitrage_check_catches_a_small_violation).
BOUND_EPS = 16 * np.finfo(float).eps


def assert_within_no_arbitrage_bounds(spot, discounted_strike, call, put):
    """max(S - K', 0) <= call <= S and max(K' - S, 0) <= put <= K', up to BOUND_EPS."""
    tol = BOUND_EPS * max(spot, discounted_strike)
    assert max(spot - discounted_strike, 0.0) - tol <= call <= spot + tol
    assert max(discounted_strike - spot, 0.0) - tol <= put <= discounted_strike + tol


@PROFILE
@given(spots, moneyness, st.floats(0.0, 3.0), st.floats(0.0, 2.0), interest_rates)
def test_marks_within_no_arbitrage_bounds(spot, m, t, vol, rate):
    strike = spot * m
    discounted_strike = strike * math.exp(-rate * t)
    call = float(black_scholes(spot, strike, t, vol, rate, True).mark)
    put = float(black_scholes(spot, strike, t, vol, rate, False).mark)
    assert_within_no_arbitrage_bounds(spot, discounted_strike, call, put)


@pytest.mark.parametrize("side", ["call below intrinsic", "call above spot", "put below intrinsic",
                                  "put above strike"])
def test_no_arbitrage_check_catches_a_small_violation(side):
    spot, strike, t, rate = 100.0, 99.0, 1.0, 0.05
    discounted_strike = strike * math.exp(-rate * t)
    marks = {"call": float(black_scholes(spot, strike, t, 0.0, rate, True).mark),
             "put": float(black_scholes(spot, strike, t, 0.0, rate, False).mark)}
    assert_within_no_arbitrage_bounds(spot, discounted_strike, marks["call"], marks["put"])
    off = 1e-10  # a hundred-millionth of a cent, about 300x the tolerance here
    bad = {"call below intrinsic": {"call": spot - discounted_strike - off},
           "call above spot": {"call": spot + off},
           "put below intrinsic": {"put": -off},
           "put above strike": {"put": discounted_strike + off}}[side]
    with pytest.raises(AssertionError):
        assert_within_no_arbitrage_bounds(spot, discounted_strike, **{**marks, **bad})


@PROFILE
@given(spots, moneyness, st.floats(0.0, 3.0), st.floats(0.0, 2.0), st.floats(0.0, 2.0), interest_rates, rights)
def test_mark_increases_with_vol(spot, m, t, vol_a, vol_b, rate, is_call):
    low, high = sorted((vol_a, vol_b))
    marks = black_scholes(spot, spot * m, t, np.array([low, high]), rate, is_call).mark
    assert marks[1] >= marks[0] - 1e-12 * spot


rows = st.tuples(spots, moneyness, st.floats(0.0, 3.0), st.floats(0.0, 2.0), interest_rates, rights)


@PROFILE
@given(st.lists(rows, min_size=1, max_size=20))
def test_vectorised_equals_scalar(batch):
    spot, m, t, vol, rate, is_call = (np.array(column) for column in zip(*batch, strict=True))
    vector = black_scholes(spot, spot * m, t, vol, rate, is_call)
    for i, row in enumerate(batch):
        scalar = black_scholes(row[0], row[0] * row[1], *row[2:])
        for v, s in zip(vector, scalar, strict=True):
            np.testing.assert_allclose(v[i], s, rtol=1e-13, atol=1e-300)


def test_expiry_and_zero_vol_give_intrinsic_without_warnings():
    spot = np.array([110.0, 90.0, 100.0])
    with np.errstate(all="raise"):
        at_expiry_call = black_scholes(spot, 100.0, 0.0, 0.3, 0.05, True)
        at_expiry_put = black_scholes(spot, 100.0, 0.0, 0.3, 0.05, False)
        zero_vol_call = black_scholes(spot, 100.0, 1.0, 0.0, 0.0, True)
        zero_vol_put = black_scholes(spot, 100.0, 1.0, 0.0, 0.0, False)
        carry_call = black_scholes(100.0, 100.0, 1.0, 0.0, 0.05, True)
    np.testing.assert_array_equal(at_expiry_call.mark, [10.0, 0.0, 0.0])
    np.testing.assert_array_equal(at_expiry_put.mark, [0.0, 10.0, 0.0])
    np.testing.assert_array_equal(at_expiry_call.delta, [1.0, 0.0, 0.5])
    np.testing.assert_array_equal(at_expiry_put.delta, [0.0, -1.0, -0.5])
    np.testing.assert_array_equal(zero_vol_call.mark, at_expiry_call.mark)
    np.testing.assert_array_equal(zero_vol_put.delta, at_expiry_put.delta)
    for result in (at_expiry_call, at_expiry_put, zero_vol_call, zero_vol_put):
        np.testing.assert_array_equal(result.gamma, 0.0)
        np.testing.assert_array_equal(result.vega, 0.0)
        assert np.all(np.isfinite(result.theta))
    # Zero vol, positive rate: worth the spot less the discounted strike.
    assert float(carry_call.mark) == pytest.approx(100.0 - 100.0 * math.exp(-0.05))
    assert float(carry_call.delta) == 1.0


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ((0.0, 100.0, 1.0, 0.2, 0.0, True), "spot"),
        ((100.0, -1.0, 1.0, 0.2, 0.0, True), "strike"),
        ((100.0, 100.0, -0.1, 0.2, 0.0, True), "years"),
        ((100.0, 100.0, 1.0, -0.2, 0.0, True), "vol"),
        ((100.0, 100.0, 1.0, 0.2, math.nan, True), "rate"),
        (([100.0, math.inf], 100.0, 1.0, 0.2, 0.0, True), "spot"),
        ((100.0, 100.0, 1.0, 0.2, 0.0, 1), "is_call"),
    ],
)
def test_black_scholes_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        black_scholes(*args)


# -- short_margin --


def test_short_margin_by_hand():
    # call, spot 100: strike 102 is 2 OTM -> 15 - 2 = 13 > 10 -> 2.0 + 13
    # put, spot 100: strike 95 is 5 OTM -> 15 - 5 = 10 > 0.10 * 95 -> 1.5 + 10
    # deep OTM call, strike 150: 15 - 50 < 10 -> the min term, 0.10 * spot = 10
    # deep OTM put, strike 50: 15 - 50 < 5 -> the min term, 0.10 * strike = 5
    # ITM call, strike 90: nothing OTM -> 12 + 15
    margin = short_margin(
        mark=[2.0, 1.5, 0.01, 0.02, 12.0],
        spot=100.0,
        strike=[102.0, 95.0, 150.0, 50.0, 90.0],
        is_call=np.array([True, False, True, False, True]),
    )
    np.testing.assert_allclose(margin, [15.0, 11.5, 10.01, 5.02, 27.0], rtol=1e-12)


def test_maintenance_below_initial():
    rates = MarginRates()
    args = ([2.0, 1.5, 0.01, 0.02], 100.0, [102.0, 95.0, 150.0, 50.0], np.array([True, False, True, False]))
    initial = short_margin(*args, rates.initial_base, rates.initial_min)
    maintenance = short_margin(*args, rates.maintenance_base, rates.maintenance_min)
    assert np.all(maintenance < initial)


@pytest.mark.parametrize(("base", "minimum"), [(0.15, 0.0), (0.10, 0.15), (1.0, 0.1), (0.15, -0.1)])
def test_short_margin_rejects_bad_rates(base, minimum):
    with pytest.raises(ValueError, match="min_rate"):
        short_margin(1.0, 100.0, 100.0, True, base, minimum)


@pytest.mark.parametrize(
    "fields",
    [{"maintenance_base": 0.2}, {"maintenance_min": 0.12}, {"initial_min": 0.2}, {"initial_base": 1.0}],
)
def test_margin_rates_validation(fields):
    with pytest.raises(ValueError):
        MarginRates(**fields)


# -- core_option_risk --


def test_core_option_risk_rounding():
    units = core_option_risk(
        [12.3456, 12.3249, 0.0, 1e9], [1250.123456789, 0.0, 0.0, 1.0], [1000.0, 0.0, 0.0, 0.5],
        **{**CORE, "contract_size": Decimal("0.1")},
    )
    # 12.3456 x 0.1 x 100 = 123.456 price units -> 24.69 ticks -> 25 ticks; 123.249 -> 24.65 -> 25 ticks
    # 0 -> one tick; 1e9 -> max_price on the grid
    np.testing.assert_array_equal(units.mark_price, [125, 125, 5, 10**6])
    # 125.0123456789 USD per contract x 1e8 / 1000 = 12501234.56789 -> up; 0 -> 1
    # 1.0 x 0.1 x 1e8 / 1000 = 10000 exactly: no rounding up
    np.testing.assert_array_equal(units.initial_per_qty, [12_501_235, 1, 1, 10_000])
    np.testing.assert_array_equal(units.maintenance_per_qty, [10_000_000, 1, 1, 5_000])
    assert units.mark_price.dtype == units.initial_per_qty.dtype == np.int64


def test_core_option_risk_mark_rounds_to_nearest_tick():
    marks = np.array([0.12, 0.124, 0.1251, 0.1274])  # 12, 12.4, 12.51, 12.74 price units; tick 5
    np.testing.assert_array_equal(core_option_risk(marks, 1.0, 1.0, **CORE).mark_price, [10, 10, 15, 15])


@PROFILE
@given(
    st.floats(0.0, 1e5),
    st.one_of(st.floats(0.0, 1e5), st.integers(0, 10**5).map(lambda n: n / 1000)),
    st.floats(0.0, 1.0),
    st.sampled_from([Decimal("0.01"), Decimal("0.1"), Decimal("1"), Decimal("100"), 0.3]),
    st.sampled_from([1, 3, 1000, 10**6]),
)
def test_core_margins_round_up_exactly(mark, initial, share, contract_size, qty_scale):
    maintenance = initial * share
    units = core_option_risk(mark, initial, maintenance, **{**CORE, "contract_size": contract_size,
                                                             "qty_scale": qty_scale})
    for usd, per_qty in ((initial, units.initial_per_qty), (maintenance, units.maintenance_per_qty)):
        exact = Fraction(usd) * Fraction(contract_size) * 10**8 / qty_scale
        assert int(per_qty) == max(math.ceil(exact), 1)
    assert 1 <= units.maintenance_per_qty <= units.initial_per_qty
    assert units.mark_price >= CORE["tick_size"] and units.mark_price % CORE["tick_size"] == 0


@pytest.mark.parametrize(
    ("args", "overrides", "match"),
    [
        ((math.nan, 1.0, 1.0), {}, "greeks_mark_per_underlying"),
        ((1.0, math.inf, 1.0), {}, "im_per_underlying"),
        ((1.0, 1.0, -1.0), {}, "mm_per_underlying"),
        ((1.0, 1.0, 2.0), {}, "maintenance"),
        ((1.0, 1e12, 1.0), {"qty_scale": 1}, "above the core's limit"),
        ((1.0, 1.0, 1.0), {"contract_size": 0}, "contract_size"),
        ((1.0, 1.0, 1.0), {"contract_size": math.inf}, "contract_size"),
        ((1.0, 1.0, 1.0), {"tick_size": 0}, "tick_size"),
        ((1.0, 1.0, 1.0), {"max_price": 4}, "max_price"),
    ],
)
def test_core_option_risk_rejects_bad_input(args, overrides, match):
    with pytest.raises(ValueError, match=match):
        core_option_risk(*args, **{**CORE, **overrides})


# -- series names, time, option_risk --


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("BTC-20261231-100000-C", SeriesName("BTC", date(2026, 12, 31), Decimal("100000"), True)),
        ("TSLA.M-20261218-400-P", SeriesName("TSLA.M", date(2026, 12, 18), Decimal("400"), False)),
        ("ETH-20261231-3500.5-C", SeriesName("ETH", date(2026, 12, 31), Decimal("3500.5"), True)),
    ],
)
def test_parse_series(symbol, expected):
    assert parse_series(symbol) == expected


@pytest.mark.parametrize(
    ("symbol", "match"),
    [
        ("BTC-20261231-100000", "UNDERLYING-YYYYMMDD-STRIKE"),
        ("-20261231-100000-C", "UNDERLYING-YYYYMMDD-STRIKE"),
        ("BTC-2026123-100000-C", "YYYYMMDD"),
        ("BTC-20261331-100000-C", "calendar date"),
        ("BTC-20261231-1e5-C", "decimal number"),
        ("BTC-20261231-0-C", "positive"),
        ("BTC-20261231-0.00-P", "positive"),
        ("BTC-20261231-100000-X", "'C' or 'P'"),
    ],
)
def test_parse_series_rejects_bad_symbols(symbol, match):
    with pytest.raises(ValueError, match=match):
        parse_series(symbol)


def test_years_to_expiry():
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    expected = (35 + 20 / 24) / 365  # to 2026-12-31 08:00Z
    assert years_to_expiry(date(2026, 12, 31), now) == pytest.approx(expected, rel=1e-15)
    same_instant = now.astimezone(timezone(timedelta(hours=-5)))
    assert years_to_expiry(date(2026, 12, 31), same_instant) == pytest.approx(expected, rel=1e-15)
    assert years_to_expiry(date(2026, 11, 26), now, time(12, 0)) == pytest.approx(1 / 365)
    assert years_to_expiry(date(2026, 11, 25), now) == 0.0
    with pytest.raises(ValueError, match="timezone-aware"):
        years_to_expiry(date(2026, 12, 31), now.replace(tzinfo=None))


def test_option_risk_composes_mark_margin_and_units():
    series = parse_series("BTC-20261231-100000-C")
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    rates = MarginRates()
    core = {"contract_size": Decimal("0.01"), "price_scale": 100, "tick_size": 1, "qty_scale": 1000,
            "max_price": 10**12}
    units = option_risk(series, 95_000.0, 0.6, 0.04, now, rates, **core)

    greeks = black_scholes(95_000.0, 100_000.0, years_to_expiry(series.expiry, now), 0.6, 0.04, True)
    initial = short_margin(greeks.mark, 95_000.0, 100_000.0, True, rates.initial_base, rates.initial_min)
    maintenance = short_margin(greeks.mark, 95_000.0, 100_000.0, True, 0.10, 0.075)
    assert units == core_option_risk(greeks.mark, initial, maintenance, **core)
    assert 1 <= units.maintenance_per_qty < units.initial_per_qty


def test_option_risk_after_expiry_marks_intrinsic():
    series = parse_series("TSLA.M-20261218-400-P")
    now = datetime(2026, 12, 19, tzinfo=UTC)
    units = option_risk(series, 350.0, 0.5, 0.04, now, MarginRates(), contract_size=100, price_scale=100,
                        tick_size=1, qty_scale=1, max_price=10**12)
    assert units.mark_price == 50 * 100 * 100  # 50 USD intrinsic x 100 shares, in cents
