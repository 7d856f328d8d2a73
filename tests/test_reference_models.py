"""Direct tests of the models in engine/reference (bands, risk, margin) where
their arithmetic has edge cases, each checked against the Cython engine where
that is cheap."""

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.matcher import MatchingEngine
from engine.core.order_info import MarginState
from engine.core.types import EventKind, OrderType, Side, TimeInForce
from engine.defaults import DEFAULT_ASSETS, DEFAULT_INSTRUMENTS, DEFAULT_OPTIONS, stock_pair
from engine.instruments import InstrumentSpec
from engine.reference.bands import band_around, execution_band, in_band
from engine.reference.margin import (
    Exposure,
    asset_value,
    buyback_price,
    buyback_qty,
    collateral_value,
    initial_requirement,
    maintenance_requirement,
    margin_state,
    option_risk_valid,
)
from engine.reference.risk import InstrumentTerms, affordable_qty, fee, fill_fees, notional, reservation
from engine.units import MAX_MARGIN_PER_QTY, VALUE_LIMIT

ASSET = {spec.symbol: i for i, spec in enumerate(DEFAULT_ASSETS)}
USDC, AMZNX, TSLA, WBTC = ASSET["USDC"], ASSET["AMZNX"], ASSET["TSLA.M"], ASSET["WBTC"]
USD = 10**8
ENGINE_CASES = settings(max_examples=60, deadline=None)


def spot_terms(maker_bps=0, taker_bps=0, **over) -> InstrumentTerms:
    """AMZNX/USDC with the given fees (and other fields) over the default assets."""
    spec = msgspec.structs.replace(stock_pair("AMZNX"), maker_fee_bps=maker_bps, taker_fee_bps=taker_bps, **over)
    return InstrumentTerms.of(spec, DEFAULT_ASSETS)


def risk_engine(terms: InstrumentTerms, accounts=(1, 2)) -> MatchingEngine:
    """A risk engine with the default assets, ``terms.spec`` as instrument 0 and
    rich accounts."""
    eng = MatchingEngine(risk=True)
    for asset in DEFAULT_ASSETS:
        eng.add_asset(asset)
    eng.add_instrument(terms.spec)
    for acct in accounts:
        eng.open_account(acct)
        eng.credit(acct, USDC, 10**15)
        eng.credit(acct, AMZNX, 10**12)
    return eng


# -- bands --------------------------------------------------------------------------


@pytest.mark.parametrize("centre, bps, tick, band", [
    (1_000_000, 1_000, 100, (900_000, 1_100_000)),
    (990_000, 500, 100, (940_500, 1_039_500)),
    (1_000_100, 33, 100, (996_800, 1_003_400)),    # 996_799.67 rounds up, 1_003_400.33 down
    (100, 1, 100, (100, 100)),                      # a band of one tick
    (150, 1, 100, (200, 100)),                      # empty: no tick lies inside
    (0, 1_000, 100, None),                          # no centre
    (1_000_000, 0, 100, None),                      # disabled
])
def test_band_edges_round_inwards(centre, bps, tick, band):
    assert band_around(centre, bps, tick) == band


def test_execution_band_is_the_intersection_of_the_bands_that_exist():
    spec = InstrumentSpec(symbol="X/USDC", base="X", quote="USDC", tick_size=100, lot_size=1, max_qty=10,
                          max_price=10**7, static_band_bps=1_000, dynamic_band_bps=500)
    assert execution_band(spec, 0, 0) is None
    assert execution_band(spec, 1_000_000, 0) == (900_000, 1_100_000)
    assert execution_band(spec, 0, 1_000_000) == (950_000, 1_050_000)
    assert execution_band(spec, 1_000_000, 1_080_000) == (1_026_000, 1_100_000)
    assert in_band(None, 1) and in_band((100, 200), 200) and not in_band((100, 200), 201)


@ENGINE_CASES
@given(ticks=st.integers(1, 100_000), bps=st.integers(1, 9_999), tick=st.sampled_from([1, 7, 100, 2_500]))
def test_band_edges_are_the_engines_market_collars(ticks, bps, tick):
    """A market order on an empty book is accepted at the band edge it is collared to."""
    spec = InstrumentSpec(symbol="X/USDC", base="X", quote="USDC", tick_size=tick, lot_size=1, max_qty=10,
                          max_price=2 * ticks * tick, static_band_bps=bps)
    eng = MatchingEngine()
    iid = eng.add_instrument(spec)
    eng.set_reference_price(iid, ticks * tick)
    lo, hi = band_around(ticks * tick, bps, tick)
    buy = eng.new_order(iid, 1, Side.BUY, 1, order_type=OrderType.MARKET, tif=TimeInForce.IOC)
    sell = eng.new_order(iid, 1, Side.SELL, 1, order_type=OrderType.MARKET, tif=TimeInForce.IOC)
    assert (buy[0].kind, buy[0].price) == (EventKind.ACCEPTED, hi)
    assert (sell[0].kind, sell[0].price) == (EventKind.ACCEPTED, lo)


# -- fees -----------------------------------------------------------------------------


@pytest.mark.parametrize("amount, bps, expected", [
    (10, 3, 0), (10, -2, 0),                         # a tiny fill pays and earns nothing
    (7_000_000, 3, 2_100), (7_000_000, -2, -1_400),
    (3_333_330, 3, 999), (3_333_330, -2, -666),      # 999.999 and -666.666 round towards zero
    (9_999, 1, 0), (10_000, 1, 1), (10_000, -1, -1), (19_999, -1, -1),
    (0, 5, 0), (123_456, 0, 0),
])
def test_fees_round_towards_zero(amount, bps, expected):
    assert fee(amount, bps) == expected


@given(amount=st.integers(0, 1 << 60), bps=st.integers(0, 1_000))
def test_a_rebate_is_the_fee_with_its_sign_flipped(amount, bps):
    assert fee(amount, -bps) == -fee(amount, bps)
    assert 0 <= fee(amount, bps) * 10_000 <= amount * bps


@ENGINE_CASES
@given(taker_bps=st.integers(0, 50), maker_share=st.integers(-100, 100), ticks=st.integers(1, 10_000),
       qty=st.integers(1, 5_000))
def test_fill_fees_are_the_engines(taker_bps, maker_share, ticks, qty):
    terms = spot_terms(maker_bps=taker_bps * maker_share // 100, taker_bps=taker_bps,
                       static_band_bps=0, dynamic_band_bps=0)
    eng = risk_engine(terms)
    eng.new_order(0, 1, Side.BUY, qty, ticks * 100)
    fill = eng.new_order(0, 2, Side.SELL, qty, ticks * 100)[-1]
    assert fill.kind == EventKind.FILL
    assert (fill.fee, fill.maker_fee) == fill_fees(terms, ticks * 100, qty)


# -- reservations -----------------------------------------------------------------------


def test_reservation_of_a_buy_and_a_sell():
    terms = spot_terms(maker_bps=3, taker_bps=5)
    n = (2_200_000 // 100) * 2_500 * 10
    assert notional(terms, 2_200_000, 2_500) == n == 550_000_000
    assert notional(terms, 2_200_099, 2_500) == n                       # the price floors to the tick
    assert reservation(terms, Side.BUY, 2_200_000, 2_500) == n + n * 5 // 10_000
    assert reservation(terms, Side.SELL, 2_200_000, 2_500) == 2_500 * 1_000
    assert reservation(spot_terms(maker_bps=-2, taker_bps=3), Side.BUY, 100, 1) == 10  # a rebate reserves nothing
    option = InstrumentTerms.of(DEFAULT_OPTIONS[0], DEFAULT_ASSETS)
    assert reservation(option, Side.SELL, 20_000_000, 100) == 0       # an option sell adds to open sells


@given(maker_bps=st.integers(-10, 10), taker_bps=st.integers(10, 30), limit=st.integers(1, 50_000),
       fills=st.lists(st.tuples(st.integers(1, 500), st.integers(0, 1_000)), min_size=1, max_size=8))
def test_reservation_covers_every_partial_fill_inside_the_limit(maker_bps, taker_bps, limit, fills):
    """R(L) - R(L - q) pays n + fee of a fill of q at any price at or below a
    buy's limit, at the taker or the maker rate, fill after fill."""
    terms = spot_terms(maker_bps=maker_bps, taker_bps=taker_bps)
    leaves = sum(q for q, _ in fills)
    for q, better in fills:
        price = max(limit - better, 1) * 100
        released = (reservation(terms, Side.BUY, limit * 100, leaves)
                    - reservation(terms, Side.BUY, limit * 100, leaves - q))
        n = notional(terms, price, q)
        assert released >= n + max(fee(n, maker_bps), fee(n, taker_bps))
        leaves -= q


@ENGINE_CASES
@given(asks=st.lists(st.tuples(st.integers(1, 500), st.integers(0, 20)), min_size=1, max_size=6),
       extra=st.integers(0, 1_000))
def test_the_engine_reserves_the_models_amount_after_partial_fills(asks, extra):
    """A buy walking asks at better prices keeps exactly R(leaves) at its limit
    reserved, and pays exactly the notional and fee of each fill."""
    terms = spot_terms(maker_bps=-1, taker_bps=7)
    eng = risk_engine(terms)
    limit = 2_200_000
    for qty, better in asks:
        eng.new_order(0, 2, Side.SELL, qty, limit - better * 100)
    before = eng.balances(1)[USDC][0]
    total = sum(q for q, _ in asks) + extra
    events = eng.new_order(0, 1, Side.BUY, total, limit)
    fills = [e for e in events if e.kind == EventKind.FILL]
    leaves = total - sum(f.qty for f in fills)
    paid = sum(notional(terms, f.price, f.qty) + fill_fees(terms, f.price, f.qty)[0] for f in fills)
    assert eng.balances(1)[USDC] == (before - paid, reservation(terms, Side.BUY, limit, leaves))
    eng.check_integrity()


# -- affordable quantity and the liquidation buy-back --------------------------------------


@given(maker_bps=st.integers(-5, 5), taker_bps=st.integers(5, 40), ticks=st.integers(1, 100_000),
       lot=st.integers(1, 50), want=st.integers(0, 10_000), free=st.integers(-10, 10**9))
def test_affordable_quantity_is_the_most_whole_lots_that_fit(maker_bps, taker_bps, ticks, lot, want, free):
    terms = spot_terms(maker_bps=maker_bps, taker_bps=taker_bps, lot_size=lot, min_qty=lot)
    qty = affordable_qty(terms, ticks * 100, want, free)
    assert qty % lot == 0 and 0 <= qty <= want
    assert qty == 0 or reservation(terms, Side.BUY, ticks * 100, qty) <= free
    assert qty + lot > want or reservation(terms, Side.BUY, ticks * 100, qty + lot) > free


def short_call_under_maintenance(free_usdc: int) -> MatchingEngine:
    """Account 1 holds 100 TSLA.M and ``free_usdc`` and is short one CALL
    contract; TSLA.M then falls to $100, under its maintenance margin. No spot
    book has a band, so a liquidation sells nothing."""
    specs = DEFAULT_INSTRUMENTS + DEFAULT_OPTIONS
    call = len(DEFAULT_INSTRUMENTS)
    eng = MatchingEngine(risk=True)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    for spec in specs:
        eng.add_instrument(spec)
    for acct in (1, 2):
        eng.open_account(acct)
    for asset, price in ((USDC, USD), (TSLA, 250 * USD), (WBTC, 90_000 * USD)):
        eng.set_asset_price(asset, price)
    eng.set_reference_price(call, 20_000_000)
    eng.set_option_risk(call, 150 * USD, 100 * USD)
    eng.credit(1, TSLA, 100 * 10**6)
    eng.credit(2, USDC, 10**12)
    eng.new_order(call, 1, Side.SELL, 100, 20_000_000)
    eng.new_order(call, 2, Side.BUY, 100, 20_000_000)
    eng.debit(1, USDC, eng.balances(1)[USDC][0] - free_usdc)
    eng.set_asset_price(TSLA, 100 * USD)
    return eng


@pytest.mark.parametrize("lots, offset", [(0, 0), (1, -1), (1, 0), (37, -1), (37, 0), (37, 1), (90, -1),
                                          (90, 0)])
def test_buyback_quantity_is_the_engines(lots, offset):
    """The buy-back at the band's high edge, around the reservation of exactly ``lots`` lots."""
    call = len(DEFAULT_INSTRUMENTS)
    terms = InstrumentTerms.of(DEFAULT_OPTIONS[0], DEFAULT_ASSETS)
    probe = short_call_under_maintenance(0)
    _, reference, last_trade = probe.instrument_state(call)
    price = buyback_price(terms.spec, execution_band(terms.spec, reference, last_trade))
    free = max(reservation(terms, Side.BUY, price, lots) + offset, 0)
    assert free <= 2_000 * 10**6, "no more than the premium received"
    eng = short_call_under_maintenance(free)
    expected = buyback_qty(terms, 100, price, free)
    events = eng.liquidate(1)
    assert events[0].kind == EventKind.LIQUIDATED
    placed = [e for e in events if e.kind == EventKind.ACCEPTED]
    if expected:
        assert [(e.instrument, e.side, e.price, e.qty) for e in placed] == [(call, Side.BUY, price, expected)]
    else:
        assert placed == [] and events[0].qty == 0
    assert expected == (lots if offset >= 0 else max(lots - 1, 0))


# -- collateral and margin ------------------------------------------------------------------


@pytest.mark.parametrize("amount, price, expected", [
    (1, 10**6, 0),             # value 1: after the 30% haircut 0.7 floors to 0
    (3, 10**6, 2),             # value 3: 2.1 floors to 2 (not 3 - floor(0.9) = 3)
    (1, 999_999, 0),           # value 0.999999 floors to 0 before the haircut
    (3, 500_000, 0),           # value 1.5 floors to 1 first: 0.7 -> 0 (1.5 x 0.7 = 1.05 would give 1)
    (0, USD, 0), (-5, USD, 0), (5, 0, 0),
])
def test_value_floors_before_the_haircut_and_after_it(amount, price, expected):
    assert asset_value(DEFAULT_ASSETS[TSLA], amount, price) == expected


def test_values_saturate_per_asset_and_in_total():
    wbtc = DEFAULT_ASSETS[WBTC]
    assert asset_value(wbtc, 10**18, 10**15) == VALUE_LIMIT * 9_000 // 10_000
    assert asset_value(DEFAULT_ASSETS[USDC], 10**18, 10**15) == VALUE_LIMIT
    prices = [10**15] * len(DEFAULT_ASSETS)
    assert collateral_value(DEFAULT_ASSETS, [10**18] * len(DEFAULT_ASSETS), prices) == VALUE_LIMIT


amounts = st.lists(st.one_of(st.integers(0, 10**9), st.integers(0, (1 << 62) - 1)),
                   min_size=len(DEFAULT_ASSETS), max_size=len(DEFAULT_ASSETS))
prices = st.lists(st.one_of(st.just(0), st.integers(1, 10**6), st.integers(1, 10**15)),
                  min_size=len(DEFAULT_ASSETS), max_size=len(DEFAULT_ASSETS))


@ENGINE_CASES
@given(amounts=amounts, prices=prices)
def test_collateral_is_the_engines(amounts, prices):
    """Haircut floors and the 2**62 saturation, per asset and in total, as the engine computes them."""
    eng = MatchingEngine(risk=True)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    eng.open_account(1)
    for asset, (amount, price) in enumerate(zip(amounts, prices)):
        if amount:
            eng.credit(1, asset, amount)
        if price:
            eng.set_asset_price(asset, price)
    expected = collateral_value(DEFAULT_ASSETS, amounts, prices)
    assert eng.collateral_value(1) == expected
    assert eng.margin(1) == margin_state(DEFAULT_ASSETS, eng.balances(1), {}, prices, {}) == MarginState(
        expected, expected, 0, 0)


def test_requirements_count_shorts_and_would_be_shorts_only():
    margins = {7: (150, 100), 8: (80, 60)}
    exposures = {7: Exposure(-100, 50, 0), 8: Exposure(40, 30, 500)}
    assert initial_requirement(exposures, margins) == 150 * 150       # a long with fewer open sells needs none
    assert maintenance_requirement(exposures, margins) == 100 * 100   # long options give no credit
    assert initial_requirement({8: Exposure(40, 70, 0)}, margins) == 80 * 30
    huge = {7: Exposure(-(1 << 62), 1 << 62, 0)}
    assert initial_requirement(huge, margins) == maintenance_requirement(huge, margins) == (1 << 63) - 1


def test_option_risk_limits():
    assert option_risk_valid(MAX_MARGIN_PER_QTY, MAX_MARGIN_PER_QTY) and option_risk_valid(1, 1)
    assert not option_risk_valid(MAX_MARGIN_PER_QTY + 1, 1)
    assert not option_risk_valid(10, 11) and not option_risk_valid(10, 0) and not option_risk_valid(-5, -10)
