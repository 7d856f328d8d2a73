"""Flat depth rows: the top N levels of both sides of an instrument, written
straight into int64 rows in C (LOBSTER's layout: ask price, ask size, bid
price, bid size, level by level), and the LOBSTER replay's per-message loop
that writes and checks one such row after every message.

The replay's rules are specified in engine/tools/lobster.py, whose
per-message Python loop is the readable reference; tests compare the two.
Commands go through MatchingEngine.execute like any other command; what the
loop needs to know of their outcome (which order rested, whether an order
traded) it reads from the book, never from the engine's events.
"""

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memcmp, memset

from engine.core.book cimport BookSide, Books
from engine.core.matcher cimport MatchingEngine
from engine.core.types cimport (AMEND, BUY, CANCEL, GTC, IOC, LIMIT, NEW_ORDER, SELL, SET_STATE,
                                STP_NONE, CommandRec, Level, Order, oid_t, price_t, qty_t)

import numpy as np

from engine.core.records import COMMAND_DTYPE

# numpy's view of the C Step record: one LOBSTER message, decoded.
STEP_DTYPE = np.dtype([(name, "<i8") for name in ("kind", "order", "size", "price", "side", "state")])
if STEP_DTYPE.itemsize != sizeof(Step):
    raise ImportError("engine.core.depth.STEP_DTYPE does not match the C Step record")

# The order id recorded for an add the engine accepted that never rested (it
# traded in full on arrival): known to the replay, absent from the book.
cdef oid_t _NEVER_RESTED = -1

# Commands run between two clears of the engine's event buffer (the loop
# never reads the events; the buffer only has to stay small).
cdef Py_ssize_t _EVENTS_CLEARED_EVERY = 4096

# LOBSTER message types the loop acts on (5, hidden executions, and any other
# type change nothing).
cdef enum:
    _ADD = 1
    _REDUCE = 2
    _DELETE = 3
    _EXECUTE = 4
    _HALT = 7


cdef inline uint8_t _other(uint8_t side) noexcept:
    return SELL if side == BUY else BUY


# -- depth rows --


cdef inline void _write_side(Books books, const BookSide* bs, int32_t levels, int64_t empty,
                             int64_t* out) noexcept:
    cdef int32_t k
    cdef const Level* level
    for k in range(levels):
        if k < bs.n:
            level = &books.levels[bs.levels[bs.n - 1 - k]]
            out[4 * k] = level.price
            out[4 * k + 1] = level.qty
        else:
            out[4 * k] = empty
            out[4 * k + 1] = 0


cdef void write_depth(Books books, int32_t instrument, int32_t levels, int64_t empty_ask,
                      int64_t empty_bid, int64_t* row) noexcept:
    """Write the top `levels` of both sides into row[0 : 4 * levels]; a level
    the book does not have gets price `empty_ask` / `empty_bid` and size 0."""
    _write_side(books, books.side_of(instrument, SELL), levels, empty_ask, row)
    _write_side(books, books.side_of(instrument, BUY), levels, empty_bid, row + 2)


def depth_row(MatchingEngine engine, int32_t instrument, int64_t[::1] row, int64_t empty_ask,
              int64_t empty_bid):
    """Write the engine's top len(row) // 4 levels of `instrument` into `row`
    (ask price, ask size, bid price, bid size, ...; missing levels get the
    empty prices and size 0)."""
    if not 0 <= instrument < engine.books.n_books:
        raise ValueError(f"unknown instrument {instrument}")
    if row.shape[0] % 4:
        raise ValueError(f"a depth row holds 4 numbers per level, not {row.shape[0]}")
    if row.shape[0]:
        write_depth(engine.books, instrument, <int32_t>(row.shape[0] // 4), empty_ask, empty_bid,
                    &row[0])


# -- the LOBSTER loop --


cdef class LobsterRun:
    """Runs a LOBSTER day through a MatchingEngine in C with the rules of
    engine/tools/lobster.py: after each message it writes the engine's top N
    levels into `seen`, compares them with the orderbook file's row in
    `expected` and, where they differ, applies the view rule and the
    correction (alignment) of that module.

    `steps` is the day decoded into a STEP_DTYPE array; `ask_edges` and
    `bid_edges` are that module's view_edges(); the constants are its own.
    """

    def __init__(self, MatchingEngine engine, int32_t instrument, const Step[::1] steps, Py_ssize_t n_ids,
                 const int64_t[:, ::1] expected, const int64_t[::1] ask_edges, const int64_t[::1] bid_edges,
                 int64_t[:, ::1] seen, *, int64_t empty_ask, int64_t empty_bid, int64_t book_account,
                 int64_t taker_account, int32_t max_align_rounds):
        cdef Py_ssize_t i
        cdef const Step* step
        if not 0 <= instrument < engine.books.n_books:
            raise ValueError(f"unknown instrument {instrument}")
        if expected.shape[1] % 4 or expected.shape[1] == 0:
            raise ValueError(f"a depth row holds 4 numbers per level, not {expected.shape[1]}")
        if not (steps.shape[0] == expected.shape[0] == seen.shape[0] == ask_edges.shape[0]
                == bid_edges.shape[0] and seen.shape[1] == expected.shape[1]):
            raise ValueError("steps, expected, edges and seen need one row per message, rows of equal width")
        for i in range(steps.shape[0]):
            step = &steps[i]
            if not 0 <= step.order < n_ids:
                raise ValueError(f"message {i}: order number {step.order} outside [0, {n_ids})")
            if step.side != BUY and step.side != SELL:
                raise ValueError(f"message {i}: invalid side {step.side}")
        self.engine = engine
        self.books = engine.books
        self.instrument = instrument
        self.levels = <int32_t>(expected.shape[1] // 4)
        self.steps = steps
        self.expected = expected
        self.seen = seen
        self.ask_edges = ask_edges
        self.bid_edges = bid_edges
        self.max_align_rounds = max_align_rounds
        self.empty_ask = empty_ask
        self.empty_bid = empty_bid
        self.book_account = book_account
        self.taker_account = taker_account
        self.order_ids = np.zeros(n_ids, dtype=np.int64)
        self.order_slots = np.full(n_ids, -1, dtype=np.int32)
        self.have = np.empty(4 * self.levels, dtype=np.int64)
        self.cuts = np.empty((2 * self.levels, 3), dtype=np.int64)
        self.adds = np.empty((2 * self.levels, 3), dtype=np.int64)
        self.mismatches = []
        self.fifo_misses = []
        self.no_commands = np.empty(0, dtype=COMMAND_DTYPE)

    @property
    def mismatch_rows(self):
        """Messages after which the top N still differed from the file's after the view rule."""
        return list(self.mismatches)

    @property
    def fifo_miss_rows(self):
        """Messages (executions) whose IOC first filled another order than the one named."""
        return list(self.fifo_misses)

    def run(self):
        """Run every message after row 0 (the seeded start), in order; once."""
        cdef Py_ssize_t i
        if self.ran:
            raise RuntimeError("a LobsterRun runs its day once")
        self.ran = True
        for i in range(1, self.steps.shape[0]):
            if i % _EVENTS_CLEARED_EVERY == 1:
                self.engine.process(self.no_commands)  # a batch of nothing clears the buffer
            self._step(i)
            if not self._row_matches(i):
                self._correct(i)

    # -- queries --

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int32_t _slot_of(self, int64_t lobster_id) noexcept:
        """Pool slot of the resting order the LOBSTER id stands for, or -1."""
        cdef oid_t order_id = self.order_ids[lobster_id]
        cdef int32_t slot = self.order_slots[lobster_id]
        if order_id <= 0 or slot < 0 or slot >= self.books.order_cap:
            return -1
        cdef const Order* o = &self.books.orders[slot]
        return slot if o.live and o.order_id == order_id else -1

    cdef BestMark _mark(self, uint8_t side) noexcept:
        cdef BookSide* bs = self.books.side_of(self.instrument, side)
        cdef BestMark mark
        mark.n_levels = bs.n
        mark.level = bs.levels[bs.n - 1] if bs.n > 0 else -1
        mark.qty = self.books.levels[mark.level].qty if mark.level != -1 else 0
        return mark

    cdef bint _traded(self, uint8_t side, BestMark before) noexcept:
        """Whether a command that rests nothing on `side` traded against it."""
        if before.level == -1:
            return False
        cdef BookSide* bs = self.books.side_of(self.instrument, side)
        return bs.n != before.n_levels or self.books.levels[before.level].qty != before.qty

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef bint _row_matches(self, Py_ssize_t i) noexcept:
        cdef int64_t* row = &self.seen[i, 0]
        write_depth(self.books, self.instrument, self.levels, self.empty_ask, self.empty_bid, row)
        return memcmp(row, &self.expected[i, 0], 4 * self.levels * sizeof(int64_t)) == 0

    # -- messages --

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int _step(self, Py_ssize_t i) except -1:
        cdef const Step* step = &self.steps[i]
        cdef int64_t kind = step.kind
        cdef int64_t lobster_id = step.order
        cdef qty_t size = step.size
        cdef price_t price = step.price
        cdef uint8_t side = <uint8_t>step.side
        if kind == _ADD:
            return self._add(lobster_id, side, price, size)
        if kind == _DELETE:
            return self._delete(lobster_id, side, price, size)
        if kind == _EXECUTE:
            return self._execution(i, lobster_id, side, price, size)
        if kind == _REDUCE:
            return self._reduce(lobster_id, side, price, size)
        if kind == _HALT:
            return self._set_state(<uint8_t>step.state)
        return 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int _add(self, int64_t lobster_id, uint8_t side, price_t price, qty_t size) except -1:
        """Type 1: a GTC limit order; remember its engine order id if accepted.

        A resting order joins the back of its level, so a new tail there is
        it; one that traded in full changed the other side instead; a
        rejected one changed nothing.
        """
        cdef Books books = self.books
        cdef int32_t level = books.find_level(self.instrument, side, price)
        cdef oid_t tail_before = books.orders[books.levels[level].tail].order_id if level != -1 else 0
        cdef BestMark opposite = self._mark(_other(side))
        self._new_order(self.book_account, side, price, size, GTC)
        level = books.find_level(self.instrument, side, price)
        cdef int32_t tail = books.levels[level].tail if level != -1 else -1
        if tail != -1 and books.orders[tail].order_id != tail_before:
            self.order_ids[lobster_id] = books.orders[tail].order_id
            self.order_slots[lobster_id] = tail
        elif self._traded(_other(side), opposite):
            self.order_ids[lobster_id] = _NEVER_RESTED
            self.order_slots[lobster_id] = -1
        return 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int _delete(self, int64_t lobster_id, uint8_t side, price_t price, qty_t size) except -1:
        """Type 3: cancel the named order, or take `size` from the oldest at `price`.

        A remembered order that is gone is still sent a cancel, which the
        engine refuses (as the per-message loop does: same sequence numbers).
        """
        cdef oid_t order_id = self.order_ids[lobster_id]
        cdef int32_t slot = self._slot_of(lobster_id)
        self.order_ids[lobster_id] = 0
        if order_id == 0:
            return self._take(side, price, size, True)
        self._cancel_order(self.book_account, order_id)
        if slot == -1 or self.books.orders[slot].account != self.book_account:
            return self._take(side, price, size, True)
        return 0

    cdef int _reduce(self, int64_t lobster_id, uint8_t side, price_t price, qty_t size) except -1:
        """Type 2: amend the named order down by `size`, or take `size` from the oldest at `price`."""
        cdef int32_t slot = self._slot_of(lobster_id)
        if slot == -1:
            return self._take(side, price, size, True)
        if self.books.orders[slot].leaves > size:
            return self._shrink(slot, self.books.orders[slot].leaves - size)
        return self._cancel(slot)

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int _execution(self, Py_ssize_t i, int64_t lobster_id, uint8_t side, price_t price,
                        qty_t size) except -1:
        """Type 4: an IOC of the other side; a FIFO miss if the engine holds
        (or held) the named order and the IOC's first fill was another one."""
        cdef BestMark before = self._mark(side)
        cdef oid_t first = (self.books.orders[self.books.levels[before.level].head].order_id
                            if before.level != -1 else 0)
        self._new_order(self.taker_account, _other(side), price, size, IOC)
        cdef oid_t named = self.order_ids[lobster_id]
        if named != 0 and self._traded(side, before) and first != named:
            self.fifo_misses.append(i)
        return 0

    cdef int _take(self, uint8_t side, price_t price, qty_t size, bint oldest) except -1:
        """Remove `size` (or all there is) from the front (oldest) or the back of the
        queue at `price`."""
        cdef int32_t level = self.books.find_level(self.instrument, side, price)
        cdef int32_t slot = -1
        cdef int32_t after
        cdef qty_t leaves
        if level != -1:
            slot = self.books.levels[level].head if oldest else self.books.levels[level].tail
        while slot != -1 and size > 0:
            # the neighbour is read before the cancel frees the slot
            after = self.books.orders[slot].next if oldest else self.books.orders[slot].prev
            leaves = self.books.orders[slot].leaves
            if leaves <= size:
                self._cancel(slot)
            else:
                self._shrink(slot, leaves - size)
            size -= leaves
            slot = after
        return 0

    cdef int _shrink(self, int32_t slot, qty_t qty) except -1:
        """Reduce a resting order to `qty` (> 0), keeping its place; a halted
        engine refuses the amend, so the order is cancelled and its remainder
        seeded at the back (as a cancel/replace would)."""
        cdef Order o = self.books.orders[slot]
        self._amend(slot, qty)
        if self.books.orders[slot].leaves == qty:
            return 0
        self._cancel(slot)
        self.engine.seed_order(o.instrument, o.account, o.side, o.price, qty)
        return 0

    # -- alignment --

    cdef int _correct(self, Py_ssize_t i) except -1:
        """Row i differed: the view rule where the view widened; if the row
        still differs, count a mismatch and align every visible price."""
        cdef int64_t ask_edge = self.ask_edges[i], bid_edge = self.bid_edges[i]
        if ask_edge or bid_edge:
            self._align(i, ask_edge != 0, ask_edge, bid_edge != 0, bid_edge)
            if self._row_matches(i):
                return 0
        self.mismatches.append(i)
        return self._align(i, True, 0, True, self.empty_ask)  # edges before every price

    cdef int _align(self, Py_ssize_t i, bint asks, int64_t ask_edge, bint bids, int64_t bid_edge) except -1:
        """Make the book equal expected[i] wherever the file sees it, beyond
        the edges (asks above `ask_edge`, bids below `bid_edge`): the rounds
        of engine/tools/lobster.py's _align, reductions before additions."""
        cdef const int64_t* row = &self.expected[i, 0]
        cdef int32_t rounds
        cdef Py_ssize_t n_cuts, n_adds, k
        for rounds in range(self.max_align_rounds):
            write_depth(self.books, self.instrument, self.levels, self.empty_ask, self.empty_bid, &self.have[0])
            n_cuts = n_adds = 0
            if asks:
                self._plan_side(row, SELL, 1, ask_edge, &n_cuts, &n_adds)
            if bids:
                self._plan_side(row, BUY, -1, -bid_edge, &n_cuts, &n_adds)
            for k in range(n_cuts):
                self._set_level(<uint8_t>self.cuts[k, 0], self.cuts[k, 1], self.cuts[k, 2])
            for k in range(n_adds):
                self._set_level(<uint8_t>self.adds[k, 0], self.adds[k, 1], self.adds[k, 2])
            if n_cuts == 0:
                return 0
        raise RuntimeError(f"the engine's book still showed stale levels after {self.max_align_rounds} "
                           "rounds of corrections")

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef void _plan_side(self, const int64_t* row, uint8_t side, int64_t sign, int64_t edge,
                         Py_ssize_t* n_cuts, Py_ssize_t* n_adds) noexcept:
        """Append one side's cuts and adds: levels the engine shows (in the
        file's view) above the file's size, and file levels the engine lacks."""
        cdef Py_ssize_t offset = 0 if side == SELL else 2
        cdef int64_t empty = self.empty_ask if side == SELL else self.empty_bid
        cdef int64_t last = row[4 * (self.levels - 1) + offset]
        # distances from the touch: larger is further out; an incomplete side is all seen
        cdef int64_t horizon = last * sign if last != empty else self.empty_ask
        cdef Py_ssize_t k, j
        cdef int64_t p, q, target, held
        cdef bint repeated
        for k in range(self.levels):  # engine levels, best first
            p = self.have[4 * k + offset]
            q = self.have[4 * k + offset + 1]
            if q == 0 or not (edge < p * sign <= horizon):
                continue
            target = 0
            for j in range(self.levels):  # the file's size at p (the last listing wins)
                if row[4 * j + offset] == p and p != empty and p * sign > edge:
                    target = row[4 * j + offset + 1]
            if q > target:
                self.cuts[n_cuts[0], 0] = side
                self.cuts[n_cuts[0], 1] = p
                self.cuts[n_cuts[0], 2] = target
                n_cuts[0] += 1
        for k in range(self.levels):  # file levels, best first
            p = row[4 * k + offset]
            if p == empty or p * sign <= edge:
                continue
            repeated = False
            q = 0
            for j in range(self.levels):  # each price once, with its last listed size
                if row[4 * j + offset] == p:
                    repeated = repeated or j < k
                    q = row[4 * j + offset + 1]
            if repeated:
                continue
            held = 0
            for j in range(self.levels):
                if self.have[4 * j + offset] == p and self.have[4 * j + offset + 1] > 0 and p * sign <= horizon:
                    held = self.have[4 * j + offset + 1]
            if held < q:
                self.adds[n_adds[0], 0] = side
                self.adds[n_adds[0], 1] = p
                self.adds[n_adds[0], 2] = q
                n_adds[0] += 1

    cdef int _set_level(self, uint8_t side, price_t price, qty_t target) except -1:
        """Make the liquidity at one price equal `target`: missing size is
        seeded before every queued order, surplus taken from the newest."""
        cdef int32_t level = self.books.find_level(self.instrument, side, price)
        cdef qty_t have = self.books.levels[level].qty if level != -1 else 0
        if have < target:
            self.engine.seed_order(self.instrument, self.book_account, side, price, target - have,
                                   at_front=True)
        elif have > target:
            self._take(side, price, have - target, False)
        return 0

    cdef int _new_order(self, int64_t account, uint8_t side, price_t price, qty_t qty,
                        uint8_t tif) except -1:
        cdef CommandRec c
        memset(&c, 0, sizeof(CommandRec))
        c.kind = NEW_ORDER
        c.instrument = self.instrument
        c.account = account
        c.side = side
        c.order_type = LIMIT
        c.tif = tif
        c.stp = STP_NONE
        c.price = price
        c.qty = qty
        return self.engine.execute(&c)

    cdef int _cancel(self, int32_t slot) except -1:
        return self._cancel_order(self.books.orders[slot].account, self.books.orders[slot].order_id)

    cdef int _cancel_order(self, int64_t account, oid_t order_id) except -1:
        cdef CommandRec c
        memset(&c, 0, sizeof(CommandRec))
        c.kind = CANCEL
        c.account = account
        c.order_id = order_id
        return self.engine.execute(&c)

    cdef int _amend(self, int32_t slot, qty_t qty) except -1:
        cdef CommandRec c
        memset(&c, 0, sizeof(CommandRec))
        c.kind = AMEND
        c.account = self.books.orders[slot].account
        c.order_id = self.books.orders[slot].order_id
        c.qty = qty
        return self.engine.execute(&c)

    cdef int _set_state(self, uint8_t state) except -1:
        cdef CommandRec c
        memset(&c, 0, sizeof(CommandRec))
        c.kind = SET_STATE
        c.instrument = self.instrument
        c.state = state
        return self.engine.execute(&c)
