"""The main pool as plain Python (docs/pools.md): its NAV over balances and
option positions at mark, the NAV per share a deposit mints at and a redemption
burns at, and the amounts they move. The Cython core (engine/core/pool.pyx,
pool_api.pyx) must agree with it to the unit; tests/test_pool.py drives both and
bench/pool_nav.py times both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from engine.units import BPS, POOL_PPS_SCALE, VALUE_LIMIT

__all__ = ["Holding", "Position", "deposit_pps", "deposit_shares", "nav_usd", "redeem_pps", "redemption",
           "to_units"]


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
