"""Net fills and withdrawals per (account, asset): exact int64 arithmetic in numpy.

Pure numpy: nothing here imports web3. Every per-fill leg and every net result must fit in
int64; anything that does not raises NettingOverflow (numpy itself would wrap silently).
Group sums are exact: each int64 is split into three 21-bit limbs whose float64 sums (numpy's
bincount) cannot round for fewer than 2**31 legs, then recombined with carries.
"""

from __future__ import annotations

import numpy as np

from settlement.records import FEE_ACCOUNT, NET_DTYPE, SETTLEMENT_FILL_DTYPE, WITHDRAWAL_DTYPE

_LIMB_BITS = 21
_LIMB_MASK = (1 << _LIMB_BITS) - 1
_TOP_LIMIT = 1 << (63 - 2 * _LIMB_BITS)  # the top limb of an int64 lies in [-2**21, 2**21)
_MAX_LEGS = 1 << 31  # 2**21 * 2**31 < 2**53: limb sums stay exact in float64
_DENSE_KEYS = 1 << 22  # non-negative ids below this are factorized with a lookup table


class NettingError(ValueError):
    """Fills or withdrawals that cannot be netted."""


class NettingOverflow(NettingError):
    """A leg or a net amount does not fit in int64."""


class ConservationError(NettingError):
    """The deltas of an asset do not sum to zero."""


def net_fills(fills: np.ndarray, withdrawals: np.ndarray | None = None,
              fee_account: int = FEE_ACCOUNT) -> np.ndarray:
    """Net `fills` (SETTLEMENT_FILL_DTYPE) and `withdrawals` (WITHDRAWAL_DTYPE) per
    (account, asset) into a NET_DTYPE array sorted by (account, asset), without all-zero rows.

    Raise NettingError on invalid records and NettingOverflow if a leg or result leaves int64.
    """
    if withdrawals is None:
        withdrawals = np.zeros(0, dtype=WITHDRAWAL_DTYPE)
    _check_inputs(fills, withdrawals)
    n = len(fills)
    base, quote = fills["base_amount"], fills["quote_amount"]
    buyer_fee, seller_fee = fills["buyer_fee"], fills["seller_fee"]
    buyer_quote = _checked(np.subtract, -quote, buyer_fee, "-(quote_amount + buyer_fee)", fills["fill_id"])
    seller_quote = _checked(np.subtract, quote, seller_fee, "quote_amount - seller_fee", fills["fill_id"])
    fee_quote = _checked(np.add, buyer_fee, seller_fee, "buyer_fee + seller_fee", fills["fill_id"])

    accounts = np.concatenate([fills["buyer"], fills["seller"], fills["buyer"], fills["seller"],
                               np.full(n, fee_account, dtype=np.int64), withdrawals["account"]])
    assets = np.concatenate([fills["base_asset"], fills["base_asset"], fills["quote_asset"],
                             fills["quote_asset"], fills["quote_asset"], withdrawals["asset"]]).astype(np.int64)
    legs = np.concatenate([base, -base, buyer_quote, seller_quote, fee_quote])

    pair_accounts, pair_assets, codes = _factorize_pairs(accounts, assets)
    n_pairs = len(pair_accounts)
    delta = _exact_group_sum(codes[: len(legs)], legs, n_pairs)
    withdrawn = _exact_group_sum(codes[len(legs):], withdrawals["amount"], n_pairs)
    for values, what in ((delta, "net delta"), (withdrawn, "withdrawn total")):
        if values.overflow.any():
            i = int(np.flatnonzero(values.overflow)[0])
            raise NettingOverflow(f"{what} of account {pair_accounts[i]} asset {pair_assets[i]} exceeds int64")

    keep = (delta.sums != 0) | (withdrawn.sums != 0)
    out = np.empty(int(keep.sum()), dtype=NET_DTYPE)
    out["account"] = pair_accounts[keep]
    out["asset"] = pair_assets[keep]
    out["delta"] = delta.sums[keep]
    out["withdrawn"] = withdrawn.sums[keep]
    return out


def check_conservation(net: np.ndarray) -> None:
    """Raise ConservationError unless, per asset, the deltas of `net` sum to exactly zero."""
    assets, codes = _factorize(net["asset"].astype(np.int64))
    totals = _exact_group_sum(codes, net["delta"], len(assets))
    bad = totals.overflow | (totals.sums != 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ConservationError(f"deltas of asset {assets[i]} do not sum to zero")


# -- internals --


def _check_inputs(fills: np.ndarray, withdrawals: np.ndarray) -> None:
    if fills.dtype != SETTLEMENT_FILL_DTYPE:
        raise NettingError(f"fills must have SETTLEMENT_FILL_DTYPE, not {fills.dtype}")
    if withdrawals.dtype != WITHDRAWAL_DTYPE:
        raise NettingError(f"withdrawals must have WITHDRAWAL_DTYPE, not {withdrawals.dtype}")
    if 5 * len(fills) + len(withdrawals) >= _MAX_LEGS:
        raise NettingError("too many fills for one netting call")
    bad = np.flatnonzero(fills["quote_amount"] <= 0)
    if bad.size:
        raise NettingError(f"fill {fills['fill_id'][bad[0]]}: quote_amount must be > 0")
    bad = np.flatnonzero(fills["base_amount"] < 0)   # 0: an option fill moves only its premium
    if bad.size:
        raise NettingError(f"fill {fills['fill_id'][bad[0]]}: base_amount must be >= 0")
    bad = np.flatnonzero(withdrawals["amount"] <= 0)
    if bad.size:
        raise NettingError(f"withdrawal {withdrawals['withdrawal_id'][bad[0]]}: amount must be > 0")


def _checked(op, a: np.ndarray, b: np.ndarray, what: str, ids: np.ndarray) -> np.ndarray:
    """a + b or a - b in int64, raising NettingOverflow where the result wrapped."""
    result = op(a, b)
    if op is np.add:
        wrapped = ((a ^ result) & (b ^ result)) < 0
    else:
        wrapped = ((a ^ b) & (a ^ result)) < 0
    if wrapped.any():
        raise NettingOverflow(f"fill {ids[np.flatnonzero(wrapped)[0]]}: {what} exceeds int64")
    return result


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique values, index of each value in them)."""
    if values.size == 0:
        return values[:0].copy(), np.zeros(0, dtype=np.intp)
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high < max(_DENSE_KEYS, 4 * values.size):
        present = np.zeros(high + 1, dtype=bool)
        present[values] = True
        unique = np.flatnonzero(present)
        lookup = np.empty(high + 1, dtype=np.intp)
        lookup[unique] = np.arange(unique.size)
        return unique.astype(values.dtype), lookup[values]
    unique, inverse = np.unique(values, return_inverse=True)
    return unique, inverse


def _factorize_pairs(accounts: np.ndarray, assets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique (account, asset) pairs sorted by account then asset, and each row's pair index."""
    unique_accounts, account_codes = _factorize(accounts)
    unique_assets, asset_codes = _factorize(assets)
    keys = account_codes.astype(np.int64) * len(unique_assets) + asset_codes
    unique_keys, codes = _factorize(keys)
    pair_accounts = unique_accounts[unique_keys // max(len(unique_assets), 1)]
    pair_assets = unique_assets[unique_keys % max(len(unique_assets), 1)].astype(np.int32)
    return pair_accounts, pair_assets, codes


class _GroupSums:
    __slots__ = ("sums", "overflow")

    def __init__(self, sums: np.ndarray, overflow: np.ndarray) -> None:
        self.sums = sums
        self.overflow = overflow


def _exact_group_sum(codes: np.ndarray, values: np.ndarray, n: int) -> _GroupSums:
    """Exact per-code sums of int64 `values`; `overflow` marks codes whose sum leaves int64."""
    limbs = [
        np.bincount(codes, weights=(values & _LIMB_MASK).astype(np.float64), minlength=n),
        np.bincount(codes, weights=((values >> _LIMB_BITS) & _LIMB_MASK).astype(np.float64), minlength=n),
        np.bincount(codes, weights=(values >> (2 * _LIMB_BITS)).astype(np.float64), minlength=n),
    ]
    low, mid, top = (limb.astype(np.int64) for limb in limbs)
    mid = mid + (low >> _LIMB_BITS)
    low &= _LIMB_MASK
    top = top + (mid >> _LIMB_BITS)
    mid &= _LIMB_MASK
    overflow = (top < -_TOP_LIMIT) | (top >= _TOP_LIMIT)
    top = np.where(overflow, 0, top)
    sums = (top << (2 * _LIMB_BITS)) | (mid << _LIMB_BITS) | low
    return _GroupSums(sums, overflow)
