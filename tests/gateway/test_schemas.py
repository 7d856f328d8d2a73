"""The wire protocol: round trips, and the gateway's C reply encoding
(engine/core/wire.pyx) producing exactly the bytes of the reply Structs."""

from __future__ import annotations

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.order_info import MarginState, OrderInfo, PositionInfo
from engine.core.records import EVENT_DTYPE
from engine.core.types import EventKind
from engine.schemas import (
    MD_DECODER,
    MD_ENCODER,
    REPLY_DECODER,
    REPLY_ENCODER,
    REQUEST_DECODER,
    REQUEST_ENCODER,
    REQUEST_TYPES,
    Ack,
    Amended,
    AssetPriceSet,
    BookDelta,
    Cancelled,
    Credited,
    Debited,
    DepositSkipped,
    EngineEvent,
    Fill,
    Level,
    Liquidity,
    Margin,
    MarginCall,
    MarginCalls,
    MassCancelled,
    NewOrder,
    OpenOrder,
    OpenOrders,
    ReferenceSet,
    StateChanged,
    Trade,
    Trades,
    from_core,
    reject_text,
)
from engine.gateway.wire_layouts import REPLIES

I64 = st.integers(-(2**63), 2**63 - 1)
I32 = st.integers(-(2**31), 2**31 - 1)
U8 = st.integers(0, 255)


def _events(kind: int, rows: list[dict]) -> np.ndarray:
    events = np.zeros(len(rows), dtype=EVENT_DTYPE)
    for i, row in enumerate(rows):
        for name, value in row.items():
            events[name][i] = value
    events["kind"] = kind
    return events


EVENT_ROW = st.fixed_dictionaries({
    "seq": I64, "ts": I64, "reason": U8, "side": st.sampled_from([1, 2]), "aux": U8, "instrument": I32,
    "order_id": I64, "client_order_id": I64, "account": I64, "price": I64, "qty": I64, "leaves": I64,
    "maker_order_id": I64, "maker_client_order_id": I64, "maker_account": I64, "maker_leaves": I64,
    "fee": I64, "maker_fee": I64, "asset": I32})


def _expected(kind: int, e, request_id: int):
    """The reply Struct of one event, field by field (the specification)."""
    common = (e["seq"], e["ts"])
    match kind:
        case EventKind.ACCEPTED:
            return Ack(*common, e["client_order_id"], e["order_id"], e["instrument"], e["side"], e["price"],
                       e["qty"], e["aux"])
        case EventKind.CANCELLED:
            return Cancelled(*common, e["client_order_id"], e["order_id"], e["instrument"], e["side"], e["price"],
                             e["qty"], e["reason"])
        case EventKind.AMENDED:
            return Amended(*common, e["client_order_id"], e["order_id"], e["instrument"], e["side"], e["price"],
                           e["qty"], e["aux"])
        case EventKind.MASS_CANCELLED:
            return MassCancelled(*common, request_id, e["account"], e["instrument"], e["qty"])
        case EventKind.STATE_CHANGED:
            return StateChanged(*common, request_id, e["instrument"], e["aux"])
        case EventKind.REFERENCE_SET:
            return ReferenceSet(*common, request_id, e["instrument"], e["price"])
        case EventKind.CREDITED:
            return Credited(*common, request_id, e["account"], e["asset"], e["qty"], e["leaves"], e["order_id"])
        case EventKind.DEBITED:
            return Debited(*common, request_id, e["account"], e["asset"], e["qty"], e["leaves"])
        case EventKind.ASSET_PRICE_SET:
            return AssetPriceSet(*common, request_id, e["asset"], e["price"])
        case EventKind.DEPOSIT_SKIPPED:
            return DepositSkipped(*common, request_id, e["order_id"])


def _rows(events: np.ndarray, request_id: int = 0, maker: bool = False) -> bytes:
    return REPLIES.encode_events(events, request_id, maker)


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from([1, 4, 5, 6, 7, 8, 9, 10, 11, 12]), rows=st.lists(EVENT_ROW, min_size=1, max_size=5),
       request_id=I64)
def test_reply_rows_encode_exactly_like_the_structs(kind, rows, request_id):
    encoded = _rows(_events(kind, rows), request_id)
    expected = [_expected(kind, row, request_id) for row in rows]
    assert REPLY_DECODER.decode(encoded) == expected
    assert encoded == REPLY_ENCODER.encode(expected)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(EVENT_ROW, min_size=1, max_size=5))
def test_fill_views(rows):
    events = _events(EventKind.FILL, rows)
    taker = REPLY_DECODER.decode(_rows(events))
    assert taker == [Fill(r["seq"], r["ts"], r["client_order_id"], r["order_id"], r["instrument"], r["side"],
                          r["price"], r["qty"], r["leaves"], r["fee"], Liquidity.TAKER) for r in rows]
    maker = REPLY_DECODER.decode(_rows(events, maker=True))
    assert maker == [Fill(r["seq"], r["ts"], r["maker_client_order_id"], r["maker_order_id"], r["instrument"],
                          3 - r["side"], r["price"], r["qty"], r["maker_leaves"], r["maker_fee"], Liquidity.MAKER)
                     for r in rows]


@given(code=st.integers(1, 255))
def test_core_reject_rows_carry_code_and_text(code):
    events = _events(EventKind.REJECTED, [{"seq": 9, "reason": code, "client_order_id": 4, "order_id": 2}])
    (reply,) = REPLY_DECODER.decode(_rows(events, 7))
    assert (reply.seq, reply.code, reply.client_order_id, reply.order_id, reply.request_id) == (9, code, 4, 2, 7)
    assert reply.text == reject_text(code)


def test_unknown_event_kinds_travel_as_engine_events():
    events = _events(42, [{"seq": 5, "account": 3, "qty": 7, "asset": 2}])
    (reply,) = REPLY_DECODER.decode(_rows(events))
    assert isinstance(reply, EngineEvent) and (reply.kind, reply.account, reply.qty, reply.asset) == (42, 3, 7, 2)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(REQUEST_TYPES).flatmap(st.builds), min_size=1, max_size=5))
def test_requests_round_trip(requests):
    valid = []
    for request in requests:
        try:
            REQUEST_DECODER.decode(REQUEST_ENCODER.encode([request]))
            valid.append(request)
        except (msgspec.ValidationError, OverflowError):  # st.builds ignores the range constraints
            pass
    if valid:
        decoded = REQUEST_DECODER.decode(REQUEST_ENCODER.encode(valid))
        # Compared as types and bytes: a float field (PublishGreeks) may hold NaN, equal to nothing.
        assert [type(r) for r in decoded] == [type(r) for r in valid]
        assert REQUEST_ENCODER.encode(decoded) == REQUEST_ENCODER.encode(valid)


def test_request_tags_are_unique_and_array_like():
    tags = [t.__struct_config__.tag for t in REQUEST_TYPES]
    assert len(set(tags)) == len(tags)
    assert REQUEST_ENCODER.encode([NewOrder(1, 0, 1, 10, 100)])[:3] == b"\x91\x9a\x01"  # [[tag 1, 9 fields]]


def test_market_data_round_trip():
    for message in (Trades(1, [Trade(5, 100, 10, 1)]), BookDelta(2, [Level(100, 0, 0)], [Level(200, 5, 1)])):
        assert MD_DECODER.decode(MD_ENCODER.encode(message)) == message


# Bytes of the query replies built from core query results, pinned from the
# build before the gateway became a package (OpenOrders, Margin, MarginCalls);
# a position has since gained its cost basis at the end (MARGIN_BYTES), and the
# old bytes without it still decode, with cost 0 (OLD_MARGIN_BYTES).
OPEN_ORDERS_BYTES = bytes.fromhex("919423070392980b0c01026405000198ffcf40000000000000000001fd070200")
MARGIN_BYTES = bytes.fromhex("9198270804cf000000e8d4a51000cf000000d18c2e2800cf0000000ba43b7400cf00000006fc23ac00"
                             "929504d09ccc96000095051e000200")
OLD_MARGIN_BYTES = bytes.fromhex("9198270804cf000000e8d4a51000cf000000d18c2e2800cf0000000ba43b7400cf00000006fc23ac00"
                                 "929404d09ccc960094051e0002")
MARGIN_CALLS_BYTES = bytes.fromhex("91932809929301ce3b9aca00ce7735940093040007")


def test_query_replies_keep_their_bytes():
    """Replies built from the core's query results (from_core) are the bytes the
    field-by-field copies made."""
    orders = [OrderInfo(11, 12, 3, 1, 2, 100, 5, 0, 1), OrderInfo(-1, 2**62, 3, 0, 1, -3, 7, 2, 0)]
    assert REPLY_ENCODER.encode([OpenOrders(7, 3, [from_core(OpenOrder, o) for o in orders])]) == OPEN_ORDERS_BYTES
    margin = MarginState(10**12, 9 * 10**11, 5 * 10**10, 3 * 10**10)
    positions = [PositionInfo(4, -100, 150, 0), PositionInfo(5, 30, 0, 2)]
    reply = from_core(Margin, margin, request_id=8, account=4, positions=positions)
    assert reply == Margin(8, 4, 10**12, 9 * 10**11, 5 * 10**10, 3 * 10**10, positions)
    assert REPLY_ENCODER.encode([reply]) == MARGIN_BYTES
    assert REPLY_DECODER.decode(MARGIN_BYTES) == [reply]
    assert REPLY_DECODER.decode(OLD_MARGIN_BYTES) == [reply]
    calls = [(1, MarginState(10**9, 0, 0, 2 * 10**9)), (4, MarginState(0, 5, 6, 7))]
    assert REPLY_ENCODER.encode([MarginCalls(9, [from_core(MarginCall, m, account=a) for a, m in calls])]) \
        == MARGIN_CALLS_BYTES
