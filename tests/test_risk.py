"""Accounts, balances, reservations and fees (risk=True), docs/matching.md."""

import msgspec
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.assets import AssetSpec
from engine.core.matcher import MatchingEngine
from engine.core.types import (
    CancelReason,
    CommandKind,
    EventKind,
    OrderType,
    Reject,
    SelfTrade,
    Side,
    TimeInForce,
)
from engine.defaults import stock_pair
from engine.reference.freeze import FreezeModel
from engine.reference.risk import InstrumentTerms, LedgerModel, fill_fees
from engine.units import InstrumentUnits

USDC_ASSET = AssetSpec(symbol="USDC", decimals=6, ledger_decimals=6)
AMZNX_ASSET = AssetSpec(symbol="AMZNX", decimals=18, ledger_decimals=6, haircut_bps=2_000)
USDC, AMZNX = 0, 1
FEE = 0
PX = 2_200_000  # $220.00 in price units of $0.0001


def make_engine(maker_bps=-1, taker_bps=5, accounts=(1, 2, 3)):
    eng = MatchingEngine(risk=True, fee_account=FEE)
    eng.add_asset(USDC_ASSET)
    eng.add_asset(AMZNX_ASSET)
    spec = msgspec.structs.replace(stock_pair("AMZNX"), maker_fee_bps=maker_bps, taker_fee_bps=taker_bps)
    iid = eng.add_instrument(spec)
    for acct in accounts:
        eng.open_account(acct)
    eng.set_reference_price(iid, PX)
    return eng, iid


def funded(**kw):
    eng, iid = make_engine(**kw)
    for acct in (1, 2, 3):
        eng.credit(acct, USDC, 100_000_000_000)   # 100,000 USDC
        eng.credit(acct, AMZNX, 1_000_000_000)    # 1,000 shares
    return eng, iid


def kinds(events):
    return [e.kind for e in events]


def snapshot_of(eng):
    return eng.state_hash()


# -- set-up -------------------------------------------------------------------

def test_unit_mapping_is_exact_and_checked():
    eng = MatchingEngine(risk=True)
    eng.add_asset(USDC_ASSET)
    eng.add_asset(AssetSpec(symbol="AMZNX", decimals=18, ledger_decimals=2))
    with pytest.raises(ValueError, match="finer than one ledger unit"):
        eng.add_instrument(stock_pair("AMZNX"))  # lot 0.001 share < 0.01 ledger unit
    with pytest.raises(ValueError, match="unknown asset"):
        eng.add_instrument(stock_pair("TSLA.M"))


def test_accounts_must_be_opened_and_risk_off_has_no_ledger():
    eng, iid = make_engine()
    ev = eng.new_order(iid, 9, Side.BUY, 1000, PX)
    assert ev[0].kind == EventKind.REJECTED and ev[0].reason == Reject.UNKNOWN_ACCOUNT
    plain = MatchingEngine()
    assert plain.credit(1, 0, 5)[0].reason == Reject.ACCOUNTS_DISABLED
    with pytest.raises(ValueError):
        plain.open_account(1)


# -- credit / debit -------------------------------------------------------------

@pytest.mark.parametrize(
    "account, asset, amount, reason",
    [
        (9, USDC, 10, Reject.UNKNOWN_ACCOUNT),
        (1, 7, 10, Reject.UNKNOWN_ASSET),
        (1, -1, 10, Reject.UNKNOWN_ASSET),
        (1, USDC, 0, Reject.INVALID_AMOUNT),
        (1, USDC, -5, Reject.INVALID_AMOUNT),
        (1, USDC, 1 << 62, Reject.AMOUNT_OVERFLOW),
    ],
)
def test_credit_rejects_change_nothing(account, asset, amount, reason):
    eng, _ = make_engine()
    eng.credit(1, USDC, 1000)
    before = snapshot_of(eng)
    ev = eng.credit(account, asset, amount)
    assert [(e.kind, e.reason) for e in ev] == [(EventKind.REJECTED, reason)]
    assert ev[0].account == account and ev[0].asset == asset
    assert eng.state_hash() != before  # seq advanced
    assert eng.balances(1)[USDC] == (1000, 0)


def test_debit_only_from_free_balance():
    eng, iid = make_engine(maker_bps=0, taker_bps=0)
    eng.credit(1, USDC, 1_000_000_000)            # 1,000 USDC
    eng.new_order(iid, 1, Side.BUY, 1_000, PX)    # 1 share at 220: reserves 220 USDC
    assert eng.balances(1)[USDC] == (1_000_000_000, 220_000_000)
    ev = eng.debit(1, USDC, 780_000_001)
    assert ev[0].reason == Reject.INSUFFICIENT_BALANCE
    ev = eng.debit(1, USDC, 780_000_000)
    assert (ev[0].kind, ev[0].qty, ev[0].leaves) == (EventKind.DEBITED, 780_000_000, 220_000_000)
    assert eng.balances(1)[USDC] == (220_000_000, 220_000_000)
    eng.check_integrity()


# -- reservations -----------------------------------------------------------------

def test_buy_reserves_notional_plus_max_fee_and_sell_reserves_base():
    eng, iid = funded(maker_bps=3, taker_bps=5)
    eng.new_order(iid, 1, Side.BUY, 2_500, PX)       # 2.5 shares at 220
    n = (PX // 100) * 2_500 * 10                      # 550,000,000 USDC units
    assert eng.balances(1)[USDC] == (100_000_000_000, n + n * 5 // 10_000)
    eng.new_order(iid, 2, Side.SELL, 1_500, PX + 100)
    assert eng.balances(2)[AMZNX] == (1_000_000_000, 1_500 * 1_000)
    eng.check_integrity()


def test_insufficient_balance_rejects_and_changes_nothing():
    eng, iid = make_engine()
    eng.credit(1, USDC, 1_000)
    before = eng.balances(1)
    ev = eng.new_order(iid, 1, Side.BUY, 1_000, PX)
    assert (ev[0].kind, ev[0].reason) == (EventKind.REJECTED, Reject.INSUFFICIENT_BALANCE)
    ev = eng.new_order(iid, 1, Side.SELL, 1_000, PX)
    assert ev[0].reason == Reject.INSUFFICIENT_BALANCE
    assert eng.balances(1) == before and eng.open_orders(1) == []


def test_market_buy_reserves_at_the_collar():
    eng, iid = make_engine(maker_bps=0, taker_bps=0)
    eng.credit(1, USDC, 241_999_999)  # the collar is 242.00 (10% band): 1 share needs 242 USDC
    ev = eng.new_order(iid, 1, Side.BUY, 1_000, order_type=OrderType.MARKET, tif=TimeInForce.IOC)
    assert ev[0].reason == Reject.INSUFFICIENT_BALANCE
    eng.credit(1, USDC, 1)
    ev = eng.new_order(iid, 1, Side.BUY, 1_000, order_type=OrderType.MARKET, tif=TimeInForce.IOC)
    assert kinds(ev) == [EventKind.ACCEPTED, EventKind.CANCELLED]
    assert ev[0].price == 2_420_000
    assert eng.balances(1)[USDC] == (242_000_000, 0)  # released again with the IOC remainder
    eng.check_integrity()


def test_fill_moves_exact_amounts_with_fee_and_rebate():
    eng, iid = funded(maker_bps=-1, taker_bps=5)
    eng.new_order(iid, 1, Side.SELL, 3_000, PX + 1_000)         # maker: 3 @ 220.10
    ev = eng.new_order(iid, 2, Side.BUY, 2_500, PX + 2_000)     # taker: 2.5 @ limit 220.20
    fill = ev[1]
    n = 22_010 * 2_500 * 10
    assert (fill.kind, fill.price, fill.qty) == (EventKind.FILL, PX + 1_000, 2_500)
    assert (fill.fee, fill.maker_fee) == (n * 5 // 10_000, -(n // 10_000))
    assert eng.balances(2) == [(100_000_000_000 - n - fill.fee, 0), (1_000_000_000 + 2_500_000, 0)]
    assert eng.balances(1)[USDC] == (100_000_000_000 + n + n // 10_000, 0)
    assert eng.balances(1)[AMZNX] == (1_000_000_000 - 2_500_000, 500 * 1_000)
    assert eng.balances(FEE)[USDC] == (fill.fee + fill.maker_fee, 0)
    eng.check_integrity()


def test_fees_round_towards_zero_on_tiny_fills():
    eng = MatchingEngine(risk=True)
    eng.add_asset(USDC_ASSET)
    eng.add_asset(AMZNX_ASSET)
    spec = msgspec.structs.replace(stock_pair("AMZNX"), maker_fee_bps=-2, taker_fee_bps=3,
                                   static_band_bps=0, dynamic_band_bps=0)
    iid = eng.add_instrument(spec)
    for acct in (1, 2):
        eng.open_account(acct)
        eng.credit(acct, USDC, 100_000_000)
        eng.credit(acct, AMZNX, 10_000_000)
    eng.new_order(iid, 1, Side.BUY, 1, 100)    # 0.001 share at $0.01: notional 10 units
    ev = eng.new_order(iid, 2, Side.SELL, 1, 100)
    assert (ev[-1].kind, ev[-1].fee, ev[-1].maker_fee) == (EventKind.FILL, 0, 0)
    eng.new_order(iid, 1, Side.BUY, 700, 100_000)   # notional 7,000,000: fee 2100, rebate 1400
    ev = eng.new_order(iid, 2, Side.SELL, 700, 100_000)
    assert (ev[-1].fee, ev[-1].maker_fee) == (2_100, -1_400)
    eng.new_order(iid, 1, Side.BUY, 333, 100_100)   # notional 3,333,330: 999.999 -> 999, 666.666 -> 666
    ev = eng.new_order(iid, 2, Side.SELL, 333, 100_100)
    assert (ev[-1].fee, ev[-1].maker_fee) == (999, -666)
    assert eng.balances(0)[USDC] == (2_100 - 1_400 + 999 - 666, 0)
    eng.check_integrity()


def test_cancel_and_ioc_release_whole_reservation():
    eng, iid = funded(maker_bps=2, taker_bps=7)
    ev = eng.new_order(iid, 1, Side.BUY, 3_333, PX)
    oid = ev[0].order_id
    assert eng.balances(1)[USDC][1] > 0
    eng.cancel(1, oid)
    assert eng.balances(1)[USDC] == (100_000_000_000, 0)
    eng.new_order(iid, 2, Side.SELL, 1_000, PX)
    ev = eng.new_order(iid, 1, Side.BUY, 3_333, PX, tif=TimeInForce.IOC)
    assert kinds(ev) == [EventKind.ACCEPTED, EventKind.FILL, EventKind.CANCELLED]
    assert eng.balances(1)[USDC][1] == 0
    eng.check_integrity()


def test_partial_fills_at_better_prices_never_overdraw_the_reservation():
    eng, iid = funded(maker_bps=10, taker_bps=10)
    for k in range(7):
        eng.new_order(iid, 2, Side.SELL, 1 + k, PX - 100 * k)
    ev = eng.new_order(iid, 1, Side.BUY, 10_001, PX + 500)
    assert sum(e.qty for e in ev if e.kind == EventKind.FILL) == sum(1 + k for k in range(7))
    eng.check_integrity()
    eng.mass_cancel(1)
    assert eng.balances(1)[USDC][1] == 0
    eng.check_integrity()


def test_amend_reserves_the_difference_or_rejects_unchanged():
    eng, iid = make_engine(maker_bps=0, taker_bps=0)
    eng.credit(1, USDC, 500_000_000)
    oid = eng.new_order(iid, 1, Side.BUY, 1_000, PX)[0].order_id
    assert eng.balances(1)[USDC] == (500_000_000, 220_000_000)
    ev = eng.amend(1, oid, qty=3_000)
    assert ev[0].reason == Reject.INSUFFICIENT_BALANCE
    assert eng.order(oid).leaves == 1_000 and eng.balances(1)[USDC] == (500_000_000, 220_000_000)
    eng.amend(1, oid, qty=2_000)
    assert eng.balances(1)[USDC] == (500_000_000, 440_000_000)
    eng.amend(1, oid, qty=500, price=PX - 10_000)
    assert eng.balances(1)[USDC] == (500_000_000, (PX - 10_000) // 100 * 500 * 10)
    eng.check_integrity()


def test_stp_cancel_releases_the_makers_reservation():
    eng, iid = funded()
    eng.new_order(iid, 1, Side.SELL, 1_000, PX)
    ev = eng.new_order(iid, 1, Side.BUY, 1_000, PX, stp=SelfTrade.CANCEL_OLDEST)
    assert [(e.kind, e.reason) for e in ev][1] == (EventKind.CANCELLED, CancelReason.SELF_TRADE)
    assert eng.balances(1)[AMZNX][1] == 0
    eng.check_integrity()


def test_collateral_value_applies_haircuts():
    eng, _ = make_engine()
    eng.credit(1, USDC, 1_000_000)          # 1 USDC
    eng.credit(1, AMZNX, 2_000_000)         # 2 AMZNX
    assert eng.collateral_value(1) == 0     # no prices yet
    eng.set_asset_price(USDC, 100_000_000)
    eng.set_asset_price(AMZNX, 220 * 100_000_000)
    assert eng.collateral_value(1) == 100_000_000 + 2 * 220 * 100_000_000 * 8 // 10
    assert eng.set_asset_price(AMZNX, 0)[0].reason == Reject.INVALID_PRICE
    assert eng.set_asset_price(5, 1)[0].reason == Reject.UNKNOWN_ASSET


def test_snapshot_round_trip_keeps_balances_and_behaviour():
    eng, iid = funded()
    eng.new_order(iid, 1, Side.SELL, 1_000, PX + 100)
    eng.new_order(iid, 2, Side.BUY, 700, PX - 100, client_order_id=5)
    eng.set_asset_price(AMZNX, 22_000_000_000)
    copy = MatchingEngine.from_snapshot(eng.snapshot())
    assert copy.state_hash() == eng.state_hash()
    a = eng.new_order(iid, 3, Side.BUY, 2_000, PX + 100)
    b = copy.new_order(iid, 3, Side.BUY, 2_000, PX + 100)
    assert a == b and copy.state_hash() == eng.state_hash()
    with pytest.raises(ValueError):
        MatchingEngine.from_snapshot(b"\x00garbage")


@pytest.mark.parametrize("field, value", [("instrument", 7), ("instrument", -1), ("side", 3), ("account", 10**6),
                                          ("account", 5_000), ("account", 3), ("leaves", 0)])
def test_snapshot_with_an_impossible_order_is_refused(field, value):
    import msgspec
    import numpy as np

    from engine.core import snapshot as snap

    eng, iid = funded()
    eng.new_order(iid, 1, Side.SELL, 1_000, PX + 100)
    decoded = snap.DECODER.decode(eng.snapshot())
    orders = np.frombuffer(decoded.orders, dtype=snap.ORDER_DTYPE).copy()
    orders[field] = value
    bad = snap.ENCODER.encode(msgspec.structs.replace(decoded, orders=orders.tobytes()))
    with pytest.raises(ValueError, match="not valid for this engine|inconsistent"):
        MatchingEngine.from_snapshot(bad)
    with pytest.raises(ValueError, match="whole records"):
        MatchingEngine.from_snapshot(snap.ENCODER.encode(msgspec.structs.replace(decoded, orders=b"\x01" * 7)))


@pytest.mark.parametrize("corrupt", [
    lambda d, np, snap: {"instrument_state": d.instrument_state * 3},
    lambda d, np, snap: {"instrument_state": _state(d, np, snap, state=300)},
    lambda d, np, snap: {"instrument_state": _state(d, np, snap, state=0)},
    lambda d, np, snap: {"instrument_state": _state(d, np, snap, reference=-5)},
    lambda d, np, snap: {"open_accounts": np.array([-(10**12)], np.int64).tobytes(), "totals": b"", "reserved": b""},
    lambda d, np, snap: {"net_credits": d.net_credits * 2},
    lambda d, np, snap: {"usd_prices": d.usd_prices[:-8]},
    lambda d, np, snap: {"max_orders": 2**40},
    lambda d, np, snap: {"risk": False},
])
def test_corrupt_snapshot_state_is_refused_before_it_is_applied(corrupt):
    """Each part of a snapshot is checked against the engine it rebuilds before
    it reaches the C structures (found by review: such input wrote out of bounds)."""
    import msgspec
    import numpy as np

    from engine.core import snapshot as snap

    eng, iid = funded()
    eng.new_order(iid, 1, Side.SELL, 1_000, PX + 100)
    decoded = snap.DECODER.decode(eng.snapshot())
    bad = snap.ENCODER.encode(msgspec.structs.replace(decoded, **corrupt(decoded, np, snap)))
    with pytest.raises(ValueError):
        MatchingEngine.from_snapshot(bad)


def _state(decoded, np, snap, **values) -> bytes:
    states = np.frombuffer(decoded.instrument_state, dtype=snap.INSTRUMENT_STATE_DTYPE).copy()
    for name, value in values.items():
        states[name][0] = value
    return states.tobytes()


# -- random sequences ---------------------------------------------------------------

class RiskMachine(RuleBasedStateMachine):
    """Random commands, good and bad; balances rebuilt from events must match."""

    def __init__(self):
        super().__init__()
        self.eng, self.iid = make_engine(maker_bps=-1, taker_bps=4, accounts=(1, 2, 3, 4))
        terms = [InstrumentTerms.of(spec, (USDC_ASSET, AMZNX_ASSET)) for spec in self.eng.instruments]
        self.terms = terms[self.iid]
        # a tick of $0.01 x 0.001 share is 10 USDC units; 0.001 share is 1,000 AMZNX units
        assert self.terms.units == InstrumentUnits(AMZNX, USDC, 1_000, 10)
        self.ledger = LedgerModel(terms, fee_account=FEE)   # totals rebuilt from events only
        self.freezes = FreezeModel((1, 2, 3, 4), FEE)

    def apply(self, events):
        for e in events:
            self.ledger.apply(e)
            assert not self.freezes.trades(e), f"a frozen account moved after its freeze: {e}"
            if e.kind == EventKind.FILL:
                assert (e.fee, e.maker_fee) == fill_fees(self.terms, e.price, e.qty)
        self.eng.check_integrity()

    def refused_if_frozen(self, kind, account, events):
        """A command the freeze model refuses is refused by the engine, alone."""
        reason = self.freezes.refusal(kind, account)
        if reason:
            assert [(e.kind, e.reason, e.account) for e in events] == [(EventKind.REJECTED, reason, account)]

    @initialize(funded=st.lists(st.booleans(), min_size=4, max_size=4))
    def fund(self, funded):
        """Fund some accounts well, so that orders rest and trade (the credit rule's
        random amounts alone rarely afford one)."""
        for acct, rich in zip((1, 2, 3, 4), funded):
            if rich:
                self.apply(self.eng.credit(acct, USDC, 100_000_000_000))
                self.apply(self.eng.credit(acct, AMZNX, 1_000_000_000))

    @rule(account=st.integers(0, 5), asset=st.integers(-1, 2), amount=st.integers(-10, 3_000_000_000))
    def credit(self, account, asset, amount):
        self.apply(self.eng.credit(account, asset, amount))

    @rule(account=st.integers(0, 5), asset=st.integers(0, 1), amount=st.integers(1, 2_000_000_000))
    def debit(self, account, asset, amount):
        events = self.eng.debit(account, asset, amount)
        if 0 < account < 5:
            self.refused_if_frozen(CommandKind.DEBIT, account, events)
        self.apply(events)

    @rule(account=st.integers(1, 5), side=st.sampled_from([Side.BUY, Side.SELL]),
          qty=st.integers(-1, 5_000), ticks=st.integers(-30, 30),
          tif=st.sampled_from(list(TimeInForce)), market=st.booleans(),
          stp=st.sampled_from(list(SelfTrade)))
    def order(self, account, side, qty, ticks, tif, market, stp):
        if market:
            ev = self.eng.new_order(self.iid, account, side, qty, order_type=OrderType.MARKET,
                                    tif=TimeInForce.IOC if tif != TimeInForce.FOK else tif, stp=stp)
        else:
            ev = self.eng.new_order(self.iid, account, side, qty, PX + 100 * ticks, tif=tif, stp=stp)
        if account < 5:
            self.refused_if_frozen(CommandKind.NEW_ORDER, account, ev)
        self.apply(ev)

    @rule(account=st.integers(1, 4), data=st.data())
    def cancel_or_amend(self, account, data):
        orders = self.eng.open_orders(account)
        if not orders:
            return
        o = data.draw(st.sampled_from(orders))
        if data.draw(st.booleans()):
            self.apply(self.eng.cancel(account, o.order_id))
        else:
            self.apply(self.eng.amend(account, o.order_id, qty=data.draw(st.integers(0, 6_000)),
                                      price=data.draw(st.sampled_from([0, PX - 500, PX, PX + 300]))))

    @rule(account=st.integers(1, 4))
    def mass_cancel(self, account):
        self.apply(self.eng.mass_cancel(account))

    @rule(account=st.integers(-1, 5), ts=st.integers(0, 2**40))
    def freeze(self, account, ts):
        """Freezes interleaved with everything else (accounts 1-4 open, 0 the fee
        account, -1 and 5 unknown): the engine's events are the model's, exactly."""
        seq = self.eng.last_seq + 1
        resting = self.eng.open_orders(account) if 0 <= account < 5 else []
        expected = self.freezes.freeze(account, resting, seq, ts)
        assert self.eng.freeze_account(account, seq=seq, ts=ts) == expected
        self.apply(expected)
        assert self.eng.frozen_accounts == tuple(sorted(self.freezes.frozen))
        assert all(reserved == 0 for acct in self.freezes.frozen for _, reserved in self.eng.balances(acct))

    @rule()
    def restart(self):
        """A snapshot round trip keeps the frozen accounts and the state hash."""
        copy = MatchingEngine.from_snapshot(self.eng.snapshot())
        assert copy.state_hash() == self.eng.state_hash()
        assert copy.frozen_accounts == tuple(sorted(self.freezes.frozen))
        self.eng = copy

    @invariant()
    def balances_match_the_events(self):
        for acct in (0, 1, 2, 3, 4):
            for asset, (total, reserved) in enumerate(self.eng.balances(acct)):
                assert total == self.ledger.total(acct, asset)
                assert 0 <= reserved <= total

    @invariant()
    def value_is_conserved(self):
        for asset in (USDC, AMZNX):
            assert sum(self.eng.balances(a)[asset][0] for a in range(5)) == self.ledger.supply.get(asset, 0)


TestRiskMachine = RiskMachine.TestCase
TestRiskMachine.settings = settings(max_examples=120, stateful_step_count=40, deadline=None)


def test_deposits_are_credited_exactly_once_in_id_order():
    eng, _ = make_engine()
    ok = eng.credit(1, USDC, 500, deposit_id=1)
    assert (ok[0].kind, ok[0].order_id, eng.last_deposit_id) == (EventKind.CREDITED, 1, 1)
    replay = eng.credit(1, USDC, 500, deposit_id=1)
    assert (replay[0].reason, replay[0].order_id) == (Reject.DUPLICATE_DEPOSIT, 1)
    gap = eng.credit(2, USDC, 700, deposit_id=3)
    assert gap[0].reason == Reject.DEPOSIT_GAP
    assert eng.balances(1)[USDC] == (500, 0) and eng.balances(2)[USDC] == (0, 0)
    # a deposit rejected for another reason does not use up its id
    assert eng.credit(9, USDC, 700, deposit_id=2)[0].reason == Reject.UNKNOWN_ACCOUNT
    assert eng.credit(2, USDC, 700, deposit_id=2)[0].kind == EventKind.CREDITED
    untracked = eng.credit(2, USDC, 1)
    assert untracked[0].kind == EventKind.CREDITED and eng.last_deposit_id == 2
    restored = MatchingEngine.from_snapshot(eng.snapshot())
    assert restored.last_deposit_id == 2 and restored.state_hash() == eng.state_hash()
    assert restored.credit(1, USDC, 5, deposit_id=2)[0].reason == Reject.DUPLICATE_DEPOSIT


def test_skipped_deposit_uses_up_its_id_without_credit():
    eng, _ = make_engine()
    totals = [eng.balances(a) for a in (0, 1, 2, 3)]
    ev = eng.skip_deposit(1)
    assert (ev[0].kind, ev[0].order_id, eng.last_deposit_id) == (EventKind.DEPOSIT_SKIPPED, 1, 1)
    assert [eng.balances(a) for a in (0, 1, 2, 3)] == totals
    assert eng.skip_deposit(1)[0].reason == Reject.DUPLICATE_DEPOSIT
    assert eng.skip_deposit(5)[0].reason == Reject.DEPOSIT_GAP
    assert eng.credit(1, USDC, 10, deposit_id=2)[0].kind == EventKind.CREDITED
    assert MatchingEngine().skip_deposit(1)[0].reason == Reject.ACCOUNTS_DISABLED
