"""Market data: what the gateway publishes per instrument after each batch, and the
local book a subscriber rebuilds from it.

Per instrument and batch, in this order, each message taking the next
per-instrument sequence number: ``Trades`` (the batch's fills), ``BookDelta``
(changed levels of the top ``depth`` levels; qty 0 removes a level),
``TopOfBook`` (when the best bid or ask changed), ``InstrumentStatus`` (after a
state or reference change). A ``BookSnapshot`` (query) carries the seq it is
consistent with: the book after applying every message up to that seq
(zguide "Clone" pattern).

Sequence numbers of a gateway run start at its start time in microseconds, so
they never repeat across restarts: a restart looks like a gap to subscribers,
which then take a fresh snapshot.
"""

from __future__ import annotations

import time
from collections import deque

from engine.core.types import EventKind, Side
from engine.core.wire import scan_market_data
from engine.schemas import (
    MD_ENCODER,
    BookDelta,
    BookSnapshot,
    InstrumentStatus,
    Level,
    MarketData,
    TopOfBook,
    Trades,
    md_seq_bytes,
    md_topic,
)

_BOOK_KINDS = frozenset(int(k) for k in (EventKind.ACCEPTED, EventKind.FILL, EventKind.CANCELLED,
                                          EventKind.AMENDED, EventKind.STATE_CHANGED, EventKind.REFERENCE_SET))
_STATUS_KINDS = frozenset(int(k) for k in (EventKind.STATE_CHANGED, EventKind.REFERENCE_SET))
_TRADES_TAG = Trades.__struct_config__.tag

Depth = tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]


def _delta(old: list[tuple[int, int, int]], new: list[tuple[int, int, int]]) -> list[Level]:
    """Levels that differ between two depth lists (removed ones with qty 0)."""
    before = {p: (q, c) for p, q, c in old}
    out = [Level(p, q, c) for p, q, c in new if before.pop(p, None) != (q, c)]
    out.extend(Level(p, 0, 0) for p in before)
    return out


def _top(depth: Depth) -> tuple[int, int, int, int]:
    bids, asks = depth
    bid = bids[0][:2] if bids else (0, 0)
    ask = asks[0][:2] if asks else (0, 0)
    return bid + ask


class MarketDataPublisher:
    """Computes the market data of each batch (gateway side): ``on_batch``
    returns the messages as frame lists, assigning their sequence numbers."""

    def __init__(self, engine, depth: int) -> None:
        self.engine = engine
        self.depth = depth
        self.out: list[list[bytes]] = []
        n = len(engine.instruments)
        self.topics = [md_topic(spec.symbol) for spec in engine.instruments]
        start = time.time_ns() // 1000
        self.seq = [start] * n
        self.books: list[Depth] = [engine.depth(i, depth) for i in range(n)]
        self.tops = [_top(book) for book in self.books]

    def _publish(self, instrument: int, message: MarketData | bytes) -> None:
        self.seq[instrument] += 1
        payload = message if isinstance(message, bytes) else MD_ENCODER.encode(message)
        self.out.append([self.topics[instrument], md_seq_bytes(self.seq[instrument]), payload])

    def on_batch(self, events, ts: int) -> list[list[bytes]]:
        """The messages ([topic, seq, payload]) for what a batch changed, given its
        EVENT_DTYPE events (the Trades payloads are encoded in C, as msgspec would)."""
        self.out = []
        self._add_listed()
        touched, status, trades = scan_market_data(events, len(self.topics), ts, _BOOK_KINDS, _STATUS_KINDS,
                                                   int(EventKind.FILL), _TRADES_TAG)
        for i in touched:
            if i in trades:
                self._publish(i, trades[i])
            book = self.engine.depth(i, self.depth)
            old = self.books[i]
            if book != old:
                self.books[i] = book
                self._publish(i, BookDelta(ts, _delta(old[0], book[0]), _delta(old[1], book[1])))
                top = _top(book)
                if top != self.tops[i]:
                    self.tops[i] = top
                    self._publish(i, TopOfBook(ts, *top))
            if i in status:
                self._publish(i, InstrumentStatus(ts, *self.engine.instrument_state(i)))
        return self.out

    def _add_listed(self) -> None:
        """Start the topics of instruments listed since the last batch (LIST_SERIES)."""
        for spec in self.engine.instruments[len(self.topics):]:
            self.topics.append(md_topic(spec.symbol))
            self.seq.append(time.time_ns() // 1000)
            self.books.append(([], []))
            self.tops.append((0, 0, 0, 0))

    def snapshot(self, request_id: int, instrument: int, levels: int, ts: int) -> BookSnapshot:
        """The book of an instrument with the seq it is consistent with (levels 0 =
        the published depth)."""
        bids, asks = self.engine.depth(instrument, levels or self.depth)
        state, reference, last_trade = self.engine.instrument_state(instrument)
        return BookSnapshot(request_id, instrument, self.seq[instrument], ts, state, reference, last_trade,
                            [Level(*lvl) for lvl in bids], [Level(*lvl) for lvl in asks])


class LocalBook:
    """A subscriber's copy of one instrument's published depth, kept from a
    snapshot plus deltas. ``apply`` refuses a message that does not follow the
    last seq (a gap): the caller then takes a new snapshot."""

    def __init__(self, instrument: int) -> None:
        self.instrument = instrument
        self.seq = -1
        self.bids: dict[int, tuple[int, int]] = {}
        self.asks: dict[int, tuple[int, int]] = {}
        self.top = (0, 0, 0, 0)
        self.state = (0, 0, 0)
        self.trades: deque[Trade] = deque(maxlen=1_000)  # the latest trades

    @property
    def synced(self) -> bool:
        """Whether the book holds a snapshot (and every message since)."""
        return self.seq >= 0

    def reset(self, snap: BookSnapshot) -> None:
        """Replace the book by a snapshot."""
        self.seq = snap.md_seq
        self.bids = {lvl.price: (lvl.qty, lvl.count) for lvl in snap.bids}
        self.asks = {lvl.price: (lvl.qty, lvl.count) for lvl in snap.asks}
        self.state = (snap.state, snap.reference, snap.last_trade)
        self.top = _top(self.depth())

    def apply(self, seq: int, message: MarketData) -> bool:
        """Apply one message; False (and nothing applied) if seq is not the next one."""
        if seq != self.seq + 1:
            return False
        self.seq = seq
        match message:
            case BookDelta(bids=bids, asks=asks):
                for side, levels in ((self.bids, bids), (self.asks, asks)):
                    for lvl in levels:
                        if lvl.qty:
                            side[lvl.price] = (lvl.qty, lvl.count)
                        else:
                            side.pop(lvl.price, None)
            case TopOfBook(bid_price=bp, bid_qty=bq, ask_price=ap, ask_qty=aq):
                self.top = (bp, bq, ap, aq)
            case Trades(trades=trades):
                self.trades.extend(trades)
                if trades:
                    self.state = (self.state[0], self.state[1], trades[-1].price)
            case InstrumentStatus(state=state, reference=reference, last_trade=last_trade):
                self.state = (state, reference, last_trade)
        return True

    def depth(self) -> Depth:
        """(bids, asks) as lists of (price, qty, count), best first (like engine.depth)."""
        bids = [(p, q, c) for p, (q, c) in sorted(self.bids.items(), reverse=True)]
        asks = [(p, q, c) for p, (q, c) in sorted(self.asks.items())]
        return bids, asks

    def best(self, side: Side) -> tuple[int, int] | None:
        """(price, qty) of the best level of a side, or None."""
        levels = self.depth()[0 if side == Side.BUY else 1]
        return levels[0][:2] if levels else None
