"""Netting: exact int64 results, overflow detection, conservation; checked against plain ints."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from settlement_helpers import make_fills, make_withdrawals

from settlement.netting import ConservationError, NettingError, NettingOverflow, check_conservation, net_fills
from settlement.records import NET_DTYPE, SETTLEMENT_FILL_DTYPE, WITHDRAWAL_DTYPE, fill_id

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def naive_net(fills: np.ndarray, withdrawals: np.ndarray) -> dict:
    """{(account, asset): (delta, withdrawn)} with Python ints; NettingOverflow like net_fills."""
    delta: dict = {}
    withdrawn: dict = {}

    def leg(table, key, amount):
        if not INT64_MIN <= amount <= INT64_MAX:
            raise NettingOverflow(key)
        table[key] = table.get(key, 0) + amount

    for _, buyer, seller, base, quote, qty, value, bfee, sfee in fills.tolist():
        leg(delta, (buyer, base), qty)
        leg(delta, (seller, base), -qty)
        leg(delta, (buyer, quote), -(value + bfee))
        leg(delta, (seller, quote), value - sfee)
        leg(delta, (0, quote), bfee + sfee)
    for _, account, asset, amount in withdrawals.tolist():
        leg(withdrawn, (account, asset), amount)
    out = {}
    for key in set(delta) | set(withdrawn):
        d, w = delta.get(key, 0), withdrawn.get(key, 0)
        if not (INT64_MIN <= d <= INT64_MAX and w <= INT64_MAX):
            raise NettingOverflow(key)
        if (d, w) != (0, 0):
            out[key] = (d, w)
    return out


def as_dict(net: np.ndarray) -> dict:
    return {(a, s): (d, w) for a, s, d, w in net.tolist()}


amounts = st.one_of(st.integers(1, 1000), st.integers(1, INT64_MAX))
fees = st.one_of(st.integers(-100, 100), st.integers(INT64_MIN, INT64_MAX))
accounts = st.one_of(st.integers(0, 5), st.integers(0, 2**62))
fill_rows = st.tuples(st.integers(0, 2**40), accounts, accounts, st.integers(0, 3), st.integers(0, 3),
                      amounts, amounts, fees, fees)
withdrawal_rows = st.tuples(st.integers(0, 2**40), accounts, st.integers(0, 3), amounts)


@settings(max_examples=300, deadline=None)
@given(st.lists(fill_rows, max_size=40), st.lists(withdrawal_rows, max_size=5))
def test_net_fills_equals_naive_netting(rows, withdrawal_list):
    fills = np.array(rows, dtype=SETTLEMENT_FILL_DTYPE)
    withdrawals = np.array(withdrawal_list, dtype=WITHDRAWAL_DTYPE)
    try:
        expected = naive_net(fills, withdrawals)
    except NettingOverflow:
        with pytest.raises(NettingOverflow):
            net_fills(fills, withdrawals)
        return
    net = net_fills(fills, withdrawals)
    assert as_dict(net) == expected
    assert list(zip(net["account"].tolist(), net["asset"].tolist())) == sorted(expected)
    check_conservation(net)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(1, 10**12), st.integers(1, 10**15),
                          st.integers(-10**9, 10**9), st.integers(-10**9, 10**9)), min_size=1, max_size=200))
def test_realistic_fills_conserve_every_asset(rows):
    fills = make_fills([(i, b, s, 1, 2, q, v, bf, sf) for i, (b, s, q, v, bf, sf) in enumerate(rows)])
    net = net_fills(fills)
    for asset in (1, 2):
        assert int(net["delta"][net["asset"] == asset].astype(object).sum()) == 0


def test_large_sums_are_exact_beyond_float_precision():
    big = 2**62 // 1000
    fills = make_fills([(i, 1, 2, 1, 2, big, 3, 0, 0) for i in range(999)])
    net = as_dict(net_fills(fills))
    assert net[(1, 1)] == (999 * big, 0)
    assert net[(2, 1)] == (-999 * big, 0)


def test_sum_overflow_is_reported():
    fills = make_fills([(i, 1, 2, 1, 2, 2**62, 3, 0, 0) for i in range(2)])
    with pytest.raises(NettingOverflow, match="account 1 asset 1"):
        net_fills(fills)


def test_leg_overflow_is_reported():
    fills = make_fills([(7, 1, 2, 1, 2, 5, INT64_MAX, 2, 0)])
    with pytest.raises(NettingOverflow, match="fill 7"):
        net_fills(fills)


def test_invalid_records_are_rejected():
    with pytest.raises(NettingError, match="quote_amount must be > 0"):
        net_fills(make_fills([(1, 1, 2, 1, 2, 5, 0, 0, 0)]))
    with pytest.raises(NettingError, match="base_amount must be >= 0"):
        net_fills(make_fills([(1, 1, 2, 1, 2, -5, 7, 0, 0)]))
    with pytest.raises(NettingError, match="amount must be > 0"):
        net_fills(make_fills([]), make_withdrawals([(1, 1, 2, -5)]))
    with pytest.raises(NettingError, match="SETTLEMENT_FILL_DTYPE"):
        net_fills(np.zeros(1, dtype=[("x", "<i8")]))


def test_fee_account_collects_fees_and_pays_rebates():
    net = as_dict(net_fills(make_fills([(1, 1, 2, 1, 2, 10, 100, 3, -1)])))
    assert net == {(1, 1): (10, 0), (2, 1): (-10, 0), (1, 2): (-103, 0), (2, 2): (101, 0), (0, 2): (2, 0)}


def test_conservation_check_catches_imbalance():
    net = np.array([(1, 2, 5, 0), (2, 2, -4, 0)], dtype=NET_DTYPE)
    with pytest.raises(ConservationError, match="asset 2"):
        check_conservation(net)


def test_fill_id_layout():
    assert fill_id(3, 2) == 3 * 65536 + 2
    with pytest.raises(ValueError):
        fill_id(1, 65536)
