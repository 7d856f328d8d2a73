"""The gateway's pool clock (engine/gateway/pool_clock.py): a NAV sample every
nav_sample_s, and the execution of each request, deposit or redemption, once it
is due, for its owner, in request-id order; a refused execution (a redemption the
equity guard refuses included) is sent again only after RETRY_S, doubling up to
RETRY_MAX_S, and executes once it can; a frozen owner's requests (and all while the
pool account is frozen) are left alone; nothing runs without a main pool."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from test_pool import CALL, POOL, REFERENCE, SHARE, TRADER, USDC, deposit, kinds, make_engine, shares_of, trade

from engine.core.types import CommandKind, EventKind
from engine.core.types import Reject as Code
from engine.gateway.pool_clock import RETRY_MAX_S, RETRY_S, PoolClock
from engine.units import POOL_PPS_SCALE

DEPOSIT_COOLDOWN = 10 * 10**9


def _clock(nav_sample_s=60, pool=True):
    main = SimpleNamespace(nav_sample_s=nav_sample_s) if pool else None
    terms = SimpleNamespace(share_asset=SHARE, account=POOL) if pool else None
    return PoolClock(SimpleNamespace(file=SimpleNamespace(pools=SimpleNamespace(main=main)),
                                     venue=SimpleNamespace(main_pool=terms)))


def _run(eng, commands, ts):
    commands = commands.copy()
    commands["seq"] = np.arange(1, len(commands) + 1) + eng.last_seq
    commands["ts"] = ts
    return eng.process(commands)


def test_the_clock_samples_and_executes_each_due_deposit_for_its_owner():
    eng = make_engine(deposit_cooldown=DEPOSIT_COOLDOWN)
    [requested] = eng.pool_deposit(2, SHARE, 10**9, ts=100)
    clock = _clock()
    first = clock.commands(0.0, eng, 100)
    assert first["kind"].tolist() == [CommandKind.POOL_MARK] and int(first["asset"][0]) == SHARE
    assert len(clock.commands(1.0, eng, 100 + DEPOSIT_COOLDOWN - 1)) == 0      # not due, no sample due
    due = clock.commands(2.0, eng, 100 + DEPOSIT_COOLDOWN)
    assert [(int(c["kind"]), int(c["account"]), int(c["order_id"])) for c in due] == [
        (CommandKind.POOL_REDEEM, 2, requested.order_id)]
    events = _run(eng, due, 100 + DEPOSIT_COOLDOWN)
    assert events["kind"].tolist() == [EventKind.POOL_PAID] * 2 and eng.pool_info().deposits == ()
    assert len(clock.commands(3.0, eng, 200 + DEPOSIT_COOLDOWN)) == 0


def test_a_refused_execution_is_sent_again_after_the_retry_interval_only():
    eng = make_engine(deposit_cooldown=0)
    eng.credit(POOL, 2, 10**6, ts=1)                # a token without a USD price: the NAV is unset
    eng.pool_deposit(3, SHARE, 10**9, ts=2)
    clock = _clock(nav_sample_s=0)
    sent = clock.commands(0.0, eng, 2)
    assert sent["kind"].tolist() == [CommandKind.POOL_REDEEM]
    assert _run(eng, sent, 2)["kind"].tolist() == [EventKind.REJECTED]
    assert len(clock.commands(RETRY_S / 2, eng, 3)) == 0
    assert clock.commands(RETRY_S, eng, 4)["kind"].tolist() == [CommandKind.POOL_REDEEM]
    assert eng.balances(3)[USDC][1] == 10**9


def test_the_clock_executes_due_redemptions_and_deposits_for_their_owners_in_request_order():
    eng = make_engine(cooldown=DEPOSIT_COOLDOWN, deposit_cooldown=DEPOSIT_COOLDOWN)
    deposit(eng, 1, SHARE, 10**9, ts=1)                    # a deposit cooldown: requested, not executed
    _run(eng, _clock(nav_sample_s=0).commands(0.0, eng, 1 + DEPOSIT_COOLDOWN), 1 + DEPOSIT_COOLDOWN)
    assert shares_of(eng, 1) == 10**9
    [redemption] = eng.pool_redeem(1, SHARE, 4 * 10**8, ts=2 + DEPOSIT_COOLDOWN)
    [later] = eng.pool_deposit(2, SHARE, 10**9, ts=3 + DEPOSIT_COOLDOWN)
    clock = _clock(nav_sample_s=0)
    assert len(clock.commands(0.0, eng, 1 + 2 * DEPOSIT_COOLDOWN)) == 0     # neither is due
    due = clock.commands(1.0, eng, 3 + 2 * DEPOSIT_COOLDOWN)
    assert [(int(c["kind"]), int(c["account"]), int(c["order_id"])) for c in due] == [
        (CommandKind.POOL_REDEEM, 1, redemption.order_id), (CommandKind.POOL_REDEEM, 2, later.order_id)]
    events = _run(eng, due, 3 + 2 * DEPOSIT_COOLDOWN)
    assert [(int(e["kind"]), int(e["account"]), int(e["asset"]), int(e["qty"])) for e in events] == [
        (EventKind.POOL_PAID, 1, SHARE, 4 * 10**8), (EventKind.POOL_PAID, 1, USDC, -(4 * 10**8 - 4 * 10**5)),
        (EventKind.POOL_PAID, 2, USDC, 10**9),
        (EventKind.POOL_PAID, 2, SHARE, -(10**9 * POOL_PPS_SCALE // int(events[3]["price"])))]  # after the fee
    assert eng.pool_info().pending == () and eng.pool_info().deposits == ()
    eng.check_integrity()


def test_a_redemption_the_equity_guard_refuses_is_retried_and_executes_once_the_guard_allows():
    eng = make_engine(cooldown=0)
    deposit(eng, 1, SHARE, 50_000 * 10**6, ts=1)
    deposit(eng, 2, SHARE, 10_000 * 10**6, ts=1)
    trade(eng, POOL, TRADER, CALL, 100, REFERENCE[CALL], ts=2)     # short a call: $20,000 initial margin
    [request] = eng.pool_redeem(1, SHARE, shares_of(eng, 1), ts=3)  # would leave about $10,000 < 2 x $20,000
    clock = _clock(nav_sample_s=0)
    sent = clock.commands(0.0, eng, 3)
    assert [(int(c["account"]), int(c["order_id"])) for c in sent] == [(1, request.order_id)]
    [refused] = _run(eng, sent, 3)
    assert (refused["kind"], refused["reason"]) == (EventKind.REJECTED, Code.POOL_EQUITY_GUARD)
    assert [r[0] for r in eng.pool_info().pending] == [request.order_id]     # still pending
    assert len(clock.commands(RETRY_S / 2, eng, 4)) == 0
    again = clock.commands(RETRY_S, eng, 5)
    assert _run(eng, again, 5)["kind"].tolist() == [EventKind.REJECTED]      # the guard still refuses
    deposit(eng, 3, SHARE, 50_000 * 10**6, ts=6)                   # new capital: the guard allows it
    assert len(clock.commands(2 * RETRY_S, eng, 7)) == 0                  # two refusals: it waits twice as long
    paid = _run(eng, clock.commands(3 * RETRY_S, eng, 7), 7)
    assert [(int(e["kind"]), int(e["account"]), int(e["order_id"])) for e in paid] == [
        (EventKind.POOL_PAID, 1, request.order_id)] * 2
    assert shares_of(eng, 1) == 0 and eng.pool_info().pending == ()
    assert len(clock.commands(10 * RETRY_S, eng, 8)) == 0
    eng.check_integrity()


def test_a_request_refused_again_and_again_is_retried_ever_less_often_up_to_the_cap():
    """A request the core keeps refusing (here: no NAV for hours) costs a journaled
    refusal at 1, 2, 4 ... s, then one each RETRY_MAX_S, not one a second: a day of it
    is under 1,500 commands instead of 86,400."""
    eng = make_engine(deposit_cooldown=0)
    eng.credit(POOL, 2, 10**6, ts=1)                # a token without a USD price: the NAV is unset
    eng.pool_deposit(3, SHARE, 10**9, ts=2)
    clock = _clock(nav_sample_s=0)
    sends = []
    for tick in range(0, 3_600 * 4):                 # an hour, four clock runs a second
        now = tick / 4
        sent = clock.commands(now, eng, 2)
        if len(sent):
            assert _run(eng, sent, 2)["kind"].tolist() == [EventKind.REJECTED]
            sends.append(now)
    gaps = np.diff(sends).tolist()
    assert gaps[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0] and set(gaps[6:]) == {RETRY_MAX_S}
    assert len(sends) < 3_600 / RETRY_MAX_S + 8


def test_the_clock_leaves_a_frozen_owners_request_and_a_frozen_pools_alone():
    eng = make_engine(deposit_cooldown=0)
    deposit(eng, 1, SHARE, 50_000 * 10**6, ts=1)
    eng.pool_deposit(3, SHARE, 10**9, ts=2)
    [request] = eng.pool_redeem(1, SHARE, 10**6, ts=3)
    clock = _clock(nav_sample_s=0)
    eng.freeze_account(1, ts=4)                      # the owner's wallet asked for a forced exit
    sent = clock.commands(0.0, eng, 4)
    assert [int(c["account"]) for c in sent] == [3]  # only the other owner's deposit
    eng.freeze_account(POOL, ts=5)
    assert len(clock.commands(100.0, eng, 5)) == 0


def test_a_due_redemption_whose_shares_its_owner_moved_away_is_cancelled_not_retried():
    """Else the owner could keep its due request pending (withdraw a share unit, or
    reserve its shares in an order) and put the shares back at a moment it picks:
    the clock would execute it within RETRY_S, at a NAV the owner chose."""
    eng = make_engine(cooldown=0)
    deposit(eng, 1, SHARE, 10_000 * 10**6, ts=1)
    [request] = eng.pool_redeem(1, SHARE, shares_of(eng, 1), ts=2)
    assert kinds(eng.debit(1, SHARE, 1, ts=3)) != [EventKind.REJECTED]     # one share unit withdrawn
    clock = _clock(nav_sample_s=0)
    sent = clock.commands(0.0, eng, 3)
    assert [(int(c["kind"]), int(c["account"]), int(c["order_id"])) for c in sent] == [
        (CommandKind.POOL_CANCEL, 1, request.order_id)]
    [cancelled] = _run(eng, sent, 3)
    assert (cancelled["kind"], cancelled["order_id"]) == (EventKind.POOL_REQUEST_CANCELLED, request.order_id)
    eng.credit(1, SHARE, 1, ts=4)                                   # the share comes back: nothing to execute
    assert len(clock.commands(RETRY_S, eng, 5)) == 0 and eng.pool_info().pending == ()
    eng.check_integrity()


def test_without_a_main_pool_the_clock_sends_nothing():
    assert len(_clock(pool=False).commands(0.0, None, 0)) == 0
