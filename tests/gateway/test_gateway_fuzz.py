"""Malformed input: well over 100,000 fuzzed messages (random bytes, truncated
frames, wrong types, unknown tags, too many requests, huge messages, extra
frames, deep nesting). Each bad request gets exactly one Reject with a code and
a reason (or, beyond the transport's size limit, the connection is dropped), and
the gateway keeps serving."""

from __future__ import annotations

import random
import re

import msgspec
import pytest
from gateway_harness import AMZN, PX, TICK, UNLIMITED_RATES, connect, write_venue

from engine.core.types import Side
from engine.gateway.process import GatewayProcess
from engine.schemas import (
    RAW_LIST_DECODER,
    REQUEST_DECODER,
    REQUEST_ITEM_DECODER,
    Ack,
    GatewayReject,
    NewOrder,
    Reject,
    reject_text,
)

MESSAGES = 110_000
MAX_REQUESTS = 256       # gateway.max_requests_per_message of the test venue
MAX_BYTES = 65_536       # gateway.max_message_bytes of the test venue
enc = msgspec.msgpack.encode


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, keys):
    """The test venue with rates out of reach: this module checks reading, not
    fairness (tests/gateway/test_gateway_fairness.py), and floods on purpose."""
    directory = tmp_path_factory.mktemp("venue")
    with GatewayProcess(write_venue(directory, keys, gateway=UNLIMITED_RATES), directory / "gateway.log") as gw:
        yield gw


def _valid_order(rng: random.Random) -> list:
    return [1, rng.randint(1, 10**9), AMZN, 1, 10, PX - 100 * TICK]


def _wrong_types(rng: random.Random) -> list:
    item = _valid_order(rng)
    item[rng.randrange(1, len(item))] = rng.choice(["x", 1.5, None, [1], {"a": 1}, True, 2**63, b"\x00"])
    return item


DECODE_ERRORS = (msgspec.MsgspecError, RecursionError)


def _nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\x90"


def fuzz_message(rng: random.Random) -> list[bytes]:
    """One malformed message (a list of frames)."""
    pick = rng.random()
    if pick < 0.25:
        return [rng.randbytes(rng.randint(0, 120))]
    if pick < 0.45:  # a valid batch cut short
        data = enc([_valid_order(rng) for _ in range(rng.randint(1, 4))])
        return [data[:rng.randrange(0, len(data))]]
    if pick < 0.65:
        return [enc([_wrong_types(rng) for _ in range(rng.randint(1, 3))])]
    if pick < 0.80:
        tag = rng.choice([0, 5, 9, 16, 26, 99, 255, -1, 2**40])
        return [enc([[tag] + [rng.randint(0, 9) for _ in range(rng.randint(0, 8))]])]
    if pick < 0.85:
        return [enc([[tag] for tag in rng.choices([1, 2, 3], k=1)] * rng.randint(MAX_REQUESTS + 1, 400))]
    if pick < 0.88:
        return [rng.choice((b"", b"\x91\x91")) + _nested(rng.randint(2, 60_000))]
    if pick < 0.92:
        return [enc("a string"), b"second frame"][: rng.randint(1, 2)] + [rng.randbytes(8)]
    if pick < 0.9205:
        return [rng.randbytes(rng.randint(MAX_BYTES + 1, 200_000))]
    return [b""]


def expected_rejects(frames: list[bytes]) -> int | None:
    """Boundary rejects the gateway must answer with (None: has a valid request, skip)."""
    if len(frames) != 1 or len(frames[0]) > MAX_BYTES:
        return 1
    data = frames[0]
    try:
        return None if REQUEST_DECODER.decode(data) else 1
    except DECODE_ERRORS:
        pass
    try:
        items = RAW_LIST_DECODER.decode(data)
    except DECODE_ERRORS:
        return 1
    if not items or len(items) > MAX_REQUESTS:
        return 1
    bad = 0
    for item in items:
        try:
            REQUEST_ITEM_DECODER.decode(item)
            return None
        except DECODE_ERRORS:
            bad += 1
    return bad


def test_fuzzed_messages_are_rejected_and_the_gateway_keeps_serving(gateway, keys):
    rng = random.Random(5)
    fuzzer = connect(gateway.orders, keys, "retail", timeout=10.0)
    sent = expected = received = 0
    codes: dict[int, int] = {}
    try:
        while sent < MESSAGES:
            chunk_expected = 0
            for _ in range(2_000):
                frames = fuzz_message(rng)
                want = expected_rejects(frames)
                if want is None:
                    continue
                fuzzer.send_raw(*frames)
                sent += 1
                chunk_expected += want
            expected += chunk_expected
            while received < expected:
                for reply in fuzzer.recv():
                    assert isinstance(reply, Reject) and reply.seq == 0, reply
                    assert reply.text.startswith(reject_text(reply.code))
                    codes[reply.code] = codes.get(reply.code, 0) + 1
                    received += 1
        assert received == expected
        with pytest.raises(TimeoutError):
            fuzzer.recv(0.3)  # nothing more than one reject per bad request
    finally:
        fuzzer.close()
    assert sent >= 100_000
    assert set(codes) >= {GatewayReject.MALFORMED, GatewayReject.UNKNOWN_REQUEST, GatewayReject.TOO_MANY_REQUESTS,
                          GatewayReject.MESSAGE_TOO_LARGE}
    log = gateway.log_file.read_text()
    assert re.search(r"more malformed messages in the last second", log)
    assert "Traceback" not in log
    trader = connect(gateway.orders, keys, "mm")
    try:
        ack = trader.place(AMZN, Side.BUY, 10, PX - TICK)
        assert isinstance(ack, Ack)
        trader.cancel(ack.order_id)
    finally:
        trader.close()


def test_semantically_bad_orders_get_core_rejects(gateway, keys):
    rng = random.Random(6)
    client = connect(gateway.orders, keys, "retail")
    try:
        orders = [NewOrder(client.next_id(), rng.choice([AMZN, 7, -3]), rng.choice([0, 1, 2, 9]),
                           rng.choice([0, -10, 15, 10]), rng.choice([0, -TICK, PX + 1, 10**12]),
                           rng.choice([1, 2, 3]), rng.choice([0, 1, 5]), rng.choice([0, 4, 200]))
                  for _ in range(2_000)]
        orders = [o for o in orders if not (o.instrument == AMZN and o.side in (1, 2) and o.qty == 10)]
        for start in range(0, len(orders), 200):
            client.send(orders[start:start + 200])
        replies = []
        while len(replies) < len(orders):
            replies += client.recv()
        assert all(isinstance(r, Reject) and r.seq > 0 and r.code < 100 and r.text for r in replies)
        assert sorted(r.client_order_id for r in replies) == sorted(o.client_order_id for o in orders)
    finally:
        client.close()


def test_message_beyond_the_transport_limit_drops_the_connection(gateway, keys):
    big = connect(gateway.orders, keys, "retail", timeout=0.5)
    try:
        big.send_raw(b"\x91" + b"\x00" * (17 * MAX_BYTES))  # over maxmsgsize (16 x max_message_bytes)
        with pytest.raises(TimeoutError):
            big.recv()
    finally:
        big.close()
    ok = connect(gateway.orders, keys, "retail")
    try:
        assert ok.heartbeat().last_seq > 0
    finally:
        ok.close()
