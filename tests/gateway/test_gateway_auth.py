"""Authentication: only configured CURVE keys get in, each key acts for its own
account only, operator requests need an operator key."""

from __future__ import annotations

import time

import pytest
import zmq
from gateway_harness import ACCOUNTS, AMZN, PX, TICK, client_keys, connect

from engine.client import Client, ClientKeys
from engine.core.types import Side, TradingState
from engine.schemas import REQUEST_ENCODER, Ack, GatewayReject, Heartbeat, Pong, Reject, StateChanged, Status


def _silent(sock: zmq.Socket, wait: float = 0.7) -> bool:
    return not sock.poll(int(wait * 1000))


def test_unknown_key_is_refused(gateway, keys):
    stranger = connect(gateway.orders, keys, "stranger", timeout=0.7)
    try:
        stranger.send([Heartbeat(1)])
        with pytest.raises(TimeoutError):
            stranger.recv()
    finally:
        stranger.close()
    deadline = time.monotonic() + 5
    while "key not configured" not in gateway.log_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "key not configured" in gateway.log_file.read_text()


def test_client_without_curve_is_refused(gateway):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    try:
        sock.connect(gateway.orders)
        sock.send(REQUEST_ENCODER.encode([Heartbeat(1)]))
        assert _silent(sock)
    finally:
        sock.close()


def test_wrong_server_key_is_refused(gateway, keys):
    real = client_keys(keys, "retail")
    wrong = ClientKeys(real.public, real.secret, client_keys(keys, "mm").public)
    client = Client(gateway.orders, wrong, timeout=0.7)
    try:
        client.send([Heartbeat(1)])
        with pytest.raises(TimeoutError):
            client.recv()
    finally:
        client.close()


def test_gateway_keeps_serving_after_refusals(gateway, clients):
    assert isinstance(clients(gateway, "retail").heartbeat(), Pong)


def test_account_is_bound_to_the_key(gateway, clients):
    mm, retail = clients(gateway, "mm"), clients(gateway, "retail")
    order = mm.place(AMZN, Side.BUY, 10, PX - 30 * TICK)
    assert isinstance(order, Ack)
    refused = retail.place(AMZN, Side.BUY, 10, PX - 30 * TICK, account=ACCOUNTS["mm"])
    assert isinstance(refused, Reject) and refused.code == GatewayReject.NOT_AUTHORIZED
    assert "account 2 only" in refused.text
    not_owner = retail.cancel(order.order_id)  # acts for retail's own account: the core refuses
    assert isinstance(not_owner, Reject) and not_owner.code == 20
    assert order.order_id in {o.order_id for o in mm.open_orders().orders}
    assert isinstance(retail.cancel(order.order_id, account=ACCOUNTS["mm"]), Reject)
    assert mm.cancel(order.order_id).order_id == order.order_id


def test_operator_only_commands(gateway, clients):
    retail, ops = clients(gateway, "retail"), clients(gateway, "ops")
    refused = retail.set_state(AMZN, TradingState.HALTED)
    assert isinstance(refused, Reject) and refused.code == GatewayReject.NOT_AUTHORIZED
    assert isinstance(retail.status(), Reject)
    halted = ops.set_state(AMZN, TradingState.HALTED)
    assert isinstance(halted, StateChanged)
    assert ops.set_state(AMZN, TradingState.OPEN).state == TradingState.OPEN
    status = ops.status()
    assert isinstance(status, Status) and len(status.state_hash) == 64 and status.last_seq > 0
    # an operator may act for any account (kill switch)
    order = retail.place(AMZN, Side.BUY, 10, PX - 31 * TICK)
    assert ops.cancel(order.order_id, account=ACCOUNTS["retail"]).order_id == order.order_id


def test_market_data_needs_a_key(gateway, keys, clients):
    topic = b"AMZNX/USDC|"
    ctx = zmq.Context.instance()
    stranger, member = ctx.socket(zmq.SUB), ctx.socket(zmq.SUB)
    try:
        client_keys(keys, "stranger").apply(stranger)
        client_keys(keys, "fund").apply(member)
        for sock in (stranger, member):
            sock.linger = 0
            sock.subscribe(topic)
            sock.connect(gateway.market_data)
        time.sleep(0.3)  # let the subscriptions reach the publisher
        mm = clients(gateway, "mm")
        order = mm.place(AMZN, Side.BUY, 10, PX - 32 * TICK)
        assert member.poll(3000)
        assert member.recv_multipart()[0] == topic
        assert _silent(stranger, 0.3)
        mm.cancel(order.order_id)
    finally:
        stranger.close()
        member.close()
