# Funding of perpetual (everlasting) option series: a cumulative funding index
# per series that accrues with the command timestamps, each position settled
# against it into the premium asset, and the pool that holds what was paid in
# and not yet paid out, its money held by the fee account (docs/funding.md).
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.instrument cimport Instrument
from engine.core.ledger cimport Ledger

cdef extern from *:
    ctypedef long long int128_t "__int128"


cdef class Funding:
    cdef Ledger ledger              # balances and positions it settles
    cdef int64_t fee_account        # holds the pools' money: the funding counterparty on chain
    cdef int32_t n_series
    cdef int32_t n_perpetual
    cdef int32_t* series_inst       # [series]: instrument id
    cdef int64_t* period_ns         # [series]: funding period T in ns; 0: a dated series
    cdef int64_t* base_index        # [series]: index at the last FUND (ledger units x 1e-6 per qty unit)
    cdef int64_t* base_ts           # [series]: that FUND's timestamp (ns)
    cdef int64_t* time_value        # [series]: mark - payoff of the last FUND, price units
    cdef int64_t* pool              # [series]: premium ledger units paid in and not yet paid out
    cdef int64_t* open_interest     # [series]: sum of the long positions

    # -- queries --
    cdef inline bint perpetual(self, int32_t series) noexcept nogil:
        return self.period_ns[series] != 0
    cdef int64_t index_at(self, const Instrument* inst, int32_t series, int64_t ts) noexcept
    cdef int128_t _step(self, const Instrument* inst, int32_t series, int64_t ts) noexcept
    cdef int64_t next_due(self, int32_t series, int64_t after, int64_t index, bint payers) noexcept
    cdef tuple series_state(self, int32_t series)
    cdef tuple position_state(self, int64_t account, int32_t series)

    # -- commands --
    cdef int add_series(self, int32_t series, int32_t instrument, int64_t period_ns) except -1
    cdef int64_t settle(self, const Instrument* inst, int64_t account, int64_t index, bint to_pool) noexcept
    cdef void fill(self, int32_t series, int64_t buyer, int64_t seller, int64_t q) noexcept
    cdef uint8_t fund(self, const Instrument* inst, int64_t mark, int64_t payoff, int64_t ts,
                      int64_t* index) noexcept

    # -- state (state.pyx puts the parts together) --
    cdef bytes write_part(self)
    cdef int read_part(self, bytes data, accounts) except -1
    cdef int hash_words(self, list words) except -1
    cdef int check_integrity(self) except -1
