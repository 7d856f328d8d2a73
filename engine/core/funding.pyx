"""Funding of perpetual (everlasting) option series (docs/funding.md).

A perpetual series has no expiry; instead its longs pay its shorts, continuously,
(mark - payoff) / T per contract, where T is the series' funding period. Each
series keeps a cumulative funding index I in premium-asset ledger units x 1e-6
(engine.units.FUNDING_INDEX_SCALE) per quantity unit. A FUND command (from the
option-mark feed, journaled like any command) brings I up to its timestamp at
the rate of the previous FUND, sets the rate for the time after it from its mark
and payoff, and settles every position; a fill settles its two accounts at the
index of its own timestamp before their positions change.

Settling a position moves pos x (I - entry) + carry index units into or out of
the series' pool: a payer pays the amount rounded up (at most its free premium
balance), a receiver receives it rounded down (at most what the pool's holder
can pay), and what is left stays in the position's carry to the next
settlement. The pool's money is held by the fee account, the counterparty of
every funding payment on chain, so engine balances are the vault's. No unit is
lost or made: per series, pool x 1e6 + sum(pos x (I - entry) + carry) == 0 for
every I, because positions sum to zero (check_integrity). An account frozen by
its exit request settles nothing more: its funding is booked to the pool.
"""

from cpython.mem cimport PyMem_RawFree, PyMem_RawRealloc
from libc.stdint cimport INT64_MAX, INT64_MIN

from engine.core.ledger cimport Position
from engine.core.types cimport FUNDING_OVERFLOW, INVALID_FUNDING, NOT_PERPETUAL, VALUE_LIMIT

import numpy as np

from engine.units import FUNDING_INDEX_SCALE

cdef int64_t SCALE = FUNDING_INDEX_SCALE
# One FUND's step times the series' open interest stays below this (index units),
# so one settlement's amount fits a balance and a carry fits int64.
cdef int64_t STEP_LIMIT = VALUE_LIMIT


cdef void* _grow(void* ptr, Py_ssize_t count, Py_ssize_t item) except NULL:
    cdef void* out = PyMem_RawRealloc(ptr, count * item)
    if out == NULL:
        raise MemoryError()
    return out


cdef inline int128_t _ceil_div(int128_t a, int128_t b) noexcept:
    # For a, b > 0 (C division truncates: the module runs with cdivision).
    return (a + b - 1) // b


cdef class Funding:
    """Funding indexes, pools and position settlement over a Ledger."""

    def __cinit__(self, Ledger ledger, int64_t fee_account):
        self.ledger = ledger
        self.fee_account = fee_account

    def __dealloc__(self):
        PyMem_RawFree(self.series_inst)
        PyMem_RawFree(self.period_ns)
        PyMem_RawFree(self.base_index)
        PyMem_RawFree(self.base_ts)
        PyMem_RawFree(self.time_value)
        PyMem_RawFree(self.pool)
        PyMem_RawFree(self.open_interest)

    # -- queries --

    cdef int64_t index_at(self, const Instrument* inst, int32_t series, int64_t ts) noexcept:
        """The series' funding index at ``ts``: the last FUND's index plus the
        step since (_step), clamped to 2**62 (FUND refuses to go past it)."""
        cdef int128_t index = self.base_index[series] + self._step(inst, series, ts)
        return <int64_t>(index if index < VALUE_LIMIT else VALUE_LIMIT)

    cdef int128_t _step(self, const Instrument* inst, int32_t series, int64_t ts) noexcept:
        # floor(floor(time value x quote units per price unit and qty unit x 1e6)
        # x elapsed / T). The rate is at most 2**60 x 1e6 (an instrument's
        # notional limit), elapsed counts at most 2**20 periods: no 128-bit overflow.
        cdef int64_t dt = ts - self.base_ts[series]
        cdef int128_t rate
        if dt <= 0 or self.time_value[series] == 0:
            return 0
        rate = <int128_t>self.time_value[series] * inst.quote_per_tick_qty * SCALE // inst.tick
        if dt // self.period_ns[series] >= (1 << 20):
            return rate << 20
        return rate * dt // self.period_ns[series]

    cdef int64_t next_due(self, int32_t series, int64_t after, int64_t index, bint payers) noexcept:
        """The first account past ``after`` whose position in the series has
        funding to settle (a position, or unpaid funding) and, at ``index``,
        owes (``payers``) or does not; -1 if none."""
        cdef Ledger ledger = self.ledger
        cdef const Position* p
        cdef int64_t acct
        for acct in range(after + 1, ledger.acct_cap):
            if ledger.has_options[acct]:
                p = ledger.position(acct, series)
                if (p.pos != 0 or p.carry > 0) and (
                        (<int128_t>p.pos * (index - p.entry) + p.carry > 0) == payers):
                    return acct
        return -1

    cdef tuple series_state(self, int32_t series):
        return (self.period_ns[series], self.base_index[series], self.base_ts[series],
                self.time_value[series], self.pool[series], self.open_interest[series])

    cdef tuple position_state(self, int64_t account, int32_t series):
        cdef const Position* p = self.ledger.position(account, series)
        return (p.entry, p.carry)

    # -- commands --

    cdef int add_series(self, int32_t series, int32_t instrument, int64_t period_ns) except -1:
        """Series ``series`` (instrument ``instrument``): perpetual with funding
        period ``period_ns`` (ns), or dated for 0. Set-up time only."""
        cdef int32_t n = series + 1
        self.series_inst = <int32_t*>_grow(self.series_inst, n, sizeof(int32_t))
        self.period_ns = <int64_t*>_grow(self.period_ns, n, sizeof(int64_t))
        self.base_index = <int64_t*>_grow(self.base_index, n, sizeof(int64_t))
        self.base_ts = <int64_t*>_grow(self.base_ts, n, sizeof(int64_t))
        self.time_value = <int64_t*>_grow(self.time_value, n, sizeof(int64_t))
        self.pool = <int64_t*>_grow(self.pool, n, sizeof(int64_t))
        self.open_interest = <int64_t*>_grow(self.open_interest, n, sizeof(int64_t))
        self.series_inst[series] = instrument
        self.period_ns[series] = period_ns
        self.base_index[series] = 0
        self.base_ts[series] = 0
        self.time_value[series] = 0
        self.pool[series] = 0
        self.open_interest[series] = 0
        self.n_series = n
        if period_ns:
            self.n_perpetual += 1
        return 0

    cdef int64_t settle(self, const Instrument* inst, int64_t account, int64_t index, bint to_pool) noexcept:
        """Settle the account's position in the instrument's series at ``index``;
        returns the premium ledger units it paid into the pool (negative: received).

        Owed = pos x (index - entry) + carry, in index units. A payer pays
        ceil(owed / 1e6), at most its free premium balance; a receiver gets
        floor(-owed / 1e6), at most the fee account's free premium balance (the
        pool's money, and the fee account's own when the pool is short) and what
        keeps its balance under 2**62. The rest of owed becomes the new carry and
        entry becomes index. ``to_pool`` (a frozen account): the whole rounded
        amount is booked to the pool and no balance moves."""
        cdef Ledger ledger = self.ledger
        cdef int32_t s = inst.series
        cdef Position* p = ledger.position(account, s)
        cdef int128_t owed = <int128_t>p.pos * (index - p.entry) + p.carry
        cdef int128_t amount = 0
        cdef int128_t carry
        cdef int64_t free
        p.entry = index
        if owed > 0:
            amount = _ceil_div(owed, SCALE)
            free = ledger.free(account, inst.quote_asset)
            if amount > free and not to_pool:
                amount = free if free > 0 else 0
        elif owed < 0:
            amount = -((-owed) // SCALE)
            free = min(VALUE_LIMIT - ledger.at(account, inst.quote_asset).total,
                       ledger.free(self.fee_account, inst.quote_asset))
            if -amount > free and not to_pool:
                amount = -free if free > 0 else 0
        carry = owed - amount * SCALE
        # Saturation is out of reach while FUND keeps step x open interest under
        # 2**62 and unpaid funding is liquidated before it piles up (docs/funding.md).
        p.carry = <int64_t>(INT64_MAX if carry > INT64_MAX else INT64_MIN if carry < INT64_MIN else carry)
        if amount:
            if not to_pool:
                ledger.move(account, inst.quote_asset, <int64_t>-amount, 0)
                ledger.move(self.fee_account, inst.quote_asset, <int64_t>amount, 0)
            self.pool[s] += <int64_t>amount
        return <int64_t>amount

    cdef void fill(self, int32_t series, int64_t buyer, int64_t seller, int64_t q) noexcept:
        """Keep the open interest of a fill of q contracts (positions not yet moved)."""
        cdef int64_t b = self.ledger.position(buyer, series).pos
        cdef int64_t s = self.ledger.position(seller, series).pos
        if buyer == seller:
            return  # a self-trade moves no position
        self.open_interest[series] += (max(b + q, 0) - max(b, 0)) + (max(s - q, 0) - max(s, 0))

    cdef uint8_t fund(self, const Instrument* inst, int64_t mark, int64_t payoff, int64_t ts,
                      int64_t* index) noexcept:
        """Bring the series' index up to ``ts`` and set the rate after it to
        mark - payoff (price units); ``index`` receives the new index. A reject
        code, changing nothing, if the series is dated, the prices are not valid
        or the step would overflow. The caller then settles every position."""
        cdef int32_t s = inst.series
        cdef int128_t step, new_index
        if s < 0 or not self.perpetual(s):
            return NOT_PERPETUAL
        if payoff < 0 or mark < payoff or mark > inst.max_price:
            return INVALID_FUNDING
        step = self._step(inst, s, ts)
        new_index = self.base_index[s] + step
        if new_index > VALUE_LIMIT or (self.open_interest[s] and step > STEP_LIMIT // self.open_interest[s]):
            return FUNDING_OVERFLOW
        self.base_index[s] = <int64_t>new_index
        if ts > self.base_ts[s]:
            self.base_ts[s] = ts
        self.time_value[s] = mark - payoff
        index[0] = <int64_t>new_index
        return 0

    # -- state --

    cdef bytes write_part(self):
        """The funding section of a snapshot: b"" without perpetual series, else
        int64 [series, 4] (index, ts, time value, pool) then int64 [open account,
        series, 2] (entry, carry)."""
        cdef int32_t s
        cdef int64_t acct
        cdef const Position* p
        if not self.n_perpetual:
            return b""
        accounts = self.ledger.open_accounts()
        rows = np.zeros((self.n_series, 4), dtype=np.int64)
        held = np.zeros((len(accounts), self.n_series, 2), dtype=np.int64)
        for s in range(self.n_series):
            rows[s] = (self.base_index[s], self.base_ts[s], self.time_value[s], self.pool[s])
        for row, acct in enumerate(accounts):
            for s in range(self.n_series):
                p = self.ledger.position(acct, s)
                held[row, s] = (p.entry, p.carry)
        return rows.tobytes() + held.tobytes()

    cdef int read_part(self, bytes data, accounts) except -1:
        """Restore what write_part wrote (the ledger's positions already are);
        recompute the open interest. Checks every value before it is written."""
        cdef int32_t s
        cdef int64_t acct
        cdef Position* p
        n_rows = self.n_series * 4
        if not data:
            if self.n_perpetual and any(self.ledger.position(acct, s).pos
                                        for acct in accounts.tolist() for s in range(self.n_series)):
                raise ValueError("snapshot holds perpetual positions but no funding section")
            return 0
        if not self.n_perpetual or len(data) != (n_rows + len(accounts) * self.n_series * 2) * 8:
            raise ValueError("snapshot funding section does not match its instruments and accounts")
        words = np.frombuffer(data, dtype=np.int64)
        rows = words[:n_rows].reshape(self.n_series, 4)
        held = words[n_rows:].reshape(len(accounts), self.n_series, 2)
        for s in range(self.n_series):
            index, ts, value, pool = rows[s].tolist()
            if not self.perpetual(s) and (index or ts or value or pool):
                raise ValueError(f"snapshot gives funding to dated series {s}")
            if abs(index) > VALUE_LIMIT or value < 0 or abs(pool) > VALUE_LIMIT:
                raise ValueError(f"snapshot funding of series {s} is out of range")
        for s in range(self.n_series):
            self.base_index[s], self.base_ts[s], self.time_value[s], self.pool[s] = rows[s].tolist()
            self.open_interest[s] = 0
        for row, acct in enumerate(accounts.tolist()):
            for s in range(self.n_series):
                p = self.ledger.position(acct, s)
                p.entry, p.carry = held[row, s].tolist()
                if p.pos > 0:
                    self.open_interest[s] += p.pos
        return 0

    cdef int hash_words(self, list words) except -1:
        """Funding's part of the state hash; nothing without perpetual series,
        so such engines hash as before funding existed."""
        if self.n_perpetual:
            words += np.frombuffer(self.write_part(), dtype=np.int64).tolist()
        return 0

    cdef int check_integrity(self) except -1:
        """AssertionError unless, per perpetual series, pool x 1e6 + sum(carry -
        pos x entry) == 0 (nothing made or lost) and the open interest is the
        sum of the longs."""
        cdef int32_t s
        cdef int64_t acct
        cdef const Position* p
        for s in range(self.n_series):
            if not self.perpetual(s):
                continue
            owed = 0
            longs = 0
            for acct in self.ledger.open_accounts():
                p = self.ledger.position(acct, s)
                owed += p.carry - p.pos * p.entry
                longs += max(p.pos, 0)
            assert self.pool[s] * SCALE + owed == 0, (
                f"series {s}: pool {self.pool[s]} does not balance what positions owe ({owed} x 1e-6)")
            assert self.open_interest[s] == longs, f"series {s}: open interest {self.open_interest[s]} != {longs}"
        return 0
