"""Balances of every account in ledger units (see engine/assets.py).

total = everything the account owns; reserved = the part its open orders may
still spend. Free = total - reserved is what new orders and withdrawals use.
Option positions are kept beside the balances, one row per account.
A credit may not take a total or the asset's supply (credits minus debits)
past BALANCE_LIMIT = 2**62; since fills only move value, no balance can then
overflow int64.
"""

from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc, PyMem_RawRealloc
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memcpy, memset

from engine.core.types cimport AMOUNT_OVERFLOW, INSUFFICIENT_BALANCE, INVALID_AMOUNT

from engine.core.types import Reject

# ledger.pxd's inline reserve() returns the code as a literal.
assert Reject.INSUFFICIENT_BALANCE == 25

BALANCE_LIMIT = 1 << 62
cdef int64_t _LIMIT = 4611686018427387904   # a typed global: a DEF this size is a Python int
DEF _INITIAL_ACCOUNTS = 64


cdef class Ledger:
    """Balances, open accounts and asset prices (see ledger.pxd)."""

    def __cinit__(self):
        self.stride = 1
        self.net_credits = <int64_t*>PyMem_RawMalloc(self.stride * sizeof(int64_t))
        self.usd_price = <int64_t*>PyMem_RawMalloc(self.stride * sizeof(int64_t))
        self.haircut_bps = <int32_t*>PyMem_RawMalloc(self.stride * sizeof(int32_t))
        self.unit_scale = <int64_t*>PyMem_RawMalloc(self.stride * sizeof(int64_t))
        if (self.net_credits == NULL or self.usd_price == NULL or self.haircut_bps == NULL
                or self.unit_scale == NULL):
            raise MemoryError()

    def __dealloc__(self):
        PyMem_RawFree(self.rows)
        PyMem_RawFree(self.is_open)
        PyMem_RawFree(self.net_credits)
        PyMem_RawFree(self.usd_price)
        PyMem_RawFree(self.haircut_bps)
        PyMem_RawFree(self.unit_scale)
        PyMem_RawFree(self.positions)
        PyMem_RawFree(self.has_options)

    cdef uint8_t credit(self, int64_t account, int32_t asset, int64_t amount) noexcept:
        cdef Balance* b = self.at(account, asset)
        if amount <= 0:
            return INVALID_AMOUNT
        if amount > _LIMIT - b.total or amount > _LIMIT - self.net_credits[asset]:
            return AMOUNT_OVERFLOW
        b.total += amount
        self.net_credits[asset] += amount
        return 0

    cdef uint8_t debit(self, int64_t account, int32_t asset, int64_t amount) noexcept:
        cdef Balance* b = self.at(account, asset)
        if amount <= 0:
            return INVALID_AMOUNT
        if amount > b.total - b.reserved:
            return INSUFFICIENT_BALANCE
        b.total -= amount
        self.net_credits[asset] -= amount
        return 0

    cdef int add_asset(self, int32_t haircut_bps, int64_t unit_scale) except -1:
        cdef int32_t new_stride, a
        cdef int64_t acct, rows_n
        cdef Balance* grown
        if self.n_assets == self.stride:
            # Re-layout the rows with room for exactly one more asset (set-up
            # time only): unused slots would only spread the balances that
            # the risk check touches over more cache lines.
            new_stride = self.stride + 1
            rows_n = max(self.acct_cap, 1) * new_stride
            grown = <Balance*>PyMem_RawMalloc(rows_n * sizeof(Balance))
            if grown == NULL:
                raise MemoryError()
            memset(grown, 0, rows_n * sizeof(Balance))
            for acct in range(self.acct_cap):
                memcpy(&grown[acct * new_stride], &self.rows[acct * self.stride],
                       self.stride * sizeof(Balance))
            PyMem_RawFree(self.rows)
            self.rows = grown
            self.net_credits = <int64_t*>_regrow(self.net_credits, new_stride, sizeof(int64_t))
            self.usd_price = <int64_t*>_regrow(self.usd_price, new_stride, sizeof(int64_t))
            self.haircut_bps = <int32_t*>_regrow(self.haircut_bps, new_stride, sizeof(int32_t))
            self.unit_scale = <int64_t*>_regrow(self.unit_scale, new_stride, sizeof(int64_t))
            self.stride = new_stride
        a = self.n_assets
        self.net_credits[a] = 0
        self.usd_price[a] = 0
        self.haircut_bps[a] = haircut_bps
        self.unit_scale[a] = unit_scale
        self.n_assets += 1
        return a

    cdef int add_series(self) except -1:
        """Add an option series column to every account's positions (set-up time)."""
        cdef int32_t new_stride = self.series_stride + 1
        cdef int64_t acct, rows_n = max(self.acct_cap, 1) * new_stride
        cdef Position* grown = <Position*>PyMem_RawMalloc(rows_n * sizeof(Position))
        if grown == NULL:
            raise MemoryError()
        memset(grown, 0, rows_n * sizeof(Position))
        if self.positions != NULL:
            for acct in range(self.acct_cap):
                memcpy(&grown[acct * new_stride], &self.positions[acct * self.series_stride],
                       self.series_stride * sizeof(Position))
        PyMem_RawFree(self.positions)
        self.positions = grown
        self.series_stride = new_stride
        self.n_series += 1
        return self.n_series - 1

    cdef int open_account(self, int64_t account) except -1:
        cdef int64_t new_cap
        if account >= self.acct_cap:
            new_cap = max(account + 1, 2 * self.acct_cap, _INITIAL_ACCOUNTS)
            self.rows = <Balance*>_regrow(self.rows, new_cap * self.stride, sizeof(Balance))
            self.is_open = <uint8_t*>_regrow(self.is_open, new_cap, sizeof(uint8_t))
            memset(&self.rows[self.acct_cap * self.stride], 0,
                   (new_cap - self.acct_cap) * self.stride * sizeof(Balance))
            memset(&self.is_open[self.acct_cap], 0, (new_cap - self.acct_cap) * sizeof(uint8_t))
            self.has_options = <uint8_t*>_regrow(self.has_options, new_cap, sizeof(uint8_t))
            memset(&self.has_options[self.acct_cap], 0, (new_cap - self.acct_cap) * sizeof(uint8_t))
            if self.series_stride:
                self.positions = <Position*>_regrow(self.positions, new_cap * self.series_stride,
                                                    sizeof(Position))
                memset(&self.positions[self.acct_cap * self.series_stride], 0,
                       (new_cap - self.acct_cap) * self.series_stride * sizeof(Position))
            self.acct_cap = new_cap
        if not self.is_open[account]:
            self.is_open[account] = 1
            self.n_open += 1
        return 0

    def memory_bytes(self):
        """Bytes of the balance tables."""
        return (self.acct_cap * (self.stride * sizeof(Balance) + self.series_stride * sizeof(Position) + 2)
                + self.stride * 28)

    def check_integrity(self):
        """Raise AssertionError if a balance is negative, over-reserved, or value leaked."""
        cdef int64_t acct
        cdef int32_t a
        cdef Balance* b
        cdef object sums = [0] * self.n_assets
        for acct in range(self.acct_cap):
            for a in range(self.n_assets):
                b = self.at(acct, a)
                assert b.total >= 0, f"account {acct} asset {a}: negative total {b.total}"
                assert b.reserved >= 0, f"account {acct} asset {a}: negative reserved {b.reserved}"
                assert b.reserved <= b.total, (
                    f"account {acct} asset {a}: reserved {b.reserved} above total {b.total}")
                assert self.is_open[acct] or b.total == 0, f"closed account {acct} holds asset {a}"
                sums[a] += b.total
        for a in range(self.n_assets):
            assert sums[a] == self.net_credits[a], (
                f"asset {a}: balances sum to {sums[a]} but credits minus debits are {self.net_credits[a]}")
        cdef int32_t s
        cdef Position* p
        cdef object open_interest = [0] * self.n_series
        for acct in range(self.acct_cap):
            for s in range(self.n_series):
                p = self.position(acct, s)
                assert p.ask_open >= 0, f"account {acct} series {s}: negative open sells {p.ask_open}"
                assert p.bid_open >= 0, f"account {acct} series {s}: negative open buys {p.bid_open}"
                assert self.is_open[acct] or (p.pos == 0 and p.ask_open == 0 and p.bid_open == 0), (
                    f"closed account {acct} holds series {s}")
                assert self.has_options[acct] or (p.pos == 0 and p.ask_open == 0), (
                    f"account {acct} holds series {s} but is not flagged for margin")
                open_interest[s] += p.pos
        for s in range(self.n_series):
            assert open_interest[s] == 0, f"series {s}: positions sum to {open_interest[s]}, not 0"


cdef void* _regrow(void* ptr, Py_ssize_t count, Py_ssize_t item) except NULL:
    cdef void* out = PyMem_RawRealloc(ptr, count * item)
    if out == NULL:
        raise MemoryError()
    return out
