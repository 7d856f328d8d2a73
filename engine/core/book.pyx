"""Storage of resting orders: pools, sorted price levels, account lists, and
what can be read from them (depth, queues, an account's orders, the order part
of a snapshot and of the state hash).

Matching rules live in matcher.pyx; this module only keeps the structures
consistent. Memory comes from PyMem_Raw* so tracemalloc can account for it.
Pointers into the pools are invalidated when a pool grows, which only happens
in rest() / alloc_order(): callers never hold a pointer across those calls.
"""

cimport cython
from cpython.mem cimport PyMem_RawFree, PyMem_RawMalloc, PyMem_RawRealloc
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memmove, memset

from engine.core.order_index cimport OrderIndex
from engine.core.types cimport BUY, SELL, Level, Order, price_t, qty_t

cimport numpy as cnp

cnp.import_array()

import numpy as np

from engine.core import snapshot as _snap
from engine.core.order_info import OrderInfo

if _snap.ORDER_DTYPE.itemsize != sizeof(SnapOrder) or _snap.ORDER_DTYPE.fields["instrument"][1] != 40:
    raise ImportError("engine.core.snapshot.ORDER_DTYPE does not match the C snapshot record")

cdef enum:
    _INITIAL_ORDERS = 1024
    _INITIAL_LEVELS = 256
    _INITIAL_SIDE = 64


cdef void* _grow(void* ptr, Py_ssize_t count, Py_ssize_t item) except NULL:
    cdef void* out = PyMem_RawRealloc(ptr, count * item)
    if out == NULL:
        raise MemoryError()
    return out


cdef inline int64_t _key(uint8_t side, price_t price) noexcept nogil:
    return price if side == BUY else -price


cdef class Books:
    """Resting-order storage (see book.pxd)."""

    def __cinit__(self, int32_t max_orders=(1 << 30)):
        self.max_orders = max_orders
        self.index = OrderIndex()
        self.order_free = -1
        self.level_free = -1
        self.acct_cap = 0

    def __dealloc__(self):
        cdef int32_t i
        if self.sides != NULL:
            for i in range(2 * self.n_books):
                PyMem_RawFree(self.sides[i].keys)
                PyMem_RawFree(self.sides[i].levels)
        PyMem_RawFree(self.sides)
        PyMem_RawFree(self.orders)
        PyMem_RawFree(self.levels)
        PyMem_RawFree(self.acct_head)
        PyMem_RawFree(self.acct_tail)

    # -- queries --

    cdef int32_t find_level(self, int32_t instrument, uint8_t side, price_t price) noexcept nogil:
        """Level index at this price, or -1."""
        cdef BookSide* bs = self.side_of(instrument, side)
        cdef int64_t key = _key(side, price)
        cdef int32_t lo = 0, hi = bs.n, mid
        while lo < hi:
            mid = (lo + hi) >> 1
            if bs.keys[mid] < key:
                lo = mid + 1
            else:
                hi = mid
        if lo < bs.n and bs.keys[lo] == key:
            return bs.levels[lo]
        return -1

    cdef Py_ssize_t memory_bytes(self) noexcept:
        cdef Py_ssize_t total = (<Py_ssize_t>self.order_cap * sizeof(Order)
                                 + <Py_ssize_t>self.level_cap * sizeof(Level)
                                 + <Py_ssize_t>self.acct_cap * 2 * sizeof(int32_t)
                                 + self.index.memory_bytes())
        cdef int32_t i
        for i in range(2 * self.n_books):
            total += <Py_ssize_t>self.sides[i].cap * (sizeof(int64_t) + sizeof(int32_t))
        return total

    cdef list depth(self, int32_t instrument, uint8_t side, int levels):
        """[(price, qty, order count)] of the best ``levels`` levels, best first."""
        cdef BookSide* bs = self.side_of(instrument, side)
        cdef list out = []
        cdef int32_t i = bs.n - 1
        cdef int32_t lvl
        while i >= 0 and len(out) < levels:
            lvl = bs.levels[i]
            out.append((self.levels[lvl].price, self.levels[lvl].qty, self.levels[lvl].count))
            i -= 1
        return out

    cdef list orders_at(self, int32_t instrument, uint8_t side, price_t price):
        """[OrderInfo] of the orders at one price, in queue (FIFO) order."""
        cdef int32_t lvl = self.find_level(instrument, side, price)
        cdef list out = []
        cdef int32_t slot = self.levels[lvl].head if lvl != -1 else -1
        while slot != -1:
            out.append(self.info(slot))
            slot = self.orders[slot].next
        return out

    cdef list open_orders(self, int64_t account, int64_t after, Py_ssize_t limit):
        """[OrderInfo] of an account's resting orders with an id above ``after``,
        by order id, at most ``limit`` of them (all for a negative limit)."""
        cdef list out = []
        cdef int32_t slot = self.acct_head[account] if account < self.acct_cap else -1
        # The list is in id order: skip up to the cursor without building objects.
        while slot != -1 and self.orders[slot].order_id <= after:
            slot = self.orders[slot].acct_next
        while slot != -1 and limit != 0:
            out.append(self.info(slot))
            slot = self.orders[slot].acct_next
            limit -= 1
        return out

    cdef object info(self, int32_t slot):
        cdef Order* o = &self.orders[slot]
        return OrderInfo(o.order_id, o.client_order_id, o.account, o.instrument, o.side,
                         o.price, o.leaves, o.tif, o.stp)

    # -- commands --

    cdef int add_book(self) except -1:
        """Append the two empty sides of a new instrument."""
        cdef int32_t i
        self.sides = <BookSide*>_grow(self.sides, 2 * (self.n_books + 1), sizeof(BookSide))
        for i in range(2 * self.n_books, 2 * self.n_books + 2):
            self.sides[i].n = 0
            self.sides[i].cap = _INITIAL_SIDE
            self.sides[i].keys = <int64_t*>PyMem_RawMalloc(_INITIAL_SIDE * sizeof(int64_t))
            self.sides[i].levels = <int32_t*>PyMem_RawMalloc(_INITIAL_SIDE * sizeof(int32_t))
            if self.sides[i].keys == NULL or self.sides[i].levels == NULL:
                raise MemoryError()
        self.n_books += 1
        return 0

    cdef int32_t alloc_order(self) except -2:
        """A free pool slot, or -1 when max_orders orders are resting."""
        cdef int32_t slot, i, new_cap
        if self.order_live >= self.max_orders:
            return -1
        if self.order_free == -1:
            new_cap = min(_INITIAL_ORDERS if self.order_cap == 0 else self.order_cap * 2, self.max_orders)
            self.orders = <Order*>_grow(self.orders, new_cap, sizeof(Order))
            # Thread the new slots onto the free list, lowest slot first.
            for i in range(new_cap - 1, self.order_cap - 1, -1):
                self.orders[i].live = 0
                self.orders[i].next = self.order_free
                self.order_free = i
            self.order_cap = new_cap
        slot = self.order_free
        self.order_free = self.orders[slot].next
        self.order_live += 1
        return slot

    cdef void free_order(self, int32_t slot) noexcept nogil:
        self.orders[slot].live = 0
        self.orders[slot].next = self.order_free
        self.order_free = slot
        self.order_live -= 1

    cdef int rest(self, int32_t slot, bint at_front) except -1:
        """Link a filled-in pool order into its level, account list and index."""
        cdef Order* o = &self.orders[slot]
        cdef int32_t lvl = self._level_for(o.instrument, o.side, o.price)
        cdef int32_t account = o.account
        cdef Level* L
        self._ensure_account(account)
        self.index.insert(o.order_id, slot)
        o = &self.orders[slot]
        L = &self.levels[lvl]
        o.level = lvl
        o.live = 1
        if at_front:
            o.prev = -1
            o.next = L.head
            if L.head != -1:
                self.orders[L.head].prev = slot
            else:
                L.tail = slot
            L.head = slot
        else:
            o.next = -1
            o.prev = L.tail
            if L.tail != -1:
                self.orders[L.tail].next = slot
            else:
                L.head = slot
            L.tail = slot
        L.qty += o.leaves
        L.count += 1
        # account list: append (order ids only grow, so the list stays in id order)
        o.acct_next = -1
        o.acct_prev = self.acct_tail[account]
        if self.acct_tail[account] != -1:
            self.orders[self.acct_tail[account]].acct_next = slot
        else:
            self.acct_head[account] = slot
        self.acct_tail[account] = slot
        return 0

    cdef void unlink_level(self, int32_t slot) noexcept nogil:
        """Take an order out of its level's FIFO; drop the level if it empties."""
        cdef Order* o = &self.orders[slot]
        cdef Level* L = &self.levels[o.level]
        if o.prev != -1:
            self.orders[o.prev].next = o.next
        else:
            L.head = o.next
        if o.next != -1:
            self.orders[o.next].prev = o.prev
        else:
            L.tail = o.prev
        L.qty -= o.leaves
        L.count -= 1
        if L.count == 0:
            self._drop_level(o.instrument, o.side, o.level)
        o.level = -1

    cdef int relink_back(self, int32_t slot) except -1:
        """Move an order to the back of the queue at its (possibly new) price."""
        cdef Order* o
        cdef Level* L
        cdef int32_t lvl
        if self.orders[slot].level != -1:
            self.unlink_level(slot)
        o = &self.orders[slot]
        lvl = self._level_for(o.instrument, o.side, o.price)
        o = &self.orders[slot]
        L = &self.levels[lvl]
        o.level = lvl
        o.next = -1
        o.prev = L.tail
        if L.tail != -1:
            self.orders[L.tail].next = slot
        else:
            L.head = slot
        L.tail = slot
        L.qty += o.leaves
        L.count += 1
        return 0

    cdef void remove(self, int32_t slot) noexcept nogil:
        """Remove a resting order completely and free its slot."""
        cdef Order* o = &self.orders[slot]
        if o.level != -1:
            self.unlink_level(slot)
        if o.acct_prev != -1:
            self.orders[o.acct_prev].acct_next = o.acct_next
        else:
            self.acct_head[o.account] = o.acct_next
        if o.acct_next != -1:
            self.orders[o.acct_next].acct_prev = o.acct_prev
        else:
            self.acct_tail[o.account] = o.acct_prev
        self.index.remove(o.order_id)
        self.free_order(slot)

    cdef void take(self, int32_t slot, qty_t qty) noexcept nogil:
        """Reduce a resting order (and its level) by qty < its leaves."""
        self.orders[slot].leaves -= qty
        self.levels[self.orders[slot].level].qty -= qty

    cdef int rebuild_account_lists(self) except -1:
        """Relink every account list in order-id order (after a restore)."""
        cdef int32_t slot, prev
        cdef int64_t a
        live = sorted((self.orders[slot].order_id, slot) for slot in range(self.order_cap)
                      if self.orders[slot].live)
        for a in range(self.acct_cap):
            self.acct_head[a] = -1
            self.acct_tail[a] = -1
        for _, slot in live:
            a = self.orders[slot].account
            prev = self.acct_tail[a]
            self.orders[slot].acct_prev = prev
            self.orders[slot].acct_next = -1
            if prev != -1:
                self.orders[prev].acct_next = slot
            else:
                self.acct_head[a] = slot
            self.acct_tail[a] = slot
        return 0

    # -- state --

    cdef bytes write_orders(self):
        """Every resting order as ORDER_DTYPE, in book order: per instrument,
        bids then asks, best price first, FIFO within a level."""
        cdef cnp.ndarray orders = np.zeros(self.order_live, dtype=_snap.ORDER_DTYPE)
        cdef SnapOrder* out = <SnapOrder*>cnp.PyArray_DATA(orders)
        cdef SnapOrder* rec
        cdef Py_ssize_t n = 0
        cdef int32_t b, slot
        cdef uint8_t side
        cdef OrderWalk w
        cdef Order* o
        for b in range(self.n_books):
            for side in (BUY, SELL):
                w = self.walk(b, side)
                slot = self.next_resting(&w)
                while slot != -1:
                    o = &self.orders[slot]
                    if n >= self.order_live:
                        raise RuntimeError("more orders in the books than the pool counts")
                    rec = &out[n]
                    rec.order_id = o.order_id
                    rec.client_order_id = o.client_order_id
                    rec.price = o.price
                    rec.leaves = o.leaves
                    rec.account = o.account
                    rec.instrument = o.instrument
                    rec.side = o.side
                    rec.tif = o.tif
                    rec.stp = o.stp
                    rec.pad = 0
                    n += 1
                    slot = self.next_resting(&w)
        return orders.tobytes()

    cdef int read_orders(self, bytes data) except -1:
        """Rest the orders write_orders wrote, in that order (into empty books;
        the caller has checked their accounts)."""
        cdef int32_t slot
        cdef Order* o
        if len(data) % sizeof(SnapOrder):
            raise ValueError("snapshot orders are not whole records")
        cdef cnp.ndarray recs = np.frombuffer(data, dtype=np.uint8)
        cdef const SnapOrder* src = <const SnapOrder*>cnp.PyArray_DATA(recs)
        cdef Py_ssize_t r, n_recs = len(data) // sizeof(SnapOrder)
        for r in range(n_recs):
            if (src[r].instrument < 0 or src[r].instrument >= self.n_books
                    or (src[r].side != BUY and src[r].side != SELL) or src[r].leaves <= 0):
                raise ValueError(f"snapshot order {src[r].order_id} is not valid for this engine")
            slot = self.alloc_order()
            if slot == -1:
                raise ValueError("snapshot holds more orders than max_orders")
            o = &self.orders[slot]
            memset(o, 0, sizeof(Order))
            o.order_id = src[r].order_id
            o.client_order_id = src[r].client_order_id
            o.price = src[r].price
            o.leaves = src[r].leaves
            o.account = <int32_t>src[r].account
            o.instrument = src[r].instrument
            o.side = src[r].side
            o.tif = src[r].tif
            o.stp = src[r].stp
            o.level = -1
            self.rest(slot, False)
        return self.rebuild_account_lists()

    cdef int hash_words(self, int32_t instrument, list words) except -1:
        """One instrument's orders in the state hash, bids then asks, in book order."""
        cdef uint8_t side
        cdef int32_t slot
        cdef OrderWalk w
        cdef Order* o
        for side in (BUY, SELL):
            w = self.walk(instrument, side)
            words += [side, w.bs.n]
            slot = self.next_resting(&w)
            while slot != -1:
                o = &self.orders[slot]
                words += [o.order_id, o.client_order_id, o.account, o.price, o.leaves, o.tif, o.stp]
                slot = self.next_resting(&w)
        return 0

    # -- internals --

    cdef int32_t _level_for(self, int32_t instrument, uint8_t side, price_t price) except -2:
        """The level at this price, created (and inserted in order) if missing."""
        cdef BookSide* bs = self.side_of(instrument, side)
        cdef int64_t key = _key(side, price)
        cdef int32_t lo = 0, hi = bs.n, mid, lvl, i, new_cap
        # Fast path: new orders mostly join or extend the top of the book.
        if bs.n > 0 and bs.keys[bs.n - 1] <= key:
            lo = bs.n - 1 if bs.keys[bs.n - 1] == key else bs.n
        else:
            while lo < hi:
                mid = (lo + hi) >> 1
                if bs.keys[mid] < key:
                    lo = mid + 1
                else:
                    hi = mid
        if lo < bs.n and bs.keys[lo] == key:
            return bs.levels[lo]
        # New level from the pool.
        if self.level_free == -1:
            new_cap = _INITIAL_LEVELS if self.level_cap == 0 else self.level_cap * 2
            self.levels = <Level*>_grow(self.levels, new_cap, sizeof(Level))
            for i in range(new_cap - 1, self.level_cap - 1, -1):
                self.levels[i].next_free = self.level_free
                self.level_free = i
            self.level_cap = new_cap
        lvl = self.level_free
        self.level_free = self.levels[lvl].next_free
        self.level_live += 1
        self.levels[lvl].price = price
        self.levels[lvl].qty = 0
        self.levels[lvl].head = -1
        self.levels[lvl].tail = -1
        self.levels[lvl].count = 0
        self.levels[lvl].next_free = -1
        if bs.n == bs.cap:
            new_cap = bs.cap * 2
            bs.keys = <int64_t*>_grow(bs.keys, new_cap, sizeof(int64_t))
            bs.levels = <int32_t*>_grow(bs.levels, new_cap, sizeof(int32_t))
            bs.cap = new_cap
        if lo < bs.n:
            memmove(&bs.keys[lo + 1], &bs.keys[lo], (bs.n - lo) * sizeof(int64_t))
            memmove(&bs.levels[lo + 1], &bs.levels[lo], (bs.n - lo) * sizeof(int32_t))
        bs.keys[lo] = key
        bs.levels[lo] = lvl
        bs.n += 1
        return lvl

    cdef void _drop_level(self, int32_t instrument, uint8_t side, int32_t lvl) noexcept nogil:
        cdef BookSide* bs = self.side_of(instrument, side)
        cdef int64_t key = _key(side, self.levels[lvl].price)
        cdef int32_t lo = 0, hi = bs.n - 1, mid
        if bs.keys[bs.n - 1] == key:
            lo = bs.n - 1
        else:
            while lo < hi:
                mid = (lo + hi) >> 1
                if bs.keys[mid] < key:
                    lo = mid + 1
                else:
                    hi = mid
        if lo < bs.n - 1:
            memmove(&bs.keys[lo], &bs.keys[lo + 1], (bs.n - 1 - lo) * sizeof(int64_t))
            memmove(&bs.levels[lo], &bs.levels[lo + 1], (bs.n - 1 - lo) * sizeof(int32_t))
        bs.n -= 1
        self.levels[lvl].next_free = self.level_free
        self.level_free = lvl
        self.level_live -= 1

    cdef int _ensure_account(self, int64_t account) except -1:
        cdef int64_t new_cap, i
        if account < self.acct_cap:
            return 0
        new_cap = max(account + 1, self.acct_cap * 2, 1024)
        self.acct_head = <int32_t*>_grow(self.acct_head, new_cap, sizeof(int32_t))
        self.acct_tail = <int32_t*>_grow(self.acct_tail, new_cap, sizeof(int32_t))
        for i in range(self.acct_cap, new_cap):
            self.acct_head[i] = -1
            self.acct_tail[i] = -1
        self.acct_cap = new_cap
        return 0

    # -- integrity (tests) --

    def check_integrity(self):
        """Raise AssertionError naming the first broken storage invariant."""
        cdef int32_t b, s, i, slot, prev, lvl, count, seen_orders = 0, seen_levels = 0
        cdef int64_t qty
        cdef BookSide* bs
        cdef Level* L
        cdef Order* o
        for b in range(self.n_books):
            for s in range(2):
                bs = &self.sides[2 * b + s]
                for i in range(bs.n):
                    if i > 0:
                        assert bs.keys[i - 1] < bs.keys[i], f"book {b} side {s + 1}: levels not strictly sorted"
                    lvl = bs.levels[i]
                    L = &self.levels[lvl]
                    seen_levels += 1
                    assert bs.keys[i] == _key(s + 1, L.price), f"book {b}: level key does not match its price"
                    assert L.count > 0, f"book {b}: empty level {L.price} kept"
                    slot = L.head
                    prev = -1
                    count = 0
                    qty = 0
                    while slot != -1:
                        o = &self.orders[slot]
                        assert o.live == 1, f"order slot {slot} in a level but not live"
                        assert o.prev == prev, f"order {o.order_id}: broken prev link"
                        assert o.level == lvl and o.price == L.price, f"order {o.order_id}: wrong level"
                        assert o.instrument == b and o.side == s + 1, f"order {o.order_id}: wrong book"
                        assert o.leaves > 0, f"order {o.order_id}: resting with no quantity"
                        assert self.index.find(o.order_id) == slot, f"order {o.order_id}: index does not point to it"
                        count += 1
                        qty += o.leaves
                        prev = slot
                        slot = o.next
                        assert count <= self.order_live, f"book {b}: cycle in level {L.price}"
                    assert L.tail == prev, f"book {b}: level {L.price} tail is not its last order"
                    assert L.count == count, f"book {b}: level {L.price} count {L.count} != {count}"
                    assert L.qty == qty, f"book {b}: level {L.price} qty {L.qty} != {qty}"
                    seen_orders += count
            if self.sides[2 * b].n and self.sides[2 * b + 1].n:
                assert (self.levels[self.best_level(b, BUY)].price
                        < self.levels[self.best_level(b, SELL)].price), f"book {b} is crossed"
        assert seen_orders == self.order_live, f"{self.order_live} live orders but {seen_orders} in levels"
        assert seen_levels == self.level_live, f"{self.level_live} live levels but {seen_levels} in books"
        assert len(self.index) == self.order_live, "index size differs from live orders"
        cdef int64_t a
        count = 0
        for a in range(self.acct_cap):
            slot = self.acct_head[a]
            prev = -1
            while slot != -1:
                o = &self.orders[slot]
                assert o.account == a, f"order {o.order_id} in the list of account {a}"
                assert o.acct_prev == prev, f"order {o.order_id}: broken account link"
                if prev != -1:
                    assert self.orders[prev].order_id < o.order_id, f"account {a}: list not in id order"
                prev = slot
                slot = o.acct_next
                count += 1
            assert self.acct_tail[a] == prev, f"account {a}: tail is not its last order"
        assert count == self.order_live, f"{count} orders in account lists, {self.order_live} live"
