"""The liquidation penalty held across the steps of a stepwise liquidation
(engine/core/waterfall.pyx `held`, losses.pyx `_end_liquidations`; docs/pools.md,
"Stepwise liquidation"): a TSLA.M gap liquidated 100 lots at a time, whose last
step finds the account bankrupt, draws every earlier step's penalty back before
the insurance pool pays anything, with every asset conserved after each payment;
the steps against the reference (engine/reference/waterfall.py HeldPenalties);
what ends a liquidation; snapshots and replay in the middle of one; bad snapshot
sections; and the attacker who deposits between steps to end it early."""

import msgspec
import numpy as np
import pytest
from test_waterfall import (ACCOUNTS, DOLLAR, EXPIRY_NS, FEE, INSURANCE, LONG, MAIN, POOLS, PUT, SHARE, SHORT,
                            SPECS, SPOT, TSLA, USD, USDC, check_liquidation_end, follow_penalties, scene, supply)

from engine.core import snapshot as snap
from engine.core.matcher import MatchingEngine
from engine.core.records import COMMAND_DTYPE, JOURNALED_EVENT_KINDS
from engine.core.types import CommandKind, EventKind, Reject, Side
from engine.defaults import DEFAULT_ASSETS
from engine.reference import waterfall as ref
from engine.schemas_insurance import HeldPenalty, insurance_reply
from settlement.records import UnitTable, settlement_records

# Five steps of 100 lots: four the account can pay for, the fifth finds it bankrupt.
STEP_ASKS = [(100, 10_500_000), (100, 11_000_000), (300, 11_500_000)]
UNITS = UnitTable.of_specs(SPECS, DEFAULT_ASSETS)


def stepwise(shares=30 * SHARE, insurance=1_000 * DOLLAR, main=10_000 * DOLLAR, asks=STEP_ASKS):
    return scene(shares, insurance, main, asks, step_lots=100)


def liquidate(eng):
    """One LIQUIDATE of SHORT through the batch API: the command's events as records."""
    commands = np.zeros(1, dtype=COMMAND_DTYPE)
    commands["kind"] = CommandKind.LIQUIDATE
    commands["account"] = SHORT
    return eng.process(commands).view(np.recarray)


def totals(eng):
    return {a: [total for total, _ in eng.balances(a)] for a in ACCOUNTS}


def check_each_payment(before, events, eng):
    """Apply the command's settlement fills (its trades and every waterfall payment,
    in event order) one at a time to the balances ``before`` it: after each one no
    balance is negative and every asset's supply is unchanged; the end is the engine's."""
    events = np.asarray(events)
    fills, _ = settlement_records(events[np.isin(events["kind"], sorted(JOURNALED_EVENT_KINDS))], UNITS)
    balances = {a: list(rows) for a, rows in before.items()}
    start = [sum(b[asset] for b in balances.values()) for asset in range(len(DEFAULT_ASSETS))]
    for f in fills:
        buyer, seller, quote = int(f["buyer"]), int(f["seller"]), int(f["quote_asset"])
        balances[buyer][quote] -= int(f["quote_amount"] + f["buyer_fee"])
        balances[seller][quote] += int(f["quote_amount"] - f["seller_fee"])
        balances[FEE][quote] += int(f["buyer_fee"] + f["seller_fee"])
        if f["base_amount"]:
            balances[buyer][int(f["base_asset"])] += int(f["base_amount"])
            balances[seller][int(f["base_asset"])] -= int(f["base_amount"])
        assert all(v >= 0 for b in balances.values() for v in b), f
        assert [sum(b[asset] for b in balances.values()) for asset in range(len(DEFAULT_ASSETS))] == start
    assert balances == totals(eng)


def run_to_the_end(eng, held=None):
    """LIQUIDATE SHORT until refused; each step's events (the payments checked one at a
    time, and against the reference's held penalties when ``held`` is given)."""
    steps = []
    for _ in range(10):
        before = totals(eng)
        ev = liquidate(eng)
        if ev[0].kind == EventKind.REJECTED:
            assert ev[0].reason == Reject.NOT_UNDER_MAINTENANCE
            return steps
        check_each_payment(before, ev, eng)
        eng.check_integrity()
        if held is not None:
            check_liquidation_end(eng, held, SHORT, ev, follow_penalties(held, ev))
        steps.append(ev)
    raise AssertionError("the liquidation did not end in 10 steps")


def charged_by(ev):
    return sum(int(e.qty) for e in ev if e.kind == EventKind.PENALTY_CHARGED and e.account == SHORT)


def lends(ev):
    return [(int(e.aux), int(e.qty)) for e in ev if e.kind == EventKind.LOSS_COVERED and e.side == Side.BUY
            and e.aux != ref.OWN]


def paid_to_fee(ev):
    return sum(int(e.qty) for e in ev if e.kind == EventKind.PENALTY_CHARGED and e.maker_account == FEE)


# -- the rule ------------------------------------------------------------------------------

def test_a_gap_liquidated_in_steps_draws_every_steps_penalty_back_before_the_insurance_pool_pays():
    """TSLA.M gaps, the short put is liquidated 100 lots a step; four steps charge
    a penalty each, the fifth finds the account bankrupt at the band edge. The
    penalty step lends back all five steps' penalty before the insurance pool lends
    anything, and no part of it has gone to the fee account. (Before the penalty was
    held, only the fifth step's penalty was drawn back: four steps' penalty had
    gone to the insurance pool and the fee account, and the insurance pool paid for
    the account's loss in its place.)"""
    eng = stepwise()
    start = supply(eng)
    ins_total = eng.balances(INSURANCE)[USDC][0]
    main_free = eng.balances(MAIN)[USDC][0]
    steps = run_to_the_end(eng)
    assert supply(eng) == start and eng.positions(SHORT) == []
    *solvent, bankrupt = steps
    assert len(solvent) == 4 and all(charged_by(ev) > 0 and not lends(ev) for ev in solvent)
    charged = sum(charged_by(ev) for ev in steps)
    assert sum(paid_to_fee(ev) for ev in steps) == 0           # all of it was drawn back
    assert lends(bankrupt)[0] == (ref.PENALTY, charged)
    assert [step for step, _ in lends(bankrupt)] == [ref.PENALTY, ref.INSURANCE]
    # the reference's lending order: the penalty held, then the insurance pool's own money
    sources = ref.Sources(penalty_left=charged, insurance_free=ins_total + charged, main_free=main_free)
    assert lends(bankrupt) == sorted(ref.lend(sum(q for _, q in lends(bankrupt)), sources).items())


@pytest.mark.parametrize("shares, insurance, main", [
    (30 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR),      # the last step bankrupt: penalty, insurance
    (32 * SHARE, 20 * DOLLAR, 10_000 * DOLLAR),         # penalty, insurance, main pool
    (20 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR),      # an earlier step bankrupt
    (34 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR),      # solvent to the end: the fee share paid at the end
    (36 * SHARE, 1_000 * DOLLAR, 10_000 * DOLLAR),      # healthy again before the last lot
])
def test_every_step_follows_the_reference_held_penalties(shares, insurance, main):
    held = ref.HeldPenalties()
    eng = stepwise(shares, insurance, main)
    start = supply(eng)
    steps = run_to_the_end(eng, held)
    assert steps and supply(eng) == start
    assert held.rows() == [] and eng.insurance_state().penalties_held == []
    # what the fee account was paid, at the liquidation's end only, is the reference's share of what was left
    assert all(paid_to_fee(ev) == 0 for ev in steps[:-1])


def test_the_penalty_held_is_reserved_in_the_insurance_pool_and_shown():
    eng = stepwise()
    first = liquidate(eng)
    second = liquidate(eng)
    held = charged_by(first) + charged_by(second)
    state = eng.insurance_state()
    assert state.penalties_held == [(SHORT, USDC, held)]
    total, reserved = eng.balances(INSURANCE)[USDC]
    assert reserved == held and total == 1_000 * DOLLAR + held
    reply = insurance_reply(7, state)
    assert reply.penalties_held == [HeldPenalty(USDC, held)]
    assert reply.balances[USDC].reserved == held
    # the insurance pool cannot spend it: a withdrawal of everything is refused, of the rest accepted
    assert eng.debit(INSURANCE, USDC, total)[0].kind == EventKind.REJECTED
    assert eng.debit(INSURANCE, USDC, total - held)[0].kind == EventKind.DEBITED
    assert eng.insurance_state().penalties_held == [(SHORT, USDC, held)]
    eng.check_integrity()


def test_an_expired_short_in_liquidation_draws_its_held_penalty_before_the_insurance_pool():
    """After one step the short's book is gone (no bids for its TSLA.M): the put
    expires and the short cannot pay its settlement; the penalty held for its
    liquidation is lent first, then the insurance pool's money."""
    eng = stepwise()
    step = liquidate(eng)
    assert eng.insurance_state().penalties_held == [(SHORT, USDC, charged_by(step))]
    eng.mass_cancel(LONG, SPOT)
    start = supply(eng)
    ev = eng.settle_series(PUT, 100, ts=EXPIRY_NS)      # TSLA.M settles at $0.01
    assert supply(eng) == start
    assert lends(ev)[:2] == [(ref.PENALTY, charged_by(step)), (ref.INSURANCE, lends(ev)[1][1])]
    assert eng.insurance_state().penalties_held == []          # its last position closed: the liquidation ended
    eng.check_integrity()


# -- what ends a liquidation ---------------------------------------------------------------

def test_a_price_move_that_makes_the_account_healthy_ends_its_liquidation():
    eng = stepwise()
    p1 = charged_by(liquidate(eng))
    ev = eng.set_asset_price(TSLA, 250 * USD)                  # TSLA.M back: the account is healthy
    assert [(e.kind, e.account, e.maker_account, e.qty) for e in ev[1:]] == [
        (EventKind.PENALTY_CHARGED, INSURANCE, FEE, ref.penalty_fee_part(p1, POOLS["penalty_share_bps"]))]
    assert eng.insurance_state().penalties_held == [] and eng.balances(INSURANCE)[USDC][1] == 0
    eng.check_integrity()


def test_a_frozen_account_ends_its_liquidation():
    """No step may run on a frozen account (LIQUIDATE refuses it): its liquidation ends."""
    eng = stepwise()
    p1 = charged_by(liquidate(eng))
    ev = eng.freeze_account(SHORT)
    assert ev[0].kind == EventKind.ACCOUNT_FROZEN
    assert [(e.kind, e.qty) for e in ev if e.kind == EventKind.PENALTY_CHARGED] == [
        (EventKind.PENALTY_CHARGED, ref.penalty_fee_part(p1, POOLS["penalty_share_bps"]))]
    assert eng.insurance_state().penalties_held == []


def test_commands_that_leave_the_account_under_maintenance_do_not_end_its_liquidation():
    eng = stepwise()
    p1 = charged_by(liquidate(eng))
    for ev in (eng.set_asset_price(TSLA, 151 * USD), eng.set_asset_price(99, USD),
               eng.new_order(SPOT, LONG, Side.BUY, 1_000, 1_400_000), eng.sweep_fees(USDC)):
        assert not [e for e in ev if e.kind == EventKind.PENALTY_CHARGED]
        assert eng.insurance_state().penalties_held == [(SHORT, USDC, p1)]
    assert [a for a, _ in eng.under_maintenance()] == [SHORT]


# -- snapshots, replay, the state hash --------------------------------------------------------

def test_snapshot_and_replay_in_the_middle_of_a_liquidation():
    eng = stepwise()
    done = [liquidate(eng), liquidate(eng)]
    data = eng.snapshot()
    decoded = snap.DECODER.decode(data)
    held = sum(charged_by(ev) for ev in done)
    assert decoded.version == 6 and decoded.penalties_held == [(SHORT, USDC, held)]
    restored = MatchingEngine.from_snapshot(data)
    assert restored.state_hash() == eng.state_hash()
    assert restored.insurance_state() == eng.insurance_state()
    restored.check_integrity()
    # both go on to the bankrupt step and the end alike
    rest = run_to_the_end(eng)
    again = run_to_the_end(restored)
    assert [ev.tolist() for ev in again] == [ev.tolist() for ev in rest]
    assert restored.state_hash() == eng.state_hash()
    assert lends(rest[-1])[0] == (ref.PENALTY, held + sum(charged_by(ev) for ev in rest))
    # replay: the same commands on a fresh engine give the same events and state
    replayed = stepwise()
    assert [ev.tolist() for ev in run_to_the_end(replayed)] == [ev.tolist() for ev in done + rest]
    assert replayed.state_hash() == eng.state_hash()


def test_the_held_penalty_is_hashed_and_snapshotted_only_while_held():
    eng = stepwise()
    quiet = stepwise()
    assert snap.DECODER.decode(quiet.snapshot()).penalties_held == []
    liquidate(eng)
    hashed = eng.state_hash()
    without = snap.ENCODER.encode(msgspec.structs.replace(snap.DECODER.decode(eng.snapshot()), penalties_held=[]))
    with pytest.raises(ValueError, match="reserved"):
        MatchingEngine.from_snapshot(without)        # the insurance pool's reserved balance says a penalty is held
    assert MatchingEngine.from_snapshot(eng.snapshot()).state_hash() == hashed
    # a version-5 snapshot (no section) of an engine holding nothing restores to the same state; its
    # positions kept no cost bases (they load at the mark: docs/pools.md, "Cost basis"), so costs aside
    old = snap.ENCODER.encode(msgspec.structs.replace(snap.DECODER.decode(quiet.snapshot()), version=5))
    restored = snap.DECODER.decode(MatchingEngine.from_snapshot(old).snapshot())
    assert msgspec.structs.replace(restored, costs=b"") == msgspec.structs.replace(
        snap.DECODER.decode(quiet.snapshot()), costs=b"")


def test_a_bad_penalties_held_section_is_refused():
    eng = stepwise()
    liquidate(eng)
    good = snap.DECODER.decode(eng.snapshot())
    (row,) = good.penalties_held
    for bad in ([(99, USDC, row[2])], [(SHORT, 99, row[2])], [(SHORT, USDC, 0)], [(SHORT, USDC, -row[2])],
                [(SHORT, USDC, row[2] - 1)], [row, row], [(SHORT, USDC, row[2], 1)]):
        with pytest.raises(ValueError):
            MatchingEngine.from_snapshot(snap.ENCODER.encode(msgspec.structs.replace(good, penalties_held=bad)))
    no_pools = snap.DECODER.decode(stepwise().snapshot())
    with pytest.raises(ValueError, match="insurance pool"):
        MatchingEngine.from_snapshot(snap.ENCODER.encode(msgspec.structs.replace(
            no_pools, insurance=[], penalties_held=[row])))


# -- attackers ------------------------------------------------------------------------------

def test_a_tiny_deposit_between_steps_does_not_end_the_liquidation():
    """The account deposits $1 between steps, hoping to end its liquidation so that
    the penalty held is paid out (the fee account's share) and the insurance pool
    pays its loss in its place. The deposit leaves it under its maintenance margin:
    the liquidation goes on, and the bankrupt step draws every step's penalty back
    first. (Before the penalty was held this fails: the bankrupt step drew back its
    own step's penalty only.)"""
    eng = stepwise()
    start = supply(eng)
    first = liquidate(eng)
    ev = eng.credit(SHORT, USDC, DOLLAR)
    assert [e.kind for e in ev] == [EventKind.CREDITED]
    assert [a for a, _ in eng.under_maintenance()] == [SHORT]
    steps = [first, *run_to_the_end(eng)]
    charged = sum(charged_by(s) for s in steps)
    assert lends(steps[-1])[0] == (ref.PENALTY, charged)
    assert sum(paid_to_fee(s) for s in steps) == 0
    start[USDC] += DOLLAR
    assert supply(eng) == start


def test_a_deposit_that_cures_the_account_ends_its_liquidation_and_cannot_be_taken_back():
    """A deposit ends the liquidation only when it lifts the account to its
    maintenance margin: it is then solvent with margin again, the fee account's
    share of the penalty is paid and the rest is the insurance pool's. The deposit
    cannot be withdrawn again to resume at the old state (the withdrawal would leave
    the account short of margin), so ending a liquidation costs the account more
    than the shortfall it covers; and what it moves goes to the fee account, never
    to the account. A later liquidation holds its own penalty from its first step."""
    eng = stepwise()
    p1 = charged_by(liquidate(eng))
    margin = eng.margin(SHORT)
    cure = -(-(margin.maintenance - margin.collateral) // 100)   # USD x 1e8 -> USDC units (USDC at $1, no haircut)
    assert [e.kind for e in eng.credit(SHORT, USDC, cure - 1)] == [EventKind.CREDITED]   # one unit short
    assert eng.insurance_state().penalties_held == [(SHORT, USDC, p1)]
    before = totals(eng)
    before[SHORT][USDC] += 1               # the deposit itself comes from the vault, not from a fill
    ev = eng.process(_credit_command(SHORT, USDC, 1)).view(np.recarray)
    check_each_payment(before, ev, eng)
    assert [(e.kind, e.account, e.maker_account, e.qty) for e in ev] == [
        (EventKind.CREDITED, SHORT, 0, 1),
        (EventKind.PENALTY_CHARGED, INSURANCE, FEE, ref.penalty_fee_part(p1, POOLS["penalty_share_bps"]))]
    assert eng.insurance_state().penalties_held == [] and not eng.under_maintenance()
    assert eng.debit(SHORT, USDC, DOLLAR)[0].reason == Reject.INSUFFICIENT_MARGIN
    # a further gap: a new liquidation, whose penalty is held from its own first step
    eng.set_asset_price(TSLA, 120 * USD)
    p2 = charged_by(liquidate(eng))
    assert p2 > 0 and eng.insurance_state().penalties_held == [(SHORT, USDC, p2)]
    eng.check_integrity()


def _credit_command(account, asset, qty):
    commands = np.zeros(1, dtype=COMMAND_DTYPE)
    commands["kind"] = CommandKind.CREDIT
    commands["account"] = account
    commands["asset"] = asset
    commands["qty"] = qty
    return commands


def test_a_venue_defined_before_keeps_its_rule_so_its_journal_replays():
    """hold_penalty=False (a genesis written before penalties were held): every
    command's penalty is released at its end, as the journal recorded it; the
    bankrupt step draws back only its own penalty. A version-5 snapshot is of such
    a venue (its engine held no penalty across steps) and restores with its rule."""
    legacy = MatchingEngine.from_snapshot(_legacy_snapshot(stepwise()))
    steps = run_to_the_end(legacy)
    *solvent, bankrupt = steps
    assert all(paid_to_fee(ev) == ref.penalty_fee_part(charged_by(ev), POOLS["penalty_share_bps"])
               for ev in solvent)
    assert lends(bankrupt)[0] == (ref.PENALTY, charged_by(bankrupt))
    assert legacy.insurance_state().penalties_held == []


def _legacy_snapshot(eng):
    """The engine's snapshot as a version-5 one (six insurance settings: no penalty held across steps)."""
    decoded = snap.DECODER.decode(eng.snapshot())
    settings, *rest = decoded.insurance
    return snap.ENCODER.encode(msgspec.structs.replace(decoded, version=5, insurance=[settings[:6], *rest]))
