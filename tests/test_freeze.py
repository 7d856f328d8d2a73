"""FREEZE_ACCOUNT: an account whose wallet requested an exit on chain is frozen for good:
its orders are cancelled, its new orders, withdrawals and liquidation are refused, nothing
of it is left to settle after the freeze; the state survives snapshots and an engine that
never froze an account hashes as before."""

import pytest
from test_risk import AMZNX, FEE, PX, USDC, funded, kinds

from engine.core.matcher import MatchingEngine
from engine.core.types import CancelReason, EventKind, Reject, Side


def test_freeze_cancels_orders_and_refuses_what_could_settle_later():
    eng, iid = funded()
    eng.new_order(iid, 1, Side.SELL, 1_000, PX + 100)
    eng.new_order(iid, 1, Side.BUY, 1_000, PX - 100)
    eng.new_order(iid, 2, Side.BUY, 500, PX - 200)
    events = eng.freeze_account(1)
    assert kinds(events) == [EventKind.ACCOUNT_FROZEN, EventKind.CANCELLED, EventKind.CANCELLED]
    assert events[0].account == 1 and events[0].qty == 2
    assert {e.reason for e in events[1:]} == {CancelReason.FROZEN}
    assert eng.is_frozen(1) and eng.frozen_accounts == (1,)
    assert all(reserved == 0 for _, reserved in eng.balances(1))

    for refused in (eng.new_order(iid, 1, Side.BUY, 1_000, PX), eng.debit(1, USDC, 1), eng.liquidate(1),
                    eng.freeze_account(1)):
        assert kinds(refused) == [EventKind.REJECTED]
        assert refused[0].reason == Reject.ACCOUNT_IS_FROZEN
    # Trading between everyone else goes on; the frozen account is no one's counterparty.
    fills = eng.new_order(iid, 3, Side.SELL, 500, PX - 200)
    assert EventKind.FILL in kinds(fills)
    assert kinds(eng.credit(1, USDC, 5)) == [EventKind.CREDITED]   # a deposit mined before the request
    eng.check_integrity()


def test_freeze_rejects_unknown_fee_account_and_risk_off():
    eng, _ = funded()
    assert eng.freeze_account(99)[0].reason == Reject.UNKNOWN_ACCOUNT
    assert eng.freeze_account(FEE)[0].reason == Reject.FEE_ACCOUNT_NOT_FREEZABLE
    assert MatchingEngine().freeze_account(1)[0].reason == Reject.ACCOUNTS_DISABLED
    assert eng.frozen_accounts == ()


def test_frozen_accounts_survive_snapshot_and_enter_the_hash_only_when_present():
    eng, iid = funded()
    plain = MatchingEngine.from_snapshot(eng.snapshot())
    before = eng.state_hash()
    assert plain.state_hash() == before
    eng.freeze_account(2)
    assert eng.state_hash() != before
    copy = MatchingEngine.from_snapshot(eng.snapshot())
    assert copy.frozen_accounts == (2,) and copy.state_hash() == eng.state_hash()
    assert copy.new_order(iid, 2, Side.BUY, 1_000, PX)[0].reason == Reject.ACCOUNT_IS_FROZEN
