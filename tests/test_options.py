"""Option series, margin and liquidation (risk=True): premium-only fills,
positions and open sells, initial and maintenance margin, liquidation and
snapshots of all of it (engine/core/margin.pyx, ledger.pyx, the LIQUIDATE
command in matcher.pyx, state.pyx)."""

import msgspec
import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.core import snapshot as snap
from engine.core.matcher import MatchingEngine
from engine.core.order_info import MarginState, PositionInfo
from engine.core.types import CancelReason, EventKind, OrderType, Reject, SelfTrade, Side, TimeInForce, TradingState
from engine.defaults import DEFAULT_ASSETS, DEFAULT_INSTRUMENTS, DEFAULT_OPTIONS
from engine.reference.bands import execution_band, in_band
from engine.reference.margin import (
    Exposure,
    buyback_price,
    buyback_qty,
    collateral_sale_qty,
    initial_met,
    margin_state,
    option_risk_valid,
    under_maintenance,
)
from engine.reference.risk import InstrumentTerms, LedgerModel, fill_fees, notional, reservation

ASSET = {spec.symbol: i for i, spec in enumerate(DEFAULT_ASSETS)}
USDC, AMZNX, TSLA, WBTC = ASSET["USDC"], ASSET["AMZNX"], ASSET["TSLA.M"], ASSET["WBTC"]
SPECS = DEFAULT_INSTRUMENTS + DEFAULT_OPTIONS
INSTRUMENT = {spec.symbol: i for i, spec in enumerate(SPECS)}
SPOT = INSTRUMENT["TSLA.M/USDC"]
CALL = next(INSTRUMENT[o.symbol] for o in DEFAULT_OPTIONS if o.base == "WBTC" and o.option.is_call)
PUT = next(INSTRUMENT[o.symbol] for o in DEFAULT_OPTIONS if o.base == "TSLA.M" and not o.option.is_call)
OPTIONS = (CALL, PUT)
FEE = 0
USD = 10**8                  # asset prices and margins: USD x 1e8
LIMIT = 1 << 62              # collateral values saturate here

SPOT_PX = 2_500_000          # $250.00 per share (price units of $0.0001)
CALL_PX = 20_000_000         # $2,000 premium per contract
PUT_PX = 1_600_000           # $160 premium per contract
REFERENCE = {SPOT: SPOT_PX, CALL: CALL_PX, PUT: PUT_PX}
PRICES = {USDC: USD, TSLA: 250 * USD, WBTC: 90_000 * USD}
# Margins of a short per quantity unit (0.01 contract): $15,000 / $10,000 a
# CALL contract, $8,000 / $6,000 a PUT contract.
MARGINS = {CALL: (150 * USD, 100 * USD), PUT: (80 * USD, 60 * USD)}
SHARE = 1_000                # spot quantity units per share


def make_engine(accounts=(1, 2, 3, 4), margins=True, references=REFERENCE, spot_fees=(0, 0)):
    """The default assets and instruments with USD prices, reference prices
    and (optionally) option margins; TSLA.M/USDC gets the given maker/taker fees."""
    eng = MatchingEngine(risk=True, fee_account=FEE)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    for spec in SPECS:
        if spec.symbol == "TSLA.M/USDC":
            spec = msgspec.structs.replace(spec, maker_fee_bps=spot_fees[0], taker_fee_bps=spot_fees[1])
        eng.add_instrument(spec)
    for acct in accounts:
        eng.open_account(acct)
    for asset, price in PRICES.items():
        eng.set_asset_price(asset, price)
    for iid, price in references.items():
        eng.set_reference_price(iid, price)
    if margins:
        for iid, (initial, maintenance) in MARGINS.items():
            eng.set_option_risk(iid, initial, maintenance)
    eng.check_integrity()
    return eng


def exposure(eng, account):
    """The account's positions with their cost basis left out (tests/test_cost_basis.py checks costs)."""
    return [msgspec.structs.replace(p, cost=0) for p in eng.positions(account)]


def kinds(events):
    return [e.kind for e in events]


def fills(events):
    return [e for e in events if e.kind == EventKind.FILL]


def state(eng, accounts=(0, 1, 2, 3, 4)):
    """Everything a rejected command must leave as it was, per account."""
    return [(eng.balances(a), eng.positions(a), eng.open_orders(a), eng.margin(a)) for a in accounts]


def neutral_reject(eng):
    """A command rejected without touching state: it only advances seq, like
    the rejected command a twin engine is compared with."""
    ev = eng.cancel(1, 10**9)
    assert ev[0].reason == Reject.UNKNOWN_ORDER


def terms(eng, iid):
    """The instrument's spec (as the engine holds it) with its ledger units."""
    return InstrumentTerms.of(eng.instruments[iid], DEFAULT_ASSETS)


def band_now(eng, iid):
    """The execution band of an instrument as the engine's state stands."""
    _, reference, last_trade = eng.instrument_state(iid)
    return execution_band(eng.instruments[iid], reference, last_trade)


def shorted(eng, seller, buyer, iid, qty, price):
    """seller sells qty at price (resting) and buyer takes it all."""
    assert eng.new_order(iid, seller, Side.SELL, qty, price)[0].kind == EventKind.ACCEPTED
    ev = eng.new_order(iid, buyer, Side.BUY, qty, price)
    assert sum(e.qty for e in fills(ev)) == qty
    return ev


# -- fills and positions -----------------------------------------------------------

def test_option_fill_moves_only_the_premium_and_fees():
    eng = make_engine()
    for acct in (1, 2):
        eng.credit(acct, USDC, 50_000 * 10**6)
        eng.credit(acct, TSLA, 10 * 10**6)
        eng.credit(acct, WBTC, 10**8)
    before = {acct: eng.balances(acct) for acct in (1, 2)}
    eng.new_order(CALL, 1, Side.SELL, 250, CALL_PX)                      # maker: 2.5 contracts
    ev = eng.new_order(CALL, 2, Side.BUY, 100, CALL_PX + 10_000)         # taker buys 1 at $2000
    fill = ev[1]
    n = (CALL_PX // 100) * 100 * 100                                     # $2,000 in USDC units
    assert n == 2_000 * 10**6
    assert (fill.kind, fill.price, fill.qty, fill.fee, fill.maker_fee) == (EventKind.FILL, CALL_PX, 100,
                                                                           n * 3 // 10_000, 0)
    assert eng.balances(2)[USDC] == (before[2][USDC][0] - n - fill.fee, 0)
    assert eng.balances(1)[USDC] == (before[1][USDC][0] + n, 0)
    assert eng.balances(FEE)[USDC] == (fill.fee, 0)
    for acct in (1, 2):
        assert eng.balances(acct)[1:] == before[acct][1:]   # the underlying and every other asset
    assert exposure(eng, 1) == [PositionInfo(CALL, -100, 150, 0)]
    assert exposure(eng, 2) == [PositionInfo(CALL, 100, 0, 0)]
    eng.check_integrity()

    # the seller as taker pays the taker fee out of the premium
    eng.new_order(PUT, 2, Side.BUY, 30, PUT_PX)
    ev = eng.new_order(PUT, 1, Side.SELL, 30, PUT_PX - 100_000)
    n_put = (PUT_PX // 100) * 30 * 100
    assert (ev[1].price, ev[1].fee) == (PUT_PX, n_put * 3 // 10_000)
    assert eng.balances(1)[USDC] == (before[1][USDC][0] + n + n_put - ev[1].fee, 0)
    assert exposure(eng, 1) == [PositionInfo(CALL, -100, 150, 0), PositionInfo(PUT, -30, 0, 0)]
    assert exposure(eng, 2) == [PositionInfo(CALL, 100, 0, 0), PositionInfo(PUT, 30, 0, 0)]
    for acct in (1, 2):
        assert eng.balances(acct)[TSLA] == before[acct][TSLA]
        assert eng.balances(acct)[WBTC] == before[acct][WBTC]
    eng.check_integrity()


def test_positions_and_open_sells_follow_partial_fills_cancels_and_amends():
    eng = make_engine()
    for acct in (1, 2, 3):
        eng.credit(acct, USDC, 100_000 * 10**6)
    oid = eng.new_order(CALL, 1, Side.SELL, 300, CALL_PX)[0].order_id
    other = eng.new_order(CALL, 1, Side.SELL, 40, CALL_PX + 100_000)[0].order_id
    assert exposure(eng, 1) == [PositionInfo(CALL, 0, 340, 0)]
    eng.new_order(CALL, 2, Side.BUY, 120, CALL_PX, tif=TimeInForce.IOC)
    assert exposure(eng, 1) == [PositionInfo(CALL, -120, 220, 0)]
    eng.amend(1, oid, qty=100)                         # leaves 180 -> 100
    assert exposure(eng, 1) == [PositionInfo(CALL, -120, 140, 0)]
    eng.amend(1, oid, qty=150)                         # up again, margin allows
    assert exposure(eng, 1) == [PositionInfo(CALL, -120, 190, 0)]
    eng.new_order(CALL, 3, Side.BUY, 170, CALL_PX + 100_000)
    assert exposure(eng, 1) == [PositionInfo(CALL, -290, 20, 0)]
    assert eng.order(other).leaves == 20
    assert exposure(eng, 3) == [PositionInfo(CALL, 170, 0, 0)]
    eng.cancel(1, other)
    assert exposure(eng, 1) == [PositionInfo(CALL, -290, 0, 0)]
    # the short buys back part of it: position rises, no open sells
    eng.new_order(CALL, 3, Side.SELL, 90, CALL_PX)
    eng.new_order(CALL, 1, Side.BUY, 90, CALL_PX)
    assert exposure(eng, 1) == [PositionInfo(CALL, -200, 0, 0)]
    assert exposure(eng, 3) == [PositionInfo(CALL, 80, 0, 0)]
    # a long that sells down to flat disappears from positions()
    eng.new_order(CALL, 2, Side.SELL, 120, CALL_PX)
    eng.new_order(CALL, 1, Side.BUY, 120, CALL_PX, tif=TimeInForce.IOC)
    assert eng.positions(2) == []
    assert exposure(eng, 1) == [PositionInfo(CALL, -80, 0, 0)]
    assert eng.margin(1).initial == eng.margin(1).maintenance * 150 // 100 == 80 * MARGINS[CALL][0]
    eng.check_integrity()


def test_every_kind_of_cancel_releases_open_sells():
    eng = make_engine()
    for acct in (1, 2):
        eng.credit(acct, USDC, 100_000 * 10**6)
    ev = eng.new_order(CALL, 1, Side.SELL, 100, CALL_PX, tif=TimeInForce.IOC)
    assert kinds(ev) == [EventKind.ACCEPTED, EventKind.CANCELLED]
    ev = eng.new_order(CALL, 1, Side.SELL, 100, CALL_PX, tif=TimeInForce.FOK)
    assert ev[-1].reason == CancelReason.FOK_KILLED
    eng.new_order(CALL, 1, Side.SELL, 100, CALL_PX)
    ev = eng.new_order(CALL, 1, Side.BUY, 100, CALL_PX, stp=SelfTrade.CANCEL_OLDEST)
    assert [e.reason for e in ev if e.kind == EventKind.CANCELLED] == [CancelReason.SELF_TRADE]
    assert exposure(eng, 1) == [PositionInfo(CALL, 0, 0, 100)] and eng.margin(1).initial == 0  # the buy rests
    eng.mass_cancel(1)
    assert eng.positions(1) == []
    eng.new_order(CALL, 1, Side.SELL, 100, 23_000_000)
    ev = eng.set_reference_price(CALL, 15_000_000)      # the new band ends at 1800
    assert [(e.kind, e.reason) for e in ev][0] == (EventKind.CANCELLED, CancelReason.BAND)
    assert eng.positions(1) == [] and eng.margin(1).initial == 0
    eng.check_integrity()


def test_a_seeded_option_sell_keeps_the_open_sells_invariant():
    """Book reconstruction may refuse option sells, but a seeded one must count
    as an open sell like any other (margin and integrity depend on it)."""
    eng = make_engine()
    eng.credit(1, USDC, 100_000 * 10**6)
    try:
        eng.seed_order(CALL, 1, Side.SELL, CALL_PX, 100)
    except ValueError:
        return
    assert exposure(eng, 1) == [PositionInfo(CALL, 0, 100, 0)]
    eng.check_integrity()


# -- initial margin ---------------------------------------------------------------------

def test_option_sell_needs_margins_set_but_a_buy_does_not():
    eng = make_engine(margins=False)
    eng.credit(1, USDC, 100_000 * 10**6)
    eng.credit(2, USDC, 100_000 * 10**6)
    before = state(eng)
    ev = eng.new_order(CALL, 1, Side.SELL, 100, CALL_PX)
    assert [(e.kind, e.reason) for e in ev] == [(EventKind.REJECTED, Reject.MARGIN_NOT_SET)]
    assert state(eng) == before
    assert eng.option_risk(CALL) == (0, 0)
    assert eng.new_order(CALL, 2, Side.BUY, 100, CALL_PX)[0].kind == EventKind.ACCEPTED
    eng.set_option_risk(CALL, *MARGINS[CALL])
    ev = eng.new_order(CALL, 1, Side.SELL, 100, CALL_PX)
    assert kinds(ev) == [EventKind.ACCEPTED, EventKind.FILL]
    assert eng.new_order(PUT, 1, Side.SELL, 1, PUT_PX)[0].reason == Reject.MARGIN_NOT_SET
    eng.check_integrity()


def short_call_scene():
    """Account 1 holds 100 TSLA.M ($17,500 after the 30% haircut) and $5,000,
    and is short 1.5 CALL contracts sold at $2000: collateral $25,500, initial
    $22,500, maintenance $15,000, so $3,000 to spare. Accounts 2 and 3 are
    rich. Deterministic: a twin is built the same way."""
    eng = make_engine()
    eng.credit(1, TSLA, 100 * 10**6)
    eng.credit(1, USDC, 5_000 * 10**6)
    for acct in (2, 3):
        eng.credit(acct, USDC, 1_000_000 * 10**6)
        eng.credit(acct, TSLA, 1_000 * 10**6)
    shorted(eng, 1, 2, CALL, 150, CALL_PX)
    assert eng.margin(1) == MarginState(25_500 * USD, 25_500 * USD, 22_500 * USD, 15_000 * USD)
    return eng


@pytest.mark.parametrize("command", [
    pytest.param(lambda eng: eng.new_order(CALL, 1, Side.SELL, 21, CALL_PX), id="option-sell"),     # 3150
    pytest.param(lambda eng: eng.new_order(PUT, 1, Side.SELL, 38, PUT_PX), id="other-series-sell"),  # 3040
    pytest.param(lambda eng: eng.new_order(CALL, 1, Side.BUY, 151, CALL_PX), id="option-buy-beyond-short"),
    pytest.param(lambda eng: eng.new_order(PUT, 1, Side.BUY, 1_900, PUT_PX), id="option-buy-other-series"),
    pytest.param(lambda eng: eng.new_order(SPOT, 1, Side.BUY, 13 * SHARE, SPOT_PX), id="spot-buy"),  # 3250
    pytest.param(lambda eng: eng.new_order(SPOT, 1, Side.SELL, 18 * SHARE, SPOT_PX), id="spot-sell"),  # 3150
    pytest.param(lambda eng: eng.new_order(SPOT, 1, Side.SELL, 18 * SHARE, order_type=OrderType.MARKET,
                                           tif=TimeInForce.IOC), id="spot-market-sell"),
    pytest.param(lambda eng: eng.debit(1, USDC, 3_000 * 10**6 + 1), id="debit-usdc"),
    pytest.param(lambda eng: eng.debit(1, TSLA, 18 * 10**6), id="debit-underlying"),
])
def test_insufficient_margin_rejects_and_changes_nothing(command):
    """With $3,000 of free collateral above its initial margin, each command
    would take more than that; the twin engine sees only a neutral reject."""
    eng, twin = short_call_scene(), short_call_scene()
    before = state(eng)
    ev = command(eng)
    assert [(e.kind, e.reason) for e in ev] == [(EventKind.REJECTED, Reject.INSUFFICIENT_MARGIN)]
    assert state(eng) == before
    neutral_reject(twin)
    assert eng.state_hash() == twin.state_hash()
    eng.check_integrity()


@pytest.mark.parametrize("command", [
    pytest.param(lambda eng: eng.new_order(CALL, 1, Side.SELL, 20, CALL_PX + 100_000), id="option-sell"),
    pytest.param(lambda eng: eng.new_order(PUT, 1, Side.SELL, 37, PUT_PX), id="other-series-sell"),
    pytest.param(lambda eng: eng.new_order(SPOT, 1, Side.SELL, 17 * SHARE, SPOT_PX), id="spot-sell"),
    pytest.param(lambda eng: eng.debit(1, USDC, 3_000 * 10**6), id="debit"),
])
def test_the_same_commands_within_free_collateral_are_accepted(command):
    """The counterpart of the rejects above: at or under the limit they pass."""
    eng = short_call_scene()
    ev = command(eng)
    assert ev[0].kind in (EventKind.ACCEPTED, EventKind.DEBITED)
    m = eng.margin(1)
    assert m.free_collateral >= m.initial
    eng.check_integrity()


def test_amend_up_needs_margin_and_a_reject_changes_nothing():
    def scene():
        eng = short_call_scene()
        sell = eng.new_order(CALL, 1, Side.SELL, 10, CALL_PX + 200_000)[0].order_id   # $1,500 more
        buy = eng.new_order(SPOT, 1, Side.BUY, 1 * SHARE, 2_400_000)[0].order_id      # $240 less: $1,260 left
        return eng, sell, buy

    eng, sell, buy = scene()
    twin, _, _ = scene()
    assert eng.margin(1).initial == 160 * MARGINS[CALL][0]
    assert eng.margin(1).free_collateral - eng.margin(1).initial == 1_260 * USD
    before = state(eng)
    for ev in (eng.amend(1, sell, qty=19), eng.amend(1, buy, qty=7 * SHARE)):    # $1,350 and $1,440
        assert [(e.kind, e.reason) for e in ev] == [(EventKind.REJECTED, Reject.INSUFFICIENT_MARGIN)]
        assert state(eng) == before
    neutral_reject(twin)
    neutral_reject(twin)
    assert eng.state_hash() == twin.state_hash()
    # down, or a price change of the sell, never needs margin
    assert eng.amend(1, sell, qty=10)[0].kind == EventKind.AMENDED
    assert eng.amend(1, sell, price=CALL_PX + 300_000)[0].kind == EventKind.AMENDED
    assert exposure(eng, 1) == [PositionInfo(CALL, -150, 10, 0)]
    assert eng.amend(1, sell, qty=18)[0].kind == EventKind.AMENDED               # $1,200
    assert exposure(eng, 1) == [PositionInfo(CALL, -150, 18, 0)]
    eng.check_integrity()


def test_rejected_first_option_sell_leaves_the_state_as_it_was():
    """A sell rejected for margin by an account that never had option exposure
    must not change state; here it would flag the account for margin checks
    (part of state_hash and of the snapshot)."""
    eng, twin = make_engine(), make_engine()
    for e in (eng, twin):
        e.credit(1, USDC, 1_000 * 10**6)
    ev = eng.new_order(CALL, 1, Side.SELL, 100, CALL_PX)
    assert ev[0].reason == Reject.INSUFFICIENT_MARGIN
    decoded = snap.DECODER.decode(eng.snapshot())
    row = np.frombuffer(decoded.open_accounts, dtype=np.int64).tolist().index(1)
    assert decoded.margin_flags[row] == 0, "the rejected sell flagged account 1 for margin checks"
    neutral_reject(twin)
    assert eng.state_hash() == twin.state_hash()


def test_buy_of_at_most_the_short_is_allowed_under_initial_margin():
    eng = short_call_scene()
    eng.set_asset_price(TSLA, 200 * USD)          # 14,000 + 8,000: under the initial 22,500
    m = eng.margin(1)
    assert m == MarginState(22_000 * USD, 22_000 * USD, 22_500 * USD, 15_000 * USD)
    assert eng.under_maintenance() == []
    assert eng.new_order(SPOT, 1, Side.SELL, 1 * SHARE, SPOT_PX)[0].reason == Reject.INSUFFICIENT_MARGIN
    assert eng.new_order(CALL, 1, Side.BUY, 151, CALL_PX)[0].reason == Reject.INSUFFICIENT_MARGIN
    ev = eng.new_order(CALL, 1, Side.BUY, 150, CALL_PX)
    assert ev[0].kind == EventKind.ACCEPTED and eng.margin(1).free_collateral < eng.margin(1).initial
    eng.new_order(CALL, 3, Side.SELL, 150, CALL_PX)
    assert eng.positions(1) == [] and eng.margin(1).initial == 0
    eng.check_integrity()


def test_sell_within_the_long_is_allowed_under_initial_margin():
    eng = short_call_scene()
    eng.new_order(PUT, 3, Side.SELL, 60, PUT_PX)
    eng.new_order(PUT, 1, Side.BUY, 60, PUT_PX)           # account 1: long 60 puts, short 150 calls
    assert [p.position for p in eng.positions(1)] == [-150, 60]
    eng.set_asset_price(TSLA, 200 * USD)                   # now under its initial margin
    m = eng.margin(1)
    assert m.free_collateral < m.initial
    assert eng.new_order(PUT, 1, Side.SELL, 61, PUT_PX)[0].reason == Reject.INSUFFICIENT_MARGIN
    ev = eng.new_order(PUT, 1, Side.SELL, 40, PUT_PX)      # within the long: only reduces it
    assert ev[0].kind == EventKind.ACCEPTED
    assert eng.new_order(PUT, 1, Side.SELL, 21, PUT_PX)[0].reason == Reject.INSUFFICIENT_MARGIN  # 61 in all
    order = ev[0].order_id
    assert eng.amend(1, order, qty=60)[0].kind == EventKind.AMENDED
    assert eng.amend(1, order, qty=61)[0].reason == Reject.INSUFFICIENT_MARGIN
    eng.check_integrity()


def test_buys_beyond_the_short_are_not_exempt_from_the_margin_check():
    """Each buy of at most the short passes unchecked, but together they can
    go far beyond it: the account spends its collateral on long options (no
    collateral credit) while short another series, and ends under maintenance
    with no price or margin change."""
    eng = make_engine()
    eng.credit(1, USDC, 25_000 * 10**6)
    for acct in (2, 3):
        eng.credit(acct, USDC, 1_000_000 * 10**6)
    shorted(eng, 1, 2, CALL, 100, CALL_PX)
    shorted(eng, 1, 2, PUT, 100, PUT_PX)
    assert exposure(eng, 1) == [PositionInfo(CALL, -100, 0, 0), PositionInfo(PUT, -100, 0, 0)]
    m = eng.margin(1)
    assert m.free_collateral >= m.initial
    for _ in range(10):
        eng.new_order(CALL, 1, Side.BUY, 100, 22_000_000)
    eng.new_order(CALL, 3, Side.SELL, 1_000, 22_000_000)
    eng.check_integrity()
    assert eng.under_maintenance() == [], (eng.positions(1), eng.margin(1))


# -- collateral -------------------------------------------------------------------------

def test_collateral_applies_haircuts_floors_and_ignores_unpriced_assets():
    bare = MatchingEngine(risk=True)
    for spec in DEFAULT_ASSETS:
        bare.add_asset(spec)
    bare.open_account(1)
    amounts = {USDC: 1_234_567, AMZNX: 3 * 10**6, TSLA: 1_234_567, WBTC: 12_345_679}
    for asset, amount in amounts.items():
        bare.credit(1, asset, amount)
    assert bare.collateral_value(1) == 0 and bare.margin(1) == MarginState(0, 0, 0, 0)
    prices = [0] * len(DEFAULT_ASSETS)
    for asset, price in ((USDC, 99_990_000), (TSLA, 25_012_345_678), (WBTC, 9_012_345_678_901)):
        bare.set_asset_price(asset, price)
        prices[asset] = price
    expected = (1_234_567 * 99_990_000 // 10**6                                 # no haircut
                + (1_234_567 * 25_012_345_678 // 10**6) * 7_000 // 10_000         # 30%
                + (12_345_679 * 9_012_345_678_901 // 10**8) * 9_000 // 10_000)   # 10%; AMZNX unpriced
    assert bare.collateral_value(1) == expected
    assert margin_state(DEFAULT_ASSETS, bare.balances(1), {}, prices, {}) == bare.margin(1) == MarginState(
        expected, expected, 0, 0)

    # reserved balances count in collateral but not in free collateral
    eng = make_engine()
    eng.credit(1, TSLA, 10 * 10**6)
    eng.credit(1, USDC, 1_000 * 10**6)
    eng.new_order(SPOT, 1, Side.SELL, 4 * SHARE, SPOT_PX)
    eng.new_order(SPOT, 1, Side.BUY, 2 * SHARE, SPOT_PX - 100_000)
    m = eng.margin(1)
    assert m.collateral == 10 * 250 * USD * 7 // 10 + 1_000 * USD
    assert m.free_collateral == 6 * 250 * USD * 7 // 10 + (1_000 - 480) * USD
    assert m == margin_state(DEFAULT_ASSETS, eng.balances(1), {},
                             [eng.asset_price(a) for a in range(len(DEFAULT_ASSETS))], {})


def test_collateral_saturates_per_asset_and_in_total():
    eng = MatchingEngine(risk=True)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    eng.open_account(1)
    eng.set_asset_price(WBTC, 10**15)
    eng.credit(1, WBTC, 10**18)               # 1e10 BTC at $1e7: 1e25 before the cap
    assert eng.collateral_value(1) == LIMIT * 9_000 // 10_000
    eng.set_asset_price(USDC, 10**15)
    eng.credit(1, USDC, 10**18)
    assert eng.collateral_value(1) == LIMIT
    assert eng.margin(1) == MarginState(LIMIT, LIMIT, 0, 0)


# -- set_option_risk ------------------------------------------------------------------

def test_set_option_risk_sets_both_margins():
    eng = make_engine(margins=False)
    ev = eng.set_option_risk(PUT, 10**15, 10**15)
    assert [(e.kind, e.instrument, e.qty, e.price) for e in ev] == [(EventKind.OPTION_RISK_SET, PUT, 10**15, 10**15)]
    assert eng.option_risk(PUT) == (10**15, 10**15)
    eng.set_option_risk(PUT, 1, 1)
    assert eng.option_risk(PUT) == (1, 1) and eng.option_risk(CALL) == (0, 0)
    with pytest.raises(ValueError):
        eng.option_risk(SPOT)


@pytest.mark.parametrize("instrument, initial, maintenance, reason", [
    (-1, 10, 5, Reject.UNKNOWN_INSTRUMENT),
    (len(SPECS), 10, 5, Reject.UNKNOWN_INSTRUMENT),
    (SPOT, 10, 5, Reject.NOT_AN_OPTION),
    (CALL, 0, 0, Reject.INVALID_MARGIN),
    (CALL, 10, 0, Reject.INVALID_MARGIN),
    (CALL, 10, -1, Reject.INVALID_MARGIN),
    (CALL, -5, -10, Reject.INVALID_MARGIN),
    (CALL, 10, 11, Reject.INVALID_MARGIN),
    (CALL, 10**15 + 1, 1, Reject.INVALID_MARGIN),
    (CALL, 10**15 + 1, 10**15 + 1, Reject.INVALID_MARGIN),
])
def test_set_option_risk_rejects_change_nothing(instrument, initial, maintenance, reason):
    eng, twin = make_engine(), make_engine()
    ev = eng.set_option_risk(instrument, initial, maintenance)
    assert [(e.kind, e.reason) for e in ev] == [(EventKind.REJECTED, reason)]
    assert eng.option_risk(CALL) == MARGINS[CALL] and eng.option_risk(PUT) == MARGINS[PUT]
    neutral_reject(twin)
    assert eng.state_hash() == twin.state_hash()


def test_option_commands_need_accounts():
    plain, twin = MatchingEngine(), MatchingEngine()
    for e in (plain, twin):
        e.add_instrument(DEFAULT_OPTIONS[0])
    assert plain.set_option_risk(0, 10, 5)[0].reason == Reject.ACCOUNTS_DISABLED
    assert plain.liquidate(1)[0].reason == Reject.ACCOUNTS_DISABLED
    neutral_reject(twin)
    neutral_reject(twin)
    assert plain.state_hash() == twin.state_hash()
    assert plain.under_maintenance() == []
    with pytest.raises(ValueError):
        plain.margin(1)
    with pytest.raises(ValueError):
        plain.positions(1)


# -- maintenance ------------------------------------------------------------------------

def test_under_maintenance_after_a_price_drop_only():
    eng = short_call_scene()
    eng.credit(4, TSLA, 50 * 10**6)
    shorted(eng, 4, 2, PUT, 100, PUT_PX)          # maintenance $6,000
    assert eng.under_maintenance() == []
    eng.set_asset_price(TSLA, 150 * USD)          # account 4: 5,250 + 160 premium < 6,000
    assert eng.under_maintenance() == [(4, eng.margin(4))]
    assert eng.margin(4) == MarginState(5_410 * USD, 5_410 * USD, 8_000 * USD, 6_000 * USD)
    eng.set_asset_price(TSLA, 100 * USD)          # account 1: 7,000 + 8,000 is not below 15,000
    assert [acct for acct, _ in eng.under_maintenance()] == [4]
    eng.set_asset_price(TSLA, 90 * USD)           # 6,300 + 8,000 < 15,000
    m = eng.margin(1)
    assert m == MarginState(14_300 * USD, 14_300 * USD, 22_500 * USD, 15_000 * USD)
    assert eng.under_maintenance() == [(1, m), (4, eng.margin(4))]
    eng.set_asset_price(TSLA, 250 * USD)
    assert eng.under_maintenance() == []


def test_under_maintenance_after_a_margin_change():
    eng = short_call_scene()
    eng.set_option_risk(CALL, 200 * USD, 171 * USD)   # 25,650 > 25,500
    assert eng.under_maintenance() == [(1, eng.margin(1))]
    assert eng.margin(1).maintenance == 25_650 * USD
    eng.set_option_risk(CALL, 200 * USD, 170 * USD)   # equal is not under
    assert eng.under_maintenance() == []


@pytest.mark.parametrize("account, reason", [(9, Reject.UNKNOWN_ACCOUNT), (-1, Reject.UNKNOWN_ACCOUNT),
                                             (1, Reject.NOT_UNDER_MAINTENANCE),
                                             (2, Reject.NOT_UNDER_MAINTENANCE),
                                             (4, Reject.NOT_UNDER_MAINTENANCE)])
def test_liquidate_rejects_change_nothing(account, reason):
    eng, twin = short_call_scene(), short_call_scene()
    eng.new_order(CALL, 1, Side.SELL, 10, CALL_PX + 100_000)
    twin.new_order(CALL, 1, Side.SELL, 10, CALL_PX + 100_000)
    ev = eng.liquidate(account)
    assert [(e.kind, e.reason, e.account) for e in ev] == [(EventKind.REJECTED, reason, account)]
    neutral_reject(twin)
    assert eng.state_hash() == twin.state_hash()


# -- liquidation ------------------------------------------------------------------------

def liquidation_scene():
    """Account 1 (100 TSLA.M, no USDC) is short one CALL contract sold at
    $2000 and has three resting orders; trades set dynamic bands on
    TSLA.M/USDC ([237.50, 262.50]) and the CALL ([1800, 2200]). Account 2
    bids for TSLA.M at 240 and 230, account 3 offers CALLs at 2100, 2200
    and 2300. TSLA.M then falls to $100: collateral $9,000 ($7,000 after the
    haircut + $2,000 premium) < maintenance $10,000."""
    eng = make_engine()
    eng.credit(1, TSLA, 100 * 10**6)
    for acct in (2, 3):
        eng.credit(acct, USDC, 1_000_000 * 10**6)
        eng.credit(acct, TSLA, 1_000 * 10**6)
    eng.new_order(SPOT, 3, Side.SELL, 1 * SHARE, SPOT_PX)
    eng.new_order(SPOT, 2, Side.BUY, 1 * SHARE, SPOT_PX)
    shorted(eng, 1, 2, CALL, 100, CALL_PX)
    eng.new_order(SPOT, 1, Side.SELL, 1 * SHARE, 2_700_000)
    eng.new_order(CALL, 1, Side.BUY, 10, 17_000_000)
    eng.new_order(PUT, 1, Side.SELL, 20, 1_700_000)
    eng.new_order(SPOT, 2, Side.BUY, 50 * SHARE, 2_400_000)
    eng.new_order(SPOT, 2, Side.BUY, 50 * SHARE, 2_300_000)
    for qty, price in ((50, 21_000_000), (30, 22_000_000), (100, 23_000_000)):
        eng.new_order(CALL, 3, Side.SELL, qty, price)
    eng.set_asset_price(TSLA, 100 * USD)
    eng.check_integrity()
    return eng


def test_liquidation_sells_collateral_then_buys_back_inside_the_bands():
    eng = liquidation_scene()
    m = eng.margin(1)
    assert (m.collateral, m.maintenance) == (9_000 * USD, 10_000 * USD)     # 7,000 + 2,000 premium
    assert eng.under_maintenance() == [(1, m)]
    own = [o.order_id for o in eng.open_orders(1)]
    bands = {iid: band_now(eng, iid) for iid in (SPOT, CALL)}
    assert bands == {SPOT: (2_375_000, 2_625_000), CALL: (18_000_000, 22_000_000)}
    usdc_before = eng.balances(1)[USDC][0]
    assert usdc_before == 2_000 * 10**6

    ev = eng.liquidate(1)
    head = ev[0]
    assert (head.kind, head.account, head.price, head.leaves, head.qty) == (
        EventKind.LIQUIDATED, 1, 10_000 * USD, 9_000 * USD, 2)
    cancels = ev[1:4]
    assert [(e.kind, e.reason, e.order_id) for e in cancels] == [
        (EventKind.CANCELLED, CancelReason.LIQUIDATION, oid) for oid in own]
    # shortfall: 100 contracts at the band high 2200 + 3 bps need 2,200,660,000;
    # the account holds 2,000,000,000; a lot at the band low 237.50 raises 237,500
    need = reservation(terms(eng, CALL), Side.BUY, 22_000_000, 100)
    assert need == 2_200_660_000
    sale_qty = (need - usdc_before) // 237_500 + 2
    assert sale_qty == collateral_sale_qty(terms(eng, SPOT), bands[SPOT][0], need - usdc_before,
                                           eng.balances(1)[TSLA][0])
    assert buyback_price(eng.instruments[CALL], bands[CALL]) == 22_000_000
    rest = ev[4:]
    assert [(e.kind, e.instrument, e.side, e.account) for e in rest] == [
        (EventKind.ACCEPTED, SPOT, Side.SELL, 1),
        (EventKind.FILL, SPOT, Side.SELL, 1),
        (EventKind.ACCEPTED, CALL, Side.BUY, 1),
        (EventKind.FILL, CALL, Side.BUY, 1),
        (EventKind.FILL, CALL, Side.BUY, 1),
        (EventKind.CANCELLED, CALL, Side.BUY, 1),
    ]
    sale, buyback = rest[0], rest[2]
    assert (sale.price, sale.qty, sale.aux) == (2_375_000, sale_qty, TimeInForce.IOC)
    assert (buyback.price, buyback.qty, buyback.aux) == (22_000_000, 100, TimeInForce.IOC)
    assert [(f.price, f.qty, f.maker_account) for f in fills(ev)] == [
        (2_400_000, sale_qty, 2), (21_000_000, 50, 3), (22_000_000, 30, 3)]
    for f in fills(ev):
        lo, hi = bands[f.instrument]
        assert lo <= f.price <= hi
    assert (rest[-1].reason, rest[-1].qty) == (CancelReason.IOC_REMAINDER, 20)

    proceeds = notional(terms(eng, SPOT), 2_400_000, sale_qty)
    cost = [notional(terms(eng, CALL), p, q) for p, q in ((21_000_000, 50), (22_000_000, 30))]
    assert [f.fee for f in fills(ev)[1:]] == [c * 3 // 10_000 for c in cost]
    assert eng.balances(1)[USDC] == (usdc_before + proceeds - sum(c + c * 3 // 10_000 for c in cost), 0)
    assert eng.balances(1)[TSLA] == (100 * 10**6 - sale_qty * 1_000, 0)
    assert exposure(eng, 1) == [PositionInfo(CALL, -20, 0, 0)]
    assert exposure(eng, 3) == [PositionInfo(CALL, -80, 100, 0)]
    assert eng.open_orders(1) == []
    assert eng.best_bid(SPOT) == (2_400_000, 50 * SHARE - sale_qty)
    assert eng.best_ask(CALL) == (23_000_000, 100)
    assert eng.under_maintenance() == []
    eng.check_integrity()
    assert eng.liquidate(1)[0].reason == Reject.NOT_UNDER_MAINTENANCE


def test_liquidation_without_liquidity_only_cancels_its_closing_orders():
    eng = make_engine()
    eng.credit(1, TSLA, 100 * 10**6)
    eng.credit(2, USDC, 1_000_000 * 10**6)
    shorted(eng, 1, 2, CALL, 100, CALL_PX)
    resting = eng.new_order(PUT, 1, Side.SELL, 20, 1_700_000)[0].order_id
    eng.set_asset_price(TSLA, 100 * USD)
    before = {acct: eng.balances(acct) for acct in (0, 1, 2)}
    ev = eng.liquidate(1)
    assert [(e.kind, e.reason) for e in ev] == [
        (EventKind.LIQUIDATED, 0),
        (EventKind.CANCELLED, CancelReason.LIQUIDATION),
        (EventKind.ACCEPTED, 0), (EventKind.CANCELLED, CancelReason.IOC_REMAINDER),     # collateral sale
        (EventKind.ACCEPTED, 0), (EventKind.CANCELLED, CancelReason.IOC_REMAINDER),     # buy-back
    ]
    assert (ev[0].qty, ev[1].order_id) == (2, resting)
    # no trade yet on TSLA.M/USDC: the static band [225, 275] bounds the sale
    assert (ev[2].instrument, ev[2].side, ev[2].price) == (SPOT, Side.SELL, 2_250_000)
    # the buy-back is the largest lot count whose reservation fits the free USDC
    free = before[1][USDC][0]
    buy = ev[4]
    assert (buy.instrument, buy.side, buy.price) == (CALL, Side.BUY, 22_000_000)
    assert reservation(terms(eng, CALL), Side.BUY, buy.price, buy.qty) <= free
    assert reservation(terms(eng, CALL), Side.BUY, buy.price, buy.qty + 1) > free
    assert buy.qty == buyback_qty(terms(eng, CALL), 100, buy.price, free)
    assert buy.qty == 90
    assert {acct: eng.balances(acct) for acct in (0, 1, 2)} == before
    assert exposure(eng, 1) == [PositionInfo(CALL, -100, 0, 0)]
    assert eng.under_maintenance() == [(1, eng.margin(1))]
    eng.check_integrity()


def test_liquidation_that_can_place_nothing_reports_zero_orders():
    """No band on any USDC spot book (nothing to sell into) and no USDC (no
    buy-back): the account's orders are cancelled and nothing else happens."""
    eng = make_engine(references={CALL: CALL_PX, PUT: PUT_PX})
    eng.credit(1, TSLA, 100 * 10**6)
    eng.credit(2, USDC, 1_000_000 * 10**6)
    shorted(eng, 1, 2, CALL, 100, CALL_PX)
    eng.debit(1, USDC, eng.balances(1)[USDC][0])       # the premium leaves: TSLA.M covers the margin
    spot = eng.new_order(SPOT, 1, Side.SELL, 1 * SHARE, 2_600_000)[0].order_id
    eng.set_asset_price(TSLA, 120 * USD)
    positions_before = eng.positions(1)
    ev = eng.liquidate(1)
    assert [(e.kind, e.reason, e.order_id) for e in ev] == [
        (EventKind.LIQUIDATED, 0, 0), (EventKind.CANCELLED, CancelReason.LIQUIDATION, spot)]
    assert (ev[0].qty, ev[0].price, ev[0].leaves) == (0, 10_000 * USD, 100 * 120 * USD * 7 // 10)
    assert eng.positions(1) == positions_before and eng.balances(1)[TSLA] == (100 * 10**6, 0)
    eng.check_integrity()


def test_liquidation_skips_a_halted_series():
    eng = liquidation_scene()
    eng.set_state(CALL, TradingState.HALTED)
    ev = eng.liquidate(1)
    assert kinds(ev) == [EventKind.LIQUIDATED] + [EventKind.CANCELLED] * 3 and ev[0].qty == 0
    assert exposure(eng, 1) == [PositionInfo(CALL, -100, 0, 0)]
    eng.check_integrity()


# -- snapshots --------------------------------------------------------------------------

def test_snapshot_round_trip_keeps_positions_margins_and_behaviour():
    eng = liquidation_scene()
    eng.credit(4, USDC, 1_000 * 10**6)
    assert eng.new_order(CALL, 4, Side.SELL, 100, CALL_PX)[0].reason == Reject.INSUFFICIENT_MARGIN
    copy = MatchingEngine.from_snapshot(eng.snapshot())
    assert copy.state_hash() == eng.state_hash()
    for acct in (0, 1, 2, 3, 4):
        assert copy.margin(acct) == eng.margin(acct)
        assert copy.positions(acct) == eng.positions(acct)
    assert [copy.option_risk(i) for i in OPTIONS] == [eng.option_risk(i) for i in OPTIONS]
    assert copy.under_maintenance() == eng.under_maintenance() != []
    for command in (lambda e: e.new_order(CALL, 2, Side.SELL, 100, 22_000_000),
                    lambda e: e.new_order(PUT, 3, Side.SELL, 50, PUT_PX),
                    lambda e: e.liquidate(1),
                    lambda e: e.set_option_risk(CALL, 300 * USD, 290 * USD),
                    lambda e: e.new_order(SPOT, 3, Side.BUY, 5 * SHARE, 2_500_000)):
        assert command(copy) == command(eng)
        assert copy.state_hash() == eng.state_hash()
    copy.check_integrity()


def _rows(decoded, field, dtype, shape):
    return np.frombuffer(getattr(decoded, field), dtype=dtype).reshape(shape).copy()


def _set_risk(decoded, instrument, values):
    risk = _rows(decoded, "option_risk", np.int64, (-1, 2))
    risk[instrument] = values
    return {"option_risk": risk.tobytes()}


def _set_position(decoded, account, instrument, which, delta):
    accounts = np.frombuffer(decoded.open_accounts, dtype=np.int64).tolist()
    positions = _rows(decoded, "positions", np.int64, (len(accounts), len(OPTIONS), 3))
    positions[accounts.index(account), OPTIONS.index(instrument), which] += delta
    return {"positions": positions.tobytes()}


def _clear_flag(decoded, account):
    accounts = np.frombuffer(decoded.open_accounts, dtype=np.int64).tolist()
    flags = _rows(decoded, "margin_flags", np.uint8, (-1,))
    flags[accounts.index(account)] = 0
    return {"margin_flags": flags.tobytes()}


@pytest.mark.parametrize("corrupt", [
    pytest.param(lambda d: _set_risk(d, SPOT, (10, 5)), id="margins-on-spot"),
    pytest.param(lambda d: _set_risk(d, CALL, (5, 10)), id="maintenance-above-initial"),
    pytest.param(lambda d: _set_risk(d, CALL, (10, 0)), id="zero-maintenance"),
    pytest.param(lambda d: _set_risk(d, CALL, (-1, -1)), id="negative-margins"),
    pytest.param(lambda d: _set_risk(d, CALL, (10**15 + 1, 1)), id="initial-above-limit"),
    pytest.param(lambda d: _set_risk(d, CALL, (0, 0)), id="unset-margins-with-a-short"),
    pytest.param(lambda d: _set_risk(d, PUT, (0, 0)), id="unset-margins-with-open-sells"),
    pytest.param(lambda d: {"option_risk": d.option_risk[:-16]}, id="risk-one-row-short"),
    pytest.param(lambda d: {"option_risk": d.option_risk[:-8]}, id="risk-half-a-row"),
    pytest.param(lambda d: _set_position(d, 1, CALL, 0, -1), id="open-interest-not-zero"),
    pytest.param(lambda d: _set_position(d, 2, PUT, 0, 5), id="position-out-of-nothing"),
    pytest.param(lambda d: _set_position(d, 1, PUT, 1, 1), id="open-sells-above-orders"),
    pytest.param(lambda d: _set_position(d, 3, CALL, 1, -1), id="open-sells-below-orders"),
    pytest.param(lambda d: _set_position(d, 4, CALL, 1, -1), id="negative-open-sells"),
    pytest.param(lambda d: _set_position(d, 1, CALL, 2, 1), id="open-buys-above-orders"),
    pytest.param(lambda d: _set_position(d, 4, PUT, 2, -1), id="negative-open-buys"),
    pytest.param(lambda d: {**_set_position(d, 1, CALL, 0, -2**63 + 200)}, id="position-at-int64-min"),
    pytest.param(lambda d: {"positions": d.positions[:-16]}, id="positions-short"),
    pytest.param(lambda d: {"positions": d.positions + d.positions[:16]}, id="positions-long"),
    pytest.param(lambda d: _clear_flag(d, 1), id="unflagged-short"),
    pytest.param(lambda d: _clear_flag(d, 2), id="unflagged-long"),
    pytest.param(lambda d: {"margin_flags": d.margin_flags[:-1]}, id="flags-short"),
    pytest.param(lambda d: {"margin_flags": d.margin_flags + b"\x01"}, id="flags-long"),
])
def test_corrupt_option_parts_of_a_snapshot_are_refused(corrupt):
    eng = liquidation_scene()
    decoded = snap.DECODER.decode(eng.snapshot())
    assert MatchingEngine.from_snapshot(snap.ENCODER.encode(decoded)).state_hash() == eng.state_hash()
    bad = snap.ENCODER.encode(msgspec.structs.replace(decoded, **corrupt(decoded)))
    with pytest.raises(ValueError):
        MatchingEngine.from_snapshot(bad)


# -- random sequences -------------------------------------------------------------------

TRADERS = (1, 2, 3, 4)
MAKER = 5                                            # well funded: the liquidity liquidations trade with
ACCOUNTS = (FEE,) + TRADERS + (MAKER,)
STEP = {SPOT: 25_000, CALL: 500_000, PUT: 40_000}    # price steps of the order rules
CREDIT_UNIT = {USDC: 10**7, TSLA: 10**5, WBTC: 10**4}  # $10, 0.1 share, 0.0001 BTC


class OptionsMachine(RuleBasedStateMachine):
    """Random credits, debits, spot and option orders, cancels and amends, price
    and margin moves and liquidations. Balances, positions, asset prices,
    margins and last trades are rebuilt from events only; margins are
    recomputed in Python from their definition after every step."""

    def __init__(self):
        super().__init__()
        self.eng = make_engine(accounts=TRADERS + (MAKER,), spot_fees=(-1, 4))
        self.specs = self.eng.instruments
        self.terms = [InstrumentTerms.of(spec, DEFAULT_ASSETS) for spec in self.specs]
        assert [(*t.units, t.spec.tick_size) for t in self.terms] == [
            self.eng.instrument_units(i) for i in range(len(self.specs))]
        self.ledger = LedgerModel(self.terms, fee_account=FEE)   # balances and positions
        self.prices = [PRICES.get(a, 0) for a in range(len(DEFAULT_ASSETS))]
        self.margins = dict(MARGINS)
        self.last_trade = [0] * len(self.specs)
        self.band = {}                          # instrument -> band of the order matching now
        self.started = []                       # (ACCEPTED or AMENDED event, its band) of the last command

    # -- model --

    def run(self, command, actor=None, moves_risk=False):
        """Run one command and apply its events. Unless it moved a price or a
        margin, no account but ``actor`` (whose own orders or withdrawal may use
        collateral) can lose free collateral or gain initial margin: fills and
        cancels never do."""
        before = {acct: self.eng.margin(acct) for acct in ACCOUNTS}
        self.started = []
        events = command()
        for e in events:
            self.apply(e)
        if not moves_risk:
            for acct in ACCOUNTS:
                if acct != actor:
                    after = self.eng.margin(acct)
                    assert after.free_collateral >= before[acct].free_collateral, (acct, before[acct], after)
                    assert after.initial <= before[acct].initial, (acct, before[acct], after)
        return events

    def apply(self, e):
        self.ledger.apply(e)
        if e.kind == EventKind.ASSET_PRICE_SET:
            self.prices[e.asset] = e.price
        elif e.kind == EventKind.OPTION_RISK_SET:
            self.margins[e.instrument] = (e.qty, e.price)
        elif e.kind in (EventKind.ACCEPTED, EventKind.AMENDED):
            # the band an order trades in is fixed when it starts matching
            self.band[e.instrument] = execution_band(self.specs[e.instrument], REFERENCE.get(e.instrument, 0),
                                                     self.last_trade[e.instrument])
            self.started.append((e, self.band[e.instrument]))
        elif e.kind == EventKind.FILL:
            assert in_band(self.band[e.instrument], e.price), (e, self.band[e.instrument])
            self.last_trade[e.instrument] = e.price
            assert (e.fee, e.maker_fee) == fill_fees(self.terms[e.instrument], e.price, e.qty)

    def open_option_qty(self, account, side, skip_order=0):
        """Open quantity of the account's option orders of one side, per series."""
        held = dict.fromkeys(OPTIONS, 0)
        for o in self.eng.open_orders(account):
            if o.instrument in OPTIONS and o.side == side and o.order_id != skip_order:
                held[o.instrument] += o.leaves
        return held

    def reduces_short(self, account, instrument, buys):
        """Whether open buys of ``buys`` in the series stay within the account's short."""
        return buys <= -self.ledger.position_of(account, instrument)

    def reduces_long(self, account, instrument, sells):
        """Whether open sells of ``sells`` in the series stay within the account's long."""
        return sells <= self.ledger.position_of(account, instrument)

    def expected_margin(self, account):
        sells = self.open_option_qty(account, Side.SELL)
        buys = self.open_option_qty(account, Side.BUY)
        positions = {i: Exposure(self.ledger.position_of(account, i), sells[i], buys[i]) for i in OPTIONS}
        return margin_state(DEFAULT_ASSETS, self.eng.balances(account), positions, self.prices,
                            self.margins), positions

    def assert_margin_covered(self, account):
        m = self.eng.margin(account)
        assert initial_met(m), (account, m)

    def liquidation_target(self, data):
        """An account under maintenance if there is one, else any id (unknown ones too)."""
        under = [acct for acct, _ in self.eng.under_maintenance()]
        return data.draw(st.sampled_from(under) if under else st.integers(0, 6))

    # -- rules --

    @initialize(funds=st.lists(st.tuples(st.one_of(st.just(0), st.integers(0, 400)), st.integers(0, 1_000),
                                         st.integers(0, 1_000)),
                               min_size=len(TRADERS), max_size=len(TRADERS)))
    def fund(self, funds):
        for acct, amounts in zip(TRADERS, funds):
            for asset, units in zip((USDC, TSLA, WBTC), amounts):
                if units:
                    self.run(lambda: self.eng.credit(acct, asset, units * CREDIT_UNIT[asset]))
        for asset in (USDC, TSLA, WBTC):
            self.run(lambda: self.eng.credit(MAKER, asset, 1_000_000 * CREDIT_UNIT[asset]))

    @rule(instrument=st.sampled_from((SPOT,) + OPTIONS), side=st.sampled_from([Side.BUY, Side.SELL]),
          lots=st.integers(1, 100), ticks=st.integers(-8, 8))
    def maker_quote(self, instrument, side, lots, ticks):
        qty = lots * (SHARE // 10 if instrument == SPOT else 5)
        price = REFERENCE[instrument] + STEP[instrument] * ticks
        ev = self.run(lambda: self.eng.new_order(instrument, MAKER, side, qty, price), actor=MAKER)
        if ev[0].kind == EventKind.ACCEPTED:
            self.assert_margin_covered(MAKER)

    @rule(account=st.integers(0, 6), asset=st.sampled_from([USDC, TSLA, WBTC, 9]), units=st.integers(-1, 2_000))
    def credit(self, account, asset, units):
        self.run(lambda: self.eng.credit(account, asset, units * CREDIT_UNIT.get(asset, 1)))

    @rule(account=st.sampled_from(TRADERS), asset=st.sampled_from([USDC, TSLA, WBTC]), units=st.integers(1, 2_000))
    def debit(self, account, asset, units):
        ev = self.run(lambda: self.eng.debit(account, asset, units * CREDIT_UNIT[asset]), actor=account)
        if ev[0].kind == EventKind.DEBITED:
            self.assert_margin_covered(account)

    @rule(account=st.sampled_from(TRADERS), side=st.sampled_from([Side.BUY, Side.SELL]),
          qty=st.integers(1, 20 * SHARE), ticks=st.integers(-12, 12),
          tif=st.sampled_from([TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]))
    def spot_order(self, account, side, qty, ticks, tif):
        ev = self.run(lambda: self.eng.new_order(SPOT, account, side, qty, SPOT_PX + STEP[SPOT] * ticks, tif=tif),
                      actor=account)
        if ev[0].kind == EventKind.ACCEPTED:
            self.assert_margin_covered(account)

    @rule(account=st.sampled_from(TRADERS), instrument=st.sampled_from(OPTIONS),
          side=st.sampled_from([Side.BUY, Side.SELL]), qty=st.integers(1, 300), ticks=st.integers(-10, 10),
          tif=st.sampled_from(list(TimeInForce)), market=st.booleans())
    def option_order(self, account, instrument, side, qty, ticks, tif, market):
        open_buys = self.open_option_qty(account, Side.BUY)[instrument]
        open_sells = self.open_option_qty(account, Side.SELL)[instrument]
        reducing = (self.reduces_short(account, instrument, open_buys + qty) if side == Side.BUY
                    else self.reduces_long(account, instrument, open_sells + qty))
        if market:
            price, order_type = 0, OrderType.MARKET
            tif = TimeInForce.FOK if tif == TimeInForce.FOK else TimeInForce.IOC
        else:
            price, order_type = REFERENCE[instrument] + STEP[instrument] * ticks, OrderType.LIMIT
        ev = self.run(lambda: self.eng.new_order(instrument, account, side, qty, price, order_type=order_type,
                                                 tif=tif), actor=account)
        if ev[0].kind == EventKind.ACCEPTED and not reducing:
            self.assert_margin_covered(account)

    @rule(seller=st.sampled_from(TRADERS), buyer=st.sampled_from(TRADERS), instrument=st.sampled_from(OPTIONS),
          qty=st.integers(1, 200), ticks=st.integers(-6, 6))
    def option_trade(self, seller, buyer, instrument, qty, ticks):
        """A resting sell and a buy at its price: positions change often."""
        price = REFERENCE[instrument] + STEP[instrument] * ticks
        reducing = self.reduces_long(seller, instrument, self.open_option_qty(seller, Side.SELL)[instrument] + qty)
        ev = self.run(lambda: self.eng.new_order(instrument, seller, Side.SELL, qty, price), actor=seller)
        if ev[0].kind == EventKind.ACCEPTED and not reducing:
            self.assert_margin_covered(seller)
        open_buys = self.open_option_qty(buyer, Side.BUY)[instrument]
        reducing = self.reduces_short(buyer, instrument, open_buys + qty)
        ev = self.run(lambda: self.eng.new_order(instrument, buyer, Side.BUY, qty, price, tif=TimeInForce.IOC),
                      actor=buyer)
        if ev[0].kind == EventKind.ACCEPTED and not reducing:
            self.assert_margin_covered(buyer)

    @rule(account=st.sampled_from(TRADERS), data=st.data())
    def cancel_or_amend(self, account, data):
        orders = self.eng.open_orders(account)
        if not orders:
            return
        o = data.draw(st.sampled_from(orders))
        action = data.draw(st.sampled_from(["cancel", "mass-cancel", "amend"]))
        if action == "mass-cancel":
            scope = data.draw(st.sampled_from([-1, o.instrument]))
            ev = self.run(lambda: self.eng.mass_cancel(account, scope))
            assert ev[-1].kind == EventKind.MASS_CANCELLED and ev[-1].qty == len(ev) - 1
            return
        if action == "cancel":
            ev = self.run(lambda: self.eng.cancel(account, o.order_id))
            assert ev[0].kind == EventKind.CANCELLED
            return
        qty = data.draw(st.integers(0, 400 if o.instrument in OPTIONS else 20 * SHARE))
        price = data.draw(st.sampled_from([0, REFERENCE[o.instrument] + STEP[o.instrument] * data.draw(
            st.integers(-10, 10))]))
        new_qty, new_price = qty or o.leaves, price or o.price
        if o.instrument in OPTIONS and o.side == Side.SELL:
            up = new_qty > o.leaves
        else:
            terms = self.terms[o.instrument]
            up = (reservation(terms, o.side, new_price, new_qty)
                  > reservation(terms, o.side, o.price, o.leaves))
        # like a new buy, an amended buy whose open buys stay within the short only reduces it
        if o.instrument in OPTIONS:
            others = self.open_option_qty(account, o.side, o.order_id)[o.instrument] + new_qty
            reducing = (self.reduces_short if o.side == Side.BUY else self.reduces_long)(account, o.instrument, others)
        else:
            reducing = False
        ev = self.run(lambda: self.eng.amend(account, o.order_id, qty=qty, price=price), actor=account)
        if ev[0].kind == EventKind.AMENDED and up and not reducing:
            self.assert_margin_covered(account)

    @rule(asset=st.sampled_from([TSLA, WBTC]), percent=st.integers(5, 150))
    def move_price(self, asset, percent):
        self.run(lambda: self.eng.set_asset_price(asset, PRICES[asset] * percent // 100), moves_risk=True)

    @rule(instrument=st.sampled_from(OPTIONS), scale=st.integers(20, 600), ratio=st.integers(30, 110))
    def set_margins(self, instrument, scale, ratio):
        initial = MARGINS[instrument][0] * scale // 100
        maintenance = initial * ratio // 100
        ev = self.run(lambda: self.eng.set_option_risk(instrument, initial, maintenance), moves_risk=True)
        assert (ev[0].kind == EventKind.OPTION_RISK_SET) == (ratio <= 100) == option_risk_valid(initial, maintenance)

    @rule(data=st.data())
    def liquidate(self, data):
        """Liquidate the liquidation_target: its plan runs exactly as margin.py says."""
        account = self.liquidation_target(data)
        known = account in ACCOUNTS
        if known:
            m, _ = self.expected_margin(account)
            own = [o.order_id for o in self.eng.open_orders(account)]
            held = {i: self.ledger.position_of(account, i) for i in OPTIONS}
        ev = self.run(lambda: self.eng.liquidate(account), actor=account)
        if not known:
            assert ev[0].reason == Reject.UNKNOWN_ACCOUNT
            return
        if not under_maintenance(m):
            assert [(e.kind, e.reason) for e in ev] == [(EventKind.REJECTED, Reject.NOT_UNDER_MAINTENANCE)]
            return
        head, rest = ev[0], ev[1 + len(own):]
        assert (head.kind, head.account, head.price, head.leaves) == (
            EventKind.LIQUIDATED, account, m.maintenance, m.collateral)
        assert [(e.kind, e.reason, e.order_id) for e in ev[1:1 + len(own)]] == [
            (EventKind.CANCELLED, CancelReason.LIQUIDATION, oid) for oid in own]
        assert head.qty == len(self.started)
        assert all(e.kind != EventKind.REJECTED for e in rest)
        for e, band in self.started:
            assert (e.kind, e.account, e.aux) == (EventKind.ACCEPTED, account, TimeInForce.IOC)
            assert band is not None, "a closing order needs a band to bound it"
            if e.instrument in OPTIONS:
                assert e.side == Side.BUY and 0 < e.qty <= -held[e.instrument]
                assert e.price == buyback_price(self.specs[e.instrument], band)
            else:
                assert e.side == Side.SELL and e.price == band[0] > 0
        assert self.eng.open_orders(account) == []
        for i in OPTIONS:
            now = self.ledger.position_of(account, i)
            assert held[i] <= now <= max(held[i], 0)

    # -- invariants --

    @invariant()
    def balances_and_positions_match_the_events(self):
        for acct in ACCOUNTS:
            for asset, (total, reserved) in enumerate(self.eng.balances(acct)):
                assert total == self.ledger.total(acct, asset)
                assert 0 <= reserved <= total
            m, positions = self.expected_margin(acct)
            assert self.eng.positions(acct) == [PositionInfo(i, pos, sells, buys, self.ledger.cost_of(acct, i))
                                                for i, (pos, sells, buys) in positions.items() if pos or sells or buys]
            assert self.eng.margin(acct) == m
            assert self.eng.collateral_value(acct) == m.collateral
        for i in OPTIONS:
            assert sum(self.ledger.position_of(acct, i) for acct in ACCOUNTS) == 0
            assert self.eng.option_risk(i) == self.margins[i]
        assert [self.eng.asset_price(a) for a in range(len(DEFAULT_ASSETS))] == self.prices
        assert [self.eng.instrument_state(i)[2] for i in range(len(self.specs))] == self.last_trade

    @invariant()
    def under_maintenance_lists_exactly_the_accounts_below(self):
        expected = []
        for acct in ACCOUNTS:
            m, _ = self.expected_margin(acct)
            if under_maintenance(m):
                expected.append((acct, m))
        assert self.eng.under_maintenance() == expected

    @invariant()
    def integrity(self):
        self.eng.check_integrity()


TestOptionsMachine = OptionsMachine.TestCase
TestOptionsMachine.settings = settings(max_examples=400, stateful_step_count=50, deadline=None)
