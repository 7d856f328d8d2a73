"""The cost basis of option positions (ledger.pxd add_position; docs/pools.md,
"Cost basis"): opening, adding, partial closes, flips, liquidation buy-backs,
expiry; the core against engine/reference/cost.py and against exact average
cost in fractions; snapshots (version 6 and older) and replay; the state hash
of an engine that never traded options."""

from fractions import Fraction

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core import snapshot as snap
from engine.core.matcher import MatchingEngine
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, EventKind, OrderType, SelfTrade, Side, TimeInForce
from engine.defaults import DEFAULT_ASSETS, DEFAULT_INSTRUMENTS, DEFAULT_OPTIONS
from engine.reference import cost as ref
from engine.reference.risk import InstrumentTerms, LedgerModel
from engine.units import VALUE_LIMIT

SPECS = DEFAULT_INSTRUMENTS + DEFAULT_OPTIONS
INSTRUMENT = {s.symbol: i for i, s in enumerate(SPECS)}
ASSET = {s.symbol: i for i, s in enumerate(DEFAULT_ASSETS)}
USDC, TSLA = ASSET["USDC"], ASSET["TSLA.M"]
SPOT, PUT = INSTRUMENT["TSLA.M/USDC"], INSTRUMENT["TSLA.M-20261218-250-P"]
USD = 10**8
DOLLAR = 10**6
ACCOUNTS = (1, 2, 3)


def premium(price, qty):
    """The put's premium in USDC ledger units: tick 100 price units, 100 ledger units a tick and quantity unit."""
    return price // 100 * qty * 100


def make_engine():
    eng = MatchingEngine(risk=True, fee_account=0)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    for spec in SPECS:
        eng.add_instrument(spec)
    for acct in ACCOUNTS:
        eng.open_account(acct)
        eng.credit(acct, USDC, 1_000_000 * DOLLAR)
    eng.set_asset_price(USDC, USD)
    eng.set_asset_price(TSLA, 250 * USD)
    eng.set_reference_price(SPOT, 2_500_000)
    eng.set_reference_price(PUT, 1_600_000)
    eng.set_bands(PUT, 5_000, 0)          # +-50% around the mark, no dynamic band: any test price trades
    eng.set_option_risk(PUT, 4 * USD, 3 * USD)
    return eng


def trade(eng, seller, buyer, qty, price, ts=0):
    """``seller`` rests, ``buyer`` takes all of it; returns the events."""
    assert eng.new_order(PUT, seller, Side.SELL, qty, price, ts=ts)[0].kind == EventKind.ACCEPTED
    ev = eng.new_order(PUT, buyer, Side.BUY, qty, price, ts=ts)
    assert sum(e.qty for e in ev if e.kind == EventKind.FILL) == qty, ev
    return ev


def held(eng, acct):
    """(position, cost) in the put, (0, 0) when flat."""
    return next(((p.position, p.cost) for p in eng.positions(acct) if p.instrument == PUT), (0, 0))


def test_open_add_partial_close_and_flip():
    eng = make_engine()
    trade(eng, 2, 1, 100, 1_600_000)                      # 1 buys 100 at $160: opens
    assert held(eng, 1) == (100, 160 * DOLLAR) and held(eng, 2) == (-100, -160 * DOLLAR)
    trade(eng, 2, 1, 50, 1_650_000)                       # adds 50 at $165 on both sides
    assert held(eng, 1) == (150, 242_500_000) and held(eng, 2) == (-150, -242_500_000)
    trade(eng, 1, 3, 70, 1_550_000)                       # 1 sells 70: keeps 80/150 of its cost, truncated
    assert held(eng, 1) == (80, 129_333_333)              # 242,500,000 x 80 / 150 = 129,333,333.3
    assert held(eng, 3) == (70, 108_500_000)
    trade(eng, 1, 3, 150, 1_620_000)                      # sells 150 of 80: flips to a 70 short
    assert held(eng, 1) == (-70, -113_400_000)            # the new side's 70/150 of $243
    assert held(eng, 3) == (220, 108_500_000 + 243_000_000)
    trade(eng, 1, 2, 70, 1_600_000)                       # 2 buys back 70 of its 150 short
    assert held(eng, 2) == (-80, -129_333_333)            # truncated toward zero for a short too
    assert held(eng, 1) == (-140, -113_400_000 - 112_000_000)
    trade(eng, 2, 3, 80, 1_600_000)                       # 2 adds to its short; then buys all back
    trade(eng, 3, 2, 160, 1_600_000)
    assert held(eng, 2) == (0, 0)
    eng.check_integrity()


def test_costs_follow_the_reference_model_of_the_events():
    eng = make_engine()
    model = LedgerModel([InstrumentTerms.of(s, DEFAULT_ASSETS) for s in SPECS], fee_account=0)
    for seller, buyer, qty, price in [(2, 1, 100, 1_600_000), (1, 3, 30, 1_700_000), (3, 2, 130, 1_400_000),
                                      (2, 1, 55, 1_900_000), (1, 2, 300, 1_000_000)]:
        for e in trade(eng, seller, buyer, qty, price):
            model.apply(e)
    for acct in ACCOUNTS:
        assert held(eng, acct) == (model.position_of(acct, PUT), model.cost_of(acct, PUT))


def test_a_liquidation_buys_back_and_the_makers_cost_follows():
    """A short put liquidated after a gap buys back on the book: its cost keeps
    the part of the premium it received for what it still holds, the maker
    that sold to it adds what it received."""
    eng = make_engine()
    eng.credit(1, TSLA, 38 * 10**6)
    eng.credit(1, USDC, 1)
    eng.debit(1, USDC, 1_000_000 * DOLLAR)                # 1 holds only TSLA.M (and $0.000001)
    trade(eng, 1, 2, 500, 1_600_000)                      # 1 sells 500 at $160: cost -$800
    assert held(eng, 1) == (-500, -800 * DOLLAR)
    eng.set_asset_price(TSLA, 150 * USD)
    eng.set_reference_price(SPOT, 1_500_000)
    eng.set_reference_price(PUT, 10_000_000)
    eng.set_option_risk(PUT, 12 * USD, 10 * USD)
    eng.new_order(SPOT, 2, Side.BUY, 100_000, 1_450_000)   # the liquidation sells its TSLA.M here
    eng.new_order(PUT, 3, Side.SELL, 200, 10_500_000)
    ev = eng.liquidate(1)
    bought = sum(e.qty for e in ev if e.kind == EventKind.FILL and e.instrument == PUT)
    assert 0 < bought < 500
    left = 500 - bought
    assert held(eng, 1) == (-left, -(800 * DOLLAR * left // 500))
    assert held(eng, 3) == (-bought, -premium(10_500_000, bought))
    eng.check_integrity()


def test_expiry_settles_the_costs_away():
    import datetime

    expiry_ns = int(datetime.datetime(2026, 12, 18, 8, tzinfo=datetime.UTC).timestamp()) * 10**9
    eng = make_engine()
    trade(eng, 1, 2, 100, 1_600_000, ts=expiry_ns - 10**9)
    assert snap.DECODER.decode(eng.snapshot()).costs
    ev = eng.settle_series(PUT, 2_400_000, ts=expiry_ns + 1)
    assert {e.account for e in ev if e.kind == EventKind.POSITION_SETTLED} == {1, 2}
    assert held(eng, 1) == held(eng, 2) == (0, 0)
    assert snap.DECODER.decode(eng.snapshot()).costs == b""   # every cost is 0 again: no section
    eng.check_integrity()


def test_snapshot_and_replay_from_it_keep_the_costs():
    """The costs section round-trips, and a snapshot plus the commands after it
    reach the state the whole command stream reaches (costs in the hash)."""
    rows = [(2, 1, 100, 1_600_000), (1, 3, 30, 1_700_000), (3, 2, 130, 1_400_000), (2, 1, 55, 1_900_000)]
    commands = np.zeros(2 * len(rows), dtype=COMMAND_DTYPE)
    for i, (seller, buyer, qty, price) in enumerate(rows):
        for j, (acct, side) in enumerate(((seller, Side.SELL), (buyer, Side.BUY))):
            c = commands[2 * i + j]
            c["kind"], c["instrument"], c["account"], c["side"] = CommandKind.NEW_ORDER, PUT, acct, side
            c["qty"], c["price"], c["seq"] = qty, price, 1_000 + 2 * i + j
            c["order_type"], c["tif"], c["stp"] = OrderType.LIMIT, TimeInForce.GTC, SelfTrade.CANCEL_NEWEST
    whole = make_engine()
    whole.process(commands)
    half = make_engine()
    half.process(commands[:4])
    restored = MatchingEngine.from_snapshot(half.snapshot())
    assert [held(restored, a) for a in ACCOUNTS] == [held(half, a) for a in ACCOUNTS]
    assert restored.state_hash() == half.state_hash()
    restored.process(commands[4:])
    assert [held(restored, a) for a in ACCOUNTS] == [held(whole, a) for a in ACCOUNTS]
    assert any(cost for _, cost in (held(whole, a) for a in ACCOUNTS))
    assert restored.state_hash() == whole.state_hash()
    # the costs are in the hash: the same state with one cost changed hashes differently
    decoded = snap.DECODER.decode(whole.snapshot())
    costs = np.frombuffer(decoded.costs, dtype=np.int64).copy()
    costs[costs > 0] += 1
    other = MatchingEngine.from_snapshot(snap.ENCODER.encode(msgspec.structs.replace(decoded, costs=costs.tobytes())))
    assert other.state_hash() != whole.state_hash()


def test_a_version_5_snapshot_loads_each_cost_at_the_mark():
    eng = make_engine()
    trade(eng, 2, 1, 100, 1_600_000)
    eng.set_reference_price(PUT, 1_800_000)
    old = msgspec.structs.replace(snap.DECODER.decode(eng.snapshot()), version=5, costs=b"")
    restored = MatchingEngine.from_snapshot(snap.ENCODER.encode(old))
    assert held(restored, 1) == (100, premium(1_800_000, 100))      # no profit at the mark it loads at
    assert held(restored, 2) == (-100, -premium(1_800_000, 100))
    restored.check_integrity()


def _over_the_limit(costs):
    return np.where(costs > 0, VALUE_LIMIT + 1, costs)


@pytest.mark.parametrize("costs", [
    lambda c: c[:-8],                                        # the wrong size
    lambda c: (-np.frombuffer(c, dtype=np.int64)).tobytes(),   # a long with a negative cost
    lambda c: np.ones(len(c) // 8, dtype=np.int64).tobytes(),  # a flat position with a cost
    lambda c: _over_the_limit(np.frombuffer(c, dtype=np.int64)).tobytes(),   # a long past VALUE_LIMIT
])
def test_a_corrupt_costs_section_is_refused(costs):
    eng = make_engine()
    trade(eng, 2, 1, 100, 1_600_000)
    good = snap.DECODER.decode(eng.snapshot())
    with pytest.raises(ValueError):
        MatchingEngine.from_snapshot(snap.ENCODER.encode(msgspec.structs.replace(good, costs=costs(good.costs))))


def test_an_engine_that_never_traded_options_keeps_its_state_hash():
    """Spot trades and resting option orders, no option fill: the hash the build
    before cost bases gave (computed at commit 6dce055)."""
    eng = make_engine()
    eng.credit(1, TSLA, 100 * 10**6)
    eng.new_order(SPOT, 1, Side.SELL, 1_000, 2_500_000)
    eng.new_order(SPOT, 2, Side.BUY, 600, 2_500_000)
    eng.new_order(PUT, 3, Side.SELL, 100, 1_700_000)
    eng.new_order(PUT, 2, Side.BUY, 100, 1_500_000)
    assert snap.DECODER.decode(eng.snapshot()).costs == b""
    assert eng.state_hash() == "95c032eda7946648725d3dcbd6e3c77ffe0f39dfee1052c3f0290cc6e80c548e"


# -- the rule against exact average cost --------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([(2, 1), (1, 2), (1, 3), (3, 1), (2, 3), (3, 2)]),
                          st.integers(1, 400), st.integers(800, 2_400).map(lambda p: p * 1_000)),
                min_size=1, max_size=25))
def test_costs_are_premiums_paid_plus_realised_profit(trades):
    """Per account, the cost basis is the premiums it paid less those it
    received plus the profit it realised, realised as textbook average cost
    computes it in exact fractions (on closing k of h held at cost c:
    k x price - c x k / h); each close truncates at most one ledger unit
    and later closes only scale that error down, so the two differ by less
    than the number of closes. Summed over the accounts the premiums cancel:
    the costs sum to the profit realised."""
    eng = make_engine()
    paid = dict.fromkeys(ACCOUNTS, 0)
    realised = dict.fromkeys(ACCOUNTS, Fraction(0))
    exact = {a: (0, Fraction(0)) for a in ACCOUNTS}      # position, exact average cost
    closes = dict.fromkeys(ACCOUNTS, 0)
    for (seller, buyer), qty, price in trades:
        trade(eng, seller, buyer, qty, price)
        n = premium(price, qty)
        for acct, q in ((buyer, qty), (seller, -qty)):
            pos, cost = exact[acct]
            paid[acct] += n if q > 0 else -n
            if pos == 0 or (pos > 0) == (q > 0):
                exact[acct] = (pos + q, cost + (n if q > 0 else -n))
                continue
            closes[acct] += 1
            k = min(abs(q), abs(pos))
            unit = Fraction(n, qty)
            realised[acct] += k * (unit - cost / pos) if pos > 0 else k * (cost / pos - unit)
            after = pos + q
            if (after > 0) == (pos > 0) or after == 0:
                exact[acct] = (after, cost * after / pos)
            else:
                exact[acct] = (after, unit * after)
        for acct in ACCOUNTS:
            pos, cost = held(eng, acct)
            assert pos == exact[acct][0]
            assert abs(cost - (paid[acct] + realised[acct])) < max(closes[acct], 1)
            assert abs(cost - exact[acct][1]) < max(closes[acct], 1)
    assert sum(paid.values()) == 0
    assert abs(sum(held(eng, a)[1] for a in ACCOUNTS) - sum(realised.values())) < max(sum(closes.values()), 1)
    eng.check_integrity()


@given(pos=st.integers(-10**6, 10**6), q=st.integers(-10**6, 10**6).filter(bool), unit=st.integers(0, 10**6),
       start=st.integers(0, 10**9))
def test_the_reference_rule_keeps_the_cost_on_the_positions_side(pos, q, unit, start):
    cost = 0 if pos == 0 else (start if pos > 0 else -start)
    after, new = ref.add_position(pos, cost, q, unit * abs(q))
    assert after == pos + q
    assert (new == 0) if after == 0 else (new >= 0 if after > 0 else new <= 0)
    assert ref.realised(pos, cost, q, unit * abs(q)) == (unit * abs(q) if q < 0 else -unit * abs(q)) + new - cost


def test_the_cost_saturates_at_the_value_limit():
    """Only wash trades of more than all the money there is could push a cost
    past VALUE_LIMIT (2**62); it stops there instead of overflowing int64."""
    assert ref.add_position(10, VALUE_LIMIT - 5, 1, 100) == (11, VALUE_LIMIT)
    assert ref.add_position(-10, -VALUE_LIMIT + 5, -1, 100) == (-11, -VALUE_LIMIT)
