"""Replay a LOBSTER sample day through the matching engine and compare books.

LOBSTER (lobsterdata.com) ships, per trading day, a *message* file (every event
touching the top N price levels) and an *orderbook* file (the top N levels
after each message). The replay starts the engine from orderbook row 0, sends
every later message to the matcher and compares the engine's top N levels with
the file's row after each one.

Rules, per message type:

* 1 (new limit order): a GTC limit order. Every order from the file rests in
  one account and all orders use ``STP_NONE``, so self-trade prevention never
  interferes.
* 2 (partial cancel): the named order's quantity is amended down by the size
  (cancelled if nothing would be left).
* 3 (delete): the named order is cancelled, whatever it holds.
* 4 (execution of a visible order): an IOC order of the opposite side at that
  price for that size, so the matcher's own FIFO decides which orders fill.
* 5 (execution of a hidden order): nothing changes.
* 7 (trading halt): price -1 halts; 0 (quoting resumes) and 1 (trading
  resumes) reopen the instrument.

What the file cannot show:

* A cancel or delete that names an order the engine does not hold (placed
  before 09:30, or out of the file's view) takes its size from the *oldest*
  liquidity at that price. An execution needs nothing special: its IOC takes
  the oldest liquidity anyway.
* Where a side's view widens (the N-th level of the previous row is gone, so
  levels from beyond it come into view), the newly visible prices are set to
  the file's sizes. Missing size is seeded at the *front* of the queue (it
  rested before anything the replay placed there); surplus, from events the
  file did not show while the price was out of view, is taken from the
  *newest* orders; a visible price the file does not list has size 0.

A row whose top N still differs from the file after that is a *mismatch*. It
is counted, and then every visible price is set to the file's size the same
way, so one gap in the data does not spoil the rest of the day. The books
written with ``--out`` are the ones compared (after the view rule, before
that correction), so they differ from the orderbook file exactly in the
mismatching rows.

A second count checks time priority directly: an execution names the order
that filled, so when the engine holds that order but its IOC fills another
one first, the engine's queue disagrees with the exchange's (a *FIFO miss*).

Two loops apply these rules: for a MatchingEngine, engine.core.depth.LobsterRun
runs the decoded messages in C, calling the engine's execute() per command and
writing the top N straight into an int64 row after each message; for any other
engine (the reference matcher, test wrappers), the per-message loop below, the
readable reference, uses the engine's Python API. Tests check on real data that
both give the same rows, counts and final state hash.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path

import msgspec
import numpy as np

from engine.core.depth import STEP_DTYPE, LobsterRun, depth_row
from engine.core.matcher import MatchingEngine
from engine.core.types import EventKind, OrderType, SelfTrade, Side, TimeInForce, TradingState
from engine.instruments import InstrumentSpec

MESSAGE_DTYPE = np.dtype(
    [
        ("time", "<f8"),
        ("type", "<i8"),
        ("order_id", "<i8"),
        ("size", "<i8"),
        ("price", "<i8"),
        ("direction", "<i8"),
    ]
)

# LOBSTER's placeholders for an empty level (size 0).
EMPTY_ASK_PRICE = 9_999_999_999
EMPTY_BID_PRICE = -9_999_999_999

# Every order from the file rests in one account; the replay's IOC orders come
# from another. All use STP_NONE, so self-trade prevention never triggers.
BOOK_ACCOUNT = 1
TAKER_ACCOUNT = 2

# Price units are LOBSTER's ($ x 10000), one-cent ticks, one-share lots, no bands.
LOBSTER_SPEC = InstrumentSpec(
    symbol="LOBSTER",
    base="STOCK",
    quote="USD",
    tick_size=100,
    lot_size=1,
    max_price=10**12,
    static_band_bps=0,
    dynamic_band_bps=0,
    price_scale=10_000,
)

# Type 7 messages carry the halt phase in the price column.
HALT_STATES = {-1: TradingState.HALTED, 0: TradingState.OPEN, 1: TradingState.OPEN}

# Rows converted to Python lists at a time: a whole day at once would cost
# hundreds of MB of int objects.
_CHUNK = 8192

# Each round of an alignment removes the stale levels it sees; a book still
# showing stale levels after this many rounds ignores its commands.
_MAX_ALIGN_ROUNDS = 1000


class ReplayResult(msgspec.Struct, frozen=True):
    """Outcome of one replay.

    `rows` is the number of rows compared (every message after row 0);
    `mismatch_rows` and `fifo_miss_rows` are message indices. `books` holds
    the engine's top N after every message in the orderbook file's layout
    (row 0: the seeded start), if it was asked for.
    """

    rows: int
    mismatch_rows: list[int]
    fifo_miss_rows: list[int]
    seconds: float
    books: np.ndarray | None = None

    @property
    def mismatches(self) -> int:
        """Rows whose top N differed from the file's."""
        return len(self.mismatch_rows)

    @property
    def fifo_misses(self) -> int:
        """Executions of an order the engine held whose IOC filled another order first."""
        return len(self.fifo_miss_rows)

    @property
    def messages_per_second(self) -> float:
        """Messages replayed per second of wall time."""
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def _read_csv(path: str | Path, dtype) -> np.ndarray:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        return np.loadtxt(handle, delimiter=",", dtype=dtype, ndmin=2)


def load_lobster(messages_path: str | Path, orderbook_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a LOBSTER message file and its orderbook file (.csv or .csv.gz).

    Returns ``(messages, orderbook)``: the messages as a MESSAGE_DTYPE array,
    the orderbook as an int64 array of shape (rows, 4 * levels).
    """
    raw = _read_csv(messages_path, np.float64)
    orderbook = _read_csv(orderbook_path, np.int64)
    if raw.shape[1] != len(MESSAGE_DTYPE.names):
        raise ValueError(f"{messages_path}: expected {len(MESSAGE_DTYPE.names)} columns, found {raw.shape[1]}")
    if orderbook.shape[1] % 4:
        raise ValueError(f"{orderbook_path}: {orderbook.shape[1]} columns is not 4 per level")
    if len(orderbook) != len(raw):
        raise ValueError(f"{len(raw)} messages but {len(orderbook)} orderbook rows")
    messages = np.empty(len(raw), dtype=MESSAGE_DTYPE)
    for column, name in enumerate(MESSAGE_DTYPE.names):
        messages[name] = raw[:, column]
    return messages, orderbook


def view_edges(orderbook: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, where each side's view widened: ``(ask_edges, bid_edges)``.

    A side's view widened at row i if row i-1 showed all N levels of that
    side and row i reaches beyond that N-th price (or shows fewer than N
    levels). The edge is row i-1's N-th price; 0 where the view did not widen.
    """
    last_ask, last_bid = orderbook[:, -4], orderbook[:, -2]
    ask_edges = np.zeros(len(orderbook), dtype=np.int64)
    bid_edges = np.zeros(len(orderbook), dtype=np.int64)
    # The empty-level placeholders lie beyond any real price.
    widened = (last_ask[1:] > last_ask[:-1]) & (last_ask[:-1] != EMPTY_ASK_PRICE)
    ask_edges[1:] = np.where(widened, last_ask[:-1], 0)
    widened = (last_bid[1:] < last_bid[:-1]) & (last_bid[:-1] != EMPTY_BID_PRICE)
    bid_edges[1:] = np.where(widened, last_bid[:-1], 0)
    return ask_edges, bid_edges


def book_row(bids: Sequence, asks: Sequence, levels: int) -> list[int]:
    """An engine's ``depth()`` as one row in LOBSTER's orderbook layout."""
    row = []
    if len(asks) == len(bids) == levels:  # the common case, on the hot path
        for ask, bid in zip(asks, bids):
            row += ask[:2]
            row += bid[:2]
        return row
    for k in range(levels):
        row += asks[k][:2] if k < len(asks) else (EMPTY_ASK_PRICE, 0)
        row += bids[k][:2] if k < len(bids) else (EMPTY_BID_PRICE, 0)
    return row


def check_levels(orderbook: np.ndarray, levels: int) -> None:
    """Raise ValueError unless 1 <= `levels` <= the levels in `orderbook`."""
    file_levels = orderbook.shape[1] // 4
    if not 1 <= levels <= file_levels:
        raise ValueError(f"levels must be in [1, {file_levels}], got {levels}")


def replay(
    messages: np.ndarray,
    orderbook: np.ndarray,
    levels: int,
    engine_factory: Callable[[], MatchingEngine] = MatchingEngine,
    record_books: bool = False,
) -> ReplayResult:
    """Replay `messages` through a new engine, comparing with `orderbook` (see the module docstring).

    `levels` (N) may be at most the file's number of levels. `engine_factory`
    builds the engine (anything with MatchingEngine's API): a MatchingEngine
    runs the messages in C (engine.core.depth.LobsterRun), any other engine
    (the reference matcher, test wrappers) through the per-message Python
    loop, the readable reference of the same rules. With `record_books` the
    result carries the engine's top N after every message. Only the replay
    is timed (decoding the messages and the loop), not the set-up.
    """
    check_levels(orderbook, levels)
    if len(messages) != len(orderbook) or len(messages) == 0:
        raise ValueError("messages and orderbook must have the same, non-zero number of rows")
    book = np.ascontiguousarray(orderbook[:, : 4 * levels])
    edges = view_edges(book)
    engine = engine_factory()
    instrument = engine.add_instrument(LOBSTER_SPEC)
    _seed(engine, instrument, book[0].tolist())
    if type(engine) is MatchingEngine:
        return _replay_in_c(engine, instrument, messages, book, edges, record_books)
    return _replay_per_message(engine, instrument, messages, book, edges, record_books)


def decode_messages(messages: np.ndarray) -> tuple[np.ndarray, int]:
    """The messages as engine.core.depth.STEP_DTYPE records, in one vectorised pass.

    Returns ``(steps, n_ids)``: order ids are renumbered 0 .. n_ids - 1,
    directions become sides, halt messages get the state they set.
    """
    halts = messages["type"] == 7
    unknown = np.setdiff1d(messages["price"][halts], list(HALT_STATES))
    if len(unknown):
        raise ValueError(f"halt message with price {unknown[0]}: expected one of {sorted(HALT_STATES)}")
    steps = np.zeros(len(messages), dtype=STEP_DTYPE)
    steps["kind"] = messages["type"]
    ids, steps["order"] = np.unique(messages["order_id"], return_inverse=True)
    steps["size"] = messages["size"]
    steps["price"] = messages["price"]
    steps["side"] = np.where(messages["direction"] == 1, Side.BUY, Side.SELL)
    for price, state in HALT_STATES.items():
        steps["state"][halts & (messages["price"] == price)] = state
    return steps, len(ids)


def _replay_in_c(engine: MatchingEngine, instrument: int, messages: np.ndarray, book: np.ndarray,
                 edges: tuple[np.ndarray, np.ndarray], record_books: bool) -> ReplayResult:
    """The replay loop in C (engine.core.depth.LobsterRun), with the rules of the per-message loop."""
    seen = np.empty_like(book)
    depth_row(engine, instrument, seen[0], EMPTY_ASK_PRICE, EMPTY_BID_PRICE)
    started = time.perf_counter()
    steps, n_ids = decode_messages(messages)
    run = LobsterRun(engine, instrument, steps, n_ids, book, *edges, seen, empty_ask=EMPTY_ASK_PRICE,
                     empty_bid=EMPTY_BID_PRICE, book_account=BOOK_ACCOUNT, taker_account=TAKER_ACCOUNT,
                     max_align_rounds=_MAX_ALIGN_ROUNDS)
    run.run()
    seconds = time.perf_counter() - started
    return ReplayResult(len(book) - 1, run.mismatch_rows, run.fifo_miss_rows, seconds,
                        seen if record_books else None)


def _replay_per_message(engine, instrument: int, messages: np.ndarray, book: np.ndarray,
                        edges: tuple[np.ndarray, np.ndarray], record_books: bool) -> ReplayResult:
    """The replay loop through the engine's per-command Python API (the reference)."""
    levels = book.shape[1] // 4
    books = np.empty_like(book) if record_books else None
    if books is not None:
        books[0] = book_row(*engine.depth(instrument, levels), levels)

    new_order, cancel, depth = engine.new_order, engine.cancel, engine.depth
    limit, gtc, ioc, no_stp = OrderType.LIMIT, TimeInForce.GTC, TimeInForce.IOC, SelfTrade.STP_NONE
    buy, sell, rejected, fill = Side.BUY, Side.SELL, EventKind.REJECTED, EventKind.FILL
    ids: dict[int, int] = {}  # LOBSTER order id -> engine order id
    mismatch_rows: list[int] = []
    fifo_miss_rows: list[int] = []

    def recheck(i: int, row: list[int]) -> bool:
        seen = book_row(*depth(instrument, levels), levels)
        if books is not None:
            books[i] = seen
        return seen == row

    started = time.perf_counter()
    for start in range(1, len(book), _CHUNK):
        stop = min(start + _CHUNK, len(book))
        chunk = messages[start:stop]
        rows = zip(
            range(start, stop),
            chunk["type"].tolist(),
            chunk["order_id"].tolist(),
            chunk["size"].tolist(),
            chunk["price"].tolist(),
            chunk["direction"].tolist(),
            book[start:stop].tolist(),
        )
        for i, kind, lid, size, price, direction, row in rows:
            side = buy if direction == 1 else sell
            if kind == 1:
                events = new_order(instrument, BOOK_ACCOUNT, side, size, price, limit, gtc, no_stp)
                if events[0].kind != rejected:
                    ids[lid] = events[0].order_id
            elif kind == 3:
                order_id = ids.pop(lid, 0)
                if not order_id or cancel(BOOK_ACCOUNT, order_id)[0].kind == rejected:
                    _take_oldest(engine, instrument, side, price, size)
            elif kind == 4:
                events = new_order(instrument, TAKER_ACCOUNT, sell if side == buy else buy, size, price, limit, ioc, no_stp)
                if lid in ids and len(events) > 1 and events[1].kind == fill and events[1].maker_order_id != ids[lid]:
                    fifo_miss_rows.append(i)
            elif kind == 2:
                _reduce(engine, instrument, ids.get(lid, 0), side, price, size)
            elif kind == 7:
                engine.set_state(instrument, HALT_STATES[price])
            if not recheck(i, row) and _correct(engine, instrument, row, levels, edges, i, partial(recheck, i, row)):
                mismatch_rows.append(i)
    seconds = time.perf_counter() - started
    return ReplayResult(len(book) - 1, mismatch_rows, fifo_miss_rows, seconds, books)


def _correct(engine, instrument: int, row: list[int], levels: int, edges: tuple[np.ndarray, np.ndarray], i: int,
             recheck: Callable[[], bool]) -> bool:
    """Row `i`, the file's `row`, differed from the engine's top N: apply the view rule where
    the view widened, and if the row still differs (`recheck()` compares and records the
    engine's top N again), align every visible price. Returns whether row `i` is a mismatch."""
    ask_edge, bid_edge = int(edges[0][i]), int(edges[1][i])
    if ask_edge or bid_edge:
        _align(engine, instrument, row, levels, ask_edge or None, bid_edge or None)
        if recheck():
            return False
    _align(engine, instrument, row, levels, 0, EMPTY_ASK_PRICE)  # edges before every price
    return True


def _seed(engine, instrument: int, row: list[int]) -> None:
    """One resting order per level of the first row."""
    for k in range(0, len(row), 4):
        ask_price, ask_size, bid_price, bid_size = row[k : k + 4]
        if ask_price != EMPTY_ASK_PRICE:
            engine.seed_order(instrument, BOOK_ACCOUNT, Side.SELL, ask_price, ask_size)
        if bid_price != EMPTY_BID_PRICE:
            engine.seed_order(instrument, BOOK_ACCOUNT, Side.BUY, bid_price, bid_size)


def _reduce(engine, instrument: int, order_id: int, side: int, price: int, size: int) -> None:
    """Type 2: amend the named order down by `size`, or take `size` from the oldest at `price`."""
    order = engine.order(order_id) if order_id else None
    if order is None:
        _take_oldest(engine, instrument, side, price, size)
    elif order.leaves > size:
        _shrink(engine, order, order.leaves - size)
    else:
        engine.cancel(order.account, order_id)


def _take_oldest(engine, instrument: int, side: int, price: int, size: int) -> None:
    """Remove `size` from the front of the queue at `price`."""
    _take(engine, engine.orders_at(instrument, side, price), size)


def _take(engine, orders: Iterable, size: int) -> None:
    """Remove `size` (or all there is) from `orders`, in the sequence given."""
    for order in orders:
        if size <= 0:
            return
        if order.leaves <= size:
            engine.cancel(order.account, order.order_id)
        else:
            _shrink(engine, order, order.leaves - size)
        size -= order.leaves


def _shrink(engine, order, qty: int) -> None:
    """Reduce a resting order to `qty` (> 0), keeping its place in the queue.

    A halted engine refuses amends; the order is then cancelled and its
    remainder seeded at the back, losing its place (as a cancel/replace would).
    """
    if engine.amend(order.account, order.order_id, qty=qty)[0].kind == EventKind.REJECTED:
        engine.cancel(order.account, order.order_id)
        engine.seed_order(order.instrument, order.account, order.side, order.price, qty)


def _set_level(engine, instrument: int, side: int, price: int, target: int) -> None:
    """Make the liquidity at one price equal `target`.

    Missing size is seeded before every queued order (it is older than them);
    surplus is taken from the newest orders.
    """
    orders = engine.orders_at(instrument, side, price)
    have = sum(order.leaves for order in orders)
    if have < target:
        engine.seed_order(instrument, BOOK_ACCOUNT, side, price, target - have, at_front=True)
    elif have > target:
        _take(engine, reversed(orders), have - target)


def _align(engine, instrument: int, row: list[int], levels: int, ask_edge: int | None, bid_edge: int | None) -> None:
    """Make the engine's book equal the file's `row` wherever the file can see it.

    Only prices beyond a side's edge are touched (asks above `ask_edge`, bids
    below `bid_edge`; None leaves that side alone). The file sees up to its
    N-th price, or everything if it shows fewer than N levels; a price it
    sees but does not list has size 0. Reductions go first, so seeding never
    meets a stale crossing order. Levels hidden behind removed ones show up in
    the next round; a round without removals leaves nothing hidden.
    """
    sides = []
    # sign turns prices into distances from the touch: larger is further out.
    if ask_edge is not None:
        sides.append((Side.SELL, 1, ask_edge, row[0::4], row[1::4], EMPTY_ASK_PRICE))
    if bid_edge is not None:
        sides.append((Side.BUY, -1, -bid_edge, row[2::4], row[3::4], EMPTY_BID_PRICE))
    for _ in range(_MAX_ALIGN_ROUNDS):
        bids, asks = engine.depth(instrument, levels)
        cuts, adds = [], []
        for side, sign, edge, prices, sizes, empty in sides:
            horizon = prices[-1] * sign if prices[-1] != empty else EMPTY_ASK_PRICE  # else: the whole side
            wanted = {p: q for p, q in zip(prices, sizes) if p != empty and p * sign > edge}
            have = {p: q for p, q, _ in (asks if side == Side.SELL else bids) if edge < p * sign <= horizon}
            cuts += [(side, p, wanted.get(p, 0)) for p, q in have.items() if q > wanted.get(p, 0)]
            adds += [(side, p, q) for p, q in wanted.items() if have.get(p, 0) < q]
        for side, price, target in cuts + adds:
            _set_level(engine, instrument, side, price, target)
        if not cuts:
            return
    raise RuntimeError(f"the engine's book still showed stale levels after {_MAX_ALIGN_ROUNDS} rounds of corrections")


def main(argv: list[str]) -> int:
    """``replay-lobster MESSAGES ORDERBOOK --levels N [--out BOOK.csv]``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m engine replay-lobster",
        description="Replay a LOBSTER day through the matching engine and compare its top-N book with the file's.",
    )
    parser.add_argument("messages", help="LOBSTER message file (.csv or .csv.gz)")
    parser.add_argument("orderbook", help="LOBSTER orderbook file (.csv or .csv.gz)")
    parser.add_argument("--levels", type=int, required=True, help="number of levels N to compare")
    parser.add_argument("--out", help="write the engine's top-N book after each message here (CSV, .gz allowed)")
    args = parser.parse_args(argv)

    try:
        messages, orderbook = load_lobster(args.messages, args.orderbook)
        check_levels(orderbook, args.levels)
    except (OSError, ValueError) as err:
        parser.error(str(err))
    result = replay(messages, orderbook, args.levels, record_books=args.out is not None)
    if args.out is not None:
        np.savetxt(args.out, result.books, fmt="%d", delimiter=",")
    print(f"rows {result.rows}")
    print(f"mismatching rows {result.mismatches} ({result.mismatches / max(result.rows, 1):.3%})")
    print(f"FIFO misses {result.fifo_misses}")
    print(f"messages/s {result.messages_per_second:,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
