"""The life of option series after listing (docs/options_expiry.md): their
integer terms, their status (live, settled at a price, delisted), the cash
settlement of their positions at expiry, and covered calls.

A covered call: for an account that asked for it (COVER_CALLS), a sell of a
call series locks (reserves) the underlying the account holds free, up to the
exposure the sell adds, one quantity unit at a time; the covered part needs
no margin (margin.pyx) and the locked holding can be neither sold nor
withdrawn until the exposure shrinks (a cancel, a buy-back) or the series
settles. Settlement pays cash in the premium asset, floored per
quantity unit (engine.units.settlement_value): shorts pay, longs receive exactly
what was collected, value is neither created nor destroyed.
"""

from cpython.mem cimport PyMem_RawFree, PyMem_RawRealloc

from engine.core.types cimport BUY, SELL

from engine.units import settlement_value


cdef void* _grow(void* ptr, Py_ssize_t count, Py_ssize_t item) except NULL:
    cdef void* out = PyMem_RawRealloc(ptr, count * item)
    if out == NULL:
        raise MemoryError()
    return out


cdef class SeriesLife:
    """Series terms and status, covered-call locks and cash settlement over a Ledger."""

    def __cinit__(self, Ledger ledger):
        self.ledger = ledger
        self.terms = []
        self.covering = set()

    def __dealloc__(self):
        PyMem_RawFree(self.underlying)
        PyMem_RawFree(self.cover_per_qty)
        PyMem_RawFree(self.status)
        PyMem_RawFree(self.settle_price)
        PyMem_RawFree(self.open_interest)

    # -- queries --

    cdef object value(self, const Instrument* inst, int64_t price):
        """Premium ledger units per quantity unit the series pays at ``price``
        (a Python int: the rounding rule is engine.units.settlement_value's)."""
        cdef int32_t s = inst.series
        return settlement_value(self.terms[s], price, self.ledger.unit_scale[self.underlying[s]],
                                inst.quote_per_tick_qty, inst.tick)

    cdef list shortfalls(self, const Instrument* inst, object value):
        """[(account, payment)] of the shorts whose free premium does not cover their payment."""
        cdef int64_t acct
        cdef int64_t pos
        out = []
        if value == 0:
            return out
        for acct in range(self.ledger.acct_cap):
            if not self.ledger.is_open[acct]:
                continue
            pos = self.ledger.position(acct, inst.series).pos
            if pos < 0 and -pos * value > self.ledger.free(acct, inst.quote_asset):
                out.append((acct, -pos * value))
        return out

    # -- commands --

    cdef int add_series(self, int32_t series, object terms, int32_t underlying) except -1:
        """Register series ``series`` (the ledger's column) with its SeriesTerms."""
        self.underlying = <int32_t*>_grow(self.underlying, series + 1, sizeof(int32_t))
        self.cover_per_qty = <int64_t*>_grow(self.cover_per_qty, series + 1, sizeof(int64_t))
        self.status = <uint8_t*>_grow(self.status, series + 1, sizeof(uint8_t))
        self.settle_price = <int64_t*>_grow(self.settle_price, series + 1, sizeof(int64_t))
        self.open_interest = <int64_t*>_grow(self.open_interest, series + 1, sizeof(int64_t))
        self.terms.append(terms)
        self.underlying[series] = underlying
        self.cover_per_qty[series] = terms.cover_per_qty if terms is not None else 0
        self.status[series] = LIFE_LIVE
        self.settle_price[series] = 0
        self.open_interest[series] = 0
        return 0

    cdef void cover(self, int64_t account, int32_t series) noexcept:
        """Lock free underlying for the account's uncovered call exposure, as much as it holds."""
        cdef int64_t unit = self.cover_per_qty[series]
        cdef Position* p
        cdef int64_t want, k
        if unit == 0 or account not in self.covering:
            return
        p = self.ledger.position(account, series)
        want = p.ask_open - p.pos - p.covered
        if want <= 0:
            return
        k = self.ledger.free(account, self.underlying[series]) // unit
        if k > want:
            k = want
        if k > 0:
            self.ledger.at(account, self.underlying[series]).reserved += k * unit
            p.covered += k

    cdef int uncover_all(self, int32_t series) except -1:
        """Release every lock in the series (it settles: the holdings may pay)."""
        cdef int64_t acct
        cdef Position* p
        for acct in range(self.ledger.acct_cap):
            p = self.ledger.position(acct, series)
            if self.ledger.is_open[acct] and p.covered:
                self.ledger.release(acct, self.underlying[series], p.covered * self.cover_per_qty[series])
                p.covered = 0
        return 0

    cdef tuple settle(self, const Instrument* inst, object value, int64_t fee_account):
        """Close every position of the series (its orders are cancelled and its
        locks released) at ``value`` per quantity unit: each short pays what its
        free premium covers, the longs share what was collected (all of what they
        are owed unless a short fell short; then pro rata, floored, the rest to
        ``fee_account``). Returns ([(account, amount, BUY received | SELL paid,
        position)], collected, shortfall)."""
        cdef int32_t s = inst.series
        cdef int32_t quote = inst.quote_asset
        cdef int64_t acct, pos
        cdef Position* p
        out = []
        longs = []
        collected = owed = paid = 0
        for acct in range(self.ledger.acct_cap):
            if not self.ledger.is_open[acct]:
                continue
            p = self.ledger.position(acct, s)
            pos = p.pos
            if pos == 0:
                continue
            p.pos = 0
            p.cost = 0      # settled in cash: the cost basis is realised
            if pos > 0:
                longs.append((acct, pos))
                owed += pos * value
                continue
            pay = min(-pos * value, self.ledger.free(acct, quote))
            self.ledger.move(acct, quote, -pay, 0)
            collected += pay
            out.append((acct, pay, SELL, pos))
        for acct, pos in longs:
            amount = pos * value if collected == owed else pos * value * collected // owed
            self.ledger.move(acct, quote, amount, 0)
            paid += amount
            out.append((acct, amount, BUY, pos))
        if collected > paid:
            self.ledger.move(fee_account, quote, collected - paid, 0)
        self.open_interest[s] = 0
        return out, collected, owed - collected

    cdef int set_covering(self, int64_t account, bint on) except -1:
        """Whether the account's call sells lock its underlying from now on; turning
        it on covers its open call exposure at once, turning it off leaves the
        locks there are until their exposure shrinks."""
        cdef int32_t s
        if not on:
            self.covering.discard(account)
            return 0
        self.covering.add(account)
        for s in range(self.ledger.n_series):
            self.cover(account, s)
        return 0

    cdef void close(self, int32_t series, uint8_t status, int64_t price) noexcept:
        """Mark the series settled (at ``price``) or delisted: it never trades again."""
        self.status[series] = status
        self.settle_price[series] = price

    # -- state --

    cdef list write_status(self, const Instrument* insts, int32_t n_inst):
        """[instrument, status, settlement price] of each series no longer live."""
        cdef int32_t i
        return [[i, self.status[insts[i].series], self.settle_price[insts[i].series]]
                for i in range(n_inst) if insts[i].series >= 0 and self.status[insts[i].series] != LIFE_LIVE]

    cdef list write_covered(self, const Instrument* insts, int32_t n_inst):
        """[account, instrument, covered quantity] of every covered call exposure."""
        cdef int32_t i
        cdef int64_t acct
        out = []
        for acct in range(self.ledger.acct_cap):
            if not self.ledger.is_open[acct]:
                continue
            for i in range(n_inst):
                if insts[i].series >= 0 and self.ledger.position(acct, insts[i].series).covered:
                    out.append([acct, i, self.ledger.position(acct, insts[i].series).covered])
        return out

    cdef int read_part(self, list status, list covered, list covering, const Instrument* insts,
                       int32_t n_inst) except -1:
        """Restore what write_status, write_covered and the covering accounts
        wrote (after the ledger, whose reserved amounts already hold the locks);
        ValueError if invalid."""
        cdef Position* p
        for s, counted in enumerate(self.counted_open_interest()):
            self.open_interest[s] = counted
        for acct in covering:
            if not self.ledger.known(acct) or acct in self.covering:
                raise ValueError(f"snapshot covering account {acct} is not valid")
            self.covering.add(acct)
        for i, state, price in status:
            if not (0 <= i < n_inst and insts[i].series >= 0
                    and state in (LIFE_SETTLED, LIFE_DELISTED) and price >= 0):
                raise ValueError(f"snapshot series status {[i, state, price]} is not valid")
            self.close(insts[i].series, state, price)
        for acct, i, qty in covered:
            if not (0 <= i < n_inst and insts[i].series >= 0 and self.ledger.known(acct) and qty > 0
                    and self.cover_per_qty[insts[i].series]):
                raise ValueError(f"snapshot covered call {[acct, i, qty]} is not valid")
            p = self.ledger.position(acct, insts[i].series)
            if qty > max(p.ask_open - p.pos, 0):
                raise ValueError(f"snapshot covered call {[acct, i, qty]} exceeds its exposure")
            p.covered = qty
        return 0

    cdef int hash_words(self, const Instrument* insts, int32_t n_inst, list words) except -1:
        """The series statuses and covered calls, only when there are any (an
        engine that never used them hashes as before they existed)."""
        status = self.write_status(insts, n_inst)
        covered = self.write_covered(insts, n_inst)
        if status or covered or self.covering:
            words += [len(status), len(covered), len(self.covering), *sorted(self.covering)]
            for row in status + covered:
                words += row
        return 0

    cdef list counted_open_interest(self):
        """Every series' open interest counted from the positions."""
        cdef int64_t acct, pos
        cdef int32_t s
        counted = [0] * self.ledger.n_series
        for acct in range(self.ledger.acct_cap):
            if self.ledger.is_open[acct]:
                for s in range(self.ledger.n_series):
                    pos = self.ledger.position(acct, s).pos
                    if pos > 0:
                        counted[s] += pos
        return counted

    cdef int check_open_interest(self) except -1:
        """Assert every series' open interest equals the longs' positions."""
        cdef int32_t s
        for s, counted in enumerate(self.counted_open_interest()):
            assert self.open_interest[s] == counted, (
                f"series {s}: open interest kept {self.open_interest[s]}, positions hold {counted}")
        return 0

    cdef int locked(self, dict need) except -1:
        """Add every covered call's locked underlying to ``need`` ((account, asset) ->
        reserved amount), for the integrity check."""
        cdef int64_t acct
        cdef int32_t s
        cdef Position* p
        for acct in range(self.ledger.acct_cap):
            for s in range(self.ledger.n_series):
                p = self.ledger.position(acct, s)
                if p.covered:
                    key = (acct, self.underlying[s])
                    need[key] = need.get(key, 0) + p.covered * self.cover_per_qty[s]
        return 0
