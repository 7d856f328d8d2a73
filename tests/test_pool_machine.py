"""A hypothesis state machine over the main pool (engine/core/pool_api.pyx against
engine/reference/pool.py): deposit and redemption requests, their executions (by
their owner or another account, before or after their cooldown, at NAVs that
moved since the request) and cancels, the pool's option and spot trades, mark
and price moves, and NAV samples. After every step the core's NAV equals the
model's; shares held by providers are the shares out; what all providers could
redeem at NAV never exceeds the pool's equity; the pending requests and the
USDC they hold reserved are the model's (engine/reference/pool.py Requests); and
each deposit or redemption mints or pays exactly what the model says at the NAV
of its execution, never lowering the equity per share of those who stay
(rounding favours them) and never paying a provider more than its pro-rata share."""

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from engine.core.types import EventKind, Reject, Side, TimeInForce
from engine.reference import pool as ref
from engine.units import NS_PER_S, POOL_PPS_SCALE
from test_pool import (CALL, COOLDOWN, DATED, FEE_BPS, POOL, PROVIDERS, PUT, REFERENCE, SHARE, SPOT,
                             TRADER, TSLA, USD, USDC, make_engine, reference_nav, shares_of)

WINDOW = 3
DEPOSIT_COOLDOWN = 600 * NS_PER_S


class PoolMachine(RuleBasedStateMachine):
    @initialize(amounts=st.lists(st.integers(10**6, 10**11), min_size=len(PROVIDERS), max_size=len(PROVIDERS)))
    def start(self, amounts):
        self.eng = make_engine(window=WINDOW, deposit_cooldown=DEPOSIT_COOLDOWN)
        self.ts = 1
        self.samples = []
        self.model = ref.Requests(COOLDOWN, DEPOSIT_COOLDOWN)
        # Every provider starts with shares (its deposit requested and executed).
        for provider, amount in zip(PROVIDERS, amounts):
            self.request_deposit(provider, amount)
            rid = next(r for r, (owner, _a, _d) in self.model.deposits.items() if owner == provider)
            assert self.eng.pool_redeem(provider, SHARE, 0, rid, ts=self.tick(DEPOSIT_COOLDOWN))[0].kind == (
                EventKind.POOL_PAID)
            self.model.executed(rid)

    def tick(self, step=1):
        self.ts += step
        return self.ts

    def state(self):
        info = self.eng.pool_info()
        return info.equity, info.shares

    def outcome(self, events, expected):
        """Check the core refused with the model's reason, or accepted as the model did."""
        if isinstance(expected, str):
            assert [(e.kind, Reject(e.reason).name) for e in events] == [(EventKind.REJECTED, expected)], events
            return False
        assert events[0].kind != EventKind.REJECTED and events[0].order_id == expected, events
        return True

    @rule(provider=st.sampled_from(PROVIDERS),
          amount=st.integers(1, 10**11) | st.sampled_from((0, 2 * 10**13)))    # or refused: nothing, too much
    def request_deposit(self, provider, amount):
        total, reserved = self.eng.balances(provider)[USDC]
        ts = self.tick()
        expected = self.model.request_deposit(provider, amount, total - reserved, ts)
        if self.outcome(self.eng.pool_deposit(provider, SHARE, amount, ts=ts), expected):
            event("deposit requested")

    @rule(provider=st.sampled_from(PROVIDERS), part=st.integers(1, 4))
    def request_redemption(self, provider, part):
        held = shares_of(self.eng, provider)
        ts = self.tick()
        expected = self.model.request_redemption(provider, held // part, held, ts)
        self.outcome(self.eng.pool_redeem(provider, SHARE, held // part, ts=ts), expected)

    def has_requests(self):
        return bool(self.model.deposits or self.model.redemptions)

    def pick(self, data):
        """(request id, mostly its owner, sometimes another provider) of a pending request."""
        rid = data.draw(st.sampled_from(sorted({*self.model.deposits, *self.model.redemptions})))
        owner = (self.model.deposits.get(rid) or self.model.redemptions[rid])[0]
        return rid, data.draw(st.sampled_from((*[owner] * 6, *PROVIDERS)))

    def mints_now(self, amount):
        info = self.eng.pool_info()
        if not info.nav_ok or info.deposit_pps <= 0:
            return False
        minted = ref.deposit_shares(amount, info.deposit_pps)
        return 0 < minted <= self.eng.balances(POOL)[SHARE][0]

    @rule(provider=st.sampled_from(PROVIDERS), rid=st.integers(-1, 200), cancel=st.booleans())
    def unknown_request(self, provider, rid, cancel):
        if rid in self.model.deposits or rid in self.model.redemptions:
            return
        ts = self.tick()
        events = (self.eng.pool_cancel(provider, SHARE, rid, ts=ts) if cancel
                  else self.eng.pool_redeem(provider, SHARE, 0, rid, ts=ts))
        # order_id 0 is a redemption request of 0 shares, not an execution.
        self.outcome(events, "UNKNOWN_REDEMPTION" if rid or cancel else "INVALID_AMOUNT")

    @precondition(has_requests)
    @rule(data=st.data(), wait=st.sampled_from((1, DEPOSIT_COOLDOWN, COOLDOWN)))
    def execute(self, data, wait):
        rid, account = self.pick(data)
        equity, out = self.state()
        held = shares_of(self.eng, account)
        ts = self.tick(wait)
        why = self.model.executable(rid, account, ts)
        events = self.eng.pool_redeem(account, SHARE, 0, rid, ts=ts)
        if why is not None:
            event(f"execution refused: {why}")
            self.outcome(events, why)
            return
        if events[0].kind == EventKind.REJECTED:
            event(f"execution refused: {Reject(events[0].reason).name}")
            return                                   # the pool's side: NAV, equity guard, its balances
        _owner, amount, _due = self.model.executed(rid)
        after_equity, after_out = self.state()
        if events[0].asset == USDC:
            event("deposit executed")
            pps = ref.deposit_pps(equity, out, self.samples)
            minted = ref.deposit_shares(amount, pps)
            assert [(e.asset, e.qty, e.price) for e in events] == [(USDC, amount, pps), (SHARE, -minted, pps)]
            assert after_out == out + minted
            if out:
                # The providers already in lose nothing to the newcomer, whatever the NAV did meanwhile.
                assert after_equity * out >= equity * after_out
            return
        event("redemption executed")
        paid, fee = ref.redemption(amount, ref.redeem_pps(equity, out, self.samples), FEE_BPS)
        assert [(e.asset, e.qty, e.fee) for e in events] == [(SHARE, amount, 0), (USDC, -paid, fee)]
        assert amount <= held
        # Never more than its pro-rata share of the equity, and the others lose nothing.
        assert (paid + fee) * out <= amount * equity
        if after_out:
            assert after_equity * out >= equity * after_out

    @precondition(has_requests)
    @rule(data=st.data(), wait=st.sampled_from((1, DEPOSIT_COOLDOWN)))
    def cancel(self, data, wait):
        rid, account = self.pick(data)
        ts = self.tick(wait)
        deposit = self.model.deposits.get(rid)
        why = self.model.cancel(rid, account, ts, deposit is not None and self.mints_now(deposit[1]))
        events = self.eng.pool_cancel(account, SHARE, rid, ts=ts)
        if why is not None:
            self.outcome(events, why)
            return
        event("request cancelled")
        assert [(e.kind, e.order_id, e.account) for e in events] == [(EventKind.POOL_REQUEST_CANCELLED, rid, account)]

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
    def requests_and_reservations_are_the_models(self):
        info = self.eng.pool_info()
        assert info.deposits == tuple((rid, *self.model.deposits[rid]) for rid in sorted(self.model.deposits))
        assert info.pending == tuple((rid, *self.model.redemptions[rid]) for rid in sorted(self.model.redemptions))
        for p in PROVIDERS:
            assert self.eng.balances(p)[USDC][1] == self.model.reserved(p)

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
