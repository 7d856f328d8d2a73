"""Funding of perpetual option series (engine/core/funding.pyx against
engine/reference/funding.py): the FUND command, settlement on fills, unpaid
funding, margin of longs, snapshots, and a hypothesis state machine showing
that funding paid equals funding received plus the pool, to the unit."""

import msgspec
import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.core import snapshot as snap
from engine.core.matcher import MatchingEngine
from engine.core.types import EventKind, Reject, Side, TimeInForce
from engine.defaults import DEFAULT_ASSETS, DEFAULT_OPTIONS, perpetual_series, stock_pair
from engine.instruments import OptionTerms
from engine.reference.funding import FundingModel, Held, funding_step, settlement, unpaid_value
from engine.reference.margin import Exposure, margin_state
from engine.units import FUNDING_INDEX_SCALE, NS_PER_S, VALUE_LIMIT

ASSET = {spec.symbol: i for i, spec in enumerate(DEFAULT_ASSETS)}
USDC, TSLA, WBTC = ASSET["USDC"], ASSET["TSLA.M"], ASSET["WBTC"]
USD = 10**8
PERIOD_S = 3 * 86_400
HOUR = 3_600 * NS_PER_S
SPOT, CALL, PUT, DATED = range(4)
SPECS = (stock_pair("TSLA.M"), perpetual_series("WBTC", "BTC", "100000", "C", PERIOD_S),
         perpetual_series("TSLA.M", "TSLA.M", "250", "P", 86_400), DEFAULT_OPTIONS[0])
PERPETUALS = (CALL, PUT)
REFERENCE = {SPOT: 2_500_000, CALL: 20_000_000, PUT: 1_600_000, DATED: 20_000_000}
MARGINS = {CALL: (200 * USD, 150 * USD), PUT: (40 * USD, 30 * USD), DATED: (150 * USD, 100 * USD)}
ACCOUNTS = (1, 2, 3, 4)
MAKER = 9                    # quotes the books a liquidation trades on
FEE = 0                      # the fee account: holds the funding pools' money
EVERYONE = ACCOUNTS + (MAKER,)


def make_engine():
    eng = MatchingEngine(risk=True, fee_account=FEE)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    for spec in SPECS:
        eng.add_instrument(spec)
    for acct in EVERYONE:
        eng.open_account(acct)
    eng.set_asset_price(USDC, USD)
    eng.set_asset_price(TSLA, 250 * USD)
    eng.set_asset_price(WBTC, 90_000 * USD)
    for iid, price in REFERENCE.items():
        eng.set_reference_price(iid, price)
    for iid, (initial, maintenance) in MARGINS.items():
        eng.set_option_risk(iid, initial, maintenance)
    return eng


def model_of(eng, iid):
    _, _, _, qpt, tick = eng.instrument_units(iid)
    return FundingModel(period_ns=eng.funding_state(iid).period_ns, quote_per_tick_qty=qpt, tick=tick,
                        max_price=SPECS[iid].max_price)


def trade(eng, seller, buyer, iid, qty, price, ts):
    """A resting bid of ``buyer`` hit by an IOC sell of ``seller``: one fill at most."""
    bid = eng.new_order(iid, buyer, Side.BUY, qty, price, ts=ts)
    events = eng.new_order(iid, seller, Side.SELL, qty, price, tif=TimeInForce.IOC, ts=ts)
    eng.mass_cancel(buyer, iid, ts=ts)
    return bid + events


def settled(events):
    return [(e.account, e.qty) for e in events if e.kind == EventKind.FUNDING_SETTLED]


def usdc(eng, acct):
    return eng.balances(acct)[USDC]


def fees(eng):
    """USDC the fee account holds beyond the funding pools: the fees it collected."""
    return usdc(eng, FEE)[0] - sum(eng.funding_state(iid).pool for iid in PERPETUALS)


# -- the perpetual series spec --


def test_a_series_has_an_expiry_or_a_funding_period():
    assert OptionTerms(strike="1", right="C", funding_period_s=60).is_perpetual
    assert not OptionTerms(expiry="2026-12-31", strike="1", right="C").is_perpetual
    with pytest.raises(ValueError, match="no expiry"):
        OptionTerms(expiry="2026-12-31", strike="1", right="C", funding_period_s=60)
    with pytest.raises(ValueError, match="ISO date"):
        OptionTerms(strike="1", right="C")
    with pytest.raises(ValueError, match="funding_period_s"):
        OptionTerms(strike="1", right="C", funding_period_s=-1)



def test_a_perpetual_series_never_expires_so_it_cannot_be_settled():
    """SETTLE_SERIES of a perpetual series (expiry instant 0) is refused and changes nothing:
    settling would close its positions without their funding. Delisting stays its only end."""
    eng = make_engine()
    for acct in (1, 2):
        eng.credit(acct, USDC, 10**12)
    trade(eng, 2, 1, CALL, 100, REFERENCE[CALL], ts=HOUR)
    assert eng.open_interest(CALL) == 100
    before = [(eng.positions(acct), eng.balances(acct)) for acct in EVERYONE]
    for ts in (HOUR, 100 * 365 * 24 * HOUR):
        events = eng.settle_series(CALL, REFERENCE[CALL], ts=ts)
        assert [e.kind for e in events] == [EventKind.REJECTED]
        assert events[0].reason == Reject.NOT_EXPIRED
    assert [(eng.positions(acct), eng.balances(acct)) for acct in EVERYONE] == before
    assert eng.series_status(CALL)[0] == 0 and eng.open_interest(CALL) == 100


# -- FUND --


def test_an_hour_of_funding_moves_time_value_over_the_period_from_longs_to_shorts():
    eng = make_engine()
    eng.credit(1, USDC, 10**12)
    eng.credit(2, USDC, 10**12)
    trade(eng, 2, 1, CALL, 100, 20_000_000, ts=HOUR)           # one contract: 100 units of 0.01
    assert settled(eng.fund(CALL, 20_000_000, 0, ts=HOUR)) == []  # sets the rate; nothing accrued yet
    before = usdc(eng, 1)[0], usdc(eng, 2)[0]
    events = eng.fund(CALL, 20_000_000, 0, ts=2 * HOUR)
    # $2,000 of time value a contract over 3 days: $27.777... an hour, in USDC
    # ledger units (1e-6): the long pays 27,777,778 (rounded up), the short gets
    # 27,777,777 (rounded down); the unit between them stays in the pool.
    assert settled(events) == [(1, 27_777_778), (2, -27_777_777)]
    assert (usdc(eng, 1)[0], usdc(eng, 2)[0]) == (before[0] - 27_777_778, before[1] + 27_777_777)
    state = eng.funding_state(CALL)
    assert (state.index, state.pool, state.open_interest) == (277_777_777_777, 1, 100)
    assert eng.funding_position(1, CALL) == (277_777_777_777, -222_300)
    assert eng.funding_position(2, CALL) == (277_777_777_777, -777_700)
    eng.check_integrity()


@pytest.mark.parametrize("iid, mark, payoff, reason", [
    (DATED, 20_000_000, 0, Reject.NOT_PERPETUAL),
    (SPOT, 2_500_000, 0, Reject.NOT_PERPETUAL),
    (CALL, 10_000_000, 10_000_100, Reject.INVALID_FUNDING),
    (CALL, 20_000_000, -1, Reject.INVALID_FUNDING),
    (CALL, SPECS[CALL].max_price + 1, 0, Reject.INVALID_FUNDING),
    (99, 1, 0, Reject.UNKNOWN_INSTRUMENT),
])
def test_fund_rejects_change_nothing(iid, mark, payoff, reason):
    eng = make_engine()
    eng.credit(1, USDC, 10**12)
    eng.credit(2, USDC, 10**12)
    trade(eng, 2, 1, CALL, 100, 20_000_000, ts=HOUR)
    eng.fund(CALL, 20_000_000, 0, ts=HOUR)
    before = [(eng.funding_state(i), [eng.funding_position(a, i) for a in ACCOUNTS]) for i in PERPETUALS]
    balances = [eng.balances(a) for a in ACCOUNTS]
    (event,) = eng.fund(iid, mark, payoff, ts=2 * HOUR)
    assert (event.kind, event.reason) == (EventKind.REJECTED, reason)
    assert [(eng.funding_state(i), [eng.funding_position(a, i) for a in ACCOUNTS]) for i in PERPETUALS] == before
    assert [eng.balances(a) for a in ACCOUNTS] == balances


def test_fund_needs_accounts():
    eng = MatchingEngine()
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    eng.add_instrument(SPECS[CALL])
    (event,) = eng.fund(0, 1, 0)
    assert event.reason == Reject.ACCOUNTS_DISABLED


def test_a_fill_settles_both_accounts_at_its_own_timestamp():
    eng = make_engine()
    for acct in (1, 2, 3):
        eng.credit(acct, USDC, 10**12)
    trade(eng, 2, 1, CALL, 100, 20_000_000, ts=HOUR)
    eng.fund(CALL, 20_000_000, 0, ts=HOUR)
    # Half an hour later the long sells its contract to account 3: it pays its
    # half hour then and owes nothing after; the short is settled at the next FUND.
    events = trade(eng, 1, 3, CALL, 100, 20_000_000, ts=HOUR + HOUR // 2)
    assert settled(events) == [(1, 13_888_889)]
    assert eng.funding_state(CALL).pool == 13_888_889
    events = eng.fund(CALL, 20_000_000, 0, ts=2 * HOUR)
    assert settled(events) == [(3, 13_888_889), (2, -27_777_777)]   # payers first
    assert eng.funding_state(CALL).pool == 1     # what each side's rounding left
    assert usdc(eng, FEE)[0] == fees(eng) + 1    # the fee account holds the pool's money
    eng.check_integrity()


def test_unpaid_funding_is_carried_and_paid_once_the_account_has_premium():
    eng = make_engine()
    eng.credit(2, USDC, 10**12)
    eng.credit(1, TSLA, 200 * 10**6)         # 200 TSLA.M: the long's margin
    eng.credit(1, USDC, 20_006_000)          # the premium of 0.01 contract at $2,000 a contract, and the fee reserve
    trade(eng, 2, 1, CALL, 1, 20_000_000, ts=0)
    assert eng.positions(1)[0].position == 1 and usdc(eng, 1)[0] == 6_000
    eng.fund(CALL, 20_000_000, 0, ts=0)
    events = eng.fund(CALL, 20_000_000, 0, ts=24 * HOUR)
    # A day of funding on 0.01 contract is $6.666..., 6,666,666,666,666 index
    # units owed; the long has 6,000 units of USDC: it pays them and carries the
    # rest. The short is paid from the pool's holder, the fee account: the long's
    # 6,000 and the 6,000 of fees it holds, so the pool is 6,000 short and no
    # balance is negative (on chain neither); the short's rest is a credit.
    assert settled(events) == [(1, 6_000), (2, -12_000)]
    assert eng.funding_position(1, CALL)[1] == 6_660_666_666_666
    assert eng.funding_position(2, CALL)[1] == -6_654_666_666_666
    assert eng.funding_state(CALL).pool == -6_000 and usdc(eng, FEE)[0] == 0
    eng.check_integrity()
    eng.credit(1, USDC, 5_000_000)
    events = eng.fund(CALL, 20_000_000, 0, ts=24 * HOUR)
    assert settled(events) == [(1, 5_000_000), (2, -5_000_000)]   # what it has; the rest stays carried
    eng.credit(1, USDC, 5_000_000)
    events = eng.fund(CALL, 20_000_000, 0, ts=24 * HOUR)
    assert settled(events) == [(1, 1_660_667), (2, -1_654_666)]
    assert eng.funding_position(1, CALL)[1] == -333_334
    assert eng.funding_state(CALL).pool == 1 and usdc(eng, FEE)[0] == 6_001   # the fees fronted are back
    eng.check_integrity()


def test_a_frozen_account_settles_its_funding_at_the_freeze_and_nothing_after():
    eng = make_engine()
    for acct in (FEE, 1, 2):
        eng.credit(acct, USDC, 10**12)
    trade(eng, 2, 1, CALL, 100, 20_000_000, ts=HOUR)
    eng.fund(CALL, 20_000_000, 0, ts=HOUR)
    # The long's wallet requests an exit: its half hour is settled before the
    # freeze (so the settlement job sees it before the freeze record), then none.
    events = eng.freeze_account(1, ts=HOUR + HOUR // 2)
    assert [(e.kind, e.account, e.qty) for e in events][:2] == [
        (EventKind.FUNDING_SETTLED, 1, 13_888_889), (EventKind.ACCOUNT_FROZEN, 1, 0)]
    frozen = usdc(eng, 1)
    # The short is still paid in full, two hours of 27,777,777.7 units less a sub-unit
    # credit: the pool, that is the fee account, pays the frozen long's part.
    paid = [settled(eng.fund(CALL, 20_000_000, 0, ts=hour * HOUR)) for hour in (2, 3)]
    assert [acct for rows in paid for acct, _ in rows] == [2, 2]
    assert sum(amount for rows in paid for _, amount in rows) == -55_555_555
    assert usdc(eng, 1) == frozen
    entry, carry = eng.funding_position(1, CALL)
    assert entry == eng.funding_state(CALL).index and -FUNDING_INDEX_SCALE < carry <= 0   # booked to the pool
    eng.check_integrity()


def test_unpaid_funding_counts_in_the_margin_and_a_liquidation_sells_the_long():
    eng = make_engine()
    eng.credit(2, USDC, 10**12)
    eng.credit(3, USDC, 10**12)
    eng.credit(1, TSLA, 200 * 10**6)          # the long's margin: 200 TSLA.M
    eng.credit(1, USDC, 20_006_000)           # the premium of 0.01 contract and the fee reserve
    trade(eng, 2, 1, CALL, 1, 20_000_000, ts=0)
    eng.fund(CALL, 20_000_000, 0, ts=0)
    eng.fund(CALL, 20_000_000, 0, ts=24 * HOUR)
    carry = eng.funding_position(1, CALL)[1]
    assert carry == 6_660_666_666_666             # 6,660,667 units of USDC unpaid ($6.66)
    unpaid = unpaid_value(carry, USD, 10**6)
    assert unpaid == 666_066_700
    exposures = {p.instrument: Exposure(p.position, p.open_sells, p.open_buys) for p in eng.positions(1)}
    assert eng.margin(1) == margin_state(DEFAULT_ASSETS, eng.balances(1), exposures,
                                         [eng.asset_price(a) for a in range(len(DEFAULT_ASSETS))], MARGINS,
                                         PERPETUALS, unpaid)
    # TSLA.M falls to $1: collateral $140 < maintenance $156.66; account 3 bids for the call.
    eng.set_asset_price(TSLA, USD)
    assert [a for a, _ in eng.under_maintenance()] == [1]
    eng.new_order(CALL, 3, Side.BUY, 1, 18_000_000)
    events = eng.liquidate(1, ts=24 * HOUR)
    (fill,) = [e for e in events if e.kind == EventKind.FILL]
    assert (fill.account, fill.side, fill.qty) == (1, Side.SELL, 1)
    assert eng.positions(1) == []
    # The sale's premium is free at the next funding: the unpaid funding is paid.
    events = eng.fund(CALL, 20_000_000, 0, ts=24 * HOUR)
    assert settled(events)[0] == (1, 6_660_667)
    assert eng.funding_position(1, CALL)[1] <= 0
    eng.check_integrity()


def test_longs_of_a_perpetual_series_are_margined_but_dated_longs_are_not():
    eng = make_engine()
    eng.credit(2, USDC, 10**12)
    eng.credit(1, USDC, 3_000_000)            # $3: premium of 0.01 contract at $2 and fee, not the margin
    eng.set_reference_price(DATED, 200_000)
    eng.set_reference_price(CALL, 200_000)
    (event,) = eng.new_order(CALL, 1, Side.BUY, 1, 200_000)
    assert event.reason == Reject.INSUFFICIENT_MARGIN
    assert eng.new_order(DATED, 1, Side.BUY, 1, 200_000)[0].kind == EventKind.ACCEPTED
    eng.credit(1, USDC, 200 * 10**6)          # $200: the call's initial margin per 0.01 contract
    assert eng.new_order(CALL, 1, Side.BUY, 1, 200_000)[0].kind == EventKind.ACCEPTED
    assert eng.margin(1).initial == 200 * USD


def test_snapshot_keeps_funding_and_an_engine_without_perpetuals_hashes_as_before():
    eng = make_engine()
    for acct in (1, 2):
        eng.credit(acct, USDC, 10**12)
    trade(eng, 2, 1, CALL, 300, 20_000_000, ts=HOUR)
    eng.fund(CALL, 21_000_000, 1_000_000, ts=HOUR)
    trade(eng, 1, 2, CALL, 100, 20_000_000, ts=2 * HOUR)
    copy = MatchingEngine.from_snapshot(eng.snapshot())
    assert copy.state_hash() == eng.state_hash()
    assert settled(copy.fund(CALL, 1, 0, ts=3 * HOUR)) == settled(eng.fund(CALL, 1, 0, ts=3 * HOUR))
    assert copy.state_hash() == eng.state_hash()
    # Without perpetual series there is no funding section and no funding hash words.
    plain = MatchingEngine(risk=True)
    for spec in DEFAULT_ASSETS:
        plain.add_asset(spec)
    plain.add_instrument(DEFAULT_OPTIONS[0])
    assert snap.DECODER.decode(plain.snapshot()).funding == b""


def _word(series, field, delta):
    """Corrupt one word of the funding section's series rows (index, ts, time value, pool)."""
    def corrupt(words):
        words[series * 4 + field] += delta
        return words
    return corrupt


@pytest.mark.parametrize("corrupt, match", [
    (lambda words: words[:-1], "does not match"),
    (_word(0, 3, 1), "inconsistent"),             # the call's pool off by one unit: value made
    (_word(2, 0, 5), "dated series"),             # funding for the dated series
    (_word(0, 2, -10**9), "out of range"),        # a negative time value
])
def test_a_corrupt_funding_section_is_refused(corrupt, match):
    eng = make_engine()
    for acct in (1, 2):
        eng.credit(acct, USDC, 10**12)
    trade(eng, 2, 1, CALL, 100, 20_000_000, ts=HOUR)
    eng.fund(CALL, 20_000_000, 0, ts=HOUR)
    eng.fund(CALL, 20_000_000, 0, ts=2 * HOUR)
    decoded = snap.DECODER.decode(eng.snapshot())
    words = corrupt(np.frombuffer(decoded.funding, dtype=np.int64).copy())
    bad = msgspec.structs.replace(decoded, funding=words.tobytes())
    with pytest.raises(ValueError, match=match):
        MatchingEngine.from_snapshot(snap.ENCODER.encode(bad))


def test_the_reference_rounding_rule():
    pool = 10**9                                                # the fee account's free balance
    assert settlement(1, 10, 0, pool) == 1                       # a payer rounds up
    assert settlement(FUNDING_INDEX_SCALE + 1, 10, 0, pool) == 2
    assert settlement(-1, 0, 0, pool) == 0                       # a receiver rounds down
    assert settlement(-2 * FUNDING_INDEX_SCALE + 1, 0, 0, pool) == -1
    assert settlement(5 * FUNDING_INDEX_SCALE, 3, 0, pool) == 3  # at most the free balance
    assert settlement(5 * FUNDING_INDEX_SCALE, -3, 0, pool) == 0
    assert settlement(-5 * FUNDING_INDEX_SCALE, 0, VALUE_LIMIT - 2, pool) == -2
    assert settlement(-5 * FUNDING_INDEX_SCALE, 0, 0, 4) == -4     # at most what the pool's holder has
    assert settlement(-5 * FUNDING_INDEX_SCALE, 0, 0, -1) == 0
    assert funding_step(20_000_000, 100, 100, HOUR, PERIOD_S * NS_PER_S) == 277_777_777_777
    assert funding_step(1, 1, 1, 10**30, 1) == FUNDING_INDEX_SCALE << 20


# -- the state machine --


class FundingMachine(RuleBasedStateMachine):
    """Random deposits, withdrawals, trades (a resting bid hit by an IOC sell),
    FUND commands at random times, price moves with liquidations, and snapshot
    round trips. The reference predicts every FUNDING_SETTLED amount of trades
    and FUND commands from the balances before the command; after every step
    the engine's indexes, pools, entries and carries equal the reference's, and
    what was paid equals what was received plus the pools, to the unit."""

    def __init__(self):
        super().__init__()
        self.eng = make_engine()
        self.models = {iid: model_of(self.eng, iid) for iid in PERPETUALS}
        self.ts = 0
        self.paid = {iid: 0 for iid in PERPETUALS}   # sum of FUNDING_SETTLED amounts

    def tick(self, minutes):
        self.ts += minutes * 60 * NS_PER_S
        return self.ts

    def record(self, events):
        for e in events:
            if e.kind == EventKind.FUNDING_SETTLED:
                self.paid[e.instrument] += e.qty
                assert e.asset == USDC
        return events

    @initialize(usd=st.lists(st.integers(0, 40_000), min_size=4, max_size=4),
                tsla=st.lists(st.integers(0, 400), min_size=4, max_size=4))
    def start(self, usd, tsla):
        for acct, dollars, shares in zip(ACCOUNTS, usd, tsla):
            if dollars:
                self.eng.credit(acct, USDC, dollars * 10**6)
            if shares:
                self.eng.credit(acct, TSLA, shares * 10**6)
        self.eng.credit(MAKER, USDC, 10**13)

    @rule(acct=st.sampled_from(ACCOUNTS), usd=st.integers(1, 20_000), tsla=st.integers(0, 100))
    def deposit(self, acct, usd, tsla):
        self.eng.credit(acct, USDC, usd * 10**6)
        if tsla:
            self.eng.credit(acct, TSLA, tsla * 10**6)

    @rule(acct=st.sampled_from(ACCOUNTS), usd=st.integers(1, 20_000))
    def withdraw(self, acct, usd):
        assert not settled(self.eng.debit(acct, USDC, usd * 10**6))

    @rule(seller=st.sampled_from(ACCOUNTS), buyer=st.sampled_from(ACCOUNTS), iid=st.sampled_from(PERPETUALS),
          qty=st.integers(1, 40), move=st.integers(-10, 10), minutes=st.integers(0, 600))
    def trade(self, seller, buyer, iid, qty, move, minutes):
        if seller == buyer:
            return
        ts = self.tick(minutes)
        price = REFERENCE[iid] // 100 * (100 + move)
        model = self.models[iid]
        bid = self.eng.new_order(iid, buyer, Side.BUY, qty, price, ts=ts)
        free = {a: usdc(self.eng, a)[0] - usdc(self.eng, a)[1] for a in EVERYONE + (FEE,)}
        total = {a: usdc(self.eng, a)[0] for a in EVERYONE}
        events = self.record(self.eng.new_order(iid, seller, Side.SELL, qty, price, tif=TimeInForce.IOC, ts=ts))
        self.eng.mass_cancel(buyer, iid, ts=ts)
        filled = sum(e.qty for e in events if e.kind == EventKind.FILL)
        expected = []
        if filled:
            assert bid[0].kind == EventKind.ACCEPTED
            index = model.index_at(ts)
            for acct in (seller, buyer):
                amount = model.settle(acct, index, free[acct], total[acct], free[FEE])
                free[FEE] += amount
                if amount:
                    expected.append((acct, amount))
            model.fill(buyer, seller, filled)
        assert settled(events) == expected

    @rule(acct=st.sampled_from(ACCOUNTS))
    def drain(self, acct):
        """Withdraw all free USDC (TSLA.M may still back the margin): the next
        funding the account owes goes unpaid and is carried."""
        total, reserved = usdc(self.eng, acct)
        if total > reserved:
            self.eng.debit(acct, USDC, total - reserved)

    @rule(iid=st.sampled_from(PERPETUALS), mark=st.integers(0, 120), payoff=st.integers(0, 130),
          minutes=st.integers(0, 24 * 60))
    def fund(self, iid, mark, payoff, minutes):
        """FUND with a payoff of ``payoff`` percent of the mark (above 100: rejected)."""
        ts = self.tick(minutes)
        mark_px = REFERENCE[iid] // 100 * mark
        payoff_px = mark_px * payoff // 100
        model = self.models[iid]
        balances = {a: usdc(self.eng, a) for a in EVERYONE}
        fee_total, fee_reserved = usdc(self.eng, FEE)
        pool_free = fee_total - fee_reserved
        events = self.record(self.eng.fund(iid, mark_px, payoff_px, ts=ts))
        index = model.fund(mark_px, payoff_px, ts)
        if index is None:
            assert events[0].kind == EventKind.REJECTED
            assert events[0].reason in (Reject.INVALID_FUNDING, Reject.FUNDING_OVERFLOW)
            return
        expected = []
        for acct in model.due(index):
            total, reserved = balances[acct]
            amount = model.settle(acct, index, total - reserved, total, pool_free)
            pool_free += amount
            if amount:
                expected.append((acct, amount))
        assert events[0].kind == EventKind.FUNDED
        assert settled(events) == expected

    @rule(percent=st.integers(5, 150), minutes=st.integers(0, 600))
    def move_and_liquidate(self, percent, minutes):
        """TSLA.M, the collateral, moves: accounts may fall under maintenance and
        are liquidated (fills at their own index, several per command). The
        reference is then read back from the engine; the invariants check it."""
        ts = self.tick(minutes)
        self.eng.set_asset_price(TSLA, 250 * USD * percent // 100, ts=ts)
        for iid in PERPETUALS:
            self.eng.new_order(iid, MAKER, Side.SELL, 50, REFERENCE[iid], ts=ts)
        self.eng.new_order(SPOT, MAKER, Side.BUY, 500_000, REFERENCE[SPOT] // 100 * 95, ts=ts)
        for acct, _ in self.eng.under_maintenance():
            before = {iid: self.eng.funding_state(iid).pool for iid in PERPETUALS}
            events = self.record(self.eng.liquidate(acct, ts=ts))
            for iid in PERPETUALS:
                moved = sum(e.qty for e in events if e.kind == EventKind.FUNDING_SETTLED and e.instrument == iid)
                assert self.eng.funding_state(iid).pool - before[iid] == moved
        self.eng.mass_cancel(MAKER, ts=ts)
        for iid, model in self.models.items():
            for acct in EVERYONE:
                pos = next((p.position for p in self.eng.positions(acct) if p.instrument == iid), 0)
                model.held[acct] = Held(pos, *self.eng.funding_position(acct, iid))
            model.pool = self.eng.funding_state(iid).pool

    @rule()
    def snapshot_round_trip(self):
        copy = MatchingEngine.from_snapshot(self.eng.snapshot())
        assert copy.state_hash() == self.eng.state_hash()
        self.eng = copy

    @invariant()
    def engine_agrees_with_the_reference_and_nothing_is_made_or_lost(self):
        self.eng.check_integrity()          # balances == credits - debits; pool balances the positions
        for iid, model in self.models.items():
            state = self.eng.funding_state(iid)
            assert (state.index, state.index_ts, state.time_value, state.pool, state.open_interest) == (
                model.index, model.index_ts, model.time_value, model.pool, model.open_interest())
            assert self.paid[iid] == state.pool   # paid by longs == received by shorts + pool
            assert model.unsettled() == 0
            for acct in EVERYONE:
                held = model.held.get(acct)
                assert self.eng.funding_position(acct, iid) == ((held.entry, held.carry) if held else (0, 0))


TestFundingMachine = FundingMachine.TestCase
TestFundingMachine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
