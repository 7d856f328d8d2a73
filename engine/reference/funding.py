"""Funding of perpetual option series as plain Python (docs/funding.md): the
cumulative funding index, position settlement with its rounding rule, and
the FUND command. The Cython core (engine/core/funding.pyx) must agree with it
to the unit; tests/test_funding.py drives both."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.units import FUNDING_INDEX_SCALE, VALUE_LIMIT

__all__ = ["FundingModel", "Held", "funding_step", "settlement", "unpaid_value"]

STEP_PERIODS_CAP = 1 << 20
"""Elapsed time beyond this many funding periods accrues no more (keeps 128-bit arithmetic in range)."""


def funding_step(time_value: int, quote_per_tick_qty: int, tick: int, elapsed_ns: int, period_ns: int) -> int:
    """Index units (premium ledger units x 1e-6 per quantity unit) accrued in
    ``elapsed_ns`` at a time value (mark - payoff, price units) over a funding
    period: ``floor(floor(time_value x quote_per_tick_qty x 1e6 / tick) x
    elapsed / period)``; nothing for no time or no time value."""
    if elapsed_ns <= 0 or time_value == 0:
        return 0
    rate = time_value * quote_per_tick_qty * FUNDING_INDEX_SCALE // tick
    if elapsed_ns // period_ns >= STEP_PERIODS_CAP:
        return rate * STEP_PERIODS_CAP
    return rate * elapsed_ns // period_ns


def settlement(owed: int, free: int, total: int, pool_free: int) -> int:
    """Premium ledger units an account pays (negative: receives) for ``owed``
    index units: a payer ``ceil(owed / 1e6)`` at most its free balance (never
    below 0), a receiver ``floor(-owed / 1e6)`` at most what keeps its total
    under 2**62 and at most ``pool_free``, the free balance of the fee account
    that holds the pool's money. The rest of owed stays with the position (its carry)."""
    if owed > 0:
        return min(-(-owed // FUNDING_INDEX_SCALE), max(free, 0))
    if owed < 0:
        return -min(-owed // FUNDING_INDEX_SCALE, VALUE_LIMIT - total, max(pool_free, 0))
    return 0


def unpaid_value(carry: int, usd_price: int, unit_scale: int) -> int:
    """USD x 1e8 a position's unpaid funding adds to both margin requirements:
    ``ceil(ceil(carry / 1e6) x usd_price / unit_scale)`` of the premium asset
    (``unit_scale`` = 10**ledger_decimals); nothing unless carry > 0."""
    if carry <= 0:
        return 0
    units = -(-carry // FUNDING_INDEX_SCALE)
    return -(-units * usd_price // unit_scale)


@dataclass
class Held:
    """One account's position in the series and its funding."""

    pos: int = 0
    entry: int = 0
    carry: int = 0


@dataclass
class FundingModel:
    """One perpetual series: instrument terms, index, rate, pool and positions."""

    period_ns: int
    quote_per_tick_qty: int
    tick: int
    max_price: int
    index: int = 0
    index_ts: int = 0
    time_value: int = 0
    pool: int = 0
    held: dict[int, Held] = field(default_factory=dict)

    def index_at(self, ts: int) -> int:
        """The index at ``ts``: the last FUND's plus the step since, at most 2**62."""
        step = funding_step(self.time_value, self.quote_per_tick_qty, self.tick, ts - self.index_ts, self.period_ns)
        return min(self.index + step, VALUE_LIMIT)

    def open_interest(self) -> int:
        """The sum of the long positions."""
        return sum(max(h.pos, 0) for h in self.held.values())

    def settle(self, account: int, index: int, free: int, total: int, pool_free: int) -> int:
        """Settle the account at ``index``; returns what it paid into the pool
        (the fee account, whose free premium balance is ``pool_free``)."""
        h = self.held.setdefault(account, Held())
        owed = h.pos * (index - h.entry) + h.carry
        amount = settlement(owed, free, total, pool_free)
        h.entry = index
        h.carry = owed - amount * FUNDING_INDEX_SCALE
        self.pool += amount
        return amount

    def fill(self, buyer: int, seller: int, qty: int) -> None:
        """Move qty contracts from seller to buyer (after both were settled)."""
        self.held.setdefault(buyer, Held()).pos += qty
        self.held.setdefault(seller, Held()).pos -= qty

    def fund(self, mark: int, payoff: int, ts: int) -> int | None:
        """FUND: the new index, or None when the engine must reject it (invalid
        prices, or a step that overflows). The caller then settles every
        account of ``due``, in its order."""
        if payoff < 0 or mark < payoff or mark > self.max_price:
            return None
        step = funding_step(self.time_value, self.quote_per_tick_qty, self.tick, ts - self.index_ts, self.period_ns)
        oi = self.open_interest()
        if self.index + step > VALUE_LIMIT or (oi and step > VALUE_LIMIT // oi):
            return None
        self.index += step
        self.index_ts = max(self.index_ts, ts)
        self.time_value = mark - payoff
        return self.index

    def due(self, index: int) -> list[int]:
        """Accounts a FUND at ``index`` settles, in order: those with a position
        or unpaid funding that owe at ``index`` (payers), then the others, each
        group in account order, so receivers are paid from what payers paid in."""
        due = sorted(a for a, h in self.held.items() if h.pos or h.carry > 0)
        owing = {a for a in due if self.held[a].pos * (index - self.held[a].entry) + self.held[a].carry > 0}
        return [a for a in due if a in owing] + [a for a in due if a not in owing]

    def unsettled(self) -> int:
        """pool x 1e6 + what every position owes at any common index: 0 when
        nothing was made or lost (positions sum to zero, so the index drops out)."""
        return self.pool * FUNDING_INDEX_SCALE + sum(h.carry - h.pos * h.entry for h in self.held.values())
