"""The gateway's per-order work in C (engine/gateway/server.py drives it).

* ``CommandBatch``: one batch's commands as C records, with, per command, the
  session that sent it, that session's own account and the request id its
  replies echo. ``pack_requests`` reads the common request message (an array
  of NewOrder / Cancel / Amend / MassCancel with plain integer fields, acting
  for the sender's own account) straight from its MessagePack bytes; anything
  else it leaves untouched for the gateway's msgspec path, which decodes,
  authorises and rejects with reasons.
* ``ReplyEncoder`` and ``Outbox``: engine events -> reply items, MessagePack
  encoded per session, byte for byte what msgspec makes of the reply Structs.
* ``scan_market_data``: per instrument, the batch's trades (encoded) and which
  books and statuses changed.

The layouts (which reply field comes from which event column, which request
field goes to which command column, ranges and defaults) are built from the
msgspec Structs of engine/schemas.py by the gateway, so this module knows
MessagePack and the C records, not the protocol. tests/gateway/test_wire.py
checks it against msgspec on random input. wire.pxd is the contract.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Calloc, PyMem_Free, PyMem_Realloc
from libc.stdint cimport INT64_MAX, int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

from engine.core.recarrays cimport new_records, record_data
from engine.core.types cimport CommandRec, EventRec

cimport numpy as cnp

cnp.import_array()

import numpy as np

from engine.core.records import COMMAND_DTYPE, EVENT_DTYPE

if COMMAND_DTYPE.itemsize != sizeof(CommandRec) or EVENT_DTYPE.itemsize != sizeof(EventRec):
    raise ImportError("engine.core.records dtypes do not match the C records")

cdef cnp.dtype _COMMAND_DESCR = COMMAND_DTYPE
cdef cnp.dtype _EVENT_DESCR = EVENT_DTYPE

NO_SESSION = -1
"""Sender of a command the gateway itself issued (genesis, cancel-on-disconnect)."""
NO_ACCOUNT = -2
"""Own account of a session whose key has none (an operator-only key)."""
OWN_ACCOUNT = -1
"""Request ``account`` value meaning the sender's own account."""

# Request field -> what it fills (the columns of CommandRec, and the request id).
COLUMNS = ("client_order_id", "instrument", "side", "qty", "price", "order_type", "tif", "stp", "account",
           "order_id", "request_id", "asset", "state")

# Reply program operations: where each element of a reply array comes from.
OPS = ("i64", "i32", "u8", "request_id", "other_side", "text", "const")


cdef inline const EventRec* _event_data(object events, Py_ssize_t* n) except NULL:
    return <const EventRec*>record_data(events, _EVENT_DESCR, "engine.core.records.EVENT_DTYPE", n)


# -- growable byte buffer --------------------------------------------------------------------

cdef int buf_reserve(Buf* b, Py_ssize_t extra) except -1:
    cdef Py_ssize_t cap
    cdef char* data
    if b.size + extra <= b.cap:
        return 0
    cap = max(256, b.cap * 2, b.size + extra)
    data = <char*>PyMem_Realloc(b.data, cap)
    if data == NULL:
        raise MemoryError()
    b.data = data
    b.cap = cap
    return 0


cdef inline int buf_put(Buf* b, const char* src, Py_ssize_t n) except -1:
    buf_reserve(b, n)
    memcpy(b.data + b.size, src, n)
    b.size += n
    return 0


# -- MessagePack writing (the forms msgspec writes) -------------------------------------------

cdef inline Py_ssize_t put_be(char* out, uint64_t value, int nbytes) noexcept:
    cdef int k
    for k in range(nbytes):
        out[k] = <char>((value >> (8 * (nbytes - 1 - k))) & 0xff)
    return nbytes


cdef inline Py_ssize_t write_int(char* out, int64_t x) noexcept:
    """The shortest MessagePack integer, as msgspec writes it (unsigned forms for x >= 0)."""
    cdef uint64_t u
    if x >= 0:
        u = <uint64_t>x
        if u < 128:
            out[0] = <char>u
            return 1
        if u < 0x100:
            out[0] = <char>0xcc
            return 1 + put_be(out + 1, u, 1)
        if u < 0x10000:
            out[0] = <char>0xcd
            return 1 + put_be(out + 1, u, 2)
        if u < 0x100000000:
            out[0] = <char>0xce
            return 1 + put_be(out + 1, u, 4)
        out[0] = <char>0xcf
        return 1 + put_be(out + 1, u, 8)
    if x >= -32:
        out[0] = <char>(<uint8_t>(<int8_t>x))
        return 1
    if x >= -128:
        out[0] = <char>0xd0
        return 1 + put_be(out + 1, <uint64_t>x, 1)
    if x >= -32768:
        out[0] = <char>0xd1
        return 1 + put_be(out + 1, <uint64_t>x, 2)
    if x >= -2147483648:
        out[0] = <char>0xd2
        return 1 + put_be(out + 1, <uint64_t>x, 4)
    out[0] = <char>0xd3
    return 1 + put_be(out + 1, <uint64_t>x, 8)


cdef inline Py_ssize_t write_array_header(char* out, Py_ssize_t n) noexcept:
    if n < 16:
        out[0] = <char>(0x90 | n)
        return 1
    if n < 0x10000:
        out[0] = <char>0xdc
        return 1 + put_be(out + 1, n, 2)
    out[0] = <char>0xdd
    return 1 + put_be(out + 1, n, 4)


def encode_int(int64_t x):
    """One integer as MessagePack (for tests)."""
    cdef char out[9]
    return PyBytes_FromStringAndSize(out, write_int(out, x))


def array_header(Py_ssize_t n):
    """A MessagePack array header, as Outbox.messages() writes it (for tests)."""
    cdef char out[5]
    return PyBytes_FromStringAndSize(out, write_array_header(out, n))


# -- MessagePack reading (integers and arrays only) ----------------------------------------------

cdef inline uint64_t get_be(const uint8_t* p, int nbytes) noexcept:
    cdef uint64_t v = 0
    cdef int k
    for k in range(nbytes):
        v = (v << 8) | p[k]
    return v


cdef inline bint read_array(const uint8_t** pp, const uint8_t* end, Py_ssize_t* n) noexcept:
    cdef const uint8_t* p = pp[0]
    if p >= end:
        return False
    if 0x90 <= p[0] <= 0x9f:
        n[0] = p[0] & 0x0f
        pp[0] = p + 1
        return True
    if p[0] == 0xdc and end - p >= 3:
        n[0] = <Py_ssize_t>get_be(p + 1, 2)
        pp[0] = p + 3
        return True
    if p[0] == 0xdd and end - p >= 5:
        n[0] = <Py_ssize_t>get_be(p + 1, 4)
        pp[0] = p + 5
        return True
    return False


cdef inline bint read_int(const uint8_t** pp, const uint8_t* end, int64_t* v) noexcept:
    cdef const uint8_t* p = pp[0]
    cdef uint8_t b
    cdef uint64_t u
    cdef int nbytes
    if p >= end:
        return False
    b = p[0]
    if b <= 0x7f:
        v[0] = b
        pp[0] = p + 1
        return True
    if b >= 0xe0:
        v[0] = <int8_t>b
        pp[0] = p + 1
        return True
    if 0xcc <= b <= 0xcf:
        nbytes = 1 << (b - 0xcc)
        if end - p < 1 + nbytes:
            return False
        u = get_be(p + 1, nbytes)
        if u > <uint64_t>INT64_MAX:
            return False
        v[0] = <int64_t>u
        pp[0] = p + 1 + nbytes
        return True
    if 0xd0 <= b <= 0xd3:
        nbytes = 1 << (b - 0xd0)
        if end - p < 1 + nbytes:
            return False
        u = get_be(p + 1, nbytes)
        if nbytes == 1:
            v[0] = <int8_t>u
        elif nbytes == 2:
            v[0] = <int16_t>u
        elif nbytes == 4:
            v[0] = <int32_t>u
        else:
            v[0] = <int64_t>u
        pp[0] = p + 1 + nbytes
        return True
    return False


cdef int _grow(void** p, size_t nbytes) except -1:
    cdef void* q = PyMem_Realloc(p[0], nbytes)
    if q == NULL:
        raise MemoryError()
    p[0] = q
    return 0


# -- commands ----------------------------------------------------------------------------------

cdef class RequestLayouts:
    """How the fast path reads each request tag: per field its column, range and
    default (built by the gateway from the request Structs)."""

    def __init__(self, layouts):
        """``layouts``: {tag: (command kind, [(column name, lo, hi, default or None), ...])}.
        Fields with a default follow the required ones, as in a msgspec Struct."""
        cdef RequestLayout* lay
        cdef int k
        memset(self.tags, 0, sizeof(self.tags))
        for tag, (kind, fields) in layouts.items():
            if not 0 < tag < MAX_TAGS or not 0 < kind < 256 or len(fields) > MAX_FIELDS:
                raise ValueError(f"request tag {tag}: kind {kind} or {len(fields)} fields out of range")
            lay = &self.tags[tag]
            lay.kind = kind
            lay.n_fields = len(fields)
            lay.n_required = 0
            for k, (name, lo, hi, default) in enumerate(fields):
                lay.column[k] = COLUMNS.index(name)
                lay.lo[k] = lo
                lay.hi[k] = hi
                if default is None:
                    if lay.n_required != k:
                        raise ValueError(f"request tag {tag}: required field {name} after a default")
                    lay.n_required = k + 1
                else:
                    lay.default[k] = default


cdef class CommandBatch:
    """The commands of one batch (C records) and, per command, its sender's
    session id, the sender's own account and the request id its replies echo."""

    def __dealloc__(self):
        PyMem_Free(self.recs)
        PyMem_Free(self.senders)
        PyMem_Free(self.accounts)
        PyMem_Free(self.request_ids)

    def __len__(self):
        return self.n

    cdef int _reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t cap
        if self.n + extra <= self.cap:
            return 0
        cap = max(64, self.cap * 2, self.n + extra)
        _grow(<void**>&self.recs, cap * sizeof(CommandRec))
        _grow(<void**>&self.senders, cap * sizeof(int64_t))
        _grow(<void**>&self.accounts, cap * sizeof(int64_t))
        _grow(<void**>&self.request_ids, cap * sizeof(int64_t))
        self.cap = cap
        return 0

    cdef CommandRec* _new(self, int64_t sender, int64_t sender_account, int64_t request_id) except NULL:
        self._reserve(1)
        cdef CommandRec* c = &self.recs[self.n]
        memset(c, 0, sizeof(CommandRec))
        self.senders[self.n] = sender
        self.accounts[self.n] = sender_account
        self.request_ids[self.n] = request_id
        self.n += 1
        return c

    def add(self, int64_t sender, int64_t sender_account, int64_t request_id, uint8_t kind, *,
            uint8_t side=0, uint8_t order_type=0, uint8_t tif=0, uint8_t stp=0, uint8_t state=0,
            int32_t instrument=0, int32_t asset=0, int64_t account=0, int64_t order_id=0,
            int64_t client_order_id=0, int64_t price=0, int64_t qty=0):
        """Add one command (the gateway's general path; values already validated)."""
        cdef CommandRec* c = self._new(sender, sender_account, request_id)
        c.kind = kind
        c.side = side
        c.order_type = order_type
        c.tif = tif
        c.stp = stp
        c.state = state
        c.instrument = instrument
        c.asset = asset
        c.account = account
        c.order_id = order_id
        c.client_order_id = client_order_id
        c.price = price
        c.qty = qty

    def add_records(self, commands, int64_t sender=NO_SESSION, int64_t sender_account=NO_ACCOUNT):
        """Add COMMAND_DTYPE records (gateway-issued commands); seq and ts are
        stamped later by ``commands()``."""
        arr = np.ascontiguousarray(commands, dtype=COMMAND_DTYPE)
        cdef Py_ssize_t k, m = len(arr)
        cdef const CommandRec* src = <const CommandRec*>cnp.PyArray_DATA(arr)
        self._reserve(m)
        for k in range(m):
            memcpy(self._new(sender, sender_account, 0), &src[k], sizeof(CommandRec))

    @cython.boundscheck(False)   # every index below is checked against size/end first
    @cython.wraparound(False)
    @cython.initializedcheck(False)
    def pack_requests(self, payload, int64_t sender, int64_t sender_account, bint operator,
                      Py_ssize_t max_requests, RequestLayouts layouts):
        """Read a request message that is entirely on the fast path into the
        batch and return how many requests it held; return -1, adding nothing,
        if any part of it is not (the gateway then takes its general path).

        On the fast path: a MessagePack array of 1..max_requests requests whose
        tags have a layout, each an array of integers in their fields' ranges
        with every required field present, acting for the sender's own account
        (OWN_ACCOUNT or its id) or, for an operator, any account; nothing after
        the array."""
        cdef const uint8_t[::1] view = payload
        cdef Py_ssize_t size = view.shape[0]
        if size == 0:
            return -1
        cdef const uint8_t* p = &view[0]
        cdef const uint8_t* end = p + size
        cdef Py_ssize_t count, length, k, r
        cdef int64_t tag, value
        cdef int64_t values[N_COLUMNS]
        cdef RequestLayout* lay
        cdef CommandRec* c
        cdef Py_ssize_t start = self.n
        if not read_array(&p, end, &count) or count < 1 or count > max_requests:
            return -1
        self._reserve(count)  # no allocation below: a failure leaves the batch as it was
        for r in range(count):
            if not read_array(&p, end, &length) or length < 1 or not read_int(&p, end, &tag):
                self.n = start
                return -1
            if not 0 < tag < MAX_TAGS or layouts.tags[tag].kind == 0:
                self.n = start
                return -1
            lay = &layouts.tags[tag]
            length -= 1
            if length < lay.n_required or length > lay.n_fields:
                self.n = start
                return -1
            memset(values, 0, sizeof(values))
            for k in range(lay.n_fields):
                if k < length:
                    if not read_int(&p, end, &value) or value < lay.lo[k] or value > lay.hi[k]:
                        self.n = start
                        return -1
                else:
                    value = lay.default[k]
                values[lay.column[k]] = value
            value = values[COL_ACCOUNT]
            if value == OWN_ACCOUNT:
                if sender_account < 0:
                    self.n = start
                    return -1
                value = sender_account
            elif value != sender_account and not operator:
                self.n = start
                return -1
            c = self._new(sender, sender_account, values[COL_REQUEST_ID])
            c.kind = lay.kind
            c.side = <uint8_t>values[COL_SIDE]
            c.order_type = <uint8_t>values[COL_ORDER_TYPE]
            c.tif = <uint8_t>values[COL_TIF]
            c.stp = <uint8_t>values[COL_STP]
            c.state = <uint8_t>values[COL_STATE]
            c.instrument = <int32_t>values[COL_INSTRUMENT]
            c.asset = <int32_t>values[COL_ASSET]
            c.account = value
            c.order_id = values[COL_ORDER_ID]
            c.client_order_id = values[COL_CLIENT_ORDER_ID]
            c.price = values[COL_PRICE]
            c.qty = values[COL_QTY]
        if p != end:
            self.n = start
            return -1
        return count

    def commands(self, int64_t first_seq, int64_t ts):
        """The commands as a new COMMAND_DTYPE array, stamped with seq first_seq,
        first_seq + 1, ... and ts."""
        cdef Py_ssize_t k
        cdef cnp.ndarray out = new_records(_COMMAND_DESCR, self.n)
        cdef CommandRec* dst = <CommandRec*>cnp.PyArray_DATA(out)
        if self.n:
            memcpy(dst, self.recs, self.n * sizeof(CommandRec))
        for k in range(self.n):
            dst[k].seq = first_seq + k
            dst[k].ts = ts
        return out

    def sender(self, Py_ssize_t i):
        """(session id, sender's own account, request id) of command i."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.senders[i], self.accounts[i], self.request_ids[i]


# -- replies -------------------------------------------------------------------------------------

cdef inline Py_ssize_t _column(str name) except -1:
    return EVENT_DTYPE.fields[name][1]


cdef class ReplyEncoder:
    """Encodes one engine event as one reply item, by a program per event kind:
    the reply array's elements in order, each an event column, the request id,
    the other side, the reject text of the reason, or a constant (the tag)."""

    def __init__(self, programs, maker_fill, fallback, texts, int fill_kind, fanout):
        """``programs``: {event kind: [(op, arg), ...]}; ``maker_fill``: the program
        of a fill seen from the maker's side; ``fallback``: for kinds without a
        program; ``texts``: 256 MessagePack-encoded strings, one per reason code;
        ``fanout``: event kinds an account hears about even when another session
        caused them. Ops are named as in OPS; column args are EVENT_DTYPE names."""
        memset(self.has, 0, sizeof(self.has))
        memset(self.fanout, 0, sizeof(self.fanout))
        for kind, ops in programs.items():
            self._compile(&self.kinds[kind], ops)
            self.has[kind] = True
        self._compile(&self.maker_fill, maker_fill)
        self._compile(&self.fallback, fallback)
        if len(texts) != 256:
            raise ValueError("texts: one encoded string per reason code 0..255")
        self.texts = [bytes(t) for t in texts]
        self.max_text = 0
        for k in range(256):
            self.text[k] = PyBytes_AS_STRING(self.texts[k])
            self.text_len[k] = PyBytes_GET_SIZE(self.texts[k])
            self.max_text = max(self.max_text, self.text_len[k])
        self.fill_kind = fill_kind
        for kind in fanout:
            self.fanout[kind] = 1

    cdef _compile(self, Program* prog, ops):
        if len(ops) > MAX_OPS:
            raise ValueError(f"a reply of {len(ops)} elements is longer than {MAX_OPS}")
        prog.n_ops = len(ops)
        for k, (op, arg) in enumerate(ops):
            prog.op[k] = OPS.index(op)
            if op in ("i64", "i32", "u8", "other_side", "text"):
                prog.arg[k] = _column(arg)
            else:
                prog.arg[k] = arg if arg is not None else 0

    cdef int encode(self, Buf* out, const Program* prog, const EventRec* ev, int64_t request_id) except -1:
        cdef const char* base = <const char*>ev
        cdef int k
        cdef uint8_t op
        cdef int64_t value
        cdef uint8_t reason
        buf_reserve(out, 5 + prog.n_ops * max(9, self.max_text))  # an element: an int or a text
        cdef char* w = out.data + out.size
        w += write_array_header(w, prog.n_ops)
        for k in range(prog.n_ops):
            op = prog.op[k]
            if op == OP_I64:
                value = (<const int64_t*>(base + prog.arg[k]))[0]
            elif op == OP_I32:
                value = (<const int32_t*>(base + prog.arg[k]))[0]
            elif op == OP_U8:
                value = (<const uint8_t*>(base + prog.arg[k]))[0]
            elif op == OP_RID:
                value = request_id
            elif op == OP_OTHER_SIDE:
                value = 3 - <int64_t>(<const uint8_t*>(base + prog.arg[k]))[0]
            elif op == OP_TEXT:
                reason = (<const uint8_t*>(base + prog.arg[k]))[0]
                memcpy(w, self.text[reason], self.text_len[reason])
                w += self.text_len[reason]
                continue
            else:
                value = prog.arg[k]
            w += write_int(w, value)
        out.size = w - out.data
        return 0

    def encode_events(self, events, request_id=0, bint maker=False):
        """The events as a reply message (an array of items), each encoded by its
        kind's program (``maker``: as the maker's fill) with ``request_id``."""
        cdef Py_ssize_t n, i
        cdef const EventRec* ev = _event_data(events, &n)
        cdef Buf b
        b.data = NULL
        b.size = b.cap = 0
        try:
            buf_reserve(&b, 5)
            b.size = write_array_header(b.data, n)
            for i in range(n):
                self.encode(&b, &self.maker_fill if maker else self.program(ev[i].kind), &ev[i], request_id)
            return PyBytes_FromStringAndSize(b.data, b.size)
        finally:
            PyMem_Free(b.data)


cdef class _SessionOut:
    """One session's encoded reply items."""

    def __dealloc__(self):
        PyMem_Free(self.buf.data)


cdef class Outbox:
    """Reply items per session id, encoded as they are added; ``messages()``
    gives each session's items as one MessagePack array."""

    def __cinit__(self):
        self.by_session = {}

    def __dealloc__(self):
        PyMem_Free(self.scratch.data)

    def __len__(self):
        return len(self.by_session)

    cdef _SessionOut _out(self, int64_t sid):
        out = self.by_session.get(sid)
        if out is None:
            out = _SessionOut()
            self.by_session[sid] = out
        return <_SessionOut>out

    @cython.boundscheck(False)   # view[0] is read only when the item is not empty
    @cython.initializedcheck(False)
    def add(self, int64_t sid, item):
        """Add one reply item already encoded as MessagePack."""
        cdef const uint8_t[::1] view = item
        cdef _SessionOut out = self._out(sid)
        if view.shape[0]:
            buf_put(&out.buf, <const char*>&view[0], view.shape[0])
        out.count += 1

    def count(self, int64_t sid):
        """Items waiting for session sid."""
        out = self.by_session.get(sid)
        return 0 if out is None else (<_SessionOut>out).count

    def messages(self):
        """[(session id, number of items, message bytes)] in the order sessions were first added to."""
        cdef char head[5]
        cdef Py_ssize_t h
        cdef _SessionOut out
        result = []
        for sid, o in self.by_session.items():
            out = <_SessionOut>o
            if out.count == 0:
                continue
            h = write_array_header(head, out.count)
            msg = PyBytes_FromStringAndSize(NULL, h + out.buf.size)
            memcpy(PyBytes_AS_STRING(msg), head, h)
            if out.buf.size:
                memcpy(PyBytes_AS_STRING(msg) + h, out.buf.data, out.buf.size)
            result.append((sid, out.count, msg))
        return result

    cdef int _to_peers(self, peers, Py_ssize_t start) except -1:
        """Append the scratch item (from byte `start`) to each session in peers."""
        cdef _SessionOut out
        for session in peers:
            out = self._out(session.id)
            buf_put(&out.buf, self.scratch.data + start, self.scratch.size - start)
            out.count += 1
        return 0

    def route(self, ReplyEncoder encoder, events, CommandBatch batch, int64_t first_seq, sessions_of):
        """Turn a batch's events into replies: each event to the session whose
        command caused it; a fill also, as the maker's fill, to every live session
        of the maker's account; fan-out kinds (cancels, credits, a taker's fill ...) also to the
        live sessions of the account they concern when the command's sender is
        another account or the gateway. ``sessions_of``: account -> sessions
        (objects with an ``id``)."""
        cdef Py_ssize_t n, i, e
        cdef const EventRec* ev = _event_data(events, &n)
        cdef const Program* prog
        cdef int64_t sender, last_sid = NO_SESSION - 1
        cdef _SessionOut out = None
        cdef Py_ssize_t start
        for e in range(n):
            i = ev[e].seq - first_seq
            if not 0 <= i < batch.n:
                raise ValueError(f"event seq {ev[e].seq} is not a command of this batch")
            prog = encoder.program(ev[e].kind)
            sender = batch.senders[i]
            if sender != NO_SESSION:
                if sender != last_sid:
                    out = self._out(sender)
                    last_sid = sender
                encoder.encode(&out.buf, prog, &ev[e], batch.request_ids[i])
                out.count += 1
            if ev[e].kind == encoder.fill_kind:
                peers = sessions_of.get(ev[e].maker_account)
                if peers:
                    self.scratch.size = 0
                    encoder.encode(&self.scratch, &encoder.maker_fill, &ev[e], 0)
                    self._to_peers(peers, 0)
            if encoder.fanout[ev[e].kind] and ev[e].account != batch.accounts[i]:
                peers = sessions_of.get(ev[e].account)
                if peers:
                    self.scratch.size = 0
                    encoder.encode(&self.scratch, prog, &ev[e], batch.request_ids[i])
                    self._to_peers(peers, 0)


# -- event selection and market data --------------------------------------------------------------

def select_kinds(events, kinds):
    """The events whose kind is in ``kinds`` (a new EVENT_DTYPE array, in order)."""
    cdef Py_ssize_t n, e, m = 0
    cdef const EventRec* ev = _event_data(events, &n)
    cdef uint8_t want[256]
    memset(want, 0, sizeof(want))
    for k in kinds:
        want[k] = 1
    for e in range(n):
        m += want[ev[e].kind]
    cdef cnp.ndarray out = new_records(_EVENT_DESCR, m)
    cdef EventRec* dst = <EventRec*>cnp.PyArray_DATA(out)
    m = 0
    for e in range(n):
        if want[ev[e].kind]:
            dst[m] = ev[e]
            m += 1
    return out


def scan_market_data(events, Py_ssize_t n_instruments, int64_t ts, book_kinds, status_kinds,
                     int fill_kind, int trades_tag):
    """What a batch's events change, per instrument: (instruments whose book may
    have changed, in id order; instruments whose status changed; {instrument:
    its trades encoded as ``[trades_tag, ts, [[seq, price, qty, side], ...]]``})."""
    cdef Py_ssize_t n, e, k
    cdef const EventRec* ev = _event_data(events, &n)
    cdef uint8_t book[256]
    cdef uint8_t status[256]
    cdef char* w
    cdef int32_t inst
    memset(book, 0, sizeof(book))
    memset(status, 0, sizeof(status))
    for k in book_kinds:
        book[k] = 1
    for k in status_kinds:
        status[k] = 1
    # per instrument: bit 1 touched, bit 2 status changed; and its number of fills
    cdef uint8_t* flags = <uint8_t*>PyMem_Calloc(n_instruments + 1, 1)
    cdef int64_t* fills = <int64_t*>PyMem_Calloc(n_instruments + 1, sizeof(int64_t))
    cdef Buf b
    b.data = NULL
    b.size = b.cap = 0
    try:
        if flags == NULL or fills == NULL:
            raise MemoryError()
        for e in range(n):
            inst = ev[e].instrument
            if book[ev[e].kind] and 0 <= inst < n_instruments:
                flags[inst] |= 1
                if ev[e].kind == fill_kind:
                    fills[inst] += 1
                elif status[ev[e].kind]:
                    flags[inst] |= 2
        touched = []
        changed = []
        trades = {}
        for k in range(n_instruments):
            if not flags[k]:
                continue
            touched.append(k)
            if flags[k] & 2:
                changed.append(k)
            if fills[k] == 0:
                continue
            b.size = 0
            buf_reserve(&b, 32 + fills[k] * 40)
            w = b.data
            w += write_array_header(w, 3)
            w += write_int(w, trades_tag)
            w += write_int(w, ts)
            w += write_array_header(w, fills[k])
            for e in range(n):
                if ev[e].kind == fill_kind and ev[e].instrument == k:
                    w += write_array_header(w, 4)
                    w += write_int(w, ev[e].seq)
                    w += write_int(w, ev[e].price)
                    w += write_int(w, ev[e].qty)
                    w += write_int(w, ev[e].side)
            trades[k] = PyBytes_FromStringAndSize(b.data, w - b.data)
        return touched, changed, trades
    finally:
        PyMem_Free(b.data)
        PyMem_Free(flags)
        PyMem_Free(fills)
