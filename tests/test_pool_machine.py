"""A hypothesis state machine over the main pool (engine/core/pool_api.pyx against
engine/reference/pool.py): deposits, redemption requests and executions, the
pool's option and spot trades, mark and price moves, and NAV samples. After every
step the core's NAV equals the model's; shares held by providers are the shares
out; what all providers could redeem at NAV never exceeds the pool's equity; and
each deposit or redemption mints or pays exactly what the model says, never
lowering the equity per share of those who stay (rounding favours them) and
never paying a provider more than its pro-rata share."""

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from engine.core.types import EventKind, Side, TimeInForce
from engine.reference import pool as ref
from engine.units import POOL_PPS_SCALE
from test_pool import (CALL, COOLDOWN, DATED, FEE_BPS, POOL, PROVIDERS, PUT, REFERENCE, SHARE, SPOT,
                             TRADER, TSLA, USD, USDC, make_engine, reference_nav, shares_of)

WINDOW = 3


class PoolMachine(RuleBasedStateMachine):
    @initialize()
    def start(self):
        self.eng = make_engine(window=WINDOW)
        self.ts = 1
        self.samples = []
        self.requests = []

    def tick(self, step=1):
        self.ts += step
        return self.ts

    def state(self):
        info = self.eng.pool_info()
        return info.equity, info.shares

    @rule(provider=st.sampled_from(PROVIDERS), amount=st.integers(1, 10**11))
    def deposit(self, provider, amount):
        equity, shares = self.state()
        events = self.eng.pool_deposit(provider, SHARE, amount, ts=self.tick())
        if events[0].kind == EventKind.REJECTED:
            return
        event("deposit accepted")
        pps = ref.deposit_pps(equity, shares, self.samples)
        minted = ref.deposit_shares(amount, pps)
        assert [(e.asset, e.qty) for e in events] == [(USDC, amount), (SHARE, -minted)]
        after_equity, after_shares = self.state()
        assert after_shares == shares + minted
        if shares:
            # The providers already in lose nothing to the newcomer.
            assert after_equity * shares >= equity * after_shares

    @rule(provider=st.sampled_from(PROVIDERS), part=st.integers(1, 4))
    def request(self, provider, part):
        held = shares_of(self.eng, provider)
        events = self.eng.pool_redeem(provider, SHARE, held // part, ts=self.tick())
        if events[0].kind == EventKind.POOL_REDEEM_REQUESTED and events[0].order_id not in self.requests:
            # A second request of the account adds to its first: the same id.
            self.requests.append(events[0].order_id)

    @precondition(lambda self: self.requests)
    @rule(data=st.data())
    def execute(self, data):
        rid = data.draw(st.sampled_from(self.requests))
        _, account, shares, _due = next(r for r in self.eng.pool_info().pending if r[0] == rid)
        equity, out = self.state()
        held = shares_of(self.eng, account)
        events = self.eng.pool_redeem(account, SHARE, 0, rid, ts=self.tick(COOLDOWN))
        if events[0].kind == EventKind.REJECTED:
            return
        self.requests.remove(rid)
        event("redemption executed")
        paid, fee = ref.redemption(shares, ref.redeem_pps(equity, out, self.samples), FEE_BPS)
        assert [(e.asset, e.qty, e.fee) for e in events] == [(SHARE, shares, 0), (USDC, -paid, fee)]
        assert shares <= held
        # Never more than its pro-rata share of the equity, and the others lose nothing.
        assert (paid + fee) * out <= shares * equity
        after_equity, after_out = self.state()
        if after_out:
            assert after_equity * out >= equity * after_out

    @rule(option=st.sampled_from((CALL, PUT, DATED)), pool_sells=st.booleans(), lots=st.integers(1, 20),
          move=st.integers(-500, 500))
    def option_trade(self, option, pool_sells, lots, move):
        price = REFERENCE[option] * (10_000 + move) // 10_000 // 100 * 100
        seller, buyer = (POOL, TRADER) if pool_sells else (TRADER, POOL)
        ts = self.tick()
        self.eng.new_order(option, buyer, Side.BUY, lots * 10, price, ts=ts)
        self.eng.new_order(option, seller, Side.SELL, lots * 10, price, tif=TimeInForce.IOC, ts=ts)
        self.eng.mass_cancel(buyer, option, ts=ts)

    @rule(pool_buys=st.booleans(), lots=st.integers(1, 100))
    def hedge(self, pool_buys, lots):
        seller, buyer = (TRADER, POOL) if pool_buys else (POOL, TRADER)
        ts = self.tick()
        self.eng.new_order(SPOT, buyer, Side.BUY, lots * 10, REFERENCE[SPOT], ts=ts)
        self.eng.new_order(SPOT, seller, Side.SELL, lots * 10, REFERENCE[SPOT], tif=TimeInForce.IOC, ts=ts)
        self.eng.mass_cancel(buyer, SPOT, ts=ts)

    @rule(option=st.sampled_from((CALL, PUT, DATED)), pct=st.integers(20, 300))
    def mark(self, option, pct):
        self.eng.set_reference_price(option, REFERENCE[option] * pct // 100 // 100 * 100, ts=self.tick())

    @rule(pct=st.integers(50, 150))
    def tsla_price(self, pct):
        self.eng.set_asset_price(TSLA, 250 * USD * pct // 100, ts=self.tick())

    @rule()
    def sample(self):
        equity, shares = self.state()
        self.eng.pool_mark(SHARE, ts=self.tick())
        if shares > 0 and equity > 0:
            self.samples = (self.samples + [equity * POOL_PPS_SCALE // shares])[-WINDOW:]

    @invariant()
    def nav_is_the_models_and_shares_are_covered(self):
        self.eng.check_integrity()
        usd, equity, shares = self.eng.pool_nav()
        assert usd == reference_nav(self.eng)
        assert shares == sum(shares_of(self.eng, p) for p in PROVIDERS)
        assert self.eng.pool_info().twap_pps == (sum(self.samples) // len(self.samples) if self.samples else 0)
        if shares and equity > 0:
            # shares x NAV per share == equity, up to the flooring of each provider's part.
            assert sum(shares_of(self.eng, p) * equity // shares for p in PROVIDERS) <= equity


TestPoolMachine = PoolMachine.TestCase
TestPoolMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
