"""Order id -> pool slot hash map for O(1) cancel and amend by order id.

Written by hand rather than using a Python dict because it is touched on every
resting order, cancel and fill: no Python objects, no GIL, 12 bytes a slot.
"""

from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree
from libc.stdint cimport int32_t, int64_t, uint64_t

from engine.core.types cimport oid_t

cdef enum:
    _INITIAL_BITS = 10
    _BLOCK_BITS = 4

cdef extern from *:
    """
    #define VENUE_FIB 0x9E3779B97F4A7C15ULL
    """
    const uint64_t _FIB "VENUE_FIB"   # 2**64 / golden ratio (Fibonacci hashing)


cdef inline uint64_t _slot_of(oid_t key, int shift) noexcept nogil:
    # Engine ids are sequential and resting orders mostly recent. Blocks of 16
    # consecutive ids go to 16 adjacent slots (two cache lines of keys), and
    # blocks are scattered by Fibonacci hashing: inserts stay cache-local while
    # probe runs stay short, which backward-shift deletion needs. (Pure
    # identity hashing builds runs as long as the live id range.)
    return ((((<uint64_t>key >> _BLOCK_BITS) * <uint64_t>_FIB) >> shift) << _BLOCK_BITS) | (
        <uint64_t>key & ((1 << _BLOCK_BITS) - 1))


cdef class OrderIndex:
    """Order id -> pool slot (see order_index.pxd)."""

    def __cinit__(self):
        cdef Py_ssize_t size = 1 << _INITIAL_BITS
        self.keys = <oid_t*>PyMem_RawCalloc(size, sizeof(oid_t))
        self.values = <int32_t*>PyMem_RawCalloc(size, sizeof(int32_t))
        if self.keys == NULL or self.values == NULL:
            raise MemoryError()
        self.mask = size - 1
        self.shift = 64 - (_INITIAL_BITS - _BLOCK_BITS)
        self.count = 0

    def __dealloc__(self):
        PyMem_RawFree(self.keys)
        PyMem_RawFree(self.values)

    def __len__(self):
        return self.count

    cdef int32_t find(self, oid_t key) noexcept nogil:
        """Slot of the order, or -1."""
        cdef uint64_t i = _slot_of(key, self.shift)
        while self.keys[i] != 0:
            if self.keys[i] == key:
                return self.values[i]
            i = (i + 1) & self.mask
        return -1

    cdef Py_ssize_t memory_bytes(self) noexcept:
        return <Py_ssize_t>(self.mask + 1) * (sizeof(oid_t) + sizeof(int32_t))

    cdef int insert(self, oid_t key, int32_t value) except -1:
        """Insert a key that is not present (order ids are unique)."""
        cdef uint64_t i
        if (self.count + 1) * 2 > <Py_ssize_t>(self.mask + 1):
            self._grow()
        i = _slot_of(key, self.shift)
        while self.keys[i] != 0:
            i = (i + 1) & self.mask
        self.keys[i] = key
        self.values[i] = value
        self.count += 1
        return 0

    cdef void remove(self, oid_t key) noexcept nogil:
        """Remove a key if present; shift later entries of the run back."""
        cdef uint64_t i = _slot_of(key, self.shift)
        cdef uint64_t j, home
        while self.keys[i] != key:
            if self.keys[i] == 0:
                return
            i = (i + 1) & self.mask
        j = i
        while True:
            j = (j + 1) & self.mask
            if self.keys[j] == 0:
                break
            home = _slot_of(self.keys[j], self.shift)
            # Move j back into the hole at i unless its home lies cyclically in (i, j].
            if (i <= j and (home <= i or home > j)) or (i > j and home <= i and home > j):
                self.keys[i] = self.keys[j]
                self.values[i] = self.values[j]
                i = j
        self.keys[i] = 0
        self.values[i] = 0
        self.count -= 1

    cdef int _grow(self) except -1:
        cdef oid_t* old_keys = self.keys
        cdef int32_t* old_values = self.values
        cdef Py_ssize_t old_size = self.mask + 1
        cdef Py_ssize_t size = old_size * 2
        cdef Py_ssize_t k
        cdef uint64_t i
        self.keys = <oid_t*>PyMem_RawCalloc(size, sizeof(oid_t))
        self.values = <int32_t*>PyMem_RawCalloc(size, sizeof(int32_t))
        if self.keys == NULL or self.values == NULL:
            PyMem_RawFree(self.keys)
            PyMem_RawFree(self.values)
            self.keys = old_keys
            self.values = old_values
            raise MemoryError()
        self.mask = size - 1
        self.shift -= 1
        for k in range(old_size):
            if old_keys[k] != 0:
                i = _slot_of(old_keys[k], self.shift)
                while self.keys[i] != 0:
                    i = (i + 1) & self.mask
                self.keys[i] = old_keys[k]
                self.values[i] = old_values[k]
        PyMem_RawFree(old_keys)
        PyMem_RawFree(old_values)
        return 0

    # -- Python surface, for tests --

    def get(self, oid_t key):
        """Slot for key, or -1."""
        return self.find(key)

    def put(self, oid_t key, int32_t value):
        """Insert key -> value (key must be new and non-zero)."""
        if key == 0:
            raise ValueError("key 0 is reserved for empty slots")
        if self.find(key) != -1:
            raise KeyError(key)
        self.insert(key, value)

    def discard(self, oid_t key):
        """Remove key if present."""
        self.remove(key)
