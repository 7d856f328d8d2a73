# The life of option series after listing: their integer terms, whether each
# is live, settled or delisted (and at what price), and covered calls, whose
# locked underlying stands in for margin.
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.instrument cimport Instrument
from engine.core.ledger cimport Ledger, Position


cdef enum SeriesStatus:
    LIFE_LIVE = 0
    LIFE_SETTLED = 1
    LIFE_DELISTED = 2


cdef class SeriesLife:
    cdef Ledger ledger
    cdef list terms               # [series]: engine.units.SeriesTerms, or None (terms not integral: cannot settle)
    cdef int32_t* underlying      # [series]: underlying asset id
    cdef int64_t* cover_per_qty   # [series]: underlying ledger units a covered quantity unit locks (0: none)
    cdef uint8_t* status          # [series]: SeriesStatus
    cdef int64_t* settle_price    # [series]: price it settled at (price units per underlying token)
    cdef int64_t* open_interest   # [series]: quantity units held long (kept by every fill)
    cdef set covering             # accounts whose call sells lock underlying they hold (COVER_CALLS)

    # -- queries --
    cdef inline bint is_final(self, int32_t series) noexcept nogil:
        return self.status[series] != LIFE_LIVE
    cdef object value(self, const Instrument* inst, int64_t price)
    cdef list shortfalls(self, const Instrument* inst, object value)

    # -- commands --
    cdef int add_series(self, int32_t series, object terms, int32_t underlying) except -1
    cdef inline void moved(self, int32_t series, int64_t before, int64_t after) noexcept nogil:
        # A fill moved one account's position from before to after: the longs' total follows.
        self.open_interest[series] += (after if after > 0 else 0) - (before if before > 0 else 0)
    cdef void cover(self, int64_t account, int32_t series) noexcept
    cdef inline void trim(self, int64_t account, int32_t series) noexcept nogil:
        # Covered exposure never exceeds what the account could still be short.
        cdef Position* p = self.ledger.position(account, series)
        cdef int64_t limit
        if p.covered > 0:
            limit = p.ask_open - p.pos
            if limit < 0:
                limit = 0
            if p.covered > limit:
                self.ledger.release(account, self.underlying[series],
                                    (p.covered - limit) * self.cover_per_qty[series])
                p.covered = limit
    cdef int uncover_all(self, int32_t series) except -1
    cdef tuple settle(self, const Instrument* inst, object value, int64_t fee_account)
    cdef void close(self, int32_t series, uint8_t status, int64_t price) noexcept
    cdef int set_covering(self, int64_t account, bint on) except -1

    # -- state (state.pyx puts the parts together) --
    cdef list write_status(self, const Instrument* insts, int32_t n_inst)
    cdef list write_covered(self, const Instrument* insts, int32_t n_inst)
    cdef int read_part(self, list status, list covered, list covering, const Instrument* insts,
                       int32_t n_inst) except -1
    cdef int hash_words(self, const Instrument* insts, int32_t n_inst, list words) except -1
    cdef int locked(self, dict need) except -1
    cdef list counted_open_interest(self)
    cdef int check_open_interest(self) except -1
