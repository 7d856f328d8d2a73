from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.book cimport Books
from engine.core.matcher cimport MatchingEngine
from engine.core.types cimport oid_t, price_t, qty_t


# One LOBSTER message, decoded by engine/tools/lobster.py (numpy: STEP_DTYPE).
ctypedef struct Step:
    int64_t kind        # LOBSTER message type (1 ... 7)
    int64_t order       # the message's order id, renumbered 0 .. n_ids - 1
    int64_t size
    int64_t price
    int64_t side        # Side of the order the message names
    int64_t state       # TradingState a halt message (type 7) sets


# Where a side's best level stood before a command: a command changed it iff
# it traded against that side (nothing rests there in between).
ctypedef struct BestMark:
    int32_t n_levels
    int32_t level
    qty_t qty


# -- depth rows --

cdef void write_depth(Books books, int32_t instrument, int32_t levels, int64_t empty_ask,
                      int64_t empty_bid, int64_t* row) noexcept


cdef class LobsterRun:
    """The per-message loop of the LOBSTER replay (engine/tools/lobster.py)."""
    cdef MatchingEngine engine
    cdef Books books
    cdef int32_t instrument
    cdef int32_t levels
    cdef int64_t empty_ask
    cdef int64_t empty_bid
    cdef int64_t book_account
    cdef int64_t taker_account
    cdef const Step[::1] steps
    cdef const int64_t[:, ::1] expected
    cdef int64_t[:, ::1] seen
    cdef const int64_t[::1] ask_edges     # view_edges() of the replay; 0: the view did not widen
    cdef const int64_t[::1] bid_edges
    cdef int32_t max_align_rounds
    # per renumbered LOBSTER id: the engine's order id (0: none, -1: accepted,
    # never rested) and the pool slot it rested in
    cdef int64_t[::1] order_ids
    cdef int32_t[::1] order_slots
    # scratch of an alignment: the engine's top N, and (side, price, target) per level to change
    cdef int64_t[::1] have
    cdef int64_t[:, ::1] cuts
    cdef int64_t[:, ::1] adds
    cdef bint ran
    cdef list mismatches
    cdef list fifo_misses
    cdef object no_commands

    # -- queries --
    cdef int32_t _slot_of(self, int64_t lobster_id) noexcept
    cdef BestMark _mark(self, uint8_t side) noexcept
    cdef bint _traded(self, uint8_t side, BestMark before) noexcept
    cdef bint _row_matches(self, Py_ssize_t i) noexcept

    # -- messages --
    cdef int _step(self, Py_ssize_t i) except -1
    cdef int _add(self, int64_t lobster_id, uint8_t side, price_t price, qty_t size) except -1
    cdef int _delete(self, int64_t lobster_id, uint8_t side, price_t price, qty_t size) except -1
    cdef int _reduce(self, int64_t lobster_id, uint8_t side, price_t price, qty_t size) except -1
    cdef int _execution(self, Py_ssize_t i, int64_t lobster_id, uint8_t side, price_t price,
                        qty_t size) except -1
    cdef int _take(self, uint8_t side, price_t price, qty_t size, bint oldest) except -1
    cdef int _shrink(self, int32_t slot, qty_t qty) except -1

    # -- alignment --
    cdef int _correct(self, Py_ssize_t i) except -1
    cdef int _align(self, Py_ssize_t i, bint asks, int64_t ask_edge, bint bids, int64_t bid_edge) except -1
    cdef void _plan_side(self, const int64_t* row, uint8_t side, int64_t sign, int64_t edge,
                         Py_ssize_t* n_cuts, Py_ssize_t* n_adds) noexcept
    cdef int _set_level(self, uint8_t side, price_t price, qty_t target) except -1

    # -- commands --
    cdef int _new_order(self, int64_t account, uint8_t side, price_t price, qty_t qty,
                        uint8_t tif) except -1
    cdef int _cancel(self, int32_t slot) except -1
    cdef int _cancel_order(self, int64_t account, oid_t order_id) except -1
    cdef int _amend(self, int32_t slot, qty_t qty) except -1
    cdef int _set_state(self, uint8_t state) except -1
