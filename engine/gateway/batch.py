"""One batch: what one drain of the order socket collects before the engine
runs (command records, queries, replies), and the rejects made before sequencing."""

from __future__ import annotations

from engine.core.wire import NO_ACCOUNT, NO_SESSION, CommandBatch, Outbox
from engine.gateway.sessions import Session
from engine.schemas import REPLY_ENCODER, Reject, reject_text


class Batch:
    """Commands for the engine (with sender session, its account, request id),
    queries to answer after it runs, and the encoded output per session."""

    __slots__ = ("commands", "queries", "replies", "answers", "out")

    def __init__(self) -> None:
        self.commands = CommandBatch()
        self.queries: list[tuple[Session, object]] = []
        self.replies = Outbox()  # replies to requests and commands (session id -> encoded items)
        self.answers = Outbox()  # query results, sent after the batch's market data
        self.out = self.replies  # where replies made now go

    def command(self, session: Session | None, request_id: int, kind: int, **fields: int) -> None:
        """Add one command for the engine (values are in range: the schemas checked them)."""
        if session is None:
            self.commands.add(NO_SESSION, NO_ACCOUNT, request_id, kind, **fields)
        else:
            self.commands.add(session.id, session.account, request_id, kind, **fields)

    def reject(self, session: Session, code: int, detail: str = "", client_order_id: int = 0,
               order_id: int = 0, request_id: int = 0) -> None:
        """Refuse a request before it is sequenced (seq 0); the text is the code's
        standard text, then the detail."""
        text = f"{reject_text(code)}: {detail}"[:240] if detail else reject_text(code)
        self.out.add(session.id, REPLY_ENCODER.encode(Reject(0, 0, int(code), text, client_order_id, order_id,
                                                             request_id)))
