"""Event objects of the per-command API (the batch API returns numpy records)."""

cimport cython

from engine.core.types cimport EventRec

from engine.core.order_info import OrderInfo
from engine.core.records import EVENT_FIELDS
from engine.core.types import CancelReason, EventKind, Reject, Side

__all__ = ["Event", "OrderInfo"]


@cython.freelist(64)
cdef class Event:
    """One engine event. Fields mirror EVENT_DTYPE; see docs/matching.md."""

    def __init__(self, *, int64_t seq=0, int64_t ts=0, uint8_t kind=0, uint8_t reason=0,
                 uint8_t side=0, uint8_t aux=0, int32_t instrument=0, int64_t order_id=0,
                 int64_t client_order_id=0, int64_t account=0, int64_t price=0, int64_t qty=0,
                 int64_t leaves=0, int64_t maker_order_id=0, int64_t maker_client_order_id=0,
                 int64_t maker_account=0, int64_t maker_leaves=0, int64_t fee=0,
                 int64_t maker_fee=0, int32_t asset=0):
        self.seq = seq
        self.ts = ts
        self.kind = kind
        self.reason = reason
        self.side = side
        self.aux = aux
        self.instrument = instrument
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.account = account
        self.price = price
        self.qty = qty
        self.leaves = leaves
        self.maker_order_id = maker_order_id
        self.maker_client_order_id = maker_client_order_id
        self.maker_account = maker_account
        self.maker_leaves = maker_leaves
        self.fee = fee
        self.maker_fee = maker_fee
        self.asset = asset

    @staticmethod
    def from_record(record):
        """Build an Event from one EVENT_DTYPE numpy record."""
        return Event(**{name: int(record[name]) for name in EVENT_FIELDS})

    def astuple(self):
        """The fields in EVENT_DTYPE order."""
        return (self.seq, self.ts, self.kind, self.reason, self.side, self.aux, self.instrument,
                self.order_id, self.client_order_id, self.account, self.price, self.qty,
                self.leaves, self.maker_order_id, self.maker_client_order_id,
                self.maker_account, self.maker_leaves, self.fee, self.maker_fee, self.asset)

    def to_dict(self):
        """The fields as a dict, in EVENT_DTYPE order."""
        return dict(zip(EVENT_FIELDS, self.astuple()))

    def __eq__(self, other):
        if not isinstance(other, Event):
            return NotImplemented
        return self.astuple() == (<Event>other).astuple()

    def __hash__(self):
        return hash(self.astuple())

    def __repr__(self):
        kind = EventKind(self.kind).name if self.kind in EventKind._value2member_map_ else str(self.kind)
        parts = [f"seq={self.seq}", f"instrument={self.instrument}"]
        if self.kind == EventKind.REJECTED:
            parts.append(f"reason={Reject(self.reason).name if self.reason in Reject._value2member_map_ else self.reason}")
        elif self.kind == EventKind.CANCELLED:
            parts.append(f"reason={CancelReason(self.reason).name if self.reason in CancelReason._value2member_map_ else self.reason}")
        if self.side in (1, 2):
            parts.append(f"side={Side(self.side).name}")
        for name in ("aux", "order_id", "client_order_id", "account", "price", "qty", "leaves",
                     "maker_order_id", "maker_client_order_id", "maker_account", "maker_leaves",
                     "fee", "maker_fee", "asset"):
            value = getattr(self, name)
            if value:
                parts.append(f"{name}={value}")
        return f"Event({kind}, {', '.join(parts)})"


cdef Event event_from_rec(const EventRec* rec):
    cdef Event ev = Event.__new__(Event)
    ev.seq = rec.seq
    ev.ts = rec.ts
    ev.kind = rec.kind
    ev.reason = rec.reason
    ev.side = rec.side
    ev.aux = rec.aux
    ev.instrument = rec.instrument
    ev.order_id = rec.order_id
    ev.client_order_id = rec.client_order_id
    ev.account = rec.account
    ev.price = rec.price
    ev.qty = rec.qty
    ev.leaves = rec.leaves
    ev.maker_order_id = rec.maker_order_id
    ev.maker_client_order_id = rec.maker_client_order_id
    ev.maker_account = rec.maker_account
    ev.maker_leaves = rec.maker_leaves
    ev.fee = rec.fee
    ev.maker_fee = rec.maker_fee
    ev.asset = rec.asset
    return ev


cdef list events_from_recs(const EventRec* recs, Py_ssize_t n):
    cdef list out = []
    cdef Py_ssize_t i
    for i in range(n):
        out.append(event_from_rec(&recs[i]))
    return out
