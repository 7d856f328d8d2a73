"""The view's HTTP server (stdlib asyncio): the page and its static files, the
current document as JSON (``/api/state``) and its live updates as server-sent
events (``/events``). GET and HEAD only; it binds to loopback unless told
otherwise; a malformed request gets a 4xx answer and closes, never a crash.

Query parameters of ``/api/state`` and ``/events``: ``depth`` (levels per side,
1..20) and ``trades`` (recent trades per instrument, 0..50).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from web.model import MAX_DEPTH, MAX_TRADES, trim

STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/static/style.css": ("style.css", "text/css; charset=utf-8")}
LIMITS = {"depth": (1, MAX_DEPTH, MAX_DEPTH), "trades": (0, MAX_TRADES, 20)}
"""Query parameter -> (lowest, highest, default)."""
MAX_HEAD = 8_192
"""Bytes of request line and headers a request may use."""
HEAD_TIMEOUT = 10.0
"""Seconds a client has to send its request line and headers."""
SSE_MIN_INTERVAL = 0.2
"""Seconds between two events to one client (updates in between are merged)."""
KEEPALIVE = 15.0
"""Seconds of quiet after which an event stream gets a comment line (proxies drop idle streams)."""


class BadRequest(ValueError):
    """A request the server answers with 400 and this message."""


def check_bind(host: str, allow_remote: bool) -> None:
    """Refuse (ValueError) a host that is not loopback unless remote binds are allowed:
    the page shows a venue's whole book to anyone who reaches it."""
    if allow_remote:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except socket.gaierror as err:
        raise ValueError(f"cannot resolve host {host!r}: {err}") from err
    remote = sorted(a for a in addresses if not ipaddress.ip_address(a.split("%")[0]).is_loopback)
    if remote:
        raise ValueError(f"host {host!r} is not loopback ({', '.join(remote)}): pass --allow-remote to serve it")


def parse_query(query: str) -> dict[str, int]:
    """``depth`` and ``trades`` from a query string, defaults filled in; BadRequest
    for anything else, a repeated or non-integer value, or one out of range."""
    try:
        fields = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=len(LIMITS))
    except ValueError as err:
        raise BadRequest(f"malformed query string: {err}") from err
    out = {}
    for name, (low, high, default) in LIMITS.items():
        values = fields.pop(name, [str(default)])
        if len(values) != 1 or not values[0].isascii() or not values[0].isdigit():
            raise BadRequest(f"{name} must be one integer from {low} to {high}")
        value = int(values[0])
        if not low <= value <= high:
            raise BadRequest(f"{name} must be from {low} to {high}, not {value}")
        out[name] = value
    if fields:
        raise BadRequest(f"unknown query parameter(s): {', '.join(sorted(fields))} (known: {', '.join(LIMITS)})")
    return out


class Hub:
    """The latest document and a way to wait for the next one (on the server's loop)."""

    def __init__(self) -> None:
        self.document: dict = {"gateway": {"reachable": False, "error": "starting"}, "instruments": [],
                                "chains": [], "pools": {"message": "no pools configured", "pools": []},
                                "settlement": {"message": "starting", "batches": [], "checkpoint": None}}
        self.version = 0
        self._changed = asyncio.Event()

    def publish(self, document: dict) -> None:
        """Replace the document and wake the event streams (call on the loop)."""
        self.document = document
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_newer(self, version: int, timeout: float) -> bool:
        """Wait until the document is newer than ``version``; False on timeout."""
        if self.version > version:
            return True
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), timeout)
        except TimeoutError:
            return False
        return True


def _response(status: str, content_type: str, body: bytes, head_only: bool = False) -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n")
    return head.encode() + (b"" if head_only else body)


def _error(status: str, message: str) -> bytes:
    return _response(status, "text/plain; charset=utf-8", (message + "\n").encode())


class ViewServer:
    """Serves the page and the hub's documents."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.files = {path: (resources.files("web").joinpath("static", name).read_bytes(), kind)
                      for path, (name, kind) in STATIC.items()}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one request (one per connection: Connection: close)."""
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            except asyncio.LimitOverrunError:
                writer.write(_error("431 Request Header Fields Too Large", f"request head over {MAX_HEAD} bytes"))
                return
            except (asyncio.IncompleteReadError, TimeoutError):
                return
            try:
                method, path, query = self._request_line(head)
                if method not in ("GET", "HEAD"):
                    writer.write(_error("405 Method Not Allowed", "this view is read-only: GET or HEAD"))
                elif path == "/events":
                    await self._events(writer, parse_query(query))
                elif path == "/api/state":
                    body = json.dumps(trim(self.hub.document, **parse_query(query))).encode()
                    writer.write(_response("200 OK", "application/json", body, method == "HEAD"))
                elif path in self.files:
                    body, kind = self.files[path]
                    writer.write(_response("200 OK", kind, body, method == "HEAD"))
                else:
                    writer.write(_error("404 Not Found", f"no such page: {path}"))
            except BadRequest as err:
                writer.write(_error("400 Bad Request", str(err)))
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _request_line(head: bytes) -> tuple[str, str, str]:
        try:
            line = head.split(b"\r\n", 1)[0].decode("ascii")
            method, target, version = line.split(" ")
        except (UnicodeDecodeError, ValueError) as err:
            raise BadRequest("malformed request line") from err
        if not version.startswith("HTTP/1.") or not target.startswith("/"):
            raise BadRequest("malformed request line")
        parts = urlsplit(target)
        return method, parts.path, parts.query

    async def _events(self, writer: asyncio.StreamWriter, params: dict[str, int]) -> None:
        """The event stream: the current document at once, then each newer one."""
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                     b"Connection: close\r\n\r\n")
        version = -1
        while not writer.is_closing():
            if await self.hub.wait_newer(version, KEEPALIVE):
                version = self.hub.version
                data = json.dumps(trim(self.hub.document, **params))
                writer.write(f"event: state\ndata: {data}\n\n".encode())
            else:
                writer.write(b": keepalive\n\n")
            await writer.drain()
            await asyncio.sleep(SSE_MIN_INTERVAL)


async def serve(hub: Hub, host: str, port: int) -> asyncio.Server:
    """Start serving on (host, port) (port 0: any free one)."""
    view = ViewServer(hub)
    return await asyncio.start_server(view.handle, host, port, limit=MAX_HEAD)
