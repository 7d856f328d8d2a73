"""A shard on JetStream with a hot standby, behind two routers, with real
processes: shard a (AMZNX, NVDA.M) journals to its own stream on three
nats-servers and runs a leader and a standby gateway; shard b (TSLA.M) keeps
its file journal. The leader of a is killed (SIGKILL) while a client trades
through the routers, one order in flight; the standby takes over, the routers
(which know both of a's endpoints) send to it, the client keeps trading, and no
acknowledged order is lost or applied twice; shard b never stopped; the new
leader's state hash equals an offline replay of a's stream; a maker's fill on
the new leader reaches it through the router."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from nats_harness import nats_cluster  # noqa: F401 - a fixture
from shards_harness import (A, AMZN, B, PX, TSLA, TSLA_PX, USDC, RouterThread, _endpoint, shards_doc, start_shard,
                            venue_doc)

from engine.client import Client, ClientKeys
from engine.config import to_toml
from engine.core.types import OrderType, SelfTrade, Side, TimeInForce
from engine.gateway.process import GatewayProcess
from engine.keys import generate
from engine.rebalance import rebalance
from engine.schemas import OWN_ACCOUNT, Ack, Fill, GatewayReject, Reject
from engine.schemas_replication import OrderFound

TICK = 100
UNIT = 10**6
RETAIL = 2   # account id
STREAM = "shard-a"


def _write(directory: Path, cluster) -> tuple[Path, Path]:
    """Keys, venue.toml and two shards files that differ only in their router's endpoints."""
    keys = directory / "keys"
    keys.mkdir(parents=True)
    for name in ("server", "mm", "retail", "ops", "router"):
        generate(keys, name)
    venue = venue_doc(keys)
    venue["journal"].update(lease_ms=1500, ack_timeout_ms=2000)
    (directory / "venue.toml").write_text(to_toml(venue))
    doc = shards_doc(directory / "journals")
    doc["shards"][0].update(journal_kind="jetstream", stream=STREAM, servers=cluster.urls, journal="",
                            orders=[_endpoint(), _endpoint()], market_data=[_endpoint(), _endpoint()])
    paths = []
    for name in ("shards.toml", "shards2.toml"):
        doc["router"].update(orders=_endpoint(), market_data=_endpoint())
        paths.append(directory / name)
        paths[-1].write_text(to_toml(doc))
    return paths[0], paths[1]


def _keys(directory: Path, name: str) -> ClientKeys:
    return ClientKeys.from_files(directory / "keys" / f"{name}.key_secret", directory / "keys" / "server.key")


def _buy(client: Client, instrument: int, price: int, cid: int, refused: list[int]):
    """A resting buy. While a router refuses it at once because its shard has
    no leader yet (SHARD_UNAVAILABLE, appended to ``refused``), it is asked
    again, after a FindOrder answered by every shard: an earlier send of that
    client order id may have reached the dead leader."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        reply = client.place(instrument, Side.BUY, 10, price, client_order_id=cid)
        if not (isinstance(reply, Reject) and reply.code == GatewayReject.SHARD_UNAVAILABLE):
            return reply
        refused.append(cid)
        found = client.find_order(cid)
        while not isinstance(found, OrderFound):
            assert time.monotonic() < deadline, f"FindOrder({cid}) refused for a minute: {found}"
            time.sleep(0.05)
            found = client.find_order(cid)
        if found.seq:
            return found
    raise AssertionError(f"order {cid} refused for a minute")


def _wait_up(routers) -> None:
    deadline = time.monotonic() + 10
    while not all(r.router.up(0) and r.router.up(1) for r in routers):
        assert time.monotonic() < deadline, "the routers never heard both shards"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_jetstream_shard_fails_over_behind_the_router(tmp_path, nats_cluster):
    path, path2 = _write(tmp_path, nats_cluster)
    leader = start_shard(path, "a")
    standby = b = mm = retail = None
    routers = []
    try:
        standby = GatewayProcess(path, tmp_path / "shard-a-standby.log", shard="a", replica=1, standby=True)
        b = start_shard(path, "b")
        routers = [RouterThread(path), RouterThread(path2)]
        fronts = [r.router.endpoints[0] for r in routers]
        mm = Client(fronts, _keys(tmp_path, "mm"), timeout=1.0, failover_s=60.0)
        retail = Client(fronts, _keys(tmp_path, "retail"), timeout=1.0, failover_s=60.0)
        _wait_up(routers)
        mm.logon()
        retail.logon()
        acked: dict[int, object] = {}
        on_b: dict[int, object] = {}
        refused: list[int] = []
        cids = [mm.next_id() for _ in range(300)]
        for i, cid in enumerate(cids):
            if i == 100:
                mm.send([mm._requests.place(AMZN, Side.BUY, 10, PX - TICK, OrderType.LIMIT, TimeInForce.GTC,
                                            SelfTrade.CANCEL_NEWEST, cid, OWN_ACCOUNT)[0]])
                leader.kill()  # with that order in flight: sequenced or not, it must count once
            acked[cid] = _buy(mm, AMZN, PX - (1 + i % 50) * TICK, cid, refused)
            rid = retail.next_id()
            on_b[rid] = _buy(retail, TSLA, TSLA_PX - (1 + i % 50) * TICK, rid, refused)
        assert mm.failovers or refused, "the client never saw shard a without a leader"
        assert set(refused) <= set(acked), "shard b refused orders while a failed over"
        assert all(isinstance(r, (Ack, OrderFound)) for r in acked.values()), \
            [r for r in acked.values() if not isinstance(r, (Ack, OrderFound))][:3]
        assert all(isinstance(r, Ack) for r in on_b.values()), "shard b stopped while a failed over"
        standby.wait_ready(5)

        for client, sent in ((mm, acked), (retail, on_b)):
            counts: dict[int, int] = {}
            for order in client.open_orders().orders:
                counts[order.client_order_id] = counts.get(order.client_order_id, 0) + 1
            assert set(counts) == set(sent), "an acknowledged order was lost (or an unacknowledged one appeared)"
            assert set(counts.values()) == {1}, "an order was applied twice"

        # mm's session on the new leader is logged on as mm again (by the router, or by mm's
        # client if it timed out): a fill of mm's resting order there reaches mm.
        with Client(fronts[0], _keys(tmp_path, "ops"), timeout=5.0) as ops:
            rebalance(ops, B, A, RETAIL, USDC, 1_000 * UNIT)
        mm.poll_events(0.2)
        sell = mm.place(AMZN, Side.SELL, 10, PX + TICK)
        assert isinstance(sell, Ack)
        assert isinstance(_buy(retail, AMZN, PX + TICK, retail.next_id(), refused), Ack)
        deadline = time.monotonic() + 10
        fills: list = []
        while not fills and time.monotonic() < deadline:
            fills = [e for e in mm.poll_events(0.2) if isinstance(e, Fill) and e.order_id == sell.order_id]
        assert fills, "the maker's fill on the new leader did not reach it through the router"

        with Client(standby.orders, _keys(tmp_path, "ops"), timeout=5.0) as ops:
            status = ops.status()
        out = subprocess.run([sys.executable, "-m", "engine", "replay", "--jetstream", ",".join(nats_cluster.urls),
                              "--stream", STREAM, "--json"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        replayed = json.loads(out.stdout)
        assert (replayed["last_seq"], replayed["state_hash"]) == (status.last_seq, status.state_hash)
    finally:
        for client in (mm, retail):
            if client is not None:
                client.close()
        for router in routers:
            router.stop()
        for gateway in (standby, b):
            if gateway is not None:
                gateway.stop()
        leader.kill()
