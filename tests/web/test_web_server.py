"""The web view's HTTP server: query strings, malformed requests, binds, the event
stream (web/server.py), served in-process on a loopback port."""

from __future__ import annotations

import asyncio
import json

import pytest

from web.server import BadRequest, Hub, check_bind, parse_query, serve


def test_parse_query_defaults_and_values():
    assert parse_query("") == {"depth": 20, "trades": 20}
    assert parse_query("depth=3&trades=0") == {"depth": 3, "trades": 0}


@pytest.mark.parametrize("query", [
    "depth", "depth=", "depth=x", "depth=0", "depth=21", "trades=51", "depth=-1", "depth=1&depth=2",
    "colour=red", "depth=1&trades=1&x=1", "&&&", "=", "depth=%ff", "depth=\u0663", "depth=1e3", "depth=9" * 400])
def test_parse_query_refuses_malformed_strings(query):
    with pytest.raises(BadRequest):
        parse_query(query)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_binds_are_allowed(host):
    check_bind(host, allow_remote=False)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])
def test_other_binds_need_allow_remote(host):
    with pytest.raises(ValueError, match="not loopback"):
        check_bind(host, allow_remote=False)
    check_bind(host, allow_remote=True)


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return data


def _run_server(test):
    """Run ``test(hub, port)`` against a server on a free loopback port."""
    async def main():
        hub = Hub()
        server = await serve(hub, "127.0.0.1", 0)
        try:
            await test(hub, server.sockets[0].getsockname()[1])
        finally:
            server.close()
            await server.wait_closed()
    asyncio.run(main())


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /api/state?depth=abc HTTP/1.1\r\n\r\n", b"400"),
    (b"GET /events?depth=1&depth=2 HTTP/1.1\r\n\r\n", b"400"),
    (b"GET /api/state?bogus HTTP/1.1\r\n\r\n", b"400"),
    (b"\xff\xfe garbage\r\n\r\n", b"400"),
    (b"GET\r\n\r\n", b"400"),
    (b"GET http://elsewhere/ HTTP/1.1\r\n\r\n", b"400"),
    (b"POST /api/state HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"405"),
    (b"GET /nothing HTTP/1.1\r\n\r\n", b"404"),
    (b"GET / HTTP/1.1\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\n", b"431"),
])
def test_bad_requests_get_an_error_and_the_server_keeps_serving(request_bytes, status):
    async def test(hub, port):
        answer = await _exchange(port, request_bytes)
        assert answer.split(b" ", 2)[1] == status, answer[:200]
        assert (await _exchange(port, b"GET / HTTP/1.1\r\n\r\n")).startswith(b"HTTP/1.1 200 OK")
    _run_server(test)


def test_state_is_trimmed_as_asked_and_static_files_are_served():
    async def test(hub, port):
        levels = [{"price": str(p)} for p in range(30)]
        hub.publish({"gateway": {"reachable": True}, "instruments": [{"bids": levels, "asks": levels,
                                                                      "trades": levels}]})
        answer = await _exchange(port, b"GET /api/state?depth=2&trades=1 HTTP/1.1\r\n\r\n")
        head, body = answer.split(b"\r\n\r\n", 1)
        assert b"application/json" in head
        instrument = json.loads(body)["instruments"][0]
        assert len(instrument["bids"]) == 2 and len(instrument["trades"]) == 1
        for path, kind in ((b"/", b"text/html"), (b"/static/app.js", b"text/javascript"),
                           (b"/static/style.css", b"text/css")):
            assert kind in (await _exchange(port, b"GET " + path + b" HTTP/1.1\r\n\r\n")).split(b"\r\n\r\n")[0]
        head_only = await _exchange(port, b"HEAD / HTTP/1.1\r\n\r\n")
        assert head_only.endswith(b"\r\n\r\n") and b"Content-Length: 0" not in head_only
    _run_server(test)


def test_event_stream_sends_the_document_then_each_newer_one():
    async def test(hub, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /events?trades=0 HTTP/1.1\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"text/event-stream" in head

        async def next_event() -> dict:
            block = await asyncio.wait_for(reader.readuntil(b"\n\n"), 5)
            event, data = block.decode().strip("\n").split("\n")
            assert event == "event: state"
            return json.loads(data.removeprefix("data: "))

        assert (await next_event())["gateway"]["reachable"] is False  # the starting document
        hub.publish({"gateway": {"reachable": True}, "instruments": [{"bids": [], "asks": [], "trades": [1]}]})
        document = await next_event()
        assert document["gateway"]["reachable"] is True and document["instruments"][0]["trades"] == []
        writer.close()
    _run_server(test)
