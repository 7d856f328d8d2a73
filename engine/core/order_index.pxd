from libc.stdint cimport int32_t, int64_t, uint64_t

from engine.core.types cimport oid_t


cdef class OrderIndex:
    """Map from engine order id to pool slot: open addressing, linear probing,
    backward-shift deletion (no tombstones), load factor at most 1/2."""
    cdef oid_t* keys        # 0 = empty (order ids start at 1)
    cdef int32_t* values
    cdef uint64_t mask
    cdef int shift          # 64 - log2(number of 16-slot blocks)
    cdef Py_ssize_t count

    # -- queries --
    cdef int32_t find(self, oid_t key) noexcept nogil
    cdef Py_ssize_t memory_bytes(self) noexcept

    # -- commands --
    cdef int insert(self, oid_t key, int32_t value) except -1
    cdef void remove(self, oid_t key) noexcept nogil
    cdef int _grow(self) except -1
