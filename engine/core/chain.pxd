# The commands of an option series' life: listing at run time (LIST_SERIES),
# delisting (DELIST_SERIES), cash settlement at expiry (SETTLE_SERIES), and
# covered calls (COVER_CALLS).
# MatchingEngine (matcher.pxd) extends this class and implements the order
# handling it calls.
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.losses cimport LossApi
from engine.core.margin cimport Liquidation
from engine.core.types cimport CommandRec, Order


cdef class ChainApi(LossApi):
    # -- commands --
    cdef int _list_series(self, const CommandRec* c) except -1
    cdef int _delist_series(self, const CommandRec* c) except -1
    cdef int _settle_series(self, const CommandRec* c) except -1
    cdef int _cover_calls(self, const CommandRec* c) except -1
    cdef int64_t _run_plan(self, Liquidation* plan) except -1
    cdef int _cancel_instrument(self, int32_t instrument, uint8_t reason) except -1
    cdef uint8_t _final_check(self, const CommandRec* c) noexcept

    # -- order handling (MatchingEngine's) --
    cdef int _new_order(self, const CommandRec* c) except -1
    cdef int _cancel_account(self, int64_t account, int32_t instrument, uint8_t reason) except -1
    cdef int _cancel_slot(self, int32_t slot, uint8_t reason) except -1
    cdef int _reject(self, const CommandRec* c, uint8_t reason) except -1
