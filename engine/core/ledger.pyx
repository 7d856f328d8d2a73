"""Balances of every account in ledger units (see engine/units.py), and the
ledger's part of a snapshot and of the state hash.

total = everything the account owns; reserved = the part its open orders may
still spend. Free = total - reserved is what new orders and withdrawals use.
Option positions are kept beside the balances, one row per account, each
with its cost basis (ledger.pxd add_position; docs/pools.md, "Cost basis").
A credit may not take a total or the asset's supply (credits minus debits)
past VALUE_LIMIT = 2**62 (engine/units.py); since fills only move value, no balance can then
overflow int64.
"""

from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc, PyMem_RawRealloc
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memcpy, memset

from engine.core.types cimport BPS, AMOUNT_OVERFLOW, INVALID_AMOUNT, MAX_USD_PRICE, VALUE_LIMIT

import numpy as np

cdef enum:
    _INITIAL_ACCOUNTS = 64


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
        if amount > VALUE_LIMIT - b.total or amount > VALUE_LIMIT - self.net_credits[asset]:
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

    cdef list balances(self, int64_t account):
        """[(total, reserved)] per asset id."""
        cdef int32_t a
        return [(self.at(account, a).total, self.at(account, a).reserved) for a in range(self.n_assets)]

    cdef list open_accounts(self):
        """The open account ids, ascending."""
        cdef int64_t acct
        return [acct for acct in range(self.acct_cap) if self.is_open[acct]]

    # -- state --

    cdef dict write_part(self):
        """The ledger's fields of an EngineSnapshot (engine/core/snapshot.py)."""
        cdef int64_t acct
        cdef int32_t a, s
        cdef Position* p
        accounts = self.open_accounts()
        totals = np.zeros((len(accounts), self.n_assets), dtype=np.int64)
        reserved = np.zeros((len(accounts), self.n_assets), dtype=np.int64)
        positions = np.zeros((len(accounts), self.n_series, 3), dtype=np.int64)
        costs = np.zeros((len(accounts), self.n_series), dtype=np.int64)
        for row, acct in enumerate(accounts):
            for a in range(self.n_assets):
                totals[row, a] = self.at(acct, a).total
                reserved[row, a] = self.at(acct, a).reserved
            for s in range(self.n_series):
                p = self.position(acct, s)
                positions[row, s] = (p.pos, p.ask_open, p.bid_open)
                costs[row, s] = p.cost
        return dict(
            open_accounts=np.asarray(accounts, dtype=np.int64).tobytes(),
            totals=totals.tobytes(),
            reserved=reserved.tobytes(),
            net_credits=np.asarray([self.net_credits[a] for a in range(self.n_assets)], dtype=np.int64).tobytes(),
            usd_prices=np.asarray([self.usd_price[a] for a in range(self.n_assets)], dtype=np.int64).tobytes(),
            positions=positions.tobytes(),
            margin_flags=np.asarray([self.has_options[acct] for acct in accounts], dtype=np.uint8).tobytes(),
            # Only when a cost is set: a state that never traded options writes as before.
            costs=costs.tobytes() if costs.any() else b"",
        )

    cdef object read_part(self, snap, int64_t max_accounts):
        """Open the snapshot's accounts and restore their balances, positions and
        margin flags and the asset prices; returns the account ids. Checks every
        value before it is written. (Version 1 snapshots have no option parts.)"""
        cdef int64_t acct
        cdef int32_t a, s
        cdef Position* p
        n_assets = self.n_assets
        if len(snap.net_credits) != n_assets * 8 or len(snap.usd_prices) != n_assets * 8:
            raise ValueError("snapshot state does not match its instruments and assets")
        accounts = np.frombuffer(snap.open_accounts, dtype=np.int64)
        if len(accounts) and (not snap.risk or accounts.min() < 0 or accounts.max() >= max_accounts):
            raise ValueError(f"snapshot accounts outside [0, {max_accounts}) or kept without risk")
        totals = np.frombuffer(snap.totals, dtype=np.int64).reshape(len(accounts), n_assets)
        reserved = np.frombuffer(snap.reserved, dtype=np.int64).reshape(len(accounts), n_assets)
        prices = np.frombuffer(snap.usd_prices, dtype=np.int64)
        for a, price in enumerate(prices.tolist()):
            if not 0 <= price <= MAX_USD_PRICE:
                raise ValueError(f"snapshot price of asset {a} is not valid")
        n_pos = len(accounts) * self.n_series * 3
        positions = (np.frombuffer(snap.positions, dtype=np.int64) if snap.positions
                     else np.zeros(n_pos, dtype=np.int64))
        flags = (np.frombuffer(snap.margin_flags, dtype=np.uint8) if snap.margin_flags
                 else np.zeros(len(accounts), dtype=np.uint8))
        if len(positions) != n_pos or len(flags) != len(accounts):
            raise ValueError("snapshot option parts do not match its instruments and accounts")
        positions = positions.reshape(len(accounts), self.n_series, 3)
        if positions.size and ((positions > VALUE_LIMIT).any() or (positions < -VALUE_LIMIT).any()
                               or (positions[:, :, 1:] < 0).any()):
            raise ValueError("snapshot positions are out of range")
        for row, acct in enumerate(accounts.tolist()):
            self.open_account(acct)
            for a in range(n_assets):
                self.at(acct, a).total = totals[row, a]
                self.at(acct, a).reserved = reserved[row, a]
            self.has_options[acct] = 1 if flags[row] else 0
            for s in range(self.n_series):
                p = self.position(acct, s)
                p.pos = positions[row, s, 0]
                p.ask_open = positions[row, s, 1]
                p.bid_open = positions[row, s, 2]
        for a, credits in enumerate(np.frombuffer(snap.net_credits, dtype=np.int64).tolist()):
            self.net_credits[a] = credits
            self.usd_price[a] = prices[a]
        return accounts

    cdef int read_costs(self, snap, accounts, list unit_marks) except -1:
        """Restore the positions' cost bases (after read_part): the snapshot's
        ``costs`` section; a snapshot older than version 6 kept none, so each
        position's cost is its value at the series' mark when it loads
        (``unit_marks``: premium ledger units per quantity unit at the mark, per
        series; 0 without a mark), within +-VALUE_LIMIT: it then ranks for
        auto-deleveraging as having no profit until the mark moves."""
        cdef int64_t acct
        cdef int32_t s
        cdef Position* p
        if unit_marks is not None:
            for acct in accounts.tolist():
                for s in range(self.n_series):
                    p = self.position(acct, s)
                    p.cost = max(-VALUE_LIMIT, min(VALUE_LIMIT, p.pos * unit_marks[s]))
            return 0
        if not snap.costs:
            return 0
        if len(snap.costs) != len(accounts) * self.n_series * 8:
            raise ValueError("snapshot costs do not match its instruments and accounts")
        costs = np.frombuffer(snap.costs, dtype=np.int64).reshape(len(accounts), self.n_series)
        for row, acct in enumerate(accounts.tolist()):
            for s in range(self.n_series):
                p = self.position(acct, s)
                if not _cost_fits(p.pos, costs[row, s]):
                    raise ValueError(f"snapshot cost {costs[row, s]} of account {acct} series {s} does not fit "
                                     f"its position {p.pos}")
                p.cost = costs[row, s]
        return 0

    cdef int hash_words(self, list words) except -1:
        """The ledger's part of the state hash; the cost bases only when one is
        set, so a state that never traded options hashes as before."""
        cdef int64_t acct
        cdef int32_t a, s
        cdef Position* p
        words.append(self.n_assets)
        for a in range(self.n_assets):
            words += [self.net_credits[a], self.usd_price[a]]
        for acct in range(self.acct_cap):
            if not self.is_open[acct]:
                continue
            words.append(acct)
            for a in range(self.n_assets):
                words += [self.at(acct, a).total, self.at(acct, a).reserved]
            if self.n_series:
                words.append(self.has_options[acct])
            for s in range(self.n_series):
                p = self.position(acct, s)
                words += [p.pos, p.ask_open, p.bid_open]
        costs = [self.position(acct, s).cost for acct in range(self.acct_cap) if self.is_open[acct]
                 for s in range(self.n_series)]
        if any(costs):
            words += costs
        return 0

    cdef list changed_haircuts(self, list asset_specs):
        """[asset, haircut bps] of each asset whose haircut differs from its
        spec's (operator SET_HAIRCUT): the only haircuts a snapshot or the
        state hash carries, so a state without such a change writes and
        hashes as before SET_HAIRCUT existed."""
        cdef int32_t a
        return [[a, self.haircut_bps[a]] for a in range(self.n_assets)
                if self.haircut_bps[a] != asset_specs[a].haircut_bps]

    cdef int read_haircuts(self, list rows) except -1:
        """Restore what changed_haircuts wrote."""
        for a, haircut_bps in rows:
            if not (0 <= a < self.n_assets and 0 <= haircut_bps <= BPS):
                raise ValueError(f"snapshot haircut {[a, haircut_bps]} is not valid")
            self.haircut_bps[a] = haircut_bps
        return 0

    def memory_bytes(self):
        """Bytes of the balance tables."""
        return (self.acct_cap * (self.stride * sizeof(Balance) + self.series_stride * sizeof(Position) + 2)
                + self.stride * 28)

    def check_integrity(self):
        """Raise AssertionError if a balance is negative, over-reserved, or value
        leaked (balances sum to credits minus debits per asset)."""
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
                assert _cost_fits(p.pos, p.cost), (
                    f"account {acct} series {s}: cost {p.cost} does not fit position {p.pos}")
                open_interest[s] += p.pos
        for s in range(self.n_series):
            assert open_interest[s] == 0, f"series {s}: positions sum to {open_interest[s]}, not 0"


cdef bint _cost_fits(int64_t pos, int64_t cost) noexcept:
    # A flat position costs nothing; a long's cost is in [0, VALUE_LIMIT], a short's in [-VALUE_LIMIT, 0].
    if pos == 0:
        return cost == 0
    return 0 <= cost <= VALUE_LIMIT if pos > 0 else -VALUE_LIMIT <= cost <= 0


cdef void* _regrow(void* ptr, Py_ssize_t count, Py_ssize_t item) except NULL:
    cdef void* out = PyMem_RawRealloc(ptr, count * item)
    if out == NULL:
        raise MemoryError()
    return out

