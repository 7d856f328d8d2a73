"""Fairness at the gateway (issue 11, part 4): a hostile client beside an honest
market maker, against a real gateway process. The hostile client floods
messages and queries, asks for huge answers, stops reading its replies; the
gateway's loop stalls; the market maker reconnects. The market maker is served
throughout and never loses orders it did not ask to lose.

Each venue here runs with small bounds (FAIR) so the tests reach them quickly."""

from __future__ import annotations

import os
import signal
import time

import msgspec
import pytest
import zmq
from gateway_harness import ACCOUNTS, AMZN, PX, TICK, UNLIMITED_RATES, client_keys, write_venue

from engine.core.types import Side
from engine.gateway.outbound import split_message
from engine.gateway.process import GatewayProcess
from engine.schemas import (
    REPLY_DECODER,
    REQUEST_ENCODER,
    Ack,
    BookSnapshot,
    Cancelled,
    GatewayReject,
    GetBook,
    Heartbeat,
    Logon,
    NewOrder,
    Pong,
    Reject,
)

FAIR = {"max_messages_per_s": 200, "max_requests_per_s": 1_000, "max_query_items_per_s": 2_000,
        "max_book_levels": 50, "max_reply_bytes": 16_384, "reply_hwm": 4, "max_session_buffer_bytes": 262_144}


@pytest.fixture
def venue(tmp_path, keys):
    """venue(**gateway_settings) -> a gateway process with FAIR bounds (and these)."""
    started = []

    def start(**settings) -> GatewayProcess:
        directory = tmp_path / f"venue{len(started)}"
        path = write_venue(directory, keys, gateway={**FAIR, **settings})
        started.append(GatewayProcess(path, directory / "gateway.log"))
        return started[-1]

    yield start
    for gw in started:
        if gw.process.poll() is None:
            os.kill(gw.pid, signal.SIGCONT)  # in case a test stopped it and failed
        gw.stop()


def _quote(client, levels: int, first: int = 1) -> set[int]:
    """Place ``levels`` bids and as many asks at distinct prices (``first`` ticks
    out and beyond), 100 orders a message; the order ids."""
    orders = [NewOrder(client.next_id(), AMZN, side, 10, PX + sign * (first + k) * TICK)
              for k in range(levels) for side, sign in ((Side.BUY, -1), (Side.SELL, 1))]
    for start in range(0, len(orders), 100):
        client.send(orders[start:start + 100])
    acks = []
    while len(acks) < len(orders):
        acks += [r for r in client.recv() if isinstance(r, Ack | Reject)]
    assert all(isinstance(a, Ack) for a in acks), acks[:3]
    return {a.order_id for a in acks}


def _resting(ops, name: str) -> set[int]:
    return {o.order_id for o in ops.open_orders(account=ACCOUNTS[name]).orders}


def _replies(client, count: int, timeout: float = 20.0) -> list:
    replies = []
    deadline = time.monotonic() + timeout
    while len(replies) < count and time.monotonic() < deadline:
        replies += client.recv(max(0.0, deadline - time.monotonic()))
    return replies


def _until_quiet(client, quiet: float = 1.0) -> list:
    replies = []
    try:
        while True:
            replies += client.recv(quiet)
    except TimeoutError:
        return replies


def test_flooding_client_is_rate_limited_while_the_market_maker_quotes(venue, clients):
    gw = venue()
    mm, hostile = clients(gw, "mm"), clients(gw, "retail")
    one = REQUEST_ENCODER.encode([Heartbeat(0)])
    for _ in range(2_000):
        hostile.socket.send(one)
    assert isinstance(mm.place(AMZN, Side.BUY, 10, PX - TICK), Ack)  # served beside the flood
    replies = _replies(hostile, 2_000)
    assert len(replies) == 2_000  # one answer per message, no more
    limited = [r for r in replies if isinstance(r, Reject)]
    assert len(limited) > 1_000
    assert {r.code for r in limited} == {GatewayReject.RATE_LIMITED}
    assert "messages a second" in limited[0].text and limited[0].text.startswith("rate limit exceeded")
    assert sum(isinstance(r, Pong) for r in replies) >= FAIR["max_messages_per_s"]  # a second's burst is served
    time.sleep(1.1)
    many = REQUEST_ENCODER.encode([Heartbeat(0)] * 250)
    for _ in range(8):
        hostile.socket.send(many)  # few messages, too many requests
    replies = _until_quiet(hostile)
    limited = [r for r in replies if isinstance(r, Reject)]
    assert limited and all("requests a second" in r.text for r in limited)
    assert len(replies) == 250 * (8 - len(limited)) + len(limited)  # a refused message: one reject
    assert isinstance(mm.place(AMZN, Side.BUY, 10, PX - 2 * TICK), Ack)


def test_query_cost_is_capped(venue, clients):
    gw = venue()
    mm, hostile = clients(gw, "mm"), clients(gw, "retail")
    placed = _quote(mm, 40)
    big = hostile.snapshot(AMZN, levels=1_000)
    assert isinstance(big, Reject) and big.code == GatewayReject.MALFORMED
    assert "max_book_levels" in big.text
    hostile.send([GetBook(hostile.next_id(), AMZN, 50) for _ in range(100)])  # answered in one batch
    replies = _replies(hostile, 100)
    books = [r for r in replies if isinstance(r, BookSnapshot)]
    limited = [r for r in replies if isinstance(r, Reject)]
    assert len(books) + len(limited) == 100
    assert 0 < len(books) < 60  # 81 items a book, 2,000 items a second
    assert {r.code for r in limited} == {GatewayReject.RATE_LIMITED}
    assert "query items a second" in limited[0].text
    assert {o.order_id for o in mm.open_orders().orders} == placed  # the market maker's own budget


def test_replies_are_split_and_oversized_answers_refused(venue, clients):
    gw = venue(max_query_items_per_s=10**6)
    mm, hostile = clients(gw, "mm"), clients(gw, "retail")
    _quote(mm, 450)
    refused = mm.open_orders()  # 900 orders, about 22 KB: over max_reply_bytes
    assert isinstance(refused, Reject) and refused.code == GatewayReject.QUERY_TOO_LARGE
    assert "exceeds 16384" in refused.text
    hostile.send([GetBook(hostile.next_id(), AMZN, 50) for _ in range(60)])  # answers of about 66 KB in one batch
    sizes, books = [], 0
    while books < 60:
        assert hostile.socket.poll(10_000)
        message = hostile.socket.recv()
        sizes.append(len(message))
        books += sum(isinstance(r, BookSnapshot) for r in REPLY_DECODER.decode(message))
    assert len(sizes) > 1 and max(sizes) <= FAIR["max_reply_bytes"]
    assert isinstance(mm.place(AMZN, Side.BUY, 10, PX - 500 * TICK), Ack)


def _raw_dealer(gw, keys, name: str) -> zmq.Socket:
    """A DEALER that reads little: a receive queue of one message and a small kernel buffer."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.rcvhwm = 1
    sock.rcvbuf = 4_096
    client_keys(keys, name).apply(sock)
    sock.connect(gw.orders)
    return sock


def test_slow_reader_is_cut_off_and_the_market_maker_is_served(venue, clients, keys):
    gw = venue(**UNLIMITED_RATES)
    mm, ops = clients(gw, "mm"), clients(gw, "ops")
    _quote(mm, 50)
    hostile = _raw_dealer(gw, keys, "retail")
    try:
        hostile.send(REQUEST_ENCODER.encode([Logon(1, True), NewOrder(2, AMZN, Side.SELL, 10, PX + 200 * TICK)]))
        assert hostile.poll(10_000)
        ack = REPLY_DECODER.decode(hostile.recv())[-1]
        assert isinstance(ack, Ack)
        flood = REQUEST_ENCODER.encode([GetBook(3, AMZN, 50)] * 200)  # about 220 KB of answers a message
        deadline = time.monotonic() + 30
        while ack.order_id in _resting(ops, "retail") and time.monotonic() < deadline:
            for _ in range(20):  # it keeps sending, never reading: only a cut-off ends its session
                hostile.send(flood)
            assert isinstance(mm.place(AMZN, Side.BUY, 10, PX - 100 * TICK), Ack)
        assert ack.order_id not in _resting(ops, "retail")
        assert "does not read its replies" in gw.log_file.read_text()
    finally:
        hostile.close()


def test_a_stall_of_the_gateway_does_not_expire_heartbeating_sessions(venue, clients):
    gw = venue()
    mm, hostile, ops = clients(gw, "mm"), clients(gw, "retail"), clients(gw, "ops")
    assert mm.logon(cancel_on_disconnect=True).cancel_on_disconnect
    placed = _quote(mm, 20)
    os.kill(gw.pid, signal.SIGSTOP)  # the gateway's loop stalls (a pause, a slow disk, a long batch)
    try:
        end = time.monotonic() + 1.5
        while time.monotonic() < end:  # the market maker heartbeats throughout; the hostile one piles up work
            mm.send([Heartbeat(mm.next_id())])
            hostile.send([GetBook(hostile.next_id(), AMZN, 50)] * 20)
            time.sleep(0.1)
    finally:
        os.kill(gw.pid, signal.SIGCONT)
    events = []
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        mm.send([Heartbeat(mm.next_id())])
        events += mm.poll_events(0.1)
    assert not [e for e in events if isinstance(e, Cancelled)]
    assert placed <= _resting(ops, "mm")


def test_reconnect_does_not_cancel_what_the_new_connection_placed(venue, clients):
    gw = venue()
    old, ops = clients(gw, "mm"), clients(gw, "ops")
    assert old.logon(cancel_on_disconnect=True).cancel_on_disconnect
    old_orders = _quote(old, 5)
    time.sleep(0.3)  # the old connection's network is gone: it says nothing more
    new = clients(gw, "mm")
    assert new.logon(cancel_on_disconnect=True).cancel_on_disconnect
    new_orders = _quote(new, 5, first=10)
    end = time.monotonic() + 1.5  # well past the old session's timeout (600 ms)
    while time.monotonic() < end:
        assert isinstance(new.heartbeat(), Pong)
        time.sleep(0.1)
    resting = _resting(ops, "mm")
    assert new_orders <= resting
    assert resting.isdisjoint(old_orders)  # the old connection's cancel-on-disconnect did run


def test_split_message_cuts_between_replies_only():
    items = [[1, "x" * size] for size in (10, 500, 3_000, 20, 9_000, 1)]
    message = msgspec.msgpack.encode(items)
    parts = split_message(message, 4_000)
    assert [msgspec.msgpack.decode(p) for p in parts] == [items[:4], items[4:5], items[5:]]
    assert all(len(p) <= 4_000 for p in parts if len(msgspec.msgpack.decode(p)) > 1)  # one big reply goes alone
    assert split_message(message, len(message)) == [message]
