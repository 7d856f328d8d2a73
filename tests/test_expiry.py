"""Option series life in the core (engine/core/chain.pyx, expiry.pyx): chains
listed and delisted at run time, trading stopping at expiry, cash settlement
(exact, conserved, with shortfalls and the sales that cover them) and covered
calls; snapshots, replay and the state hash of all of it."""

import datetime

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.chains import RIGHT_CALL, RIGHT_PUT, chain_commands, expiry_code
from engine.core import snapshot as snap
from engine.core.matcher import MatchingEngine
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CancelReason, CommandKind, EventKind, Reject, Side, TimeInForce, TradingState
from engine.defaults import DEFAULT_ASSETS, DEFAULT_INSTRUMENTS, DEFAULT_OPTIONS
from engine.units import series_terms, settlement_value

ASSET = {spec.symbol: i for i, spec in enumerate(DEFAULT_ASSETS)}
USDC, TSLA, WBTC = ASSET["USDC"], ASSET["TSLA.M"], ASSET["WBTC"]
SPECS = DEFAULT_INSTRUMENTS + DEFAULT_OPTIONS
INSTRUMENT = {spec.symbol: i for i, spec in enumerate(SPECS)}
SPOT = INSTRUMENT["TSLA.M/USDC"]
PUT = INSTRUMENT["TSLA.M-20261218-250-P"]       # the template of the TSLA.M chain
FEE = 0
USD = 10**8
SHARE = 10**6                                   # TSLA.M ledger units per share
EXPIRY = 20261218
EXPIRY_NS = int(datetime.datetime(2026, 12, 18, 8, tzinfo=datetime.UTC).timestamp()) * 10**9
BEFORE = EXPIRY_NS - 3_600 * 10**9              # an hour before expiry
K250 = 2_500_000                                # $250 in price units ($0.0001)


def make_engine(accounts=(1, 2, 3, 4, 5)):
    eng = MatchingEngine(risk=True, fee_account=FEE)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    for spec in SPECS:
        eng.add_instrument(spec)
    for acct in accounts:
        eng.open_account(acct)
    eng.set_asset_price(USDC, USD)
    eng.set_asset_price(TSLA, 250 * USD)
    eng.set_asset_price(WBTC, 90_000 * USD)
    return eng


def list_call(eng, strike=K250, right=RIGHT_CALL, margins=(40 * USD // 100, 30 * USD // 100)):
    """List a TSLA.M series from the put template; returns its instrument id."""
    ev = eng.list_series(PUT, right, EXPIRY, strike, SHARE, ts=BEFORE - 10**9)
    assert ev[0].kind == EventKind.SERIES_LISTED, ev[0]
    iid = ev[0].instrument
    assert eng.set_option_risk(iid, *margins)[0].kind == EventKind.OPTION_RISK_SET
    return iid


def trade(eng, iid, seller, buyer, qty, price, ts=BEFORE):
    assert eng.new_order(iid, seller, Side.SELL, qty, price, ts=ts)[0].kind == EventKind.ACCEPTED
    ev = eng.new_order(iid, buyer, Side.BUY, qty, price, ts=ts)
    assert sum(e.qty for e in ev if e.kind == EventKind.FILL) == qty, ev


def supply(eng, accounts, asset):
    return sum(eng.balances(a)[asset][0] for a in accounts)


# -- chains ------------------------------------------------------------------------------

def test_list_series_adds_a_named_tradable_series_with_the_templates_parameters():
    eng = make_engine()
    iid = list_call(eng, strike=2_600_000)
    spec = eng.instruments[iid]
    assert spec.symbol == "TSLA.M-20261218-260-C"
    assert (spec.option.expiry, spec.option.strike, spec.option.right, spec.option.contract_size) == (
        "2026-12-18", "260", "C", "1")
    template = eng.instruments[PUT]
    assert msgspec.structs.replace(spec, symbol=template.symbol, option=template.option) == template
    assert eng.instrument_units(iid) == eng.instrument_units(PUT)
    assert eng.series_status(iid) == (0, 0)
    eng.credit(1, USDC, 10_000 * 10**6)
    eng.credit(2, USDC, 10_000 * 10**6)
    trade(eng, iid, 1, 2, 100, 100_000)
    assert [(p.instrument, p.position) for p in eng.positions(2)] == [(iid, 100)]
    eng.check_integrity()


@pytest.mark.parametrize("template, right, expiry, strike, contract, reason", [
    (SPOT, RIGHT_CALL, EXPIRY, K250, SHARE, Reject.NOT_AN_OPTION),
    (99, RIGHT_CALL, EXPIRY, K250, SHARE, Reject.UNKNOWN_INSTRUMENT),
    (PUT, 3, EXPIRY, K250, SHARE, Reject.INVALID_SERIES),
    (PUT, 0, EXPIRY, K250, SHARE, Reject.INVALID_SERIES),
    (PUT, RIGHT_CALL, 20261332, K250, SHARE, Reject.INVALID_SERIES),
    (PUT, RIGHT_CALL, EXPIRY, 0, SHARE, Reject.INVALID_SERIES),
    (PUT, RIGHT_CALL, EXPIRY, -5, SHARE, Reject.INVALID_SERIES),
    (PUT, RIGHT_CALL, EXPIRY, 10**15, SHARE, Reject.INVALID_SERIES),     # above the template's max price
    (PUT, RIGHT_CALL, EXPIRY, K250, 0, Reject.INVALID_SERIES),
    (PUT, RIGHT_PUT, EXPIRY, K250, SHARE, Reject.SERIES_EXISTS),         # the template itself
    (PUT, RIGHT_CALL, 20200101, K250, SHARE, Reject.SERIES_EXPIRED),
])
def test_bad_listings_are_rejected_and_change_nothing(template, right, expiry, strike, contract, reason):
    eng = make_engine()
    before = eng.state_hash()
    ev = eng.list_series(template, right, expiry, strike, contract, ts=BEFORE)
    assert [(e.kind, e.reason) for e in ev] == [(EventKind.REJECTED, reason)]
    assert len(eng.instruments) == len(SPECS)
    neutral = make_engine()
    neutral.cancel(1, 10**9)
    assert eng.state_hash() == neutral.state_hash() != before


def test_a_chain_is_listed_in_one_batch_and_replays_to_the_same_state():
    eng = make_engine()
    strikes = [2_000_000, 2_500_000, 3_000_000]
    commands = chain_commands(PUT, [20261218, 20270115], strikes, [RIGHT_CALL, RIGHT_PUT], SHARE)
    assert len(commands) == 12 and set(commands["kind"]) == {CommandKind.LIST_SERIES}
    commands["seq"] = np.arange(1, 13)
    commands["ts"] = BEFORE
    events = eng.process(commands)
    listed = events[events["kind"] == EventKind.SERIES_LISTED]
    rejected = events[events["kind"] == EventKind.REJECTED]
    assert len(listed) == 11 and list(rejected["reason"]) == [Reject.SERIES_EXISTS]   # the 250 put exists
    symbols = [eng.instruments[i].symbol for i in listed["instrument"]]
    assert symbols[:3] == ["TSLA.M-20261218-200-C", "TSLA.M-20261218-200-P", "TSLA.M-20261218-250-C"]
    assert symbols[-1] == "TSLA.M-20270115-300-P"
    replayed = make_engine()
    for row in commands:
        replayed.submit(row)
    assert replayed.state_hash() == eng.state_hash()
    restored = MatchingEngine.from_snapshot(eng.snapshot())
    assert restored.state_hash() == eng.state_hash()
    assert restored.instruments == eng.instruments


def test_delisting_refuses_open_interest_and_cancels_orders_otherwise():
    eng = make_engine()
    iid = list_call(eng)
    eng.credit(1, USDC, 10_000 * 10**6)
    eng.credit(2, USDC, 10_000 * 10**6)
    trade(eng, iid, 1, 2, 100, 100_000)
    resting = eng.new_order(iid, 2, Side.BUY, 50, 90_000, ts=BEFORE)[0].order_id
    ev = eng.delist_series(iid)
    assert [(e.kind, e.reason) for e in ev] == [(EventKind.REJECTED, Reject.OPEN_INTEREST)]
    trade(eng, iid, 2, 1, 100, 100_000)                        # the position is closed
    ev = eng.delist_series(iid)
    assert [(e.kind, e.aux, e.qty) for e in ev[:1]] == [(EventKind.SERIES_CLOSED, 2, 1)]
    assert [(e.kind, e.reason, e.order_id) for e in ev[1:]] == [(EventKind.CANCELLED, CancelReason.DELISTED,
                                                                  resting)]
    assert eng.series_status(iid) == (2, 0)
    assert eng.new_order(iid, 2, Side.BUY, 50, 90_000)[0].reason == Reject.INSTRUMENT_CLOSED
    assert eng.set_state(iid, TradingState.OPEN)[0].reason == Reject.SERIES_FINAL
    assert eng.delist_series(iid)[0].reason == Reject.SERIES_FINAL
    assert eng.delist_series(SPOT)[0].reason == Reject.NOT_AN_OPTION
    restored = MatchingEngine.from_snapshot(eng.snapshot())
    assert restored.state_hash() == eng.state_hash() and restored.series_status(iid) == (2, 0)
    eng.check_integrity()


# -- expiry ------------------------------------------------------------------------------

def test_orders_and_amends_are_refused_from_the_expiry_instant():
    eng = make_engine()
    iid = list_call(eng)
    eng.credit(2, USDC, 10_000 * 10**6)
    oid = eng.new_order(iid, 2, Side.BUY, 50, 90_000, ts=EXPIRY_NS - 1)[0].order_id
    ev = eng.new_order(iid, 2, Side.BUY, 50, 90_000, ts=EXPIRY_NS)
    assert (ev[0].kind, ev[0].reason) == (EventKind.REJECTED, Reject.SERIES_EXPIRED)
    assert eng.amend(2, oid, qty=10, ts=EXPIRY_NS)[0].reason == Reject.SERIES_EXPIRED
    assert eng.new_order(SPOT, 2, Side.BUY, 1, 2_500_000, ts=EXPIRY_NS)[0].kind == EventKind.ACCEPTED
    assert eng.cancel(2, oid, ts=EXPIRY_NS)[0].kind == EventKind.CANCELLED     # cancels still work


def test_settlement_before_expiry_or_twice_or_of_a_spot_pair_is_refused():
    eng = make_engine()
    iid = list_call(eng)
    assert eng.settle_series(iid, 2_600_000, ts=EXPIRY_NS - 1)[0].reason == Reject.NOT_EXPIRED
    assert eng.settle_series(iid, 0, ts=EXPIRY_NS)[0].reason == Reject.INVALID_PRICE
    assert eng.settle_series(SPOT, 2_600_000, ts=EXPIRY_NS)[0].reason == Reject.NOT_AN_OPTION
    assert eng.settle_series(iid, 2_600_000, ts=EXPIRY_NS)[0].kind == EventKind.SERIES_CLOSED
    assert eng.settle_series(iid, 2_600_000, ts=EXPIRY_NS)[0].reason == Reject.SERIES_FINAL
    risk_off = MatchingEngine()
    for spec in SPECS:
        risk_off.add_instrument(spec)
    assert risk_off.settle_series(PUT, 2_600_000, ts=EXPIRY_NS)[0].reason == Reject.ACCOUNTS_DISABLED


def test_in_the_money_call_pays_the_long_exactly_what_the_short_pays():
    eng = make_engine()
    iid = list_call(eng)
    for acct in (1, 2, 3):
        eng.credit(acct, USDC, 10_000 * 10**6)
    trade(eng, iid, 1, 2, 150, 100_000)                    # 1.5 contracts at $10
    trade(eng, iid, 1, 3, 50, 100_000)
    resting = eng.new_order(iid, 3, Side.BUY, 10, 90_000, ts=BEFORE)[0].order_id
    assert eng.margin(1).maintenance > 0
    before = {a: eng.balances(a)[USDC][0] for a in (0, 1, 2, 3)}
    ev = eng.settle_series(iid, 2_612_345, ts=EXPIRY_NS + 5)      # $261.2345
    value = 112_345                                              # $11.2345 per contract: $0.112345 per 0.01
    assert value == settlement_value(series_terms(eng.instruments[iid], DEFAULT_ASSETS), 2_612_345, SHARE, 100, 100)
    head, rest = ev[0], ev[1:]
    assert (head.kind, head.aux, head.price, head.qty, head.leaves) == (EventKind.SERIES_CLOSED, 1, 2_612_345,
                                                                         200 * value, 0)
    assert [(e.kind, e.reason, e.order_id) for e in rest[:1]] == [(EventKind.CANCELLED, CancelReason.EXPIRED,
                                                                    resting)]
    paid = [(e.account, e.side, e.qty, e.leaves, e.maker_account, e.asset) for e in rest[1:]]
    assert paid == [(1, Side.SELL, 200 * value, 200, FEE, USDC), (2, Side.BUY, 150 * value, 150, FEE, USDC),
                    (3, Side.BUY, 50 * value, 50, FEE, USDC)]
    after = {a: eng.balances(a)[USDC] for a in (0, 1, 2, 3)}
    assert after[1] == (before[1] - 200 * value, 0)
    assert after[2] == (before[2] + 150 * value, 0)
    assert after[3] == (before[3] + 50 * value, 0)
    assert after[0] == (before[0], 0)
    assert eng.positions(1) == eng.positions(2) == eng.positions(3) == []
    assert eng.margin(1).maintenance == eng.margin(1).initial == 0
    assert eng.series_status(iid) == (1, 2_612_345)
    assert eng.instrument_state(iid)[0] == TradingState.CLOSED
    restored = MatchingEngine.from_snapshot(eng.snapshot())
    assert restored.state_hash() == eng.state_hash()
    eng.check_integrity()


@pytest.mark.parametrize("right, strike, price, value", [
    (RIGHT_CALL, K250, 2_400_000, 0), (RIGHT_CALL, K250, K250, 0), (RIGHT_PUT, 2_500_100, 2_600_000, 0),
    (RIGHT_PUT, 2_500_100, 2_400_000, 100_100),     # $10.01 a contract: $0.1001 per hundredth
])
def test_out_of_the_money_series_expire_worthless(right, strike, price, value):
    eng = make_engine()
    iid = list_call(eng, strike=strike, right=right)
    eng.credit(1, USDC, 10_000 * 10**6)
    eng.credit(2, USDC, 10_000 * 10**6)
    trade(eng, iid, 1, 2, 100, 100_000)
    ev = eng.settle_series(iid, price, ts=EXPIRY_NS)
    assert [(e.account, e.qty) for e in ev if e.kind == EventKind.POSITION_SETTLED] == [(1, 100 * value),
                                                                                         (2, 100 * value)]
    assert eng.positions(1) == [] and eng.margin(1).maintenance == 0


def test_a_short_without_premium_sells_its_collateral_to_pay():
    eng = make_engine()
    iid = list_call(eng)
    eng.credit(1, TSLA, 10 * SHARE)                    # no USDC: its premium income is all it has
    eng.credit(2, USDC, 10_000 * 10**6)
    eng.credit(3, USDC, 100_000 * 10**6)
    eng.set_reference_price(SPOT, 2_600_000)
    trade(eng, iid, 1, 2, 100, 50_000)                 # receives $5
    eng.new_order(SPOT, 3, Side.BUY, 5_000, 2_600_000, ts=BEFORE)           # a bid for 5 shares at $260
    held_order = eng.new_order(SPOT, 1, Side.SELL, 1_000, 2_800_000, ts=BEFORE)[0].order_id
    ev = eng.settle_series(iid, 3_000_000, ts=EXPIRY_NS)                    # owes $50
    kinds = [(e.kind, e.reason) for e in ev]
    assert (EventKind.CANCELLED, CancelReason.LIQUIDATION) in kinds         # its spot ask
    sale = [e for e in ev if e.kind == EventKind.FILL]
    assert sale and all(e.instrument == SPOT and e.account == 1 and e.side == Side.SELL for e in sale)
    paid = [(e.account, e.side, e.qty) for e in ev if e.kind == EventKind.POSITION_SETTLED]
    assert paid == [(1, Side.SELL, 50 * 10**6), (2, Side.BUY, 50 * 10**6)]
    assert ev[0].leaves == 0
    assert eng.order(held_order) is None
    eng.check_integrity()


def test_a_shortfall_cuts_the_longs_pro_rata_and_creates_nothing():
    eng = make_engine()
    iid = list_call(eng)
    for acct in (1, 2, 3):
        eng.credit(acct, USDC, 10_000 * 10**6)
    eng.credit(4, WBTC, 10**8)                          # collateral with no spot book in USDC to sell on
    eng.set_option_risk(iid, 1, 1)                      # let the short in on almost nothing
    trade(eng, iid, 4, 2, 200, 100)                     # receives $0.02
    trade(eng, iid, 4, 3, 100, 100)
    eng.debit(2, USDC, 1)                               # (uneven totals elsewhere do not matter)
    before = {a: eng.balances(a)[USDC][0] for a in range(6)}
    ev = eng.settle_series(iid, 3_000_000, ts=EXPIRY_NS)             # owes 300 x $0.50
    head = ev[0]
    collected = 30_000
    assert (head.qty, head.leaves) == (collected, 300 * 500_000 - collected)
    paid = {e.account: e.qty for e in ev if e.kind == EventKind.POSITION_SETTLED}
    assert paid == {4: collected, 2: 200 * 500_000 * collected // (300 * 500_000),
                    3: 100 * 500_000 * collected // (300 * 500_000)}
    after = {a: eng.balances(a)[USDC][0] for a in range(6)}
    assert sum(after.values()) == sum(before.values())
    assert after[0] - before[0] == collected - paid[2] - paid[3]
    assert eng.balances(4)[WBTC] == (10**8, 0)
    eng.check_integrity()


@settings(max_examples=60, deadline=None)
@given(trades=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 300)), min_size=1,
                       max_size=12),
       cash=st.lists(st.integers(0, 40_000), min_size=5, max_size=5),
       strike=st.integers(1, 6_000) , price=st.integers(1, 6_000), right=st.sampled_from([RIGHT_CALL, RIGHT_PUT]))
def test_settlement_conserves_every_asset_and_pays_the_floored_value(trades, cash, strike, price, right):
    """Whatever the positions, balances and prices: per asset the total is unchanged,
    each position moves |position| x the floored value or (on a shortfall) longs are
    cut pro rata, and the fee account gets only the rounding remainder."""
    eng = make_engine()
    iid = list_call(eng, strike=strike * 1_000 + 100, right=right, margins=(1, 1))   # not the template's $250
    for acct, amount in zip(range(1, 6), cash):
        eng.credit(acct, WBTC, 10)                     # collateral for the (tiny) margin, not sellable for USDC
        if amount:
            eng.credit(acct, USDC, amount * 1_000)
    for seller, buyer, qty in trades:
        if seller != buyer and eng.balances(buyer)[USDC][0] - eng.balances(buyer)[USDC][1] >= qty * 100:
            trade(eng, iid, seller, buyer, qty, 100)
    positions = {a: next((p.position for p in eng.positions(a)), 0) for a in range(6)}
    before = [supply(eng, range(6), asset) for asset in range(len(DEFAULT_ASSETS))]
    value = settlement_value(series_terms(eng.instruments[iid], DEFAULT_ASSETS), price * 1_000, SHARE, 100, 100)
    assert value == max(price * 1_000 - strike * 1_000 - 100 if right == RIGHT_CALL
                        else strike * 1_000 + 100 - price * 1_000, 0)
    ev = eng.settle_series(iid, price * 1_000, ts=EXPIRY_NS)
    assert [supply(eng, range(6), asset) for asset in range(len(DEFAULT_ASSETS))] == before
    paid = {e.account: (e.side, e.qty) for e in ev if e.kind == EventKind.POSITION_SETTLED}
    assert set(paid) == {a for a, p in positions.items() if p}
    owed = sum(p * value for p in positions.values() if p > 0)
    collected = sum(q for side, q in paid.values() if side == Side.SELL)
    assert ev[0].qty == collected and ev[0].leaves == owed - collected
    for acct, pos in positions.items():
        if pos > 0:
            assert paid[acct] == (Side.BUY, pos * value if collected == owed else pos * value * collected // owed)
        elif pos < 0:
            assert paid[acct][1] <= -pos * value
    eng.check_integrity()


# -- covered calls -------------------------------------------------------------------------

def covered_engine(margins=(6 * USD, 5 * USD)):
    """A TSLA.M call whose margin ($600 a contract) exceeds what the holder's three
    shares count as collateral (3 x $175)."""
    eng = make_engine()
    iid = list_call(eng, margins=margins)
    eng.credit(1, TSLA, 3 * SHARE)                     # the holder: TSLA.M only, no stablecoin at all
    eng.credit(2, USDC, 100_000 * 10**6)
    return eng, iid


def test_a_tsla_holder_sells_covered_calls_with_no_stablecoin_and_the_holding_is_locked():
    eng, iid = covered_engine()
    assert eng.new_order(iid, 1, Side.SELL, 100, 100_000, ts=BEFORE)[0].reason == Reject.INSUFFICIENT_MARGIN
    assert eng.cover_calls(1)[0].kind == EventKind.COVERING_SET
    trade(eng, iid, 1, 2, 200, 100_000)                # 2 contracts, covered by 2 shares
    assert eng.balances(1)[TSLA] == (3 * SHARE, 2 * SHARE)
    assert eng.balances(1)[USDC] == (2 * 10 * 10**6, 0)
    assert eng.covered(1, iid) == 200
    assert eng.margin(1).initial == eng.margin(1).maintenance == 0
    assert eng.debit(1, TSLA, 2 * SHARE)[0].reason == Reject.INSUFFICIENT_BALANCE
    assert eng.new_order(SPOT, 1, Side.SELL, 2_000, 2_500_000, ts=BEFORE)[0].reason == Reject.INSUFFICIENT_BALANCE
    # The third share is free; a third call would need margin it does not have uncovered.
    assert eng.new_order(SPOT, 1, Side.SELL, 1_000, 2_500_000, ts=BEFORE)[0].kind == EventKind.ACCEPTED
    assert eng.new_order(iid, 1, Side.SELL, 100, 100_000, ts=BEFORE)[0].reason == Reject.INSUFFICIENT_MARGIN
    restored = MatchingEngine.from_snapshot(eng.snapshot())
    assert restored.state_hash() == eng.state_hash() and restored.covered(1, iid) == 200
    eng.check_integrity()


def test_buying_back_releases_the_lock_and_open_sells_hold_it_until_cancelled():
    eng, iid = covered_engine()
    eng.cover_calls(1)
    trade(eng, iid, 1, 2, 200, 100_000)
    eng.credit(1, USDC, 1_000 * 10**6)
    trade(eng, iid, 2, 1, 100, 100_000)                # buys one contract back
    assert eng.balances(1)[TSLA] == (3 * SHARE, SHARE) and eng.covered(1, iid) == 100
    oid = eng.new_order(iid, 1, Side.SELL, 100, 200_000, ts=BEFORE)[0].order_id   # resting: covered too
    assert eng.balances(1)[TSLA] == (3 * SHARE, 2 * SHARE)
    eng.cancel(1, oid)
    assert eng.balances(1)[TSLA] == (3 * SHARE, SHARE)
    trade(eng, iid, 2, 1, 100, 100_000)
    assert eng.balances(1)[TSLA] == (3 * SHARE, 0) and eng.covered(1, iid) == 0
    assert eng.debit(1, TSLA, 3 * SHARE)[0].kind == EventKind.DEBITED
    eng.check_integrity()


def test_expiry_releases_the_lock_and_an_in_the_money_covered_call_pays_in_cash():
    eng, iid = covered_engine()
    eng.cover_calls(1)
    trade(eng, iid, 1, 2, 200, 100_000)                # $20 of premium
    ev = eng.settle_series(iid, 2_550_000, ts=EXPIRY_NS)     # $5 a contract in the money: $10 owed
    assert [(e.account, e.side, e.qty) for e in ev if e.kind == EventKind.POSITION_SETTLED] == [
        (1, Side.SELL, 10 * 10**6), (2, Side.BUY, 10 * 10**6)]
    assert eng.balances(1)[TSLA] == (3 * SHARE, 0)
    assert eng.balances(1)[USDC] == (10 * 10**6, 0)
    assert eng.covered(1, iid) == 0
    eng.check_integrity()


def test_covering_is_opt_in_and_puts_are_never_covered():
    eng, iid = covered_engine(margins=(40 * USD // 100, 30 * USD // 100))
    trade(eng, iid, 1, 2, 100, 100_000)                # margined by the holding, nothing locked
    assert eng.balances(1)[TSLA] == (3 * SHARE, 0)
    eng.cover_calls(1)                                 # covers the open exposure at once
    assert eng.balances(1)[TSLA] == (3 * SHARE, SHARE) and eng.covered(1, iid) == 100
    eng.cover_calls(1, False)
    trade(eng, iid, 1, 2, 100, 100_000)                # not covered any more
    assert eng.balances(1)[TSLA] == (3 * SHARE, SHARE)
    eng.set_option_risk(PUT, 40 * USD // 100, 30 * USD // 100)
    eng.cover_calls(1)
    trade(eng, PUT, 1, 2, 100, 100_000)
    assert eng.covered(1, PUT) == 0
    assert eng.cover_calls(77)[0].reason == Reject.UNKNOWN_ACCOUNT
    eng.check_integrity()


def test_an_engine_that_never_used_the_features_hashes_and_snapshots_as_before():
    eng = make_engine()
    before = eng.state_hash()
    eng.list_series(PUT, RIGHT_CALL, EXPIRY, 0, SHARE)       # rejected
    restored = snap.DECODER.decode(eng.snapshot())
    assert (restored.series_status, restored.covered, restored.covering) == ([], [], [])
    twin = make_engine()
    twin.cancel(1, 10**9)
    assert eng.state_hash() == twin.state_hash() != before


def test_a_version_3_snapshot_still_restores():
    eng, iid = covered_engine()
    old = snap.DECODER.decode(make_engine().snapshot())
    old_bytes = snap.ENCODER.encode(msgspec.structs.replace(old, version=3))
    assert MatchingEngine.from_snapshot(old_bytes).state_hash() == make_engine().state_hash()


def test_snapshots_with_bad_series_sections_are_refused():
    eng, iid = covered_engine()
    eng.cover_calls(1)
    trade(eng, iid, 1, 2, 100, 100_000)
    good = snap.DECODER.decode(eng.snapshot())
    for bad in (dict(series_status=[(SPOT, 1, 5)]), dict(series_status=[(iid, 7, 5)]),
                dict(covered=[(1, iid, 101)]), dict(covered=[(1, PUT, 1)]), dict(covering=[77]),
                dict(covered=[])):          # the lock left in reserved without its covered call
        with pytest.raises(ValueError):
            MatchingEngine.from_snapshot(snap.ENCODER.encode(msgspec.structs.replace(good, **bad)))


def test_open_interest_follows_every_fill_and_survives_a_restore():
    eng = make_engine()
    iid = list_call(eng)
    for acct in (1, 2, 3):
        eng.credit(acct, USDC, 10_000 * 10**6)
    trade(eng, iid, 1, 2, 150, 100_000)
    trade(eng, iid, 3, 1, 50, 100_000)          # 1 buys back a third: 2 long 150, 3 short 50, 1 short 100
    assert eng.open_interest(iid) == 150
    trade(eng, iid, 2, 3, 100, 100_000)         # 2 sells 100 to the short 3: 3 long 50
    assert eng.open_interest(iid) == 100
    assert MatchingEngine.from_snapshot(eng.snapshot()).open_interest(iid) == 100
    assert eng.delist_series(iid)[0].reason == Reject.OPEN_INTEREST
    eng.settle_series(iid, K250, ts=EXPIRY_NS)
    assert eng.open_interest(iid) == 0
    with pytest.raises(ValueError):
        eng.open_interest(SPOT)
    eng.check_integrity()
