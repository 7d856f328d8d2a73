"""Reading a request message at the boundary: size and frame checks, the
session's rate limits, the C fast path for the common orders, msgspec for
everything else, and a reasoned reject for each request that does not decode
(the gateway never crashes on input)."""

from __future__ import annotations

import msgspec

from engine.config import GatewaySection
from engine.gateway.batch import Batch
from engine.gateway.sessions import Session
from engine.gateway.throttle import Throttle
from engine.gateway.wire_layouts import REQUEST_LAYOUTS
from engine.schemas import RAW_LIST_DECODER, REQUEST_DECODER, REQUEST_ITEM_DECODER, REQUEST_TAGS, GatewayReject

# msgspec's errors are ValueErrors; input nested too deeply raises RecursionError,
# invalid UTF-8 in an untyped string a UnicodeDecodeError (also a ValueError).
DECODE_ERRORS = (ValueError, RecursionError)
_TAG_DECODER = msgspec.msgpack.Decoder(int)


def request_count(payload) -> int:
    """How many requests a message's MessagePack array header announces (1 when
    it is not an array header: such a message is rejected as one bad request)."""
    if not len(payload):
        return 1
    head = payload[0]
    if 0x90 <= head <= 0x9F:
        return head & 0x0F
    if head == 0xDC and len(payload) >= 3:
        return int.from_bytes(payload[1:3], "big")
    if head == 0xDD and len(payload) >= 5:
        return int.from_bytes(payload[1:5], "big")
    return 1


class MessageReader:
    """Turns one message ([identity, payload] frames) of a session into commands
    in the batch (fast path) or decoded requests (general path)."""

    def __init__(self, limits: GatewaySection, throttle: Throttle) -> None:
        self.limits = limits
        self.throttle = throttle

    def read(self, batch: Batch, session: Session, frames: list, now: float) -> list:
        """The requests left for dispatch: none when the message was refused or
        the C reader already put its commands in the batch. ``now`` is
        monotonic time, for the session's rate limits."""
        if len(frames) != 2:
            self.throttle.warn("malformed messages", "session %d: message with %d frames rejected",
                               session.id, len(frames) - 1)
            batch.reject(session, GatewayReject.MALFORMED, f"expected one frame per message, got {len(frames) - 1}")
            return []
        payload = frames[1].buffer
        limits = self.limits
        if len(payload) > limits.max_message_bytes:
            self.throttle.warn("malformed messages", "session %d: %d-byte message rejected", session.id, len(payload))
            batch.reject(session, GatewayReject.MESSAGE_TOO_LARGE,
                         f"message of {len(payload)} bytes exceeds {limits.max_message_bytes}")
            return []
        if not session.principal.operator:
            why = session.limits.admit(min(request_count(payload), limits.max_requests_per_message + 1), now)
            if why:
                self.throttle.warn("rate limited", "session %d (%s): message refused: %s",
                                   session.id, session.user_id, why)
                batch.reject(session, GatewayReject.RATE_LIMITED, why)
                return []
        if batch.commands.pack_requests(payload, session.id, session.account, session.principal.operator,
                                        limits.max_requests_per_message, REQUEST_LAYOUTS) > 0:
            return []  # the common case, read in C; anything else takes the general path below
        if not session.principal.operator and not session.limits.query_items.has_credit(now):
            # queries (and the rarer requests) wait until the debt is paid; refused before decoding,
            # a flood of them costs one reject a message
            batch.reject(session, GatewayReject.RATE_LIMITED, session.limits.query_refusal() +
                         "; only orders, cancels and amends are read until the budget refills")
            return []
        try:
            requests = REQUEST_DECODER.decode(payload)
        except DECODE_ERRORS:
            return self._decode_items(batch, session, payload)
        return requests if self._count_ok(batch, session, len(requests)) else []

    def _count_ok(self, batch: Batch, session: Session, count: int) -> bool:
        if count == 0:
            batch.reject(session, GatewayReject.MALFORMED, "empty request list")
            return False
        if count > self.limits.max_requests_per_message:
            batch.reject(session, GatewayReject.TOO_MANY_REQUESTS,
                         f"{count} requests in one message, at most {self.limits.max_requests_per_message}")
            return False
        return True

    def _decode_items(self, batch: Batch, session: Session, payload) -> list:
        """Slow path after the whole message failed to decode: reject each bad
        request with its reason and return the good ones."""
        try:
            items = RAW_LIST_DECODER.decode(payload)
        except DECODE_ERRORS as err:
            self.throttle.warn("malformed messages", "session %d: undecodable message: %s", session.id, err)
            batch.reject(session, GatewayReject.MALFORMED, f"not a MessagePack array of requests: {err}")
            return []
        if not self._count_ok(batch, session, len(items)):
            return []
        good = []
        for index, item in enumerate(items):
            try:
                good.append(REQUEST_ITEM_DECODER.decode(item))
            except DECODE_ERRORS as err:
                code = GatewayReject.MALFORMED
                try:
                    fields = RAW_LIST_DECODER.decode(item)
                    if fields and _TAG_DECODER.decode(fields[0]) not in REQUEST_TAGS:
                        code = GatewayReject.UNKNOWN_REQUEST
                except DECODE_ERRORS:
                    pass
                self.throttle.warn("malformed messages", "session %d: request #%d rejected: %s",
                                   session.id, index, err)
                batch.reject(session, code, f"request #{index}: {err}")
        return good
