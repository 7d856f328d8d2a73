"""GetOpenOrders in pages through a real gateway process: a client with more
open orders than one reply may hold pages through them by order id
(``after_order_id`` cursor, ``limit`` at most ``max_page_orders``) while its
book changes between pages; bad page bounds get clear rejects."""

from __future__ import annotations

from gateway_harness import ACCOUNTS, AMZN, PX, TICK, UNLIMITED_RATES, write_venue

from engine.config import GatewaySection
from engine.core.types import Side
from engine.gateway.limits import SessionLimits
from engine.gateway.process import GatewayProcess
from engine.schemas import Ack, Amended, Cancelled, GatewayReject, GetOpenOrders, NewOrder, OpenOrders, Reject

CAP = 50                # max_page_orders
REPLY_BYTES = 2_048     # max_reply_bytes: about 80 open orders, 50 with room to spare
ORDERS = 160


def _place_many(client, n: int) -> list[int]:
    """n resting bids at distinct prices; their order ids."""
    orders = [NewOrder(client.next_id(), AMZN, Side.BUY, 10, PX - (1 + k) * TICK) for k in range(n)]
    for start in range(0, n, 100):
        client.send(orders[start:start + 100])
    acks = []
    while len(acks) < n:
        acks += [r for r in client.recv() if isinstance(r, Ack | Reject)]
    assert all(isinstance(a, Ack) for a in acks), acks[:3]
    return [a.order_id for a in acks]


def _page(client, after: int, limit: int = CAP, **kw) -> list[int]:
    reply = client.open_orders(after_order_id=after, limit=limit, **kw)
    assert isinstance(reply, OpenOrders), reply
    assert len(reply.orders) <= limit
    return [o.order_id for o in reply.orders]


def test_pages_cover_every_order_once_while_the_book_changes(tmp_path, keys, clients):
    path = write_venue(tmp_path, keys, gateway={**UNLIMITED_RATES, "max_page_orders": CAP,
                                                "max_reply_bytes": REPLY_BYTES})
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        mm, ops = clients(gw, "mm"), clients(gw, "ops")
        placed = _place_many(mm, ORDERS)
        whole = mm.open_orders()
        assert isinstance(whole, Reject) and whole.code == GatewayReject.QUERY_TOO_LARGE
        assert "ask for pages" in whole.text

        first = _page(mm, 0)
        assert first == placed[:CAP]                     # lowest ids first
        # Between pages: cancel one already seen and one not yet seen, amend
        # one not yet seen (price and quantity: its id stays), place a new one.
        assert isinstance(mm.cancel(placed[3]), Cancelled)
        assert isinstance(mm.cancel(placed[100]), Cancelled)
        amended = mm.amend(placed[120], qty=20, price=PX - 500 * TICK)
        assert isinstance(amended, Amended) and amended.order_id == placed[120]
        new = mm.place(AMZN, Side.BUY, 10, PX - 600 * TICK)
        assert isinstance(new, Ack) and new.order_id > placed[-1]

        seen = list(first)
        while True:
            page = _page(mm, seen[-1])
            seen += page
            if len(page) < CAP:
                break
        assert seen == sorted(set(seen))                 # ascending: nothing repeated
        # Every order resting throughout came once; the one placed meanwhile came;
        # the one cancelled before its page did not; the one cancelled after its page did.
        assert set(seen) == (set(placed) - {placed[100]}) | {new.order_id}

        # The client's helper pages the same way; an operator pages any account.
        assert [o.order_id for o in mm.all_open_orders(page=CAP)] == sorted(
            set(placed) - {placed[3], placed[100]} | {new.order_id})
        assert _page(ops, placed[10], 5, account=ACCOUNTS["mm"]) == placed[11:16]
        # A cursor may be an order that no longer rests: the page goes on after it.
        assert _page(mm, placed[100], 2) == placed[101:103]
        assert _page(mm, new.order_id) == []


def test_bad_page_bounds_are_refused_with_a_reason(tmp_path, keys, clients):
    path = write_venue(tmp_path, keys, gateway={**UNLIMITED_RATES, "max_page_orders": CAP})
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        mm = clients(gw, "mm")
        placed = _place_many(mm, 3)
        cases = [
            ({"limit": -1}, GatewayReject.MALFORMED, "limit must be >= 0"),
            ({"limit": CAP + 1}, GatewayReject.QUERY_TOO_LARGE, f"limit {CAP + 1} exceeds {CAP} "
                                                               "(gateway.max_page_orders)"),
            ({"after_order_id": -5, "limit": 2}, GatewayReject.MALFORMED, "after_order_id must be >= 0"),
            ({"after_order_id": placed[-1] + 1_000, "limit": 2}, GatewayReject.UNKNOWN_CURSOR,
             f"after_order_id {placed[-1] + 1_000} was never issued"),
        ]
        for fields, code, text in cases:
            reply = mm.open_orders(**fields)
            assert isinstance(reply, Reject) and reply.code == code, (fields, reply)
            assert text in reply.text, reply.text
        # Unpaged (the old request) still answers everything; limit = the cap is fine.
        assert [o.order_id for o in mm.open_orders().orders] == placed
        assert _page(mm, 0, CAP) == placed


def test_a_page_is_charged_its_size_when_read():
    """The query-item cost of a page is known before it is answered: 1 + limit,
    capped; an unpaged query pays its answer's size afterwards, as before."""
    limits = SessionLimits(GatewaySection(max_page_orders=CAP))
    assert [limits.query_cost(GetOpenOrders(1, limit=n)) for n in (0, 1, 20, CAP, CAP + 1, -3)] == [
        1, 2, 21, CAP + 1, CAP + 1, 1]
