"""Order entry round trips through a real gateway process: place, fill both
sides, amend, cancel, mass cancel, queries, batches, the asyncio client."""

from __future__ import annotations

import asyncio

from gateway_harness import ACCOUNTS, AMZN, PX, TICK, TSLA, USDC, client_keys

from engine.client_async import AsyncClient
from engine.core.types import CancelReason, OrderType, Side, TimeInForce
from engine.schemas import (
    Ack,
    Amended,
    Balances,
    BookSnapshot,
    Cancelled,
    Fill,
    Instruments,
    Liquidity,
    LoggedOn,
    MassCancelled,
    NewOrder,
    OpenOrders,
    Pong,
    Reject,
)


def test_logon_heartbeat_instruments(gateway, clients):
    mm = clients(gateway, "mm")
    logged = mm.logon()
    assert logged == LoggedOn(logged.request_id, ACCOUNTS["mm"], False, 200, 600, False)
    pong = mm.heartbeat()
    assert isinstance(pong, Pong) and pong.last_seq >= 1
    info = mm.instruments()
    assert isinstance(info, Instruments)
    assert [i.symbol for i in info.instruments] == ["AMZNX/USDC", "TSLA.M/USDC", "NVDA.M/USDC"]
    assert info.instruments[AMZN].reference == PX
    assert [a.symbol for a in info.assets] == ["USDC", "AMZNX", "TSLA.M", "NVDA.M"]
    assert info.md_depth == 5


def test_place_fill_both_sides(gateway, clients):
    mm, retail = clients(gateway, "mm"), clients(gateway, "retail")
    ask = mm.place(TSLA, Side.SELL, 1_000, 2_500_000)
    assert isinstance(ask, Ack) and ask.qty == 1_000 and ask.price == 2_500_000 and ask.seq > 0
    take = retail.place(TSLA, Side.BUY, 400, 2_500_000)
    assert isinstance(take, Ack) and take.order_id == ask.order_id + 1
    taker_fill = next(e for e in retail.poll_events(1.0) if isinstance(e, Fill))
    assert (taker_fill.order_id, taker_fill.client_order_id, taker_fill.side, taker_fill.qty, taker_fill.leaves,
            taker_fill.liquidity) == (take.order_id, take.client_order_id, Side.BUY, 400, 0, Liquidity.TAKER)
    maker_fill = next(e for e in mm.poll_events(1.0) if isinstance(e, Fill))
    assert (maker_fill.order_id, maker_fill.client_order_id, maker_fill.side, maker_fill.qty, maker_fill.leaves,
            maker_fill.liquidity) == (ask.order_id, ask.client_order_id, Side.SELL, 400, 600, Liquidity.MAKER)
    assert maker_fill.seq == taker_fill.seq == take.seq
    assert taker_fill.fee > 0 and maker_fill.fee < 0  # taker fee, maker rebate
    assert mm.cancel(ask.order_id).qty == 600


def test_amend_cancel_and_open_orders(gateway, clients):
    mm = clients(gateway, "mm")
    a = mm.place(AMZN, Side.BUY, 500, PX - 10 * TICK)
    b = mm.place(AMZN, Side.BUY, 500, PX - 10 * TICK)
    down = mm.amend(a.order_id, qty=300)
    assert isinstance(down, Amended) and (down.qty, down.priority_lost) == (300, 0)
    moved = mm.amend(b.order_id, price=PX - 11 * TICK)
    assert isinstance(moved, Amended) and (moved.price, moved.priority_lost) == (PX - 11 * TICK, 1)
    orders = mm.open_orders()
    assert isinstance(orders, OpenOrders) and orders.account == ACCOUNTS["mm"]
    assert {(o.order_id, o.price, o.leaves) for o in orders.orders} >= {
        (a.order_id, PX - 10 * TICK, 300), (b.order_id, PX - 11 * TICK, 500)}
    done = mm.cancel(a.order_id)
    assert isinstance(done, Cancelled) and (done.order_id, done.qty, done.reason) == (a.order_id, 300,
                                                                                     CancelReason.USER)
    assert done.reason_text == "cancelled by user"
    gone = mm.cancel(a.order_id)
    assert isinstance(gone, Reject) and gone.code == 19 and gone.order_id == a.order_id
    assert mm.cancel(b.order_id).qty == 500


def test_mass_cancel(gateway, clients):
    fund = clients(gateway, "fund")
    for k in range(3):
        assert isinstance(fund.place(AMZN, Side.BUY, 100, PX - (20 + k) * TICK), Ack)
    done = fund.mass_cancel(AMZN)
    assert isinstance(done, MassCancelled) and (done.account, done.instrument, done.count) == (3, AMZN, 3)
    cancels = [e for e in fund.poll_events(0.5) if isinstance(e, Cancelled)]
    assert len(cancels) == 3 and {c.reason for c in cancels} == {CancelReason.MASS}
    assert fund.open_orders().orders == []


def test_ioc_remainder_and_market_collar(gateway, clients):
    retail = clients(gateway, "retail")
    ioc = retail.place(AMZN, Side.BUY, 100, PX - 50 * TICK, tif=TimeInForce.IOC)
    assert isinstance(ioc, Ack)
    cancelled = next(e for e in retail.poll_events(1.0) if isinstance(e, Cancelled))
    assert cancelled.order_id == ioc.order_id and cancelled.reason == CancelReason.IOC_REMAINDER
    market = retail.place(AMZN, Side.SELL, 100, order_type=OrderType.MARKET, tif=TimeInForce.IOC)
    assert isinstance(market, Ack) and market.price > 0  # the collar price


def test_balances_move_with_fills(gateway, clients):
    retail, mm = clients(gateway, "retail"), clients(gateway, "mm")
    before = retail.balances()
    assert isinstance(before, Balances) and before.account == ACCOUNTS["retail"]
    ask = mm.place(AMZN, Side.SELL, 1_000, PX + 30 * TICK)
    assert isinstance(retail.place(AMZN, Side.BUY, 1_000, PX + 30 * TICK), Ack)
    retail.poll_events(0.5)
    after = retail.balances()
    assert after.balances[USDC].total < before.balances[USDC].total
    assert after.balances[1].total == before.balances[1].total + 1_000 * 1_000  # 1 share = 1e6 ledger units
    assert mm.cancel(ask.order_id).__class__ in (Cancelled, Reject)


def test_many_orders_in_one_message(gateway, clients):
    mm = clients(gateway, "mm")
    ids = [mm.next_id() for _ in range(100)]
    mm.send([NewOrder(cid, AMZN, Side.BUY, 10, PX - (60 + k % 5) * TICK) for k, cid in enumerate(ids)])
    acks = []
    while len(acks) < 100:
        acks += [r for r in mm.recv(2.0) if isinstance(r, Ack)]
    assert [a.client_order_id for a in acks] == ids
    seqs = [a.seq for a in acks]
    assert seqs == list(range(seqs[0], seqs[0] + 100))  # one batch, contiguous seqs
    assert mm.mass_cancel(AMZN).count >= 100


def test_book_snapshot_query(gateway, clients):
    fund = clients(gateway, "fund")
    bid = fund.place(AMZN, Side.BUY, 200, PX - 70 * TICK)
    snap = fund.snapshot(AMZN, levels=50)
    assert isinstance(snap, BookSnapshot) and snap.instrument == AMZN
    assert any(level.price == PX - 70 * TICK and level.qty >= 200 for level in snap.bids)
    fund.cancel(bid.order_id)


def test_async_client_round_trip(gateway, keys):
    async def session():
        async with AsyncClient(gateway.orders, client_keys(keys, "fund")) as fund:
            logged = await fund.logon()
            assert logged.account == ACCOUNTS["fund"]
            acks = await asyncio.gather(*(fund.place(AMZN, Side.BUY, 100, PX - (80 + k) * TICK) for k in range(5)))
            assert all(isinstance(a, Ack) for a in acks)
            amended = await fund.amend(acks[0].order_id, qty=50)
            assert isinstance(amended, Amended) and amended.qty == 50
            cancelled = await fund.cancel(acks[1].order_id)
            assert isinstance(cancelled, Cancelled) and cancelled.order_id == acks[1].order_id
            assert isinstance(await fund.heartbeat(), Pong)
            orders = await fund.open_orders()
            assert {o.order_id for o in orders.orders} >= {a.order_id for a in acks} - {acks[1].order_id}
            done = await fund.mass_cancel()
            assert done.count >= 4
            assert isinstance(await fund.balances(), Balances)
            assert isinstance(await fund.snapshot(AMZN), BookSnapshot)

    asyncio.run(session())
