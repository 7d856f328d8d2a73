"""The gateway's pool clock (engine/gateway/pool_clock.py): a NAV sample every
nav_sample_s, and the execution of each deposit request once it is due, for its
owner; a refused execution is sent again only after RETRY_S, and nothing runs
without a main pool."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from test_pool import POOL, SHARE, USDC, make_engine

from engine.core.types import CommandKind, EventKind
from engine.gateway.pool_clock import RETRY_S, PoolClock

DEPOSIT_COOLDOWN = 10 * 10**9


def _clock(nav_sample_s=60, pool=True):
    main = SimpleNamespace(nav_sample_s=nav_sample_s) if pool else None
    terms = SimpleNamespace(share_asset=SHARE) if pool else None
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


def test_without_a_main_pool_the_clock_sends_nothing():
    assert len(_clock(pool=False).commands(0.0, None, 0)) == 0
