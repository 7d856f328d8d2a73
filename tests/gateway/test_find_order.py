"""FindOrder and the client's resend after a failover: an order the lost gateway
had sequenced is found by its client order id and not sent again; one it had
not is sent. RecentOrders keeps the last orders by (account, client order id)."""

from __future__ import annotations

import numpy as np
import pytest
from gateway_harness import AMZN, PX, TICK, client_keys

from engine.client import Client
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, OrderType, SelfTrade, Side, TimeInForce
from engine.gateway.recent_orders import RecentOrders
from engine.schemas import OWN_ACCOUNT, Ack, NewOrder, Reject
from engine.schemas_replication import OrderFound
from engine.tools.nats_cluster import free_port


def _commands(first_seq: int, cids: list[int], account: int = 2, kind=CommandKind.NEW_ORDER) -> np.ndarray:
    commands = np.zeros(len(cids), COMMAND_DTYPE)
    commands["seq"] = np.arange(first_seq, first_seq + len(cids))
    commands["kind"] = kind
    commands["account"] = account
    commands["client_order_id"] = cids
    return commands


def test_recent_orders_find_by_account_and_client_order_id_and_forget_the_oldest():
    recent = RecentOrders(capacity=4)
    recent.add(_commands(1, [10, 11]))
    recent.add(_commands(3, [12], kind=CommandKind.CANCEL))  # not an order
    recent.add(_commands(4, [11], account=3))
    assert (recent.find(2, 11), recent.find(3, 11), recent.find(2, 12), recent.find(4, 10)) == (2, 4, 0, 0)
    assert recent.from_seq == 1
    recent.add(_commands(5, [13, 14, 15]))  # overwrites the orders at seq 1 and 2
    assert (recent.find(2, 10), recent.find(2, 11), recent.find(2, 15)) == (0, 0, 7)
    assert recent.from_seq == 3


def _order(cid: int) -> NewOrder:
    return NewOrder(cid, AMZN, Side.BUY, 10, PX - TICK, OrderType.LIMIT, TimeInForce.GTC, SelfTrade.CANCEL_NEWEST,
                    OWN_ACCOUNT)


def test_a_resent_order_is_not_applied_twice(gateway, keys, clients):
    first = clients(gateway, "retail")
    cid = first.next_id()
    assert isinstance(first.request(_order(cid), (("cid", cid),)), Ack)
    found = first.find_order(cid)
    assert isinstance(found, OrderFound) and found.seq > 0 and found.window_from_seq == 1
    assert first.find_order(cid + 1).seq == 0
    assert clients(gateway, "mm").find_order(cid).seq == 0  # another account's id space
    denied = clients(gateway, "mm").find_order(cid, account=2)
    assert isinstance(denied, Reject)

    # A client whose first endpoint is gone (its gateway died after sequencing the
    # order, before the Ack left) fails over and sends the order again: found, not placed.
    dead = f"tcp://127.0.0.1:{free_port()}"
    resender = Client([dead, gateway.orders], client_keys(keys, "retail"), timeout=0.5)
    try:
        again = resender.place(AMZN, Side.BUY, 10, PX - TICK, client_order_id=cid)
        assert isinstance(again, OrderFound) and again.seq == found.seq
        fresh = resender.next_id()
        assert isinstance(resender.place(AMZN, Side.BUY, 10, PX - TICK, client_order_id=fresh), Ack)
        assert resender.failovers == 1
    finally:
        resender.close()
    resting = [o.client_order_id for o in first.all_open_orders()]
    assert resting.count(cid) == 1 and resting.count(fresh) == 1


def test_a_client_with_no_answer_raises_timeout_error(keys):
    """Failover catches TimeoutError: an unanswered request must raise exactly that,
    whichever way the wait ends (here the clock runs out between two empty polls)."""
    client = Client(f"tcp://127.0.0.1:{free_port()}", client_keys(keys, "retail"), timeout=0.05)
    client.recv = lambda timeout=None: []  # a socket that never answers, returning at once
    try:
        with pytest.raises(TimeoutError, match="not there within the timeout"):
            client.heartbeat()
    finally:
        client.close()
