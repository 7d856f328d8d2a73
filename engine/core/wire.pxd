# The gateway's per-order work in C: a batch of commands read from MessagePack,
# replies encoded per session, market data scanned from events.
from libc.stdint cimport int64_t, uint8_t

from engine.core.types cimport CommandRec, EventRec


# Request field -> what it fills (wire.COLUMNS names them in this order).
cdef enum:
    COL_CLIENT_ORDER_ID = 0
    COL_INSTRUMENT = 1
    COL_SIDE = 2
    COL_QTY = 3
    COL_PRICE = 4
    COL_ORDER_TYPE = 5
    COL_TIF = 6
    COL_STP = 7
    COL_ACCOUNT = 8
    COL_ORDER_ID = 9
    COL_REQUEST_ID = 10
    COL_ASSET = 11
    COL_STATE = 12
    N_COLUMNS = 13

# Reply program operations (wire.OPS names them in this order): where each
# element of a reply array comes from.
cdef enum:
    OP_I64 = 0
    OP_I32 = 1
    OP_U8 = 2
    OP_RID = 3
    OP_OTHER_SIDE = 4
    OP_TEXT = 5
    OP_CONST = 6

cdef enum:
    MAX_FIELDS = 16
    MAX_TAGS = 128
    MAX_OPS = 24


# A growable byte buffer.
cdef struct Buf:
    char* data
    Py_ssize_t size
    Py_ssize_t cap

# How the fast path reads one request tag.
cdef struct RequestLayout:
    uint8_t kind            # CommandKind; 0: not on the fast path
    int n_fields
    int n_required
    int column[MAX_FIELDS]
    int64_t lo[MAX_FIELDS]
    int64_t hi[MAX_FIELDS]
    int64_t default[MAX_FIELDS]

# How one event kind becomes a reply item.
cdef struct Program:
    int n_ops
    uint8_t op[MAX_OPS]
    int64_t arg[MAX_OPS]


cdef class RequestLayouts:
    cdef RequestLayout tags[MAX_TAGS]


cdef class CommandBatch:
    cdef CommandRec* recs
    cdef int64_t* senders
    cdef int64_t* accounts
    cdef int64_t* request_ids
    cdef Py_ssize_t n
    cdef Py_ssize_t cap

    # -- commands --
    cdef int _reserve(self, Py_ssize_t extra) except -1
    cdef CommandRec* _new(self, int64_t sender, int64_t sender_account, int64_t request_id) except NULL


cdef class ReplyEncoder:
    cdef Program kinds[256]
    cdef bint has[256]
    cdef Program maker_fill
    cdef Program fallback
    cdef object texts            # keeps the text bytes alive
    cdef const char* text[256]
    cdef Py_ssize_t text_len[256]
    cdef uint8_t fill_kind
    cdef uint8_t fanout[256]
    cdef Py_ssize_t max_text

    # -- queries --
    cdef inline const Program* program(self, uint8_t kind) noexcept:
        return &self.kinds[kind] if self.has[kind] else &self.fallback

    # -- commands --
    cdef _compile(self, Program* prog, ops)
    cdef int encode(self, Buf* out, const Program* prog, const EventRec* ev, int64_t request_id) except -1


cdef class _SessionOut:
    cdef Buf buf
    cdef Py_ssize_t count


cdef class Outbox:
    cdef dict by_session
    cdef Buf scratch

    # -- commands --
    cdef _SessionOut _out(self, int64_t sid)
    cdef int _to_peers(self, peers, Py_ssize_t start) except -1
