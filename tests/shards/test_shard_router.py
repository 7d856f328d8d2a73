"""The router in front of two real shard gateways: orders reach the shard of
their instrument, account-wide queries are merged, market data of both shards
comes through, a shard down is refused clearly while the other trades on, and
the router restarts without losing anything."""

from __future__ import annotations

import time

import pytest
from shards_harness import (A, AMZN, B, NVDA, PX, TSLA, TSLA_PX, TSLAX, USDC, RouterThread, connect, start_shard,
                            write_venue)

from engine.client import ClientKeys, MarketDataSubscriber
from engine.core.types import Reject as CoreReject
from engine.core.types import Side
from engine.schemas import Ack, Balances, Cancelled, GatewayReject, Instruments, MassCancelled, OpenOrders, Reject
from engine.schemas_shards import TransferLeg
from engine.rebalance import rebalance
from engine.shards import load_shards


@pytest.fixture
def venue(tmp_path):
    path = write_venue(tmp_path)
    a, b = start_shard(path, "a"), start_shard(path, "b")
    router = RouterThread(path)
    opened = []

    def client(name):
        c = connect(path, name)
        opened.append(c)
        return c

    _wait_up(router)
    yield path, a, b, router, client
    for c in opened:
        c.close()
    router.stop()
    for gw in (a, b):
        gw.stop()


def _wait_up(router: RouterThread, shards=(0, 1)) -> None:
    deadline = time.monotonic() + 10
    while not all(router.router.up(s) for s in shards):
        assert time.monotonic() < deadline, "shards never answered the router's heartbeats"
        time.sleep(0.05)


def test_orders_routed_and_queries_merged(venue):
    path, a, b, _router, client = venue
    mm, retail, ops = client("mm"), client("retail"), client("ops")
    # account 1's home is shard a: its TSLA.M must be moved to shard b to sell TSLA there
    refused = mm.place(TSLA, Side.SELL, 100, TSLA_PX)
    assert isinstance(refused, Reject) and refused.code == CoreReject.INSUFFICIENT_BALANCE
    rebalance(ops, A, B, 1, TSLAX, 400 * 10**6)
    amzn = mm.place(AMZN, Side.SELL, 100, PX)
    tsla = mm.place(TSLA, Side.SELL, 100, TSLA_PX)
    nvda = mm.place(NVDA, Side.SELL, 100, 1_200_000)
    assert isinstance(amzn, Ack) and isinstance(tsla, Ack) and isinstance(nvda, Ack)
    assert (amzn.instrument, tsla.instrument, nvda.instrument) == (AMZN, TSLA, NVDA)
    # order ids name their shard: a for AMZN and NVDA, b for TSLA
    assert (amzn.order_id % 16, tsla.order_id % 16, nvda.order_id % 16) == (0, 1, 0)
    instruments = mm.instruments()
    assert isinstance(instruments, Instruments)
    assert [(i.instrument, i.symbol) for i in instruments.instruments] == [
        (0, "AMZNX/USDC"), (1, "TSLA.M/USDC"), (2, "NVDA.M/USDC")]
    orders = mm.open_orders()
    assert isinstance(orders, OpenOrders)
    assert sorted((o.order_id, o.instrument) for o in orders.orders) == sorted(
        [(amzn.order_id, AMZN), (tsla.order_id, TSLA), (nvda.order_id, NVDA)])
    # balances: the sum of the two shards' ledgers
    balances = mm.balances()
    assert isinstance(balances, Balances)
    tsla_row = next(r for r in balances.balances if r.asset == 2)
    assert tsla_row.total == 1_000 * 10**6 and tsla_row.reserved == 100 * 10**3  # 100 qty units of 0.001 share
    # a cancel by the venue order id reaches the right shard
    cancelled = mm.cancel(tsla.order_id)
    assert isinstance(cancelled, Cancelled) and cancelled.order_id == tsla.order_id
    # retail (home b) has its USDC on shard b only: it can buy TSLA, not AMZN
    assert isinstance(retail.place(TSLA, Side.BUY, 10, TSLA_PX), Ack)
    poor = retail.place(AMZN, Side.BUY, 10, PX)
    assert isinstance(poor, Reject) and poor.code == CoreReject.INSUFFICIENT_BALANCE
    # mass cancel of every instrument fans out and sums the counts
    done = mm.mass_cancel()
    assert isinstance(done, MassCancelled) and done.count == 2
    assert mm.open_orders().orders == []


def test_fill_and_market_data_through_the_router(venue):
    path, _a, _b, _router, client = venue
    mm, retail = client("mm"), client("retail")
    rebalance(client("ops"), A, B, 1, TSLAX, 10 * 10**6)
    shards = load_shards(path)
    keys = ClientKeys.from_files(path.parent / "keys" / "retail.key_secret", path.parent / "keys" / "server.key")
    md = MarketDataSubscriber(shards.router.market_data, keys, retail, {TSLA: "TSLA.M/USDC"})
    try:
        sell = mm.place(TSLA, Side.SELL, 50, TSLA_PX)
        assert isinstance(sell, Ack)
        buy = retail.place(TSLA, Side.BUY, 20, TSLA_PX)
        assert isinstance(buy, Ack)
        fills = [e for e in mm.poll_events(2.0) if type(e).__name__ == "Fill"]
        assert fills and fills[0].order_id == sell.order_id and fills[0].instrument == TSLA
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and md.books[TSLA].asks.get(TSLA_PX, (0,))[0] != 30:
            md.poll(0.1)
        assert md.books[TSLA].asks[TSLA_PX][0] == 30 and md.books[TSLA].seq > 0
    finally:
        md.close()


def test_shard_down_rejects_its_instruments_other_trades(venue):
    path, _a, b, router, client = venue
    mm = client("mm")
    b.kill()
    deadline = time.monotonic() + 10
    while router.router.up(1):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    down = mm.place(TSLA, Side.SELL, 10, TSLA_PX)
    assert isinstance(down, Reject) and down.code == GatewayReject.SHARD_UNAVAILABLE
    assert "shard b is down" in down.text
    assert isinstance(mm.place(AMZN, Side.SELL, 10, PX), Ack)
    merged = mm.balances()
    assert isinstance(merged, Reject) and merged.code == GatewayReject.SHARD_UNAVAILABLE and "b" in merged.text


def test_router_restart_and_refusals(venue):
    path, _a, _b, router, client = venue
    mm = client("mm")
    first = mm.place(AMZN, Side.SELL, 10, PX)
    router.stop()
    again = RouterThread(path)
    try:
        _wait_up(again)
        mm2 = connect(path, "mm")
        try:
            orders = mm2.open_orders()
            assert [o.order_id for o in orders.orders] == [first.order_id]
            unknown = mm2.place(9, Side.SELL, 10, PX)
            assert isinstance(unknown, Reject) and unknown.code == CoreReject.UNKNOWN_INSTRUMENT
            bad_order = mm2.cancel(16 * 5 + 7)
            assert isinstance(bad_order, Reject) and bad_order.code == CoreReject.UNKNOWN_ORDER
            other = mm2.balances(account=2)
            assert isinstance(other, Reject) and other.code == GatewayReject.NOT_AUTHORIZED
            transfer = mm2.transfer(TransferLeg.OUT, 1 << 40 | 1, 1, USDC, 1)
            assert isinstance(transfer, Reject) and transfer.code == GatewayReject.NOT_AUTHORIZED
            paged = mm2.open_orders(limit=10)
            assert isinstance(paged, Reject) and paged.code == GatewayReject.NOT_ROUTABLE
        finally:
            mm2.close()
    finally:
        again.stop()
