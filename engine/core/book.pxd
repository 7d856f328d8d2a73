from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.order_index cimport OrderIndex
from engine.core.types cimport BUY, SELL, Level, Order, price_t, qty_t


# A walk over the resting orders of one side: best price first, FIFO within a
# level (Books.walk / Books.next_resting). The one way every reader of a
# whole side (snapshot, hash, integrity checks) visits its orders.
ctypedef struct OrderWalk:
    BookSide* bs
    int32_t k        # next level to enter, counting down from the best
    int32_t slot     # next order, -1: enter the next level


# One resting order in a snapshot (engine/core/snapshot.py ORDER_DTYPE, packed).
cdef packed struct SnapOrder:
    int64_t order_id
    int64_t client_order_id
    int64_t price
    int64_t leaves
    int64_t account
    int32_t instrument
    uint8_t side
    uint8_t tif
    uint8_t stp
    uint8_t pad


# Price levels of one side of one instrument, sorted by key ascending with
# the best level last (key = price for bids, -price for asks), so the best
# price is read in O(1) and levels near the top move little on insert/remove.
ctypedef struct BookSide:
    int64_t* keys
    int32_t* levels
    int32_t n
    int32_t cap


cdef class Books:
    """Storage of every resting order: the order pool with its free list, the
    level pool, the sorted level arrays per (instrument, side), the per-account
    order lists and the order-id index. No matching rules live here."""

    # order pool
    cdef Order* orders
    cdef int32_t order_cap
    cdef int32_t order_free
    cdef int32_t order_live
    cdef int32_t max_orders
    # level pool
    cdef Level* levels
    cdef int32_t level_cap
    cdef int32_t level_free
    cdef int32_t level_live
    # sides[2 * instrument + (side - 1)]
    cdef BookSide* sides
    cdef int32_t n_books
    # per-account lists of resting orders, in order-id order
    cdef int32_t* acct_head
    cdef int32_t* acct_tail
    cdef int64_t acct_cap
    cdef OrderIndex index

    # -- queries --
    cdef inline BookSide* side_of(self, int32_t instrument, uint8_t side) noexcept nogil:
        return &self.sides[2 * instrument + side - 1]

    cdef inline int32_t best_level(self, int32_t instrument, uint8_t side) noexcept nogil:
        cdef BookSide* bs = &self.sides[2 * instrument + side - 1]
        return bs.levels[bs.n - 1] if bs.n > 0 else -1

    cdef inline bint crosses(self, int32_t instrument, uint8_t side, price_t price) noexcept nogil:
        """Whether a price on this side reaches the best opposite price."""
        cdef int32_t lvl = self.best_level(instrument, SELL if side == BUY else BUY)
        if lvl == -1:
            return False
        if side == BUY:
            return price >= self.levels[lvl].price
        return price <= self.levels[lvl].price

    cdef inline OrderWalk walk(self, int32_t instrument, uint8_t side) noexcept nogil:
        cdef OrderWalk w
        w.bs = &self.sides[2 * instrument + side - 1]
        w.k = w.bs.n - 1
        w.slot = -1
        return w

    cdef inline int32_t next_resting(self, OrderWalk* w) noexcept nogil:
        """The walk's next order slot, -1 at the end (the book must not change meanwhile)."""
        cdef int32_t slot = w.slot
        while slot == -1:
            if w.k < 0:
                return -1
            slot = self.levels[w.bs.levels[w.k]].head
            w.k -= 1
        w.slot = self.orders[slot].next
        return slot

    cdef int32_t find_level(self, int32_t instrument, uint8_t side, price_t price) noexcept nogil
    cdef Py_ssize_t memory_bytes(self) noexcept
    cdef list depth(self, int32_t instrument, uint8_t side, int levels)
    cdef list orders_at(self, int32_t instrument, uint8_t side, price_t price)
    cdef list open_orders(self, int64_t account, int64_t after, Py_ssize_t limit)
    cdef object info(self, int32_t slot)

    # -- commands --
    cdef int add_book(self) except -1
    cdef int32_t alloc_order(self) except -2
    cdef int rest(self, int32_t slot, bint at_front) except -1
    cdef void unlink_level(self, int32_t slot) noexcept nogil
    cdef int relink_back(self, int32_t slot) except -1
    cdef void remove(self, int32_t slot) noexcept nogil
    cdef void free_order(self, int32_t slot) noexcept nogil
    cdef void take(self, int32_t slot, qty_t qty) noexcept nogil
    cdef int rebuild_account_lists(self) except -1

    # -- state (state.pyx puts the parts together) --
    cdef bytes write_orders(self)
    cdef int read_orders(self, bytes data) except -1
    cdef int hash_words(self, int32_t instrument, list words) except -1

    # -- internals --
    cdef int32_t _level_for(self, int32_t instrument, uint8_t side, price_t price) except -2
    cdef void _drop_level(self, int32_t instrument, uint8_t side, int32_t lvl) noexcept nogil
    cdef int _ensure_account(self, int64_t account) except -1
