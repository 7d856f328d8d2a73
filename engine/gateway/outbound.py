"""Output held until the journal commits: no reply, market data or query answer
of a batch leaves before the batch is durable (group commit: the journal's
thread syncs while the loop goes on with the next batch)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from engine.core.wire import Outbox


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
