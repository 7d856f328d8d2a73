# The matching engine: command dispatch, order handling, price-time matching
# and events. Risk, margin, instruments, books and state live in their own
# modules; the engine holds one of each.
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.book cimport Books
from engine.core.instrument cimport Instrument
from engine.core.ledger cimport Ledger
from engine.core.margin cimport Margin
from engine.core.risk cimport Risk
from engine.core.state cimport Parts
from engine.core.types cimport CommandRec, EventRec, Order, oid_t, price_t, qty_t


# Why a taker's walk over the book stopped.
cdef enum Stop:
    STOP_NONE = 0
    STOP_BAND = 1
    STOP_STP = 2


cdef class MatchingEngine:
    cdef Books books
    cdef Instrument* insts
    cdef int32_t n_inst
    cdef list specs
    cdef readonly int64_t max_accounts
    cdef Ledger ledger
    cdef Margin margins
    cdef Risk funds               # reservations, fills, deposits
    cdef readonly bint risk
    cdef list asset_specs
    cdef oid_t next_order_id
    cdef readonly int64_t last_seq
    # events of the command (per-command API) or batch (batch API) in progress
    cdef EventRec* ev
    cdef Py_ssize_t ev_n
    cdef Py_ssize_t ev_cap
    cdef int64_t cur_seq
    cdef int64_t cur_ts

    # -- commands --
    cdef int execute(self, const CommandRec* c) except -1
    cdef int _new_order(self, const CommandRec* c) except -1
    cdef int _cancel(self, const CommandRec* c) except -1
    cdef int _amend(self, const CommandRec* c) except -1
    cdef int _mass_cancel(self, const CommandRec* c) except -1
    cdef int _set_state(self, const CommandRec* c) except -1
    cdef int _set_reference(self, const CommandRec* c) except -1
    cdef int _credit_debit(self, const CommandRec* c) except -1
    cdef int _set_asset_price(self, const CommandRec* c) except -1
    cdef int _skip_deposit(self, const CommandRec* c) except -1
    cdef int _set_option_risk(self, const CommandRec* c) except -1
    cdef int _liquidate(self, const CommandRec* c) except -1
    cdef int _cancel_account(self, int64_t account, int32_t instrument, uint8_t reason) except -1

    # -- matching --
    cdef int _take(self, Instrument* inst, Order* taker, int32_t slot, price_t lo, price_t hi,
                   bint collared) except -1
    cdef int _match(self, Order* taker, price_t lo, price_t hi, bint collared) except -1
    cdef bint _fok_fillable(self, const Order* taker, price_t lo, price_t hi) noexcept
    cdef int _finish(self, Order* taker, int32_t slot, int stop) except -1
    cdef bint _crosses(self, int32_t instrument, uint8_t side, price_t price) noexcept

    # -- events --
    cdef list _run_one(self, const CommandRec* c)
    cdef EventRec* _emit(self, uint8_t kind) except NULL
    cdef int _emit_amended(self, int32_t slot, uint8_t priority_lost) except -1
    cdef int _reject(self, const CommandRec* c, uint8_t reason) except -1
    cdef int _kill(self, const Order* o, uint8_t reason) except -1
    cdef int _cancel_slot(self, int32_t slot, uint8_t reason) except -1

    # -- queries --
    cdef bint _account_ok(self, int64_t account) noexcept
    cdef int _checked_account(self, int64_t account) except -1
    cdef Parts _parts(self) noexcept
