"""Issue 11, part 4, replayed as confirmed: one key sends 200 messages of
GetBook(levels=1000) (about 380 KB) while a market maker with
cancel-on-disconnect rests 300 orders and heartbeats throughout. On the gateway
before the fairness work (commit 2ff7132) the flood stalled the loop past the
session timeout and the maker's 300 orders were cancelled; now the flood is
refused cheaply and the maker keeps every order. The gateway runs with its
default [gateway] bounds: nothing here is tuned to the attack.

Already covered elsewhere, one bound at a time with small bounds:
tests/gateway/test_gateway_fairness.py (rates, query cost, reply split, slow
reader, loop stall by SIGSTOP, reconnect)."""

from __future__ import annotations

import time

from gateway_harness import ACCOUNTS, AMZN, PX, TICK, write_venue

from engine.core.types import Side
from engine.gateway.process import GatewayProcess
from engine.schemas import REQUEST_ENCODER, Ack, Cancelled, GetBook, Heartbeat, NewOrder, Reject

MESSAGES = 200
BOOKS_PER_MESSAGE = 211      # 200 x 211 GetBook(levels=1000): about 380 KB, as in the issue
ORDERS = 300


def _rest_orders(mm) -> set[int]:
    orders = [NewOrder(mm.next_id(), AMZN, side, 10, PX + sign * (1 + k) * TICK)
              for k in range(ORDERS // 2) for side, sign in ((Side.BUY, -1), (Side.SELL, 1))]
    for start in range(0, ORDERS, 100):
        mm.send(orders[start:start + 100])
    acks = []
    while len(acks) < ORDERS:
        acks += [r for r in mm.recv() if isinstance(r, Ack | Reject)]
    assert all(isinstance(a, Ack) for a in acks), acks[:3]
    return {a.order_id for a in acks}


def test_a_get_book_flood_does_not_get_the_makers_orders_cancelled(tmp_path, keys, clients):
    with GatewayProcess(write_venue(tmp_path, keys), tmp_path / "gateway.log") as gw:
        mm, hostile, ops = clients(gw, "mm"), clients(gw, "retail"), clients(gw, "ops")
        assert mm.logon(cancel_on_disconnect=True).cancel_on_disconnect
        placed = _rest_orders(mm)
        flood = REQUEST_ENCODER.encode([GetBook(1_000 + k, AMZN, 1_000) for k in range(BOOKS_PER_MESSAGE)])
        assert 370_000 < MESSAGES * len(flood) < 390_000
        for _ in range(MESSAGES):
            hostile.socket.send(flood)   # and never reads a reply
        events = []
        end = time.monotonic() + 3.0
        while time.monotonic() < end:    # the maker heartbeats throughout, as an honest client does
            mm.send([Heartbeat(mm.next_id())])
            events += mm.poll_events(0.1)
        assert not [e for e in events if isinstance(e, Cancelled)]
        assert {o.order_id for o in ops.open_orders(account=ACCOUNTS["mm"]).orders} == placed
