"""Failover on the replicated journal, with real processes: a leader gateway
and a hot standby on three nats-servers. The leader is killed (SIGKILL) while
a client sends orders, one of them in flight; the standby takes over, the
client (which knows both endpoints) reconnects, and no acknowledged order is
lost or applied twice; the new leader's state hash equals an offline replay of
the stream, and the standby's log showed the leader's hash while it followed.
Then one of the three nats-servers is killed under load: trading goes on.
The asyncio client fails over the same way. And split brain: a leader stopped
(SIGSTOP) past its lease wakes up to find the standby leading; it acknowledges nothing more and exits (fail-stop)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys

import pytest
from gateway_harness import AMZN, PX, TICK, UNLIMITED_RATES, client_keys, write_venue
from nats_harness import nats_cluster  # noqa: F401 - a fixture

from engine.client import Client
from engine.client_async import AsyncClient
from engine.core.types import OrderType, SelfTrade, Side, TimeInForce
from engine.gateway.process import GatewayProcess
from engine.schemas import OWN_ACCOUNT, Ack
from engine.schemas_replication import OrderFound


def _venue(directory, keys, cluster, port: int, stream: str = "failover"):
    return write_venue(directory, keys,
                       endpoints={"orders": f"tcp://127.0.0.1:{port}", "market_data": "tcp://127.0.0.1:*"},
                       journal={"kind": "jetstream", "servers": cluster.urls, "stream": stream,
                                "lease_ms": 1500, "ack_timeout_ms": 2000, "snapshot_every": 0,
                                "path": str(directory / "unused")},
                       gateway={"max_message_bytes": 65_536, "max_requests_per_message": 256, **UNLIMITED_RATES})


def _replay(cluster, stream: str = "failover") -> dict:
    out = subprocess.run([sys.executable, "-m", "engine", "replay", "--jetstream", ",".join(cluster.urls),
                          "--stream", stream, "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _order(client: Client, i: int, cid: int):
    return client.place(AMZN, Side.BUY, 10, PX - (1 + i % 50) * TICK, client_order_id=cid)


@pytest.mark.slow
def test_the_standby_takes_over_and_no_acknowledged_order_is_lost_or_doubled(tmp_path, keys, nats_cluster):
    from engine.tools.nats_cluster import free_port

    ports = [free_port(), free_port()]
    leader = GatewayProcess(_venue(tmp_path / "a", keys, nats_cluster, ports[0]), tmp_path / "a.log")
    standby = GatewayProcess(_venue(tmp_path / "b", keys, nats_cluster, ports[1]), tmp_path / "b.log", standby=True)
    endpoints = [f"tcp://127.0.0.1:{port}" for port in ports]
    client = Client(endpoints, client_keys(keys, "retail"), timeout=1.0, failover_s=60.0)
    ops = Client(endpoints, client_keys(keys, "ops"), timeout=1.0, failover_s=60.0)
    try:
        client.logon()
        acked: dict[int, object] = {}
        cids = [client.next_id() for _ in range(400)]
        for i, cid in enumerate(cids[:200]):
            if i == 100:
                client.send([client._requests.place(AMZN, Side.BUY, 10, PX - TICK, OrderType.LIMIT, TimeInForce.GTC,
                                                     SelfTrade.CANCEL_NEWEST, cid, OWN_ACCOUNT)[0]])
                leader.kill()  # with that order in flight: sequenced or not, it must count once
            acked[cid] = _order(client, i, cid)
        assert client.failovers >= 1
        assert all(isinstance(r, (Ack, OrderFound)) for r in acked.values()), \
            [r for r in acked.values() if not isinstance(r, (Ack, OrderFound))][:3]
        assert isinstance(acked[cids[100]], (Ack, OrderFound))
        standby.wait_ready(5)  # it printed its ready line when it took over

        # One of the three nats-servers dies under load: orders go on being acknowledged.
        nats_cluster.kill(0)
        for i, cid in enumerate(cids[200:], 200):
            acked[cid] = _order(client, i, cid)
        assert all(isinstance(r, (Ack, OrderFound)) for r in acked.values())

        orders = client.all_open_orders()
        by_cid: dict[int, int] = {}
        for order in orders:
            by_cid[order.client_order_id] = by_cid.get(order.client_order_id, 0) + 1
        assert set(by_cid) == set(acked), "an acknowledged order was lost (or an unacknowledged one appeared)"
        assert set(by_cid.values()) == {1}, "an order was applied twice"

        status = ops.status()
        replayed = _replay(nats_cluster)
        assert (replayed["last_seq"], replayed["state_hash"]) == (status.last_seq, status.state_hash)
        followed = re.findall(r"standby at seq (\d+) state_hash (\w+)", (tmp_path / "b.log").read_text())
        assert followed, "the standby never logged the state it followed"
    finally:
        client.close()
        ops.close()
        standby.stop()
        leader.kill()
        nats_cluster.start(0)
        nats_cluster.wait_ready()


@pytest.mark.slow
def test_the_async_client_fails_over_and_no_order_is_doubled(tmp_path, keys, nats_cluster):
    from engine.tools.nats_cluster import free_port

    ports = [free_port(), free_port()]
    leader = GatewayProcess(_venue(tmp_path / "a", keys, nats_cluster, ports[0], "async"), tmp_path / "a.log")
    standby = GatewayProcess(_venue(tmp_path / "b", keys, nats_cluster, ports[1], "async"), tmp_path / "b.log",
                             standby=True)
    endpoints = [f"tcp://127.0.0.1:{port}" for port in ports]

    async def trade() -> tuple[dict, list, int]:
        async with AsyncClient(endpoints, client_keys(keys, "retail"), timeout=1.0, failover_s=60.0) as client:
            await client.logon()
            acked = {}
            cids = list(range(1, 121))
            for i, cid in enumerate(cids):
                if i == 60:
                    await client.send([client._requests.place(AMZN, Side.BUY, 10, PX - TICK, OrderType.LIMIT,
                                                              TimeInForce.GTC, SelfTrade.CANCEL_NEWEST, cid,
                                                              OWN_ACCOUNT)[0]])
                    leader.kill()  # with that order in flight: sequenced or not, it must count once
                # Two at a time: requests that time out together switch endpoints once.
                if i % 2:
                    continue
                pair = cids[i:i + 2]
                replies = await asyncio.gather(*(client.place(AMZN, Side.BUY, 10, PX - (1 + (i + k) % 50) * TICK,
                                                              client_order_id=c) for k, c in enumerate(pair)))
                acked.update(zip(pair, replies))
            resting = (await client.open_orders()).orders
            return acked, [o.client_order_id for o in resting], client.failovers

    try:
        acked, resting, failovers = asyncio.run(trade())
        assert failovers >= 1
        assert all(isinstance(r, (Ack, OrderFound)) for r in acked.values()), \
            [r for r in acked.values() if not isinstance(r, (Ack, OrderFound))][:3]
        assert sorted(resting) == sorted(acked), "an order was lost or applied twice"
        standby.wait_ready(5)
    finally:
        standby.stop()
        leader.kill()


@pytest.mark.slow
def test_a_leader_that_wakes_up_after_losing_the_lease_stops(tmp_path, keys, nats_cluster):
    from engine.tools.nats_cluster import free_port

    ports = [free_port(), free_port()]
    old = GatewayProcess(_venue(tmp_path / "a", keys, nats_cluster, ports[0], "brain"), tmp_path / "a.log")
    new = GatewayProcess(_venue(tmp_path / "b", keys, nats_cluster, ports[1], "brain"), tmp_path / "b.log",
                         standby=True)
    to_old = Client(old.orders, client_keys(keys, "retail"), timeout=2.0)
    to_new = None
    try:
        assert isinstance(_order(to_old, 0, to_old.next_id()), Ack)
        os.kill(old.pid, signal.SIGSTOP)  # a stall longer than the lease: the standby takes over
        new.wait_ready(30)
        to_new = Client(new.orders, client_keys(keys, "retail"), timeout=5.0)
        taken = to_new.next_id()
        assert isinstance(_order(to_new, 1, taken), Ack)
        late = to_old.next_id()
        to_old.send([to_old._requests.place(AMZN, Side.BUY, 10, PX - TICK, OrderType.LIMIT, TimeInForce.GTC,
                                            SelfTrade.CANCEL_NEWEST, late, OWN_ACCOUNT)[0]])
        os.kill(old.pid, signal.SIGCONT)
        assert old.process.wait(30) == 3  # fenced: the journal failed, the gateway stopped
        assert not [r for r in to_old.poll_events(0.5) if getattr(r, "client_order_id", 0) == late]
        assert re.search(r"leads now|taken by another gateway", (tmp_path / "a.log").read_text())
        resting = [o.client_order_id for o in to_new.all_open_orders()]
        assert taken in resting and late not in resting
        replayed = _replay(nats_cluster, "brain")
        assert replayed["state_hash"] == _status_hash(keys, new)
    finally:
        to_old.close()
        if to_new is not None:
            to_new.close()
        new.stop()
        old.kill()


def _status_hash(keys, gw) -> str:
    """The serving gateway's state hash (operator GetStatus)."""
    with Client(gw.orders, client_keys(keys, "ops"), timeout=5.0) as ops:
        return ops.status().state_hash
