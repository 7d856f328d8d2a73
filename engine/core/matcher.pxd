# The matching engine: command dispatch, order handling, price-time matching
# and events. It extends PoolApi (pool_api.pxd: the main pool's commands),
# which extends ChainApi (chain.pxd: series listing, delisting and settlement),
# which extends CommandApi (api.pxd: entry points, event buffer),
# which extends EngineParts (parts.pxd: instruments, books, ledger, margin,
# risk, and their set-up, queries and state). Other modules cimport
# MatchingEngine from here for `books` (EngineParts) and `execute`.
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.pool_api cimport PoolApi
from engine.core.instrument cimport Instrument
from engine.core.types cimport CommandRec, Order, price_t, qty_t


# Why a taker's walk over the book stopped.
cdef enum Stop:
    STOP_NONE = 0
    STOP_BAND = 1
    STOP_STP = 2


cdef class MatchingEngine(PoolApi):
    # -- dispatch --
    cdef int execute(self, const CommandRec* c) except -1
    cdef int _dispatch_command(self, const CommandRec* c) except -1

    # -- commands --
    cdef int _new_order(self, const CommandRec* c) except -1
    cdef int _cancel(self, const CommandRec* c) except -1
    cdef int _amend(self, const CommandRec* c) except -1
    cdef int _mass_cancel(self, const CommandRec* c) except -1
    cdef int _set_state(self, const CommandRec* c) except -1
    cdef int _set_reference(self, const CommandRec* c) except -1
    cdef int _credit_debit(self, const CommandRec* c) except -1
    cdef int _set_asset_value(self, const CommandRec* c) except -1
    cdef int _skip_deposit(self, const CommandRec* c) except -1
    cdef int _transfer(self, const CommandRec* c) except -1
    cdef int _set_option_risk(self, const CommandRec* c) except -1
    cdef int _liquidate(self, const CommandRec* c) except -1
    cdef int _freeze_account(self, const CommandRec* c) except -1
    cdef int _set_bands(self, const CommandRec* c) except -1
    cdef int _fund(self, const CommandRec* c) except -1
    cdef int _cancel_outside_static(self, int32_t instrument) except -1
    cdef int _cancel_account(self, int64_t account, int32_t instrument, uint8_t reason) except -1

    # -- matching --
    cdef int _take(self, Instrument* inst, Order* taker, int32_t slot, price_t lo, price_t hi,
                   bint collared) except -1
    cdef int _match(self, Order* taker, price_t lo, price_t hi, bint collared) except -1
    cdef bint _fok_fillable(self, const Order* taker, price_t lo, price_t hi) noexcept
    cdef int _finish(self, Order* taker, int32_t slot, int stop) except -1
    cdef int _settle_fill_funding(self, const Instrument* inst, const Order* taker, const Order* maker,
                                  qty_t q) except -1
    cdef int _settle_funding(self, const Instrument* inst, int64_t account, int64_t index,
                             bint frozen) except -1
    cdef int _settle_funding_at_freeze(self, int64_t account) except -1

    # -- events --
    cdef int _emit_amended(self, int32_t slot, uint8_t priority_lost) except -1
    cdef int _reject(self, const CommandRec* c, uint8_t reason) except -1
    cdef int _kill(self, const Order* o, uint8_t reason) except -1
    cdef int _cancel_slot(self, int32_t slot, uint8_t reason) except -1
