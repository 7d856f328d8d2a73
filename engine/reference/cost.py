"""The cost basis of an option position in plain Python (ledger.pxd's
add_position is the fast version; docs/pools.md, "Cost basis"): the signed
premium paid for the contracts held, by the average-cost method."""

from __future__ import annotations

from engine.units import VALUE_LIMIT


def _truncated(numerator: int, denominator: int) -> int:
    # Integer division rounding toward zero, as C's (the core's cdivision).
    q = abs(numerator) // abs(denominator)
    return q if (numerator >= 0) == (denominator > 0) else -q


def add_position(pos: int, cost: int, q: int, premium: int) -> tuple[int, int]:
    """(position, cost) after trading ``q`` contracts (negative: sold) for
    ``premium`` (>= 0, paid or received). Adding to a side (or opening) adds the
    signed premium (+ bought, - sold); closing part keeps cost x remaining /
    held, truncated toward zero, the rest realised; closing all leaves 0;
    flipping keeps the new side's share of the signed premium,
    premium x new / |q|, truncated toward zero. The cost saturates at
    +-VALUE_LIMIT."""
    signed = premium if q > 0 else -premium
    after = pos + q
    if pos == 0 or (pos > 0) == (q > 0):
        return after, max(-VALUE_LIMIT, min(VALUE_LIMIT, cost + signed))
    if after == 0:
        return 0, 0
    if (after > 0) == (pos > 0):
        return after, _truncated(cost * after, pos)
    return after, _truncated(signed * after, q)


def realised(pos: int, cost: int, q: int, premium: int) -> int:
    """The profit a trade realises (premium ledger units): the signed cash it
    brings (the premium received for a sale, minus the premium paid for a
    buy) plus the change of the cost basis, so that over any trades an
    account's costs sum to the premiums it paid plus what it realised."""
    _, after = add_position(pos, cost, q, premium)
    cash = -premium if q > 0 else premium
    return cash + (after - cost)
