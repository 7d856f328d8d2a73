"""Deposit requests of the main pool (engine/core/pool_api.pyx, docs/pools.md): a
deposit reserves its amount at once and mints only after the deposit cooldown, at
the NAV then; the reservation cannot be withdrawn, traded or used as margin; one
pending request per account; cancels by the owner only, and not once the request
is due and executable; a freeze or a liquidation releases it; snapshots keep the
requests; and the attack the cooldown stops: a deposit right before a mark jump
the depositor knows is coming."""

import msgspec
import pytest
from test_pool import (ASSET, COOLDOWN, DATED, POOL, REFERENCE, SHARE, USD, USDC, kinds, make_engine, reason, redeem,
                       shares_of, trade)

from engine.core import snapshot as snap
from engine.core.matcher import MatchingEngine
from engine.core.types import EventKind, Reject, Side
from engine.reference import pool as ref
from engine.units import NS_PER_S

DEPOSIT_COOLDOWN = 600 * NS_PER_S
SMALL = 5                  # an account with 30,000 USDC only, opened by the tests that need it


def request(eng, acct, amount, ts):
    """Request a deposit; its id (the request must be accepted)."""
    [ev] = eng.pool_deposit(acct, SHARE, amount, ts=ts)
    assert ev.kind == EventKind.POOL_DEPOSIT_REQUESTED, ev
    return ev.order_id


def free(eng, acct, asset=USDC):
    total, reserved = eng.balances(acct)[asset]
    return total - reserved


def seeded(deposit_cooldown=DEPOSIT_COOLDOWN, **terms):
    """An engine whose pool provider 1 seeded with $100,000 (request at ts 1, executed when due)."""
    eng = make_engine(deposit_cooldown=deposit_cooldown, **terms)
    rid = request(eng, 1, 100_000 * 10**6, ts=1)
    assert kinds(eng.pool_redeem(1, SHARE, 0, rid, ts=1 + deposit_cooldown)) == [EventKind.POOL_PAID] * 2
    return eng


def test_a_deposit_reserves_at_once_and_mints_only_after_the_cooldown_at_the_nav_then():
    eng = seeded()
    t0 = 10 * DEPOSIT_COOLDOWN
    before = eng.balances(2)[USDC]
    [ev] = eng.pool_deposit(2, SHARE, 30_000 * 10**6, ts=t0)
    assert (ev.kind, ev.account, ev.maker_account, ev.asset, ev.qty, ev.leaves) == (
        EventKind.POOL_DEPOSIT_REQUESTED, 2, POOL, USDC, 30_000 * 10**6, 30_000 * 10**6)
    rid = ev.order_id
    assert eng.balances(2)[USDC] == (before[0], before[1] + 30_000 * 10**6)      # reserved, still its own
    assert shares_of(eng, 2) == 0
    assert eng.pool_info().deposits == ((rid, 2, 30_000 * 10**6, t0 + DEPOSIT_COOLDOWN),)
    assert reason(eng.pool_redeem(2, SHARE, 0, rid, ts=t0 + DEPOSIT_COOLDOWN - 1)) == Reject.POOL_COOLDOWN
    eng.check_integrity()
    # The pool's equity changes meanwhile (a pool asset credit stands for any gain): the deposit pays the NAV then.
    eng.credit(POOL, USDC, 20_000 * 10**6, ts=t0 + 1)
    info = eng.pool_info()
    pps = ref.deposit_pps(info.equity, info.shares, [])
    assert pps == info.deposit_pps == 12 * 10**11                                   # $1.2 per share unit
    paid = eng.pool_redeem(2, SHARE, 0, rid, ts=t0 + DEPOSIT_COOLDOWN)
    minted = ref.deposit_shares(30_000 * 10**6, pps)
    assert [(e.kind, e.account, e.asset, e.qty, e.price, e.order_id) for e in paid] == [
        (EventKind.POOL_PAID, 2, USDC, 30_000 * 10**6, pps, rid), (EventKind.POOL_PAID, 2, SHARE, -minted, pps, rid)]
    assert eng.balances(2)[USDC] == (before[0] - 30_000 * 10**6, before[1])
    assert shares_of(eng, 2) == minted == 25_000 * 10**6
    assert eng.pool_info().deposits == ()
    assert reason(eng.pool_redeem(2, SHARE, 0, rid, ts=t0 + DEPOSIT_COOLDOWN)) == Reject.UNKNOWN_REDEMPTION
    eng.check_integrity()


def test_reserved_usdc_cannot_be_withdrawn_traded_or_used_as_margin_while_pending():
    eng = seeded()
    eng.open_account(SMALL)
    eng.credit(SMALL, USDC, 30_000 * 10**6)
    rid = request(eng, SMALL, 25_000 * 10**6, ts=10)
    assert reason(eng.debit(SMALL, USDC, 10_000 * 10**6, ts=11)) == Reject.INSUFFICIENT_BALANCE
    # A call sell needs $20,000 of initial margin: the reserved 25,000 USDC does not count.
    assert reason(eng.new_order(DATED, SMALL, Side.SELL, 100, REFERENCE[DATED], ts=11)) == Reject.INSUFFICIENT_MARGIN
    # Nor can it pay for a spot buy of 100 TSLA.M ($25,000).
    assert reason(eng.new_order(0, SMALL, Side.BUY, 100_000, REFERENCE[0], ts=11)) == Reject.INSUFFICIENT_BALANCE
    eng.check_integrity()
    [cancelled] = eng.pool_cancel(SMALL, SHARE, rid, ts=12)
    assert (cancelled.kind, cancelled.order_id, cancelled.account, cancelled.asset, cancelled.qty) == (
        EventKind.POOL_REQUEST_CANCELLED, rid, SMALL, USDC, 25_000 * 10**6)
    assert eng.balances(SMALL)[USDC] == (30_000 * 10**6, 0)
    assert eng.new_order(DATED, SMALL, Side.SELL, 100, REFERENCE[DATED], ts=13)[0].kind == EventKind.ACCEPTED
    eng.check_integrity()


def test_a_deposit_that_would_leave_the_providers_margin_uncovered_is_refused():
    eng = seeded()
    eng.open_account(SMALL)
    eng.credit(SMALL, USDC, 30_000 * 10**6)
    assert eng.new_order(DATED, SMALL, Side.SELL, 100, REFERENCE[DATED], ts=10)[0].kind == EventKind.ACCEPTED
    # Its $15,000 initial margin leaves $15,000 free: a deposit of $15,001 would dip into it.
    assert reason(eng.pool_deposit(SMALL, SHARE, 15_001 * 10**6, ts=11)) == Reject.INSUFFICIENT_MARGIN
    assert eng.pool_info().deposits == () and eng.margin(SMALL).free_collateral >= eng.margin(SMALL).initial
    eng.check_integrity()


def test_bad_deposit_requests_and_cancels_are_refused_with_a_reason_and_change_nothing():
    eng = seeded()
    rid = request(eng, 2, 1_000 * 10**6, ts=10)
    redemption = eng.pool_redeem(1, SHARE, 10, ts=10)[0].order_id
    before = [eng.balances(a) for a in (1, 2, 3, POOL)], eng.pool_info()
    cases = [
        (eng.pool_deposit(3, SHARE, 0, ts=11), Reject.INVALID_AMOUNT),
        (eng.pool_deposit(3, SHARE, -1, ts=11), Reject.INVALID_AMOUNT),
        (eng.pool_deposit(3, SHARE, 2**61, ts=11), Reject.AMOUNT_OVERFLOW),
        (eng.pool_deposit(3, SHARE, 10**13 + 1, ts=11), Reject.INSUFFICIENT_BALANCE),   # over its balance
        (eng.pool_deposit(2, SHARE, 1, ts=11), Reject.POOL_REQUEST_PENDING),            # one per account
        (eng.pool_deposit(POOL, SHARE, 1, ts=11), Reject.NOT_A_POOL),
        (eng.pool_deposit(2, USDC, 1, ts=11), Reject.NOT_A_POOL),
        (eng.pool_cancel(3, SHARE, rid, ts=11), Reject.NOT_ORDER_OWNER),                # someone else's
        (eng.pool_cancel(2, SHARE, redemption, ts=11), Reject.NOT_ORDER_OWNER),
        (eng.pool_cancel(2, SHARE, 999, ts=11), Reject.UNKNOWN_REDEMPTION),
        (eng.pool_cancel(2, USDC, rid, ts=11), Reject.NOT_A_POOL),
        (eng.pool_redeem(3, SHARE, 0, rid, ts=10 + DEPOSIT_COOLDOWN), Reject.NOT_ORDER_OWNER),  # nor execute it
        (eng.pool_cancel(2, SHARE, rid, ts=10 + DEPOSIT_COOLDOWN), Reject.POOL_REQUEST_DUE),
    ]
    for events, code in cases:
        assert reason(events) == code, (events, code)
        assert events[0].order_id in (0, rid, redemption, 999)
    assert ([eng.balances(a) for a in (1, 2, 3, POOL)], eng.pool_info()) == before
    eng.check_integrity()


def test_the_owner_cancels_a_redemption_any_time_and_a_due_deposit_only_while_it_cannot_execute():
    eng = seeded()
    redemption = eng.pool_redeem(1, SHARE, 10**6, ts=10)[0].order_id
    [ev] = eng.pool_cancel(1, SHARE, redemption, ts=10 + COOLDOWN)
    assert (ev.kind, ev.asset, ev.qty) == (EventKind.POOL_REQUEST_CANCELLED, SHARE, 10**6)
    assert eng.pool_info().pending == ()
    rid = request(eng, 2, 1_000 * 10**6, ts=20)
    eng.credit(POOL, ASSET["AAPLX"], 10**6, ts=21)     # a token without a USD price: the NAV is unset
    assert reason(eng.pool_redeem(2, SHARE, 0, rid, ts=20 + DEPOSIT_COOLDOWN)) == Reject.POOL_NAV_UNSET
    # Due but not executable: the owner may take its money back rather than wait.
    assert kinds(eng.pool_cancel(2, SHARE, rid, ts=21 + DEPOSIT_COOLDOWN)) == [EventKind.POOL_REQUEST_CANCELLED]
    assert eng.balances(2)[USDC][1] == 0
    eng.check_integrity()


def test_a_freeze_or_a_liquidation_releases_the_pending_deposit():
    eng = seeded()
    rid = request(eng, 2, 1_000 * 10**6, ts=10)
    events = eng.freeze_account(2, ts=11)
    assert [e.kind for e in events] == [EventKind.ACCOUNT_FROZEN, EventKind.POOL_REQUEST_CANCELLED]
    assert events[1].order_id == rid and eng.balances(2)[USDC][1] == 0 and eng.pool_info().deposits == ()
    eng.open_account(SMALL)
    eng.credit(SMALL, USDC, 30_000 * 10**6)
    trade(eng, SMALL, 3, DATED, 100, REFERENCE[DATED], ts=12)                # short 100 calls
    rid = request(eng, SMALL, 2_000 * 10**6, ts=13)
    eng.set_option_risk(DATED, 2_000 * USD, 1_000 * USD, ts=14)   # now far under maintenance
    events = eng.liquidate(SMALL, ts=15)
    assert EventKind.POOL_REQUEST_CANCELLED in kinds(events)
    assert rid not in [d[0] for d in eng.pool_info().deposits]
    eng.check_integrity()


def test_an_expiry_shortfall_releases_the_pending_deposit_so_the_short_pays_with_it():
    """A short whose cash settlement exceeds its free balance must pay with what its
    deposit request holds reserved too; else it would keep that money (cancel, then
    withdraw) while its longs, or the pools, took the loss."""
    from datetime import datetime, timezone

    eng = seeded()
    eng.open_account(SMALL)
    eng.credit(SMALL, USDC, 30_000 * 10**6)
    trade(eng, SMALL, 3, DATED, 100, REFERENCE[DATED], ts=12)               # short one BTC call
    rid = request(eng, SMALL, 15_000 * 10**6, ts=13)
    held = eng.balances(SMALL)[USDC][0]                                     # 30,000 + the premium, less fees
    long_before = eng.balances(3)[USDC][0]
    expiry = int(datetime(2026, 12, 31, 8, tzinfo=timezone.utc).timestamp()) * NS_PER_S
    events = eng.settle_series(DATED, 1_400_000_000, ts=expiry)             # $140,000: it owes $40,000
    assert [(e.kind, e.order_id) for e in events if e.kind == EventKind.POOL_REQUEST_CANCELLED] == [
        (EventKind.POOL_REQUEST_CANCELLED, rid)]
    assert eng.balances(SMALL)[USDC] == (0, 0)
    assert eng.balances(3)[USDC][0] - long_before == held                   # all it had went to the long
    eng.check_integrity()


def test_pending_deposits_are_their_own_snapshot_section_and_replay_the_same():
    eng = seeded()
    rid = request(eng, 2, 1_000 * 10**6, ts=10)
    decoded = snap.DECODER.decode(eng.snapshot())
    assert decoded.version == 6 and decoded.pool_deposits == [(rid, 2, 1_000 * 10**6, 10 + DEPOSIT_COOLDOWN)]
    assert decoded.main_pool.deposit_cooldown_ns == DEPOSIT_COOLDOWN
    copy = MatchingEngine.from_snapshot(eng.snapshot())
    assert copy.state_hash() == eng.state_hash() and copy.pool_info() == eng.pool_info()
    for e in (eng, copy):
        e.pool_redeem(2, SHARE, 0, rid, ts=10 + DEPOSIT_COOLDOWN)
    assert copy.snapshot() == eng.snapshot() and copy.state_hash() == eng.state_hash()
    assert MatchingEngine.from_snapshot(eng.snapshot()).pool_info().deposits == ()
    for bad in ([(rid, 2, 0, 0)], [(99, 2, 5, 0)], [(rid, 2, 5, 0), (rid, 2, 5, 0)],
                [(rid, 2, 10**18, 0)]):                     # more than the ledger holds reserved
        with pytest.raises(ValueError, match="deposit request|reserved"):
            MatchingEngine.from_snapshot(snap.ENCODER.encode(msgspec.structs.replace(decoded, pool_deposits=bad)))


def test_a_version_5_snapshot_of_a_pool_restores_without_a_deposit_cooldown():
    eng = make_engine()
    eng.pool_deposit(1, SHARE, 10**6, ts=1, immediate=True)
    decoded = snap.DECODER.decode(eng.snapshot())
    old = msgspec.structs.replace(decoded, version=5)
    copy = MatchingEngine.from_snapshot(snap.ENCODER.encode(old))
    assert copy.state_hash() == eng.state_hash() and copy.pool_info().deposit_cooldown_ns == 0


def test_the_immediate_deposit_of_older_journals_keeps_its_meaning():
    """POOL_DEPOSIT (21), which the gateway no longer sends, still mints at once:
    a journal written before deposit requests replays to the same state."""
    eng = make_engine(deposit_cooldown=DEPOSIT_COOLDOWN)
    events = eng.pool_deposit(1, SHARE, 5_000 * 10**6, ts=1, immediate=True)
    assert [(e.kind, e.asset, e.qty, e.order_id) for e in events] == [
        (EventKind.POOL_PAID, USDC, 5_000 * 10**6, 0), (EventKind.POOL_PAID, SHARE, -5_000 * 10**6, 0)]
    assert eng.pool_info().deposits == ()


# -- the attack the deposit cooldown stops --


def _known_jump_attack(deposit_cooldown):
    """The pool is long 20 calls. The attacker knows their mark will jump by half
    (a feed it sees before the venue does, an announcement): it requests a
    $50,000 deposit just before, redeems all its shares once the deposit has
    executed, and the redemption is executed after its cooldown, once the
    time-weighted NAV has caught up with the jump (no fee, to isolate the
    cooldown). Returns the attacker's profit in USDC ledger units."""
    eng = seeded(deposit_cooldown=deposit_cooldown, window=4, fee_bps=0)
    trade(eng, 3, POOL, DATED, 2_000, REFERENCE[DATED], ts=2 + deposit_cooldown)
    t = 10 * DEPOSIT_COOLDOWN
    for i in range(4):
        eng.pool_mark(SHARE, ts=t + i)
    attacker, before = 2, eng.balances(2)[USDC][0]
    rid = request(eng, attacker, 50_000 * 10**6, ts=t + 10)
    due = t + 10 + deposit_cooldown
    if not deposit_cooldown:
        # Without a cooldown the deposit mints at once, before the jump (what POOL_DEPOSIT did).
        assert kinds(eng.pool_redeem(attacker, SHARE, 0, rid, ts=due)) == [EventKind.POOL_PAID] * 2
    eng.set_reference_price(DATED, REFERENCE[DATED] * 3 // 2, ts=t + 11)   # the jump, lasting
    if deposit_cooldown:
        assert kinds(eng.pool_redeem(attacker, SHARE, 0, rid, ts=due)) == [EventKind.POOL_PAID] * 2
    for i in range(4):
        eng.pool_mark(SHARE, ts=due + 100 + i)                              # the window catches up
    assert kinds(redeem(eng, attacker, shares_of(eng, attacker), ts=due + 200)) == [EventKind.POOL_PAID] * 2
    eng.check_integrity()
    return eng.balances(attacker)[USDC][0] - before


def test_a_deposit_just_before_a_known_jump_gains_nothing_with_the_deposit_cooldown():
    assert _known_jump_attack(DEPOSIT_COOLDOWN) <= 0


def test_without_the_deposit_cooldown_the_time_weighted_nav_alone_lets_the_same_deposit_take_the_jump():
    # An immediate deposit (the old POOL_DEPOSIT, or a cooldown of 0): the jump
    # lasts, so the time-weighted NAV catches up before the redemption and the
    # attacker keeps about 50,000 / 150,000 of the $20,000 jump.
    assert _known_jump_attack(0) > 6_000 * 10**6
