"""FREEZE_ACCOUNT: an account whose wallet requested an exit on chain is frozen for good:
its orders are cancelled, its new orders, withdrawals and liquidation are refused, nothing
of it is left to settle after the freeze; the state survives snapshots and an engine that
never froze an account hashes as before."""

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule
from test_options import ACCOUNTS as OPTION_ACCOUNTS
from test_options import FEE as OPTION_FEE
from test_options import TRADERS as OPTION_TRADERS
from test_options import SHARE, SPOT, SPOT_PX, STEP, OptionsMachine
from test_risk import AMZNX, FEE, PX, USDC, funded, kinds

from engine.core.matcher import MatchingEngine
from engine.core.types import CancelReason, EventKind, Reject, Side
from engine.reference.freeze import FreezeModel


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


# -- random sequences against the freeze model (engine/reference/freeze.py) ------------

class FreezingOptionsMachine(OptionsMachine):
    """OptionsMachine (credits, debits, spot and option orders, cancels, amends,
    price and margin moves, liquidations) with freezes interleaved: every freeze
    gives exactly the model's events, every later order, withdrawal or
    liquidation of a frozen account is refused alone, no event moves a frozen
    account, and balances still match the events."""

    def __init__(self):
        super().__init__()
        self.freezes = FreezeModel(OPTION_ACCOUNTS, OPTION_FEE)

    def run(self, command, actor=None, moves_risk=False):
        events = super().run(command, actor, moves_risk)
        if actor in self.freezes.frozen:
            # Every command a rule runs for an actor is an order, amend, withdrawal or liquidation.
            assert [(e.kind, e.reason, e.account) for e in events] == [
                (EventKind.REJECTED, Reject.ACCOUNT_IS_FROZEN, actor)], events
        return events

    def apply(self, e):
        super().apply(e)
        assert not self.freezes.trades(e), f"a frozen account moved after its freeze: {e}"

    def liquidation_target(self, data):
        under = [acct for acct, _ in self.eng.under_maintenance() if acct not in self.freezes.frozen]
        live = sorted(set(range(7)) - self.freezes.frozen)
        return data.draw(st.sampled_from(under or live))

    @rule(account=st.sampled_from(OPTION_TRADERS), side=st.sampled_from([Side.BUY, Side.SELL]),
          lots=st.integers(1, 5), ticks=st.integers(1, 8))
    def trader_rests(self, account, side, lots, ticks):
        """A small order away from the touch, so that freezes find orders to cancel."""
        away = -ticks if side == Side.BUY else ticks
        self.run(lambda: self.eng.new_order(SPOT, account, side, lots * SHARE // 10, SPOT_PX + STEP[SPOT] * away),
                 actor=account)

    # At most two of the four traders frozen, so that trading goes on around them.
    @precondition(lambda self: len(self.freezes.frozen) < 2)
    @rule(data=st.data(), ts=st.integers(0, 2**40))
    def freeze(self, data, ts):
        with_orders = [acct for acct in OPTION_TRADERS if self.eng.open_orders(acct)]
        account = data.draw(st.sampled_from(with_orders) if with_orders and data.draw(st.booleans())
                            else st.sampled_from(OPTION_TRADERS + (OPTION_FEE, 9)))
        seq = self.eng.last_seq + 1
        resting = self.eng.open_orders(account) if account in OPTION_ACCOUNTS else []
        expected = self.freezes.freeze(account, resting, seq, ts)
        assert self.run(lambda: self.eng.freeze_account(account, seq=seq, ts=ts), actor=None) == expected
        assert self.eng.frozen_accounts == tuple(sorted(self.freezes.frozen))
        assert all(reserved == 0 for acct in self.freezes.frozen for _, reserved in self.eng.balances(acct))

    @rule(data=st.data())
    def liquidate_frozen(self, data):
        """A frozen account under maintenance (or not) is never liquidated."""
        if self.freezes.frozen:
            account = data.draw(st.sampled_from(sorted(self.freezes.frozen)))
            self.run(lambda: self.eng.liquidate(account), actor=account)

    @rule()
    def restart(self):
        """A snapshot round trip keeps the frozen accounts and the state hash."""
        copy = MatchingEngine.from_snapshot(self.eng.snapshot())
        assert copy.state_hash() == self.eng.state_hash()
        assert copy.frozen_accounts == tuple(sorted(self.freezes.frozen))
        self.eng = copy


TestFreezingOptionsMachine = FreezingOptionsMachine.TestCase
TestFreezingOptionsMachine.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
