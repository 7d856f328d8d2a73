"""Output held until the journal commits: no reply, market data or query answer
of a batch leaves before the batch is durable (group commit: the journal's
thread syncs while the loop goes on with the next batch), and the splitting of
a session's reply message that would exceed the reply size bound."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NamedTuple

import msgspec

from engine.core.wire import Outbox
from engine.schemas import RAW_LIST_DECODER

_ARRAY_HEADER_BYTES = 5  # the largest MessagePack array header


class Output(NamedTuple):
    """What one batch sends once the journal has committed it (seq)."""

    seq: int
    replies: Outbox
    market_data: list[list[bytes]]
    answers: Outbox


class Outbound:
    """Batches' output in batch order, each waiting for its seq to be committed."""

    def __init__(self, send: Callable[[Outbox], None], publish: Callable[[list[bytes]], None]) -> None:
        self.send = send
        self.publish = publish
        self.waiting: deque[Output] = deque()

    def hold(self, output: Output) -> None:
        """Keep a batch's output until its seq is committed."""
        self.waiting.append(output)

    def release(self, committed_seq: int) -> None:
        """Send, in batch order, the output of every batch up to ``committed_seq``:
        replies, then market data, then query answers."""
        waiting = self.waiting
        while waiting and waiting[0].seq <= committed_seq:
            out = waiting.popleft()
            self.send(out.replies)
            for frames in out.market_data:
                self.publish(frames)
            self.send(out.answers)


def split_message(message: bytes, max_bytes: int) -> list[bytes]:
    """A reply message (a MessagePack array of replies) as messages of at most
    ``max_bytes``, cut between replies; one reply larger than that goes alone.
    Clients read every message as a list of replies, so the cut is invisible to
    them; only the rare large message is decoded."""
    if len(message) <= max_bytes:
        return [message]
    parts: list[bytes] = []
    chunk: list[msgspec.Raw] = []
    size = _ARRAY_HEADER_BYTES
    for item in RAW_LIST_DECODER.decode(message):
        if chunk and size + len(item) > max_bytes:
            parts.append(msgspec.msgpack.encode(chunk))
            chunk, size = [], _ARRAY_HEADER_BYTES
        chunk.append(item)
        size += len(item)
    parts.append(msgspec.msgpack.encode(chunk))
    return parts
