# The loss waterfall's steps: the liquidation penalty, covering a bankrupt
# short (own assets, penalty, insurance pool, main pool) and, last,
# auto-deleveraging the opposite longs; the expiry shortfall's cover; the
# insurance pool's share of fees (SWEEP_FEES). ChainApi (chain.pxd) extends
# this class; MatchingEngine (matcher.pxd) implements the order handling it calls.
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.api cimport CommandApi
from engine.core.instrument cimport Instrument
from engine.core.types cimport CommandRec, Order, qty_t
from engine.core.waterfall cimport Draw


# -- auto-deleveraging rank --
cdef object adl_score(object value, object cost, object collateral)


cdef class LossApi(CommandApi):
    # -- commands --
    cdef int _sweep_fees(self, const CommandRec* c) except -1
    cdef int _end_liquidations(self) except -1
    cdef int _release_penalty(self, int64_t account) except -1

    # -- the waterfall --
    cdef int _cover_liquidation(self, int64_t account, Py_ssize_t head) except -1
    cdef dict _charge_penalty(self, int64_t account, Py_ssize_t head)
    cdef int _cover_series(self, int64_t account, int32_t series, Py_ssize_t head, dict penalty) except -1
    cdef qty_t _bought(self, int64_t account, int32_t instrument, Py_ssize_t head) noexcept
    cdef int _cover_payment(self, int64_t account, int32_t instrument, int64_t need) except -1
    cdef int _cover_funding(self, int64_t account, dict penalty) except -1
    cdef int _take_own(self, int64_t account, int32_t instrument, int32_t premium) except -1
    cdef int64_t _top_up(self, int64_t account, int32_t instrument, int32_t asset, int64_t want,
                         dict penalty, Draw* d) except -1
    cdef int _give_back(self, int64_t account, int32_t instrument, int32_t asset, int64_t amount,
                        dict penalty, Draw* d) except -1
    cdef int _deleverage(self, int64_t account, const Instrument* inst, list ranked, qty_t qty,
                         int64_t paid) except -1
    cdef list _ranked_longs(self, int64_t account, const Instrument* inst)
    cdef int _emit_transfer(self, uint8_t kind, uint8_t step, int64_t payer, int64_t payee, int32_t instrument,
                            int32_t asset, int64_t amount) except -1

    # -- order handling (MatchingEngine's) --
    cdef int _new_order(self, const CommandRec* c) except -1
    cdef int _reject(self, const CommandRec* c, uint8_t reason) except -1
    cdef int _settle_fill_funding(self, const Instrument* inst, const Order* taker, const Order* maker,
                                  qty_t q) except -1
    cdef int _settle_funding(self, const Instrument* inst, int64_t account, int64_t index,
                             bint frozen) except -1
