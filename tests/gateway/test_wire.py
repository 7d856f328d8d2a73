"""The gateway's C fast path (engine/core/wire.pyx) against the general path and msgspec.

* pack_requests: on random request messages (good and bad, canonical and wide
  integer encodings), whatever the C reader takes gives exactly the commands
  the general path (msgspec decode + engine.gateway.dispatch) gives; whatever it
  leaves is left untouched; and it leaves nothing the general path would take
  without a reject.
* Outbox.route: replies land where a plain-Python model of the routing rules
  puts them, encoded as the reply Structs.
* scan_market_data, select_kinds, encode_int: against msgspec and numpy.
"""

from __future__ import annotations

import struct
import time

import msgspec
import numpy as np
import pytest
import zmq
from gateway_harness import write_venue
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine.config import load_config
from engine.gateway.batch import Batch
from engine.gateway.dispatch import dispatch
from engine.gateway.server import Gateway
from engine.gateway.limits import SessionLimits
from engine.gateway.sessions import Session
from engine.core.records import EVENT_DTYPE
from engine.core.types import EventKind
from engine.core.wire import (
    NO_ACCOUNT,
    NO_SESSION,
    CommandBatch,
    Outbox,
    array_header,
    encode_int,
    scan_market_data,
    select_kinds,
)
from engine.journal import JOURNALED_EVENT_KINDS
from engine.schemas import (
    MD_ENCODER,
    REPLY_DECODER,
    REQUEST_DECODER,
    Amend,
    Cancel,
    MassCancel,
    NewOrder,
    Trade,
    Trades,
)
from engine.gateway.wire_layouts import FANOUT_KINDS, REPLIES, REQUEST_LAYOUTS

MAX_REQUESTS = 8
FAST_TYPES = (NewOrder, Cancel, Amend, MassCancel)


# -- a MessagePack writer that may use wider integer forms than needed ---------------------------

def _int(value: int, wide: bool) -> bytes:
    if not wide or not -(2**63) <= value < 2**64:
        return msgspec.msgpack.encode(value)
    if value >= 2**63:
        return b"\xcf" + struct.pack(">Q", value)
    return b"\xd3" + struct.pack(">q", value)


def _encode(item, wide: bool) -> bytes:
    if isinstance(item, list):
        head = bytes([0x90 | len(item)]) if len(item) < 16 else b"\xdc" + struct.pack(">H", len(item))
        return head + b"".join(_encode(x, wide) for x in item)
    if isinstance(item, int) and not isinstance(item, bool):
        return _int(item, wide)
    return msgspec.msgpack.encode(item)


FIELD = st.one_of(
    st.integers(-3, 300),
    st.integers(-(2**31) - 2, 2**31 + 1),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([True, None, 1.5, "x", [1]]),
)
ACCOUNT = st.sampled_from([-1, -1, -1, 1, 2, -2, 7])


REQUIRED = {1: 4, 2: 2, 3: 2, 4: 1}


@st.composite
def request_items(draw, clean: bool = False):
    """[tag, fields...]: orders, cancels, amends, mass cancels, other requests;
    ``clean``: well-formed fast-path requests only (their account may still be wrong)."""
    tag = draw(st.sampled_from([1, 1, 1, 2, 3, 4] if clean else [1, 1, 1, 2, 3, 4, 11, 12, 99]))
    if not clean and draw(st.integers(0, 9)) == 0:  # anything at all
        return [tag] + draw(st.lists(FIELD, max_size=11))
    small = st.integers(0, 10)
    fields = {
        1: [st.integers(0, 2**40), st.integers(-1, 3), st.sampled_from([1, 2, 0, 3]), st.integers(-5, 10**6),
            st.integers(-5, 10**7), st.sampled_from([1, 2, 9]), st.integers(0, 5), st.integers(0, 4), ACCOUNT],
        2: [st.integers(0, 2**40), small, ACCOUNT],
        3: [st.integers(0, 2**40), small, st.integers(0, 100), st.integers(0, 10**7), ACCOUNT],
        4: [st.integers(0, 2**40), st.integers(-1, 3), ACCOUNT],
        11: [small],
        12: [small, ACCOUNT],
        99: [small],
    }[tag]
    n = draw(st.integers(REQUIRED[tag], len(fields)) if clean else st.integers(0, len(fields) + 1))
    values = [draw(fields[k]) if k < len(fields) else draw(FIELD) for k in range(n)]
    if values and not clean and draw(st.integers(0, 7)) == 0:
        values[draw(st.integers(0, len(values) - 1))] = draw(FIELD)
    return [tag] + values


@st.composite
def messages(draw):
    if draw(st.booleans()):
        items = draw(st.lists(request_items(clean=True), min_size=1, max_size=MAX_REQUESTS))
        return _encode(items, draw(st.booleans()))
    items = draw(st.lists(request_items(), min_size=0, max_size=MAX_REQUESTS + 1))
    payload = _encode(items, draw(st.booleans()))
    tail = draw(st.sampled_from([b"", b"", b"", b"\x00", b"\xc1"]))
    cut = draw(st.integers(0, 20)) if draw(st.integers(0, 9)) == 0 else 0
    return (payload + tail)[: len(payload) + len(tail) - cut] if cut < len(payload) else payload


@pytest.fixture(scope="module")
def gw(tmp_path_factory, keys):
    context = zmq.Context()
    gateway = Gateway(load_config(write_venue(tmp_path_factory.mktemp("wire"), keys)), context)
    yield gateway
    gateway.close()
    context.term()


def _session(gw, name: str) -> Session:
    principal = gw.sessions.principals[name]
    return Session(5, b"id", name, principal, 0.0, SessionLimits(gw.limits))


def _general(gw, session, payload: bytes) -> tuple[CommandBatch | None, list]:
    """The general path: msgspec decode and dispatch; None if it does not decode."""
    try:
        requests = REQUEST_DECODER.decode(payload)
    except (ValueError, RecursionError):
        return None, []
    batch = Batch()
    for request in requests:
        dispatch(batch, session, request, time.monotonic())
    return batch, requests


def _records(batch: CommandBatch) -> tuple[bytes, list]:
    return batch.commands(1, 0).tobytes(), [batch.sender(i) for i in range(len(batch))]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=messages(), who=st.sampled_from(["acct:mm", "acct:retail", "op:ops"]))
def test_fast_path_reads_what_the_general_path_reads(gw, payload, who):
    session = _session(gw, who)
    fast = CommandBatch()
    fast.add(9, 9, 9, 1)  # something already in the batch stays as it is
    before = _records(fast)
    count = fast.pack_requests(payload, session.id, session.account, session.principal.operator, MAX_REQUESTS,
                               REQUEST_LAYOUTS)
    general, requests = _general(gw, session, payload)
    event("fast path" if count > 0 else "general path")
    if count == -1:
        assert _records(fast) == before
        # Left for the general path: it must be something that path does not simply take.
        simple = (general is not None and 0 < len(requests) <= MAX_REQUESTS
                  and all(type(r) in FAST_TYPES for r in requests)
                  and not general.replies.messages() and len(general.commands) == len(requests))
        assert not simple, requests
        return
    assert general is not None and count == len(requests) > 0
    assert not general.replies.messages()  # nothing the general path would have rejected
    expected = CommandBatch()
    expected.add(9, 9, 9, 1)
    for request in requests:
        dispatch(_with(expected), session, request, time.monotonic())
    assert _records(fast) == _records(expected)


def _with(commands: CommandBatch) -> Batch:
    """A Batch that adds to a given CommandBatch."""
    batch = Batch()
    batch.commands = commands
    return batch


def test_fast_path_takes_orders_for_the_own_account_only(gw):
    retail = _session(gw, "acct:retail")
    order = msgspec.msgpack.encode([[1, 7, 0, 1, 10, 1_850_000]])
    batch = CommandBatch()
    assert batch.pack_requests(order, retail.id, retail.account, False, 8, REQUEST_LAYOUTS) == 1
    record = batch.commands(1, 0)[0]
    assert (record["account"], record["client_order_id"], record["qty"], record["tif"]) == (retail.account, 7, 10, 1)
    other = msgspec.msgpack.encode([[1, 7, 0, 1, 10, 1_850_000, 1, 1, 1, retail.account + 1]])
    assert batch.pack_requests(other, retail.id, retail.account, False, 8, REQUEST_LAYOUTS) == -1
    assert len(batch) == 1
    ops = _session(gw, "op:ops")  # an operator key without an account must name one
    assert batch.pack_requests(order, ops.id, NO_ACCOUNT, True, 8, REQUEST_LAYOUTS) == -1
    assert batch.pack_requests(other, ops.id, NO_ACCOUNT, True, 8, REQUEST_LAYOUTS) == 1


# -- replies -----------------------------------------------------------------------------------

KINDS = st.sampled_from([1, 2, 3, 4, 5, 6, 9, 10, 42])


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_route_sends_each_event_where_the_rules_say(data):
    n_commands = data.draw(st.integers(1, 6))
    senders = [data.draw(st.sampled_from([NO_SESSION, 1, 2, 3])) for _ in range(n_commands)]
    own = {NO_SESSION: NO_ACCOUNT, 1: 10, 2: 10, 3: 11}
    batch = CommandBatch()
    for sid in senders:
        batch.add(sid, own[sid], data.draw(st.integers(0, 99)), 1)
    rows = data.draw(st.lists(st.tuples(st.integers(0, n_commands - 1), KINDS, st.sampled_from([10, 11, 12]),
                                        st.sampled_from([10, 11, 12]), st.integers(-5, 2**40)), max_size=12))
    rows.sort(key=lambda r: r[0])
    events = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for k, (i, kind, account, maker, value) in enumerate(rows):
        events[k] = 0
        events["seq"][k], events["kind"][k], events["account"][k], events["maker_account"][k] = 100 + i, kind, \
            account, maker
        events["qty"][k], events["side"][k], events["reason"][k] = value, 1 + k % 2, k % 40

    class S:
        def __init__(self, sid):
            self.id = sid

    sessions_of = {10: [S(1), S(2)], 11: [S(3)]}
    outbox = Outbox()
    outbox.route(REPLIES, events, batch, 100, sessions_of)

    expected: dict[int, list] = {}
    for k, (i, kind, account, maker, _value) in enumerate(rows):
        sid, sender_account, rid = batch.sender(i)
        item = REPLY_DECODER.decode(REPLIES.encode_events(events[k:k + 1], rid))[0]
        if sid != NO_SESSION:
            expected.setdefault(sid, []).append(item)
        if kind == EventKind.FILL:
            maker_item = REPLY_DECODER.decode(REPLIES.encode_events(events[k:k + 1], 0, True))[0]
            for s in sessions_of.get(maker, []):
                expected.setdefault(s.id, []).append(maker_item)
        if kind in FANOUT_KINDS and account != sender_account:
            for s in sessions_of.get(account, []):
                expected.setdefault(s.id, []).append(item)
    got = {sid: REPLY_DECODER.decode(message) for sid, count, message in outbox.messages()}
    assert got == expected
    assert all(count == len(expected[sid]) for sid, count, _ in outbox.messages())


def test_route_refuses_events_of_another_batch():
    batch = CommandBatch()
    batch.add(1, 10, 0, 1)
    events = np.zeros(1, dtype=EVENT_DTYPE)
    events["seq"] = 7
    with pytest.raises(ValueError, match="not a command of this batch"):
        Outbox().route(REPLIES, events, batch, 1, {})


# -- market data and selection -------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(KINDS, st.integers(-1, 3), st.integers(0, 2**62), st.integers(1, 2)), max_size=20),
       ts=st.integers(0, 2**62))
def test_scan_market_data_matches_msgspec(rows, ts):
    events = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for k, (kind, instrument, value, side) in enumerate(rows):
        events["seq"][k], events["kind"][k], events["instrument"][k] = k + 1, kind, instrument
        events["price"][k], events["qty"][k], events["side"][k] = value, value // 3, side
    book = {1, 3, 4, 5, 7, 8}
    status = {7, 8}
    touched, changed, trades = scan_market_data(events, 3, ts, book, status, 3, 1)
    in_range = [(k, r) for k, r in enumerate(rows) if 0 <= r[1] < 3 and r[0] in book]
    assert touched == sorted({r[1] for _, r in in_range})
    assert changed == sorted({r[1] for _, r in in_range if r[0] in status})
    expected = {}
    for k, (kind, instrument, value, side) in in_range:
        if kind == 3:
            expected.setdefault(instrument, []).append(Trade(k + 1, value, value // 3, side))
    assert trades == {i: MD_ENCODER.encode(Trades(ts, t)) for i, t in expected.items()}


@given(kinds=st.lists(st.integers(0, 255), max_size=30))
def test_select_kinds(kinds):
    events = np.zeros(len(kinds), dtype=EVENT_DTYPE)
    events["kind"] = kinds
    events["seq"] = np.arange(len(kinds))
    mask = np.isin(events["kind"], sorted(JOURNALED_EVENT_KINDS))
    assert select_kinds(events, JOURNALED_EVENT_KINDS).tobytes() == events[mask].tobytes()


@given(st.one_of(st.integers(-(2**63), 2**63 - 1),
                 st.sampled_from([0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, -32, -33, -128, -129,
                                  -32768, -32769, -(2**31), -(2**31) - 1, 2**63 - 1, -(2**63)])))
def test_integers_encode_as_msgspec_does(x):
    assert encode_int(x) == msgspec.msgpack.encode(x)


@pytest.mark.parametrize("n", [0, 15, 16, 65_535, 65_536])
def test_array_headers_and_long_reply_messages_encode_as_msgspec_does(n):
    assert array_header(n) == msgspec.msgpack.encode([0] * n)[: len(array_header(n))]
    outbox = Outbox()
    for k in range(min(n, 300)):
        outbox.add(4, msgspec.msgpack.encode(k))
    if n <= 300 and n:
        ((sid, count, message),) = outbox.messages()
        assert (sid, count, message) == (4, n, msgspec.msgpack.encode(list(range(n))))
