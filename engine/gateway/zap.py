"""ZAP authentication (RFC 27): only configured CURVE client keys connect, and
each connection is stamped with its principal's User-Id, so every message is
attributed to an account by the transport, never by the client."""

from __future__ import annotations

import logging

import zmq

from engine.config import Principal
from engine.gateway.throttle import Throttle

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAINS = (b"orders", b"md")

log = logging.getLogger(__name__)


class ZapHandler:
    """The ZAP REP socket, served from the gateway's loop (same thread)."""

    def __init__(self, context: zmq.Context, principals: dict[bytes, Principal], throttle: Throttle) -> None:
        self.principals = principals
        self.throttle = throttle
        self.socket = context.socket(zmq.REP)
        self.socket.linger = 0
        self.socket.bind(ZAP_ENDPOINT)

    def handle(self) -> None:
        """Answer pending ZAP requests: CURVE with a configured key only."""
        while True:
            try:
                msg = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(msg) < 6:
                log.warning("ZAP request with %d frames ignored", len(msg))
                self.socket.send_multipart([b"1.0", msg[1] if len(msg) > 1 else b"", b"400", b"bad request",
                                            b"", b""])
                continue
            version, request_id, domain, address, _identity, mechanism = msg[:6]
            principal = None
            if version == b"1.0" and domain in ZAP_DOMAINS and mechanism == b"CURVE" and len(msg) == 7:
                principal = self.principals.get(zmq.utils.z85.encode(msg[6]))
            if principal is None:
                self.throttle.warn("refused connections", "refused %s connection from %s (mechanism %s): "
                                   "key not configured", domain.decode(errors="replace"),
                                   address.decode(errors="replace"), mechanism.decode(errors="replace"))
                self.socket.send_multipart([b"1.0", request_id, b"400", b"key not allowed", b"", b""])
            else:
                self.socket.send_multipart([b"1.0", request_id, b"200", b"OK", principal.user_id.encode(), b""])

    def close(self) -> None:
        """Close the socket."""
        self.socket.close(linger=0)
