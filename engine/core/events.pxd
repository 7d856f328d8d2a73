from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.types cimport EventRec


cdef class Event:
    """One engine event as a Python object (per-command API and queries)."""
    cdef readonly int64_t seq
    cdef readonly int64_t ts
    cdef readonly uint8_t kind
    cdef readonly uint8_t reason
    cdef readonly uint8_t side
    cdef readonly uint8_t aux
    cdef readonly int32_t instrument
    cdef readonly int64_t order_id
    cdef readonly int64_t client_order_id
    cdef readonly int64_t account
    cdef readonly int64_t price
    cdef readonly int64_t qty
    cdef readonly int64_t leaves
    cdef readonly int64_t maker_order_id
    cdef readonly int64_t maker_client_order_id
    cdef readonly int64_t maker_account
    cdef readonly int64_t maker_leaves
    cdef readonly int64_t fee
    cdef readonly int64_t maker_fee
    cdef readonly int32_t asset


# -- conversion --
cdef Event event_from_rec(const EventRec* rec)
cdef list events_from_recs(const EventRec* recs, Py_ssize_t n)
