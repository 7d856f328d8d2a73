"""numpy layouts of what the settlement side reads from the engine and what netting returns.

Every amount is an int64 in *ledger units* of its asset (see engine/assets.py); accounts are
engine account ids (int64), assets engine asset ids (int32, < 65536 to fit the vault's uint16).
"""

from __future__ import annotations

import numpy as np

FEE_ACCOUNT = 0
"""The venue's fee account: it receives buyer_fee + seller_fee of every fill."""

FILLS_PER_SEQ = 65536
"""fill_id = engine seq * FILLS_PER_SEQ + index of the fill within that command."""

SETTLEMENT_FILL_DTYPE = np.dtype(
    [
        ("fill_id", "<u8"),
        ("buyer", "<i8"),
        ("seller", "<i8"),
        ("base_asset", "<i4"),
        ("quote_asset", "<i4"),
        ("base_amount", "<i8"),
        ("quote_amount", "<i8"),
        ("buyer_fee", "<i8"),
        ("seller_fee", "<i8"),
    ]
)
"""One fill. Effect: buyer +base_amount base, -(quote_amount + buyer_fee) quote; seller
-base_amount base, +(quote_amount - seller_fee) quote; FEE_ACCOUNT +(buyer_fee + seller_fee)
quote. Fees may be negative (rebates); quote_amount is > 0, base_amount > 0 for a
spot fill and 0 for an option fill (only the premium moves; positions stay off chain)."""

WITHDRAWAL_DTYPE = np.dtype(
    [
        ("withdrawal_id", "<u8"),
        ("account", "<i8"),
        ("asset", "<i4"),
        ("amount", "<i8"),
    ]
)
"""A debit the engine approved: `amount` > 0 leaves the account's settled balance and becomes
claimable on chain by its wallet."""

NET_DTYPE = np.dtype(
    [
        ("account", "<i8"),
        ("asset", "<i4"),
        ("delta", "<i8"),
        ("withdrawn", "<i8"),
    ]
)
"""Netting result per (account, asset): `delta` is the fills' net change of the settled balance
(per asset the deltas sum to zero), `withdrawn` the total moved to claimable."""


def fill_id(seq: int, index: int) -> int:
    """The fill id of the `index`-th fill of engine command `seq`."""
    if not 0 <= index < FILLS_PER_SEQ:
        raise ValueError(f"fill index {index} outside [0, {FILLS_PER_SEQ})")
    return seq * FILLS_PER_SEQ + index


def empty_fills(n: int) -> np.ndarray:
    """A zeroed fill array of length n."""
    return np.zeros(n, dtype=SETTLEMENT_FILL_DTYPE)


def empty_withdrawals(n: int) -> np.ndarray:
    """A zeroed withdrawal array of length n."""
    return np.zeros(n, dtype=WITHDRAWAL_DTYPE)
