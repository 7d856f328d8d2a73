"""The main pool as plain Python (docs/pools.md): its NAV over balances and
option positions at mark, the NAV per share a deposit mints at and a redemption
burns at, the amounts they move, and the rules of pending deposit and
redemption requests (who may execute or cancel which, and when). The Cython core (engine/core/pool.pyx,
pool_api.pyx) must agree with it to the unit; tests/test_pool.py drives both and
bench/pool_nav.py times both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from engine.units import BPS, POOL_PPS_SCALE, VALUE_LIMIT

__all__ = ["Holding", "Position", "Requests", "deposit_pps", "deposit_shares", "nav_usd", "redeem_pps",
           "redemption", "to_units"]


class Holding(NamedTuple):
    """A balance: ledger units, the asset's USD price (x 1e8, 0: unset) and ledger units per token."""

    amount: int
    usd_price: int
    unit_scale: int


class Position(NamedTuple):
    """An option position: contracts (negative: short), its mark (price units), the
    series' tick and quote ledger units per (tick x quantity unit), and its premium
    asset's USD price and ledger units per token."""

    pos: int
    mark: int
    tick: int
    quote_per_tick_qty: int
    usd_price: int
    unit_scale: int


def _cap(value: int) -> int:
    return max(-VALUE_LIMIT, min(VALUE_LIMIT, value))


def nav_usd(holdings: Sequence[Holding], positions: Sequence[Position]) -> int | None:
    """The pool's equity in USD x 1e8, each term floored; None when a held asset or
    a position has no price."""
    total = 0
    for h in holdings:
        if h.amount == 0:
            continue
        if h.usd_price == 0:
            return None
        total += h.amount * h.usd_price // h.unit_scale
    for p in positions:
        if p.pos == 0:
            continue
        if p.mark == 0 or p.usd_price == 0:
            return None
        total += p.pos * (p.mark // p.tick) * p.quote_per_tick_qty * p.usd_price // p.unit_scale
    return _cap(total)


def to_units(usd: int, usd_price: int, unit_scale: int) -> int:
    """USD x 1e8 in pool-asset ledger units, floored."""
    return _cap(usd * unit_scale // usd_price)


def deposit_pps(equity: int, shares: int, samples: Sequence[int]) -> int:
    """NAV per share (x 1e12) a deposit mints at: the higher of the spot (rounded
    up) and the mean of the samples; 1e12 before any share is out; 0 without
    positive equity."""
    if shares == 0:
        return POOL_PPS_SCALE
    if equity <= 0:
        return 0
    spot = _cap(-(-equity * POOL_PPS_SCALE // shares))
    return max(spot, sum(samples) // len(samples)) if samples else spot


def redeem_pps(equity: int, shares: int, samples: Sequence[int]) -> int:
    """NAV per share (x 1e12) a redemption burns at: the lower of the spot
    (rounded down) and the mean of the samples; 0 without positive equity."""
    if shares <= 0 or equity <= 0:
        return 0
    spot = _cap(equity * POOL_PPS_SCALE // shares)
    return min(spot, sum(samples) // len(samples)) if samples else spot


def deposit_shares(amount: int, pps: int) -> int:
    """Shares minted for ``amount`` pool-asset units at ``pps``, floored."""
    return amount * POOL_PPS_SCALE // pps


def redemption(shares: int, pps: int, fee_bps: int) -> tuple[int, int]:
    """(paid to the provider, withdrawal fee kept by the pool) for ``shares`` at
    ``pps``: the gross floored, the fee rounded up."""
    gross = shares * pps // POOL_PPS_SCALE
    fee = -(-gross * fee_bps // BPS)
    return gross - fee, fee


class Requests:
    """The pool's pending requests: ids from one counter for both kinds; at most one
    deposit request per account (a second is refused) and one redemption request
    (a second adds to it and restarts its cooldown). Only the owner executes or
    cancels its request; a deposit is due ``deposit_cooldown`` after its request,
    a redemption ``cooldown`` after its last one; a due deposit that can execute
    cannot be cancelled. Methods return a reject name (engine.core.types.Reject)
    or the outcome; amounts and NAVs are the caller's (the functions above)."""

    def __init__(self, cooldown: int, deposit_cooldown: int) -> None:
        self.cooldown = cooldown
        self.deposit_cooldown = deposit_cooldown
        self.next_id = 1
        self.deposits: dict[int, tuple[int, int, int]] = {}      # id -> (account, amount reserved, due ts)
        self.redemptions: dict[int, tuple[int, int, int]] = {}   # id -> (account, shares, due ts)

    def reserved(self, account: int) -> int:
        """The pool asset the account's deposit request holds reserved."""
        return sum(amount for owner, amount, _due in self.deposits.values() if owner == account)

    def requested_shares(self, account: int) -> int:
        """Shares of the account's redemption request."""
        return sum(shares for owner, shares, _due in self.redemptions.values() if owner == account)

    def request_deposit(self, account: int, amount: int, free: int, ts: int) -> int | str:
        """The new deposit request's id, or why not (``free``: the account's free pool asset)."""
        if amount <= 0:
            return "INVALID_AMOUNT"
        if any(owner == account for owner, _a, _d in self.deposits.values()):
            return "POOL_REQUEST_PENDING"
        if amount > free:
            return "INSUFFICIENT_BALANCE"
        rid, self.next_id = self.next_id, self.next_id + 1
        self.deposits[rid] = (account, amount, ts + self.deposit_cooldown)
        return rid

    def request_redemption(self, account: int, shares: int, held: int, ts: int) -> int | str:
        """The redemption request's id (an earlier one's, grown), or why not (``held``: its shares)."""
        if shares <= 0:
            return "INVALID_AMOUNT"
        if shares > held - self.requested_shares(account):
            return "INSUFFICIENT_BALANCE"
        rid = next((r for r, (owner, _s, _d) in self.redemptions.items() if owner == account), None)
        if rid is None:
            rid, self.next_id = self.next_id, self.next_id + 1
        self.redemptions[rid] = (account, shares + self.requested_shares(account), ts + self.cooldown)
        return rid

    def executable(self, rid: int, account: int, ts: int) -> str | None:
        """Why request ``rid`` cannot be executed by ``account`` at ``ts`` on the request's
        side (the pool's NAV, equity and balances may still refuse it), or None."""
        request = self.deposits.get(rid) or self.redemptions.get(rid)
        if request is None:
            return "UNKNOWN_REDEMPTION"
        if request[0] != account:
            return "NOT_ORDER_OWNER"
        return "POOL_COOLDOWN" if ts < request[2] else None

    def executed(self, rid: int) -> tuple[int, int, int]:
        """Forget an executed request; its (account, amount or shares, due)."""
        return self.deposits.pop(rid, None) or self.redemptions.pop(rid)

    def cancel(self, rid: int, account: int, ts: int, mints_now: bool) -> str | None:
        """Cancel request ``rid`` of ``account`` at ``ts``, or why not; ``mints_now``:
        whether the deposit request could execute now."""
        request = self.deposits.get(rid) or self.redemptions.get(rid)
        if request is None:
            return "UNKNOWN_REDEMPTION"
        if request[0] != account:
            return "NOT_ORDER_OWNER"
        if rid in self.deposits and ts >= request[2] and mints_now:
            return "POOL_REQUEST_DUE"
        self.executed(rid)
        return None
