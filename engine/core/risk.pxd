# Pre-trade risk and the money side of trading: reservations (one check for new
# and amended orders), fees, fill settlement, deposits, credits and debits.
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.book cimport Books
from engine.core.expiry cimport SeriesLife
from engine.core.instrument cimport Instrument
from engine.core.ledger cimport Ledger
from engine.core.margin cimport Margin
from engine.core.transfers cimport Transfers
from engine.core.types cimport CommandRec, EventRec, Order, price_t, qty_t


cdef class Risk:
    cdef Ledger ledger
    cdef Margin margin
    cdef SeriesLife life          # covered calls
    cdef Transfers transfers      # collateral moved between shards
    cdef readonly int64_t fee_account
    cdef readonly int64_t last_deposit_id
    cdef bint liquidating         # closing orders of a liquidation skip the margin check
    cdef set frozen               # accounts frozen by their wallet's exit request
    cdef readonly int64_t n_frozen  # len(frozen): the hot path tests this int, not the set
    cdef int64_t* fee_income      # [asset]: fees earned, kept for the insurance pool's share (NULL: no pools)

    # -- commands --
    cdef uint8_t reserve(self, const Instrument* inst, int64_t account, uint8_t side,
                         price_t old_price, qty_t old_leaves, price_t price, qty_t qty) noexcept
    cdef void release(self, const Instrument* inst, const Order* o) noexcept
    cdef void settle_fill(self, const Instrument* inst, const Order* taker, const Order* maker,
                          price_t p, qty_t q, EventRec* e) noexcept
    cdef uint8_t credit_debit(self, const CommandRec* c) noexcept
    cdef uint8_t transfer(self, const CommandRec* c) noexcept
    cdef uint8_t _withdraw(self, int64_t account, int32_t asset, int64_t qty) noexcept
    cdef uint8_t skip_deposit(self, int64_t deposit_id) noexcept
    cdef uint8_t _check_deposit_id(self, int64_t deposit_id) noexcept
    cdef uint8_t freeze(self, int64_t account) except 255
    cdef bint is_frozen(self, int64_t account) except -1

    # -- state (state.pyx puts the parts together) --
    cdef list write_frozen(self)
    cdef int read_frozen(self, list accounts) except -1
    cdef int check_reservations(self, Books books, const Instrument* insts, int32_t n_inst, dict need) except -1
