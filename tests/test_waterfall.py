"""The insurance pool and the loss waterfall (engine/core/losses.pyx,
waterfall.pyx; docs/pools.md): a gap move of TSLA.M leaves a short put
bankrupt and the loss walks the steps (own collateral, penalty, insurance
pool, main pool, auto-deleveraging), each exact and conserving every asset;
the events against the reference arithmetic (engine/reference/waterfall.py);
stepwise liquidation; the expiry shortfall; fee sweeps; snapshots, replay and
the state hash; bad input; attackers."""

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.core.matcher import MatchingEngine
from engine.core import snapshot as snap
from engine.core.records import COMMAND_DTYPE, JOURNALED_EVENT_KINDS
from engine.core.types import CommandKind, EventKind, Reject, Side
from engine.defaults import DEFAULT_ASSETS, DEFAULT_INSTRUMENTS, DEFAULT_OPTIONS
from engine.reference import waterfall as ref
from settlement.records import UnitTable, settlement_records

SPECS = DEFAULT_INSTRUMENTS + DEFAULT_OPTIONS
INSTRUMENT = {s.symbol: i for i, s in enumerate(SPECS)}
ASSET = {s.symbol: i for i, s in enumerate(DEFAULT_ASSETS)}
USDC, TSLA = ASSET["USDC"], ASSET["TSLA.M"]
SPOT, PUT = INSTRUMENT["TSLA.M/USDC"], INSTRUMENT["TSLA.M-20261218-250-P"]
USD = 10**8
DOLLAR = 10**6                    # USDC ledger units
SHARE = 10**6                     # TSLA.M ledger units
FEE, SHORT, LONG, MAKER, LONG2, INSURANCE, MAIN = 0, 1, 2, 3, 4, 7, 8
ACCOUNTS = (FEE, SHORT, LONG, MAKER, LONG2, INSURANCE, MAIN)
MARK = 10_000_000                 # the put's mark after the gap: $1,000 a contract
EDGE = 12_000_000                 # the band's high edge around it (20%)
POOLS = dict(penalty_bps=100, penalty_share_bps=5_000, fee_share_bps=2_000)


def scene(shares, insurance, main, asks, pools=True, step_lots=0, bids=True, specs=SPECS):
    """SHORT holds ``shares`` TSLA.M and sells 5 puts ($160) to LONG (3) and LONG2
    (2); TSLA.M gaps from $250 to $150, the put's mark from $160 to $1,000 and its
    margins follow; LONG bids for TSLA.M at $145 and MAKER offers ``asks`` of puts."""
    eng = MatchingEngine(risk=True, fee_account=FEE)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    for spec in specs:
        eng.add_instrument(spec)
    for acct in ACCOUNTS[1:]:
        eng.open_account(acct)
    if pools:
        eng.set_pools(INSURANCE, MAIN, step_lots=step_lots, **POOLS)
    eng.set_asset_price(USDC, USD)
    eng.set_asset_price(TSLA, 250 * USD)
    eng.set_reference_price(SPOT, 2_500_000)
    eng.set_reference_price(PUT, 1_600_000)
    eng.set_option_risk(PUT, 4 * USD, 3 * USD)
    eng.credit(SHORT, TSLA, shares)
    for acct in (LONG, MAKER, LONG2):
        eng.credit(acct, USDC, 1_000_000 * DOLLAR)
    if insurance:
        eng.credit(INSURANCE, USDC, insurance)
    if main:
        eng.credit(MAIN, USDC, main)
    eng.new_order(PUT, SHORT, Side.SELL, 500, 1_600_000)
    eng.new_order(PUT, LONG, Side.BUY, 300, 1_600_000)
    eng.new_order(PUT, LONG2, Side.BUY, 200, 1_600_000)
    eng.set_asset_price(TSLA, 150 * USD)
    eng.set_reference_price(SPOT, 1_500_000)
    eng.set_reference_price(PUT, MARK)
    eng.set_option_risk(PUT, 12 * USD, 10 * USD)
    if bids:
        eng.new_order(SPOT, LONG, Side.BUY, 100_000, 1_450_000)
    for qty, price in asks:
        eng.new_order(PUT, MAKER, Side.SELL, qty, price)
    eng.check_integrity()
    return eng


def supply(eng):
    """Every asset's total over every account."""
    return [sum(eng.balances(a)[asset][0] for a in ACCOUNTS) for asset in range(len(DEFAULT_ASSETS))]


def waterfall_events(events):
    return [e for e in events if e.kind in (EventKind.PENALTY_CHARGED, EventKind.LOSS_COVERED,
                                            EventKind.DELEVERAGED)]


def walk(before, events):
    """Apply each waterfall payment to the balances as they stood before the
    liquidation's waterfall events, checking after each step that nothing is
    created and no balance goes negative; returns the step totals."""
    balances = {a: [t for t, _ in rows] for a, rows in before.items()}
    total = sum(b[USDC] for b in balances.values())
    steps = {}
    for e in events:
        payer, payee = (e.maker_account, e.account) if e.kind == EventKind.DELEVERAGED else (e.account, e.maker_account)
        balances[payer][e.asset] -= e.qty
        balances[payee][e.asset] += e.qty
        assert balances[payer][e.asset] >= 0, e
        assert sum(b[USDC] for b in balances.values()) == total
        if e.kind == EventKind.LOSS_COVERED:
            sign = -1 if e.side == Side.SELL else 1
            steps[e.aux] = steps.get(e.aux, 0) + sign * e.qty
        elif e.kind == EventKind.DELEVERAGED:
            steps[ref.ADL] = steps.get(ref.ADL, 0) + e.qty
    return steps


def follow_penalties(held, events):
    """Apply a command's penalty events to the reference's held penalties
    (``held``, ref.HeldPenalties): charges, the penalty step's draws and give-backs,
    checking that the insurance pool lends only once the penalty held for that
    liquidation is drawn back in full; returns {asset: amount} the command paid on
    to the fee account (a liquidation's end)."""
    released = {}
    for e in events:
        if e.kind == EventKind.PENALTY_CHARGED and e.maker_account == INSURANCE:
            held.charge(e.account, e.asset, e.qty)
        elif e.kind == EventKind.PENALTY_CHARGED:
            assert (e.account, e.maker_account) == (INSURANCE, FEE)
            released[e.asset] = released.get(e.asset, 0) + e.qty
        elif e.kind == EventKind.LOSS_COVERED and e.aux == ref.PENALTY:
            if e.side == Side.BUY:
                held.draw(e.maker_account, e.asset, e.qty)
            else:
                held.draw(e.account, e.asset, -e.qty)
        elif e.kind == EventKind.LOSS_COVERED and e.aux == ref.INSURANCE and e.side == Side.BUY:
            assert held.left(e.maker_account, e.asset) == 0, "the insurance pool paid before the penalty held"
    return released


def check_liquidation_end(eng, held, account, ev, released):
    """The command's release (``released``, from follow_penalties) is the
    reference's: the liquidation of ``account`` ends exactly when an accepted
    command other than an order leaves it ended (ref.liquidation_ended), and the
    engine then holds nothing for it."""
    margin = eng.margin(account)
    accepted = ev[0].kind != EventKind.REJECTED
    if accepted and ref.liquidation_ended(margin.collateral, margin.maintenance, eng.is_frozen(account)):
        assert released == held.end(account, POOLS["penalty_share_bps"])
    else:
        assert released == {}
    assert eng.insurance_state().penalties_held == held.rows()


ASKS = [(200, 10_500_000), (300, 11_000_000)]
EXPIRY_NS = 1_797_580_800 * 10**9           # the put's expiry, 2026-12-18 08:00 UTC


@pytest.mark.parametrize("name, shares, insurance, main, asks, deepest", [
    ("own collateral only", 38 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR, ASKS, None),
    ("+ penalty", 32_100_000, 1_000 * DOLLAR, 10_000 * DOLLAR, ASKS, ref.PENALTY),
    ("+ insurance", 30 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR, ASKS, ref.INSURANCE),
    ("+ main pool", 30 * SHARE, 100 * DOLLAR, 10_000 * DOLLAR, ASKS, ref.MAIN),
    ("+ ADL", 15 * SHARE, 100 * DOLLAR, 100 * DOLLAR, ASKS[:1], ref.ADL),
])
def test_a_gap_move_of_tsla_walks_the_waterfall_step_by_step(name, shares, insurance, main, asks, deepest):
    eng = scene(shares, insurance, main, asks)
    assert [a for a, _ in eng.under_maintenance()] == [SHORT]
    start = supply(eng)
    ev = eng.liquidate(SHORT)
    assert ev[0].kind == EventKind.LIQUIDATED
    assert supply(eng) == start
    eng.check_integrity()
    for acct in ACCOUNTS:
        assert all(total >= reserved >= 0 for total, reserved in eng.balances(acct))
    assert eng.positions(SHORT) == []           # every step together closes the short
    steps = {e.aux for e in ev if e.kind == EventKind.LOSS_COVERED} | (
        {ref.ADL} if any(e.kind == EventKind.DELEVERAGED for e in ev) else set())
    assert max(steps, default=None) == deepest
    assert steps == set(range(ref.PENALTY, deepest + 1)) if deepest else not steps
    state = eng.insurance_state()
    assert [(s, a, v) for s, a, v in state.step_totals if v] == [
        (s, USDC, v) for s, v in sorted(_net_steps(ev).items()) if v]


def _net_steps(events):
    out = {}
    for e in events:
        if e.kind == EventKind.LOSS_COVERED:
            out[e.aux] = out.get(e.aux, 0) + (-e.qty if e.side == Side.SELL else e.qty)
        elif e.kind == EventKind.DELEVERAGED:
            out[ref.ADL] = out.get(ref.ADL, 0) + e.qty
    return out


def test_conservation_holds_after_each_step_of_the_waterfall():
    """The deepest scene: every payment applied one at a time conserves USDC and
    keeps every payer's balance non-negative; the result is the engine's."""
    eng = scene(15 * SHARE, 100 * DOLLAR, 100 * DOLLAR, ASKS[:1])
    ev = eng.liquidate(SHORT)
    # the balances just before the first waterfall event: the plan's fills applied
    first = next(i for i, e in enumerate(ev) if e.kind in (EventKind.PENALTY_CHARGED, EventKind.LOSS_COVERED))
    plan_only = scene(15 * SHARE, 100 * DOLLAR, 100 * DOLLAR, ASKS[:1], pools=False)
    plan_ev = plan_only.liquidate(SHORT)
    assert [(e.kind, e.qty, e.price) for e in plan_ev] == [(e.kind, e.qty, e.price) for e in ev[:first]]
    before = {a: plan_only.balances(a) for a in ACCOUNTS}
    steps = walk(before, waterfall_events(ev[first:]))
    assert set(steps) == {ref.PENALTY, ref.INSURANCE, ref.MAIN, ref.ADL}


def test_the_events_match_the_reference_arithmetic():
    eng = scene(15 * SHARE, 100 * DOLLAR, 100 * DOLLAR, ASKS[:1])
    costs = {a: eng.positions(a)[0].cost for a in (LONG, LONG2)}
    assert costs == {LONG: 300 * 16 * DOLLAR // 10, LONG2: 200 * 16 * DOLLAR // 10}   # bought at $160
    ev = eng.liquidate(SHORT)
    penalty = next(e for e in ev if e.kind == EventKind.PENALTY_CHARGED)
    assert penalty.qty == ref.penalty(penalty.price, POOLS["penalty_bps"], penalty.qty)
    assert penalty.price == 2_100 * DOLLAR                  # 200 lots of 0.01 contract at $1,050
    lends = [(e.aux, e.qty) for e in ev if e.kind == EventKind.LOSS_COVERED and e.side == Side.BUY]
    sources = ref.Sources(penalty_left=penalty.qty, insurance_free=100 * DOLLAR + penalty.qty,
                          main_free=100 * DOLLAR)
    assert lends == sorted(ref.lend(10**18, sources).items())
    adl = [(e.account, e.leaves, e.qty) for e in ev if e.kind == EventKind.DELEVERAGED]
    paid = sum(q for _, _, q in adl)
    ranked = ref.rank_longs([(LONG, 300, 300 * 10 * DOLLAR, costs[LONG], eng.collateral_value(LONG))])
    assert adl == ref.deleverage(ranked, 300, paid)
    assert eng.positions(LONG) == [] and [p.position for p in eng.positions(LONG2)] == [200]


def test_without_asks_a_solvent_short_waits_and_a_bankrupt_one_is_deleveraged_at_the_mark():
    solvent = scene(30 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR, [])
    ev = solvent.liquidate(SHORT)
    assert not waterfall_events(ev)                      # nothing to buy from, and it can pay at the mark
    assert [p.position for p in solvent.positions(SHORT)] == [-500]
    bankrupt = scene(15 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR, [])
    ev = bankrupt.liquidate(SHORT)
    adl = [(e.account, e.leaves, e.qty) for e in ev if e.kind == EventKind.DELEVERAGED]
    # the pools bring the short up to the value at the mark: the longs lose nothing
    assert adl == [(LONG, 300, 300 * 1_000 * DOLLAR // 100), (LONG2, 200, 200 * 1_000 * DOLLAR // 100)]
    assert bankrupt.positions(LONG) == bankrupt.positions(LONG2) == bankrupt.positions(SHORT) == []
    bankrupt.check_integrity()


def test_a_stepwise_liquidation_closes_step_lots_per_command_until_done():
    eng = scene(38 * SHARE, 0, 0, [(100, 10_500_000), (100, 11_000_000), (300, 11_500_000)], step_lots=100)
    closed = []
    for _ in range(10):
        if [p.position for p in eng.positions(SHORT)] in ([], [0]) or not eng.under_maintenance():
            break
        ev = eng.liquidate(SHORT)
        bought = sum(e.qty for e in ev if e.kind == EventKind.FILL and e.instrument == PUT)
        assert 0 < bought <= 100
        closed.append(bought)
        eng.check_integrity()
    assert len(closed) >= 2 and all(q == 100 for q in closed[:-1])


def test_engines_without_pools_keep_their_behaviour_and_state_hash():
    plain = scene(15 * SHARE, 0, 0, ASKS[:1], pools=False)
    ev = plain.liquidate(SHORT)
    assert not waterfall_events(ev)
    assert [p.position for p in plain.positions(SHORT)] == [-300]
    assert plain.insurance_state() is None
    restored = MatchingEngine.from_snapshot(plain.snapshot())
    assert restored.state_hash() == plain.state_hash()
    assert snap.DECODER.decode(plain.snapshot()).insurance == []


def test_snapshot_and_replay_reproduce_the_waterfall():
    eng = scene(15 * SHARE, 100 * DOLLAR, 100 * DOLLAR, ASKS[:1])
    eng.liquidate(SHORT)
    restored = MatchingEngine.from_snapshot(eng.snapshot())
    assert restored.state_hash() == eng.state_hash()
    assert restored.insurance_state() == eng.insurance_state()
    restored.check_integrity()
    # the same commands on a fresh engine give the same state (determinism)
    again = scene(15 * SHARE, 100 * DOLLAR, 100 * DOLLAR, ASKS[:1])
    again.liquidate(SHORT)
    assert again.state_hash() == eng.state_hash()
    # the pools change the hash only when configured
    other = scene(15 * SHARE, 100 * DOLLAR, 100 * DOLLAR, ASKS[:1], pools=False)
    assert other.state_hash() != scene(15 * SHARE, 100 * DOLLAR, 100 * DOLLAR, ASKS[:1]).state_hash()


def test_waterfall_payments_reach_settlement_as_fills_that_net_to_the_engine():
    eng = scene(15 * SHARE, 100 * DOLLAR, 100 * DOLLAR, ASKS[:1])
    before = {a: eng.balances(a)[USDC][0] for a in ACCOUNTS}
    commands = np.zeros(1, dtype=COMMAND_DTYPE)
    commands["kind"] = CommandKind.LIQUIDATE
    commands["account"] = SHORT
    commands["seq"] = 1000
    events = eng.process(commands)
    assert set(np.unique(events["kind"])) & {EventKind.LOSS_COVERED, EventKind.DELEVERAGED}
    journaled = events[np.isin(events["kind"], sorted(JOURNALED_EVENT_KINDS))]
    fills, _ = settlement_records(journaled, UnitTable.of_specs(SPECS, DEFAULT_ASSETS))
    delta = {a: 0 for a in ACCOUNTS}
    for f in fills[fills["quote_asset"] == USDC]:
        delta[int(f["buyer"])] -= int(f["quote_amount"] + f["buyer_fee"])
        delta[int(f["seller"])] += int(f["quote_amount"] - f["seller_fee"])
        delta[FEE] += int(f["buyer_fee"] + f["seller_fee"])
    assert {a: before[a] + delta[a] for a in ACCOUNTS} == {a: eng.balances(a)[USDC][0] for a in ACCOUNTS}


def test_expiry_shortfall_is_covered_by_the_pools_before_the_longs_are_cut():
    import datetime
    expiry_ns = int(datetime.datetime(2026, 12, 18, 8, tzinfo=datetime.UTC).timestamp()) * 10**9
    results = {}
    for pools in (False, True):
        eng = scene(15 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR, [], pools=pools, bids=False)
        start = supply(eng)
        ev = eng.settle_series(PUT, 100, ts=expiry_ns)    # TSLA.M settles at $0.01: the put pays ~$250, the short has $800
        assert ev[0].kind == EventKind.SERIES_CLOSED
        assert supply(eng) == start
        eng.check_integrity()
        results[pools] = (ev[0].leaves, {a: eng.balances(a)[USDC][0] for a in (LONG, LONG2)})
    shortfall_plain, paid_plain = results[False]
    shortfall_pools, paid_pools = results[True]
    assert shortfall_plain > 0 and shortfall_pools == 0
    assert paid_pools[LONG] > paid_plain[LONG] and paid_pools[LONG2] > paid_plain[LONG2]


def test_sweep_fees_moves_the_insurance_share_once():
    eng = scene(38 * SHARE, 0, 0, ASKS)
    eng.liquidate(SHORT)                             # the put's taker fee is 3 bps
    due = eng.insurance_state().fees_due[USDC]
    assert due > 0
    before = eng.balances(INSURANCE)[USDC][0]
    ev = eng.sweep_fees(USDC)
    assert [(e.kind, e.account, e.maker_account, e.qty) for e in ev] == [
        (EventKind.FEES_SWEPT, FEE, INSURANCE, due)]
    assert eng.balances(INSURANCE)[USDC][0] == before + due
    assert [(e.kind, e.reason) for e in eng.sweep_fees(USDC)] == [(EventKind.REJECTED, Reject.NOTHING_TO_SWEEP)]


@pytest.mark.parametrize("call, reason", [
    (lambda e: e.sweep_fees(USDC), Reject.POOLS_NOT_SET),
    (lambda e: e.sweep_fees(99), Reject.POOLS_NOT_SET),
])
def test_sweep_without_pools_is_rejected(call, reason):
    eng = scene(40 * SHARE, 0, 0, [], pools=False)
    assert [(e.kind, e.reason) for e in call(eng)] == [(EventKind.REJECTED, reason)]


@pytest.mark.parametrize("asset", [-1, 6, 2**31 - 1])
def test_sweep_of_an_unknown_asset_is_rejected(asset):
    eng = scene(40 * SHARE, 0, 0, [])
    before = eng.state_hash()
    assert [(e.kind, e.reason) for e in eng.sweep_fees(asset)] == [(EventKind.REJECTED, Reject.UNKNOWN_ASSET)]
    assert eng.insurance_state().balances == scene(40 * SHARE, 0, 0, []).insurance_state().balances
    assert eng.state_hash() != before        # only the sequence number moved


@pytest.mark.parametrize("kwargs, message", [
    (dict(insurance_account=99), "insurance_account"),
    (dict(insurance_account=FEE), "insurance_account"),
    (dict(insurance_account=INSURANCE, main_account=INSURANCE), "main_account"),
    (dict(insurance_account=INSURANCE, main_account=99), "main_account"),
    (dict(insurance_account=INSURANCE, penalty_bps=10_001), "penalty_bps"),
    (dict(insurance_account=INSURANCE, penalty_share_bps=-1), "penalty_share_bps"),
    (dict(insurance_account=INSURANCE, fee_share_bps=20_000), "fee_share_bps"),
    (dict(insurance_account=INSURANCE, step_lots=-1), "step_lots"),
])
def test_bad_pool_settings_are_refused(kwargs, message):
    eng = MatchingEngine(risk=True, fee_account=FEE)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    for acct in (INSURANCE, MAIN):
        eng.open_account(acct)
    with pytest.raises(ValueError, match=message):
        eng.set_pools(**kwargs)
    assert eng.insurance_state() is None


def test_pools_are_configured_once_and_after_the_assets():
    eng = MatchingEngine(risk=True, fee_account=FEE)
    eng.add_asset(DEFAULT_ASSETS[0])
    eng.open_account(INSURANCE)
    eng.set_pools(INSURANCE)
    with pytest.raises(ValueError, match="already"):
        eng.set_pools(INSURANCE)
    with pytest.raises(ValueError, match="before the pools"):
        eng.add_asset(DEFAULT_ASSETS[1])
    with pytest.raises(ValueError, match="risk"):
        MatchingEngine().set_pools(INSURANCE)


# -- attackers ------------------------------------------------------------------------------

def test_a_bankrupt_account_keeps_nothing_the_pools_paid_for():
    """A trader who holds an asset no book can sell (AMZNX here) and goes bankrupt
    on purpose to have the insurance pool pay its loss: its unsellable holding
    goes to the insurance pool first (step OWN), so it ends with nothing."""
    eng = scene(15 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR, ASKS)
    amzn = ASSET["AMZNX"]
    eng.credit(SHORT, amzn, 5 * SHARE)      # no AMZNX price: worth nothing as collateral, unsellable
    ev = eng.liquidate(SHORT)
    own = [(e.asset, e.qty, e.maker_account) for e in ev
           if e.kind == EventKind.LOSS_COVERED and e.aux == ref.OWN]
    assert own == [(amzn, 5 * SHARE, INSURANCE)]
    assert all(total == 0 for total, _ in eng.balances(SHORT))
    assert eng.balances(INSURANCE)[amzn][0] == 5 * SHARE
    eng.check_integrity()


def test_a_self_trader_on_the_long_side_is_paid_at_most_the_mark():
    """The classic insurance-fund attack: the bankrupt short's second account
    (LONG2) holds the long side. It is deleveraged like any long and paid at
    most its contracts' value at the mark, and the pools pay exactly the short's
    value at the mark less what the short held: the gap beyond the collateral,
    no more (docs/pools.md says why margins, not the waterfall, bound it)."""
    eng = scene(15 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR, [])
    pools_before = eng.balances(INSURANCE)[USDC][0] + eng.balances(MAIN)[USDC][0]
    short_free = eng.balances(SHORT)[USDC][0]
    ev = eng.liquidate(SHORT)
    paid = {e.account: e.qty for e in ev if e.kind == EventKind.DELEVERAGED}
    assert paid[LONG2] <= 200 * 10 * DOLLAR               # 200 lots of 0.01 contract at the $1,000 mark
    pools_after = eng.balances(INSURANCE)[USDC][0] + eng.balances(MAIN)[USDC][0]
    # the pools paid exactly the short's value at the mark less what the short had
    proceeds = sum(e.qty for e in ev if e.kind == EventKind.FILL and e.instrument == SPOT) // 1_000 * 145 * DOLLAR
    assert pools_before - pools_after == 500 * 10 * DOLLAR - (short_free + proceeds)
    assert sum(paid.values()) == 500 * 10 * DOLLAR


def test_repeated_bankruptcies_cannot_take_more_than_the_pools_hold():
    """Going bankrupt again and again drains at most what the pools hold: no
    balance goes negative and the longs take the rest at the bankruptcy price."""
    eng = scene(15 * SHARE, 50 * DOLLAR, 50 * DOLLAR, [])
    start = supply(eng)
    eng.liquidate(SHORT)
    assert eng.balances(INSURANCE)[USDC][0] == 0 and eng.balances(MAIN)[USDC][0] == 0
    assert supply(eng) == start
    assert eng.liquidate(SHORT)[0].reason == Reject.NOT_UNDER_MAINTENANCE
    eng.check_integrity()


# -- property: random scenes against the reference, conservation ------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shares=st.integers(5, 60).map(lambda s: s * SHARE // 2),
       insurance=st.integers(0, 3_000).map(lambda d: d * DOLLAR),
       main=st.integers(0, 3_000).map(lambda d: d * DOLLAR),
       asks=st.lists(st.tuples(st.integers(1, 300), st.integers(8_100, 12_000).map(lambda p: p * 1_000)),
                     max_size=3),
       step_lots=st.sampled_from([0, 0, 50, 200]))
def test_random_gap_liquidations_conserve_every_asset_and_follow_the_reference(shares, insurance, main, asks,
                                                                               step_lots):
    eng = scene(shares, insurance, main, asks, step_lots=step_lots)
    start = supply(eng)
    for _ in range(4):
        if not eng.under_maintenance():
            break
        ins_before = eng.balances(INSURANCE)[USDC][0]
        main_before = eng.balances(MAIN)[USDC][0]
        ev = eng.liquidate(SHORT)
        assert supply(eng) == start
        eng.check_integrity()
        for acct in ACCOUNTS:
            assert all(total >= reserved >= 0 for total, reserved in eng.balances(acct))
        # the lenders lend in order: a later step only once the earlier are empty
        net = _net_steps(ev)
        assert net.get(ref.MAIN, 0) == main_before - eng.balances(MAIN)[USDC][0]
        assert 0 <= net.get(ref.MAIN, 0) <= main_before
        assert 0 <= net.get(ref.PENALTY, 0) + net.get(ref.INSURANCE, 0) <= ins_before + sum(
            e.qty for e in ev if e.kind == EventKind.PENALTY_CHARGED and e.account == SHORT)
        if net.get(ref.MAIN, 0):     # the main pool pays only once the insurance pool has nothing left
            assert eng.balances(INSURANCE)[USDC][0] <= sum(
                e.qty for e in ev if e.kind == EventKind.PENALTY_CHARGED and e.maker_account == INSURANCE)
        adl = [(e.account, e.leaves, e.qty) for e in ev if e.kind == EventKind.DELEVERAGED]
        if adl:
            qty = sum(k for _, k, _ in adl)
            paid = sum(q for _, _, q in adl)
            assert [(a, k) for a, k, _ in adl] == [(a, k) for a, k, _ in ref.deleverage(
                [(a, k) for a, k, _ in adl], qty, paid)]
            assert [q for _, _, q in adl] == [q for _, _, q in ref.deleverage([(a, k) for a, k, _ in adl], qty, paid)]
    restored = MatchingEngine.from_snapshot(eng.snapshot())
    assert restored.state_hash() == eng.state_hash()


# -- funding a liquidated long still owes -------------------------------------------------

def test_funding_a_liquidated_long_cannot_pay_is_lent_by_the_pools():
    from engine.defaults import perpetual_series
    from engine.units import NS_PER_S

    hour = 3_600 * NS_PER_S
    call = perpetual_series("WBTC", "BTC", "100000", "C", 3 * 86_400)
    wbtc = ASSET["WBTC"]
    carries = {}
    for pools in (False, True):
        eng = MatchingEngine(risk=True, fee_account=FEE)
        for spec in DEFAULT_ASSETS:
            eng.add_asset(spec)
        eng.add_instrument(call)
        for acct in ACCOUNTS[1:]:
            eng.open_account(acct)
        if pools:
            eng.set_pools(INSURANCE, MAIN, **POOLS)
            eng.credit(INSURANCE, USDC, 100 * DOLLAR)
        for asset, price in ((USDC, USD), (TSLA, 250 * USD), (wbtc, 90_000 * USD)):
            eng.set_asset_price(asset, price)
        eng.set_reference_price(0, 20_000_000)
        eng.set_option_risk(0, 200 * USD, 150 * USD)
        for acct in (LONG, MAKER):
            eng.credit(acct, USDC, 10**12)
        eng.credit(SHORT, TSLA, 200 * SHARE)
        eng.credit(SHORT, USDC, 20_006_000)
        eng.new_order(0, SHORT, Side.BUY, 1, 20_000_000, ts=0)       # SHORT is the long here
        eng.new_order(0, LONG, Side.SELL, 1, 20_000_000, ts=0)
        eng.fund(0, 20_000_000, 0, ts=0)
        eng.fund(0, 20_000_000, 0, ts=72 * hour)                       # ~$20 owed, nothing free to pay it
        eng.set_asset_price(TSLA, USD)
        eng.new_order(0, MAKER, Side.BUY, 1, 18_000_000)               # the sale raises $18
        start = supply(eng)
        ev = eng.liquidate(SHORT, ts=72 * hour)
        assert supply(eng) == start
        eng.check_integrity()
        assert eng.positions(SHORT) == []
        carries[pools] = (eng.funding_position(SHORT, 0)[1],
                          [(e.aux, e.qty) for e in ev if e.kind == EventKind.LOSS_COVERED])
    assert carries[False][0] > 0 and carries[False][1] == []
    carry, covered = carries[True]
    assert carry <= 0
    assert [step for step, _ in covered] == [ref.OWN, ref.PENALTY, ref.INSURANCE]   # its TSLA.M, then the loans


# -- state machine: gaps, books, pools and liquidations against the reference -------------

class WaterfallMachine(RuleBasedStateMachine):
    """Random gaps of TSLA.M and of the put's mark, asks, pool deposits, fee
    sweeps and liquidations (stepwise or not): after every step no balance is
    negative, every asset's supply is what the credits made it, the integrity
    check holds, and each liquidation's payments follow the reference
    arithmetic (lenders in order and within what they held, deleveraging split)."""

    @initialize(shares=st.integers(10, 60), step_lots=st.sampled_from([0, 100, 250]))
    def start(self, shares, step_lots):
        self.eng = scene(shares * SHARE // 2, 200 * DOLLAR, 200 * DOLLAR, [], step_lots=step_lots)
        self.supply = supply(self.eng)
        self.held = ref.HeldPenalties()

    def follow(self, ev):
        """The command's penalty events follow the reference's held penalties."""
        check_liquidation_end(self.eng, self.held, SHORT, ev, follow_penalties(self.held, ev))

    @rule(tsla=st.integers(80, 200), mark=st.integers(50, 150))
    def gap(self, tsla, mark):
        self.follow(self.eng.set_asset_price(TSLA, tsla * USD))
        self.follow(self.eng.set_reference_price(PUT, mark * 100_000))

    @rule(qty=st.integers(1, 300), edge=st.integers(0, 100))
    def ask(self, qty, edge):
        _, reference, _ = self.eng.instrument_state(PUT)
        price = reference + reference * edge // 500 // 100 * 100
        self.eng.new_order(PUT, MAKER, Side.SELL, qty, price)

    @rule(account=st.sampled_from([INSURANCE, MAIN, SHORT]), dollars=st.integers(1, 500))
    def deposit(self, account, dollars):
        self.follow(self.eng.credit(account, USDC, dollars * DOLLAR))
        self.supply[USDC] += dollars * DOLLAR

    @rule(price=st.integers(100, 2_600_000))
    def expire(self, price):
        """The put expires and settles at ``price`` (TSLA.M): a short that cannot
        pay draws its held penalty before the pools (the liquidation, if any, ends
        with its last position)."""
        start = supply(self.eng)
        ev = self.eng.settle_series(PUT, price, ts=EXPIRY_NS)
        self.follow(ev)
        assert supply(self.eng) == start

    @rule()
    def sweep(self):
        due = self.eng.insurance_state().fees_due[USDC]
        ev = self.eng.sweep_fees(USDC)
        assert (ev[0].kind == EventKind.FEES_SWEPT) == (due > 0)
        self.follow(ev)

    @rule()
    def liquidate(self):
        ins_before = self.eng.balances(INSURANCE)[USDC][0]
        main_before = self.eng.balances(MAIN)[USDC][0]
        held_before = self.held.left(SHORT, USDC)
        ev = self.eng.liquidate(SHORT)
        self.follow(ev)
        if ev[0].kind == EventKind.REJECTED:
            assert ev[0].reason == Reject.NOT_UNDER_MAINTENANCE
            return
        net = _net_steps(ev)
        charged = sum(e.qty for e in ev if e.kind == EventKind.PENALTY_CHARGED and e.account == SHORT)
        assert 0 <= net.get(ref.MAIN, 0) <= main_before
        assert 0 <= net.get(ref.PENALTY, 0) + net.get(ref.INSURANCE, 0) <= ins_before + charged
        assert net.get(ref.PENALTY, 0) <= held_before + charged   # every step's penalty so far
        adl = [(e.account, e.leaves, e.qty) for e in ev if e.kind == EventKind.DELEVERAGED]
        if adl:
            ranked = [(a, k) for a, k, _ in adl]
            assert adl == ref.deleverage(ranked, sum(k for _, k in ranked), sum(q for _, _, q in adl))
            # the short is closed at a price no better for the longs than the mark
            mark = self.eng.instrument_state(PUT)[1]          # price units ($0.0001) a contract; a lot is 0.01
            assert sum(q for _, _, q in adl) <= sum(k for _, k in ranked) * mark * DOLLAR // 10**6

    @invariant()
    def conserved_and_never_negative(self):
        assert supply(self.eng) == self.supply
        for acct in ACCOUNTS:
            assert all(total >= reserved >= 0 for total, reserved in self.eng.balances(acct))
        self.eng.check_integrity()


WaterfallMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=12, deadline=None)
test_waterfall_state_machine = WaterfallMachine.TestCase


def test_a_version_4_snapshot_still_restores_with_costs_at_the_mark():
    """A snapshot older than version 6 kept no cost basis: each position's cost
    is its value at the mark when it loads; everything else restores as it was."""
    eng = scene(15 * SHARE, 0, 0, ASKS[:1], pools=False)
    eng.liquidate(SHORT)
    decoded = snap.DECODER.decode(eng.snapshot())
    assert decoded.costs
    restored = MatchingEngine.from_snapshot(snap.ENCODER.encode(msgspec.structs.replace(decoded, version=4)))
    for acct in ACCOUNTS:
        assert ([msgspec.structs.replace(p, cost=0) for p in restored.positions(acct)]
                == [msgspec.structs.replace(p, cost=0) for p in eng.positions(acct)])
        # the put's mark is $1,000 a contract: $10 a quantity unit (0.01 contract)
        assert [p.cost for p in restored.positions(acct)] == [p.position * 10 * DOLLAR
                                                              for p in restored.positions(acct)]
    again = snap.DECODER.decode(restored.snapshot())
    assert msgspec.structs.replace(again, costs=b"") == msgspec.structs.replace(decoded, costs=b"")
    restored.check_integrity()


def test_a_corrupt_insurance_section_is_refused():
    eng = scene(15 * SHARE, 100 * DOLLAR, 100 * DOLLAR, ASKS[:1])
    eng.liquidate(SHORT)
    good = snap.DECODER.decode(eng.snapshot())
    for bad in ([[INSURANCE]], [[99, MAIN, 0, 0, 0, 0], [], [], []], [good.insurance[0], [1], [], []],
                [*good.insurance[:3], [[9, USDC, 1]]]):
        with pytest.raises(ValueError):
            MatchingEngine.from_snapshot(snap.ENCODER.encode(msgspec.structs.replace(good, insurance=bad)))


def test_deleveraging_a_perpetual_series_settles_funding_first():
    """The put as a perpetual series: the deleveraged longs and the bankrupt short
    settle their funding at this command's index before their positions move, so
    the funding pool still balances (check_integrity) and open interest follows."""
    from engine.defaults import perpetual_series
    from engine.units import NS_PER_S

    perp = perpetual_series("TSLA.M", "TSLA.M", "250", "P", 86_400)
    specs = tuple(perp if s.symbol == "TSLA.M-20261218-250-P" else s for s in SPECS)
    eng = scene(15 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR, [], specs=specs)
    eng.fund(PUT, MARK, 0, ts=0)
    start = supply(eng)
    ev = eng.liquidate(SHORT, ts=3_600 * NS_PER_S)
    assert {e.account for e in ev if e.kind == EventKind.FUNDING_SETTLED} >= {LONG, LONG2}
    assert [e.account for e in ev if e.kind == EventKind.DELEVERAGED] == [LONG, LONG2]
    assert eng.positions(SHORT) == eng.positions(LONG) == eng.positions(LONG2) == []
    assert eng.funding_state(PUT).open_interest == 0
    assert supply(eng) == start
    eng.check_integrity()


def test_a_frozen_long_is_not_deleveraged_and_the_pools_pay_only_for_what_closes():
    """LONG2's wallet asked to exit (frozen): only LONG's 300 close, the pools pay
    only their value at the mark, and nothing lent stays with the bankrupt short."""
    eng = scene(15 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR, [])
    assert eng.freeze_account(LONG2)[0].kind == EventKind.ACCOUNT_FROZEN
    start = supply(eng)
    ev = eng.liquidate(SHORT)
    assert [(e.account, e.leaves, e.qty) for e in ev if e.kind == EventKind.DELEVERAGED] == [
        (LONG, 300, 300 * 10 * DOLLAR)]
    assert [p.position for p in eng.positions(SHORT)] == [-200]
    assert [p.position for p in eng.positions(LONG2)] == [200]
    assert eng.balances(SHORT)[USDC][0] == 0
    assert supply(eng) == start
    eng.check_integrity()



def profit_scene():
    """LONG buys 300 puts at $160 with $2,000 and LONG2 200 at $900 with $2,000,
    both from SHORT (15 TSLA.M); then TSLA.M gaps to $150 and the put's mark to
    $1,000: LONG's profit is 525% with little leverage, LONG2's 11% with ten
    times as much."""
    eng = MatchingEngine(risk=True, fee_account=FEE)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    for spec in SPECS:
        eng.add_instrument(spec)
    for acct in ACCOUNTS[1:]:
        eng.open_account(acct)
    eng.set_pools(INSURANCE, MAIN, **POOLS)
    eng.credit(INSURANCE, USDC, 1_000 * DOLLAR)
    eng.credit(MAIN, USDC, 10_000 * DOLLAR)
    eng.set_asset_price(USDC, USD)
    eng.set_asset_price(TSLA, 250 * USD)
    eng.set_reference_price(SPOT, 2_500_000)
    eng.set_bands(PUT, 2_000, 0)
    eng.set_option_risk(PUT, 4 * USD, 3 * USD)
    eng.credit(SHORT, TSLA, 15 * SHARE)
    eng.credit(LONG, USDC, 2_000 * DOLLAR)
    eng.credit(LONG2, USDC, 2_000 * DOLLAR)
    eng.set_reference_price(PUT, 1_600_000)
    eng.new_order(PUT, SHORT, Side.SELL, 300, 1_600_000)
    eng.new_order(PUT, LONG, Side.BUY, 300, 1_600_000)
    eng.set_reference_price(PUT, 9_000_000)
    eng.new_order(PUT, SHORT, Side.SELL, 200, 9_000_000)
    eng.new_order(PUT, LONG2, Side.BUY, 200, 9_000_000)
    assert [p.position for p in eng.positions(SHORT)] == [-500]
    eng.set_asset_price(TSLA, 150 * USD)
    eng.set_reference_price(SPOT, 1_500_000)
    eng.set_reference_price(PUT, MARK)
    eng.set_option_risk(PUT, 12 * USD, 10 * USD)
    return eng


def test_adl_closes_the_more_profitable_long_before_the_more_leveraged_one():
    """Ranked by profit and leverage, LONG is closed first; ranked by leverage
    only (the rule before cost bases) it was LONG2 (checked: this test fails on
    the old build with [LONG2, LONG])."""
    eng = profit_scene()
    start = supply(eng)
    ev = eng.liquidate(SHORT)
    assert [(e.account, e.leaves) for e in ev if e.kind == EventKind.DELEVERAGED] == [(LONG, 300), (LONG2, 200)]
    assert supply(eng) == start
    eng.check_integrity()
    assert eng.positions(LONG) == eng.positions(LONG2) == eng.positions(SHORT) == []


def test_the_adl_ranking_follows_the_reference_and_differs_from_leverage_only():
    """The engine's own figures (value at the mark, cost basis, collateral) in
    the reference ranking give the order above; leverage alone the other."""
    eng = profit_scene()
    longs = [(a, p.position, p.position * 10 * DOLLAR, p.cost, eng.collateral_value(a))
             for a in (LONG2, LONG) for p in eng.positions(a)]
    assert [row[3] for row in longs] == [1_800 * DOLLAR, 480 * DOLLAR]
    assert ref.rank_longs(longs) == [(LONG, 300), (LONG2, 200)]
    leverage_only = sorted(longs, key=lambda row: -(row[2] * 10_000 // (row[4] + 1)))
    assert [row[0] for row in leverage_only] == [LONG2, LONG]
    # a long at a loss ranks after every profitable one; among losers the more leveraged first
    losers = [(5, 100, 100, 200, 1_000), (6, 100, 100, 200, 10)]
    assert ref.rank_longs(longs + losers) == [(LONG, 300), (LONG2, 200), (6, 100), (5, 100)]
