from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.book cimport Books
from engine.core.ledger cimport Ledger
from engine.core.types cimport CommandRec, EventRec, Order, oid_t, price_t, qty_t


# Parameters and trading state of one instrument. Band edges are cached when
# their centre changes; has_static / has_dynamic say whether the band exists.
ctypedef struct Instrument:
    int64_t tick
    int64_t lot
    int64_t min_qty
    int64_t max_qty
    int64_t max_price
    int64_t static_bps
    int64_t dynamic_bps
    int64_t reference
    int64_t last_trade
    int64_t s_lo
    int64_t s_hi
    int64_t d_lo
    int64_t d_hi
    # risk: assets, exact unit mapping, fees (engine/core/ledger.pyx)
    int32_t base_asset
    int32_t quote_asset
    int64_t base_per_qty          # base ledger units per quantity unit
    int64_t quote_per_tick_qty    # quote ledger units per (tick x quantity unit)
    int64_t maker_bps
    int64_t taker_bps
    int64_t reserve_bps           # fee rate a buy reserves: max(maker, taker, 0)
    # options (risk mode): position column, margins in USD x 1e8 per quantity unit
    int32_t series                # -1: not an option series
    int64_t im_per_qty            # initial margin of a short (0: not set yet)
    int64_t mm_per_qty            # maintenance margin of a short
    uint8_t has_static
    uint8_t has_dynamic
    uint8_t state


cdef class MatchingEngine:
    cdef Books books
    cdef Instrument* insts
    cdef int32_t n_inst
    cdef list specs
    cdef readonly int64_t max_accounts
    cdef Ledger ledger
    cdef readonly bint risk
    cdef readonly int64_t fee_account
    cdef readonly int64_t last_deposit_id
    cdef list asset_specs
    cdef oid_t next_order_id
    cdef readonly int64_t last_seq
    cdef int32_t* series_inst     # [series]: instrument id
    cdef bint liquidating         # closing orders of a liquidation skip the margin check
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
    cdef uint8_t _check_deposit_id(self, int64_t deposit_id) noexcept
    cdef int _skip_deposit(self, const CommandRec* c) except -1
    cdef int _set_option_risk(self, const CommandRec* c) except -1
    cdef int _liquidate(self, const CommandRec* c) except -1
    cdef int _raise_quote(self, int64_t account, int32_t quote, int64_t need) except -1
    cdef bint _closing_order(self, int32_t instrument, int64_t account, uint8_t side, price_t price,
                             qty_t qty) except -1

    # -- matching --
    cdef int _take(self, Instrument* inst, Order* taker, int32_t slot, price_t lo, price_t hi,
                   bint collared) except -1
    cdef int _match(self, Order* taker, price_t lo, price_t hi, bint collared) except -1
    cdef bint _fok_fillable(self, const Order* taker, price_t lo, price_t hi) noexcept
    cdef int _finish(self, Order* taker, int32_t slot, int stop) except -1
    cdef bint _crosses(self, int32_t instrument, uint8_t side, price_t price) noexcept
    cdef void _execution_band(self, const Instrument* inst, price_t* lo, price_t* hi) noexcept

    # -- events --
    cdef list _run_one(self, const CommandRec* c)
    cdef EventRec* _emit(self, uint8_t kind) except NULL
    cdef int _emit_amended(self, int32_t slot, uint8_t priority_lost) except -1
    cdef int _reject(self, const CommandRec* c, uint8_t reason) except -1
    cdef int _kill(self, const Order* o, uint8_t reason) except -1
    cdef int _cancel_slot(self, int32_t slot, uint8_t reason) except -1

    # -- queries --
    cdef list _side_depth(self, int32_t instrument, uint8_t side, int levels)
    cdef object _info(self, int32_t slot)

    # -- risk --
    cdef uint8_t _reserve_new(self, const Instrument* inst, const CommandRec* c, price_t price) noexcept
    cdef void _release(self, const Order* o) noexcept
    cdef void _settle_fill(self, const Instrument* inst, const Order* taker, const Order* maker,
                           price_t p, qty_t q, EventRec* e) noexcept
    cdef bint _account_ok(self, int64_t account) noexcept
    cdef int64_t _collateral(self, int64_t account, bint free_only) noexcept
    cdef int64_t _requirement(self, int64_t account, bint initial) noexcept
    cdef bint _margin_ok(self, int64_t account) noexcept
    cdef int64_t _free(self, int64_t account, int32_t asset) noexcept
    cdef int _restore_options(self, snap, accounts) except -1

    # -- validation --
    cdef uint8_t _check_qty(self, const Instrument* inst, qty_t qty) noexcept
    cdef uint8_t _check_price(self, const Instrument* inst, price_t price) noexcept
