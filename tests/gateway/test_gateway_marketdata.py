"""Market data: per-instrument sequence numbers without gaps, a local book
rebuilt from snapshot + deltas equal to the gateway's, gap detection and recovery
(a lost message, a gateway restart)."""

from __future__ import annotations

import random
import time

import zmq
from gateway_harness import AMZN, PX, TICK, TSLA, client_keys, connect, write_venue

from engine.client import MarketDataSubscriber
from engine.core.types import Side, TimeInForce
from engine.gateway.process import GatewayProcess
from engine.schemas import MD_DECODER, Ack, BookDelta, NewOrder, TopOfBook, Trades, md_seq_from

SYMBOLS = {AMZN: "AMZNX/USDC", TSLA: "TSLA.M/USDC"}


def _random_flow(clients: list, rng: random.Random, orders: int) -> None:
    """Random limit orders around the reference (some cross), cancels and amends."""
    resting: dict[int, list] = {id(c): [] for c in clients}
    for _ in range(orders):
        client = rng.choice(clients)
        mine = resting[id(client)]
        roll = rng.random()
        if roll < 0.15 and mine:
            client.cancel(mine.pop(rng.randrange(len(mine))))
        elif roll < 0.25 and mine:
            client.amend(rng.choice(mine), qty=10 * rng.randint(1, 5))
        else:
            side = rng.choice((Side.BUY, Side.SELL))
            offset = rng.randint(-6, 6) * TICK
            ack = client.place(rng.choice((AMZN, TSLA)), side,
                               10 * rng.randint(1, 20), (PX if rng.random() < 0.5 else 2_500_000) + offset)
            if isinstance(ack, Ack):
                mine.append(ack.order_id)
        client.poll_events()


def _settle(sub: MarketDataSubscriber, client, instrument: int, deadline: float = 5.0) -> None:
    """Poll until the local book has caught up with the gateway's current seq."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        sub.poll(0.05)
        snap = client.snapshot(instrument)
        if sub.books[instrument].seq == snap.md_seq:
            return
    raise AssertionError("subscriber did not catch up")


def test_sequence_numbers_are_contiguous(gateway, keys, clients):
    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.linger = 0
    client_keys(keys, "fund").apply(sock)
    sock.subscribe(b"")
    sock.connect(gateway.market_data)
    try:
        time.sleep(0.3)
        mm, retail = clients(gateway, "mm"), clients(gateway, "retail")
        _random_flow([mm, retail], random.Random(1), 150)
        mm.mass_cancel()
        retail.mass_cancel()
        seqs: dict[bytes, list[int]] = {}
        kinds = set()
        while sock.poll(500):
            topic, seq, payload = sock.recv_multipart()
            seqs.setdefault(topic, []).append(md_seq_from(seq))
            kinds.add(type(MD_DECODER.decode(payload)))
        assert set(seqs) == {b"AMZNX/USDC|", b"TSLA.M/USDC|"}
        for topic, values in seqs.items():
            assert values == list(range(values[0], values[0] + len(values))), topic
        assert {BookDelta, TopOfBook, Trades} <= kinds
    finally:
        sock.close()


def test_local_book_matches_the_gateway(gateway, keys, clients):
    mm, retail, fund = clients(gateway, "mm"), clients(gateway, "retail"), clients(gateway, "fund")
    warm = mm.place(AMZN, Side.BUY, 50, PX - 3 * TICK)  # a book before the subscriber joins
    sub = MarketDataSubscriber(gateway.market_data, client_keys(keys, "fund"), fund, SYMBOLS)
    try:
        sub.poll(0.2)
        assert all(book.synced for book in sub.books.values())
        _random_flow([mm, retail], random.Random(2), 200)
        for instrument in SYMBOLS:
            _settle(sub, fund, instrument)
            snap = fund.snapshot(instrument)
            book = sub.books[instrument]
            assert book.depth() == ([(lv.price, lv.qty, lv.count) for lv in snap.bids],
                                    [(lv.price, lv.qty, lv.count) for lv in snap.asks])
            assert book.state == (snap.state, snap.reference, snap.last_trade)
            bids, asks = book.depth()
            assert book.top == ((bids[0][:2] if bids else (0, 0)) + (asks[0][:2] if asks else (0, 0)))
        assert sub.gaps == 0
        assert any(book.trades for book in sub.books.values())
    finally:
        sub.close()
        mm.cancel(warm.order_id)
        mm.mass_cancel()
        retail.mass_cancel()


def test_lost_message_is_detected_and_recovered(gateway, keys, clients):
    mm, fund = clients(gateway, "mm"), clients(gateway, "fund")
    sub = MarketDataSubscriber(gateway.market_data, client_keys(keys, "fund"), fund, {AMZN: SYMBOLS[AMZN]})
    raw = sub.socket
    try:
        sub.poll(0.2)
        snapshots = sub.snapshots
        orders = [mm.place(AMZN, Side.SELL, 10, PX + k * TICK) for k in range(1, 4)]
        frames = []
        while len(frames) < 6 and raw.poll(2000):
            frames.append(raw.recv_multipart())
        # drop the first update: the next one does not follow the book's seq
        for message in frames[1:]:
            sub.handle(message)
        assert sub.gaps == 1 and not sub.books[AMZN].synced
        sub.poll(0.2)  # resyncs from a snapshot
        assert sub.snapshots == snapshots + 1 and sub.books[AMZN].synced
        _settle(sub, fund, AMZN)
        asks = sub.books[AMZN].depth()[1]
        assert {(PX + k * TICK, 10) for k in range(1, 4)} <= {(p, q) for p, q, _ in asks}
        for order in orders:
            mm.cancel(order.order_id)
    finally:
        sub.close()


def test_restart_looks_like_a_gap(tmp_path, keys):
    config = write_venue(tmp_path, keys)
    gw = GatewayProcess(config, tmp_path / "gateway.log")
    fund = connect(gw.orders, keys, "fund")
    sub = MarketDataSubscriber(gw.market_data, client_keys(keys, "fund"), fund, {AMZN: SYMBOLS[AMZN]})
    try:
        mm = connect(gw.orders, keys, "mm")
        mm.place(AMZN, Side.BUY, 10, PX - TICK)
        sub.poll(0.3)
        before = sub.books[AMZN].seq
        mm.close()
        gw.stop()
        gw = GatewayProcess(config, tmp_path / "gateway.log")  # same ports are not kept: reconnect
        fund.close()
        sub.close()
        fund = connect(gw.orders, keys, "fund")
        sub = MarketDataSubscriber(gw.market_data, client_keys(keys, "fund"), fund, {AMZN: SYMBOLS[AMZN]})
        sub.poll(0.3)
        assert sub.books[AMZN].seq > before  # seqs of a new run never repeat the old ones
        assert sub.books[AMZN].depth()[0] == [(PX - TICK, 10, 1)]
        mm = connect(gw.orders, keys, "mm")
        mm.place(AMZN, Side.BUY, 10, PX - 2 * TICK, tif=TimeInForce.GTC)
        _settle(sub, fund, AMZN)
        assert sub.books[AMZN].depth()[0] == [(PX - TICK, 10, 1), (PX - 2 * TICK, 10, 1)]
        mm.close()
    finally:
        sub.close()
        fund.close()
        gw.stop()


def test_many_orders_one_message_gives_one_update_per_kind(gateway, keys, clients):
    mm, fund = clients(gateway, "mm"), clients(gateway, "fund")
    sub = MarketDataSubscriber(gateway.market_data, client_keys(keys, "fund"), fund, {TSLA: SYMBOLS[TSLA]})
    try:
        sub.poll(0.2)
        start = sub.books[TSLA].seq
        mm.send([NewOrder(mm.next_id(), TSLA, Side.BUY, 10, 2_400_000 - k * TICK) for k in range(20)])
        mm.recv(2.0)
        _settle(sub, fund, TSLA)
        assert sub.books[TSLA].seq - start <= 2  # one BookDelta (+ one TopOfBook) for the batch
        assert len(sub.books[TSLA].depth()[0]) == 5  # the published depth
        mm.mass_cancel(TSLA)
    finally:
        sub.close()
