"""``python -m bench gateway --journal jetstream [--failovers N]``: the gateway on
the replicated journal beside the local file journal, and failover times.

In one run, on one three-server JetStream cluster on loopback
(engine/tools/nats_cluster.py) and the same venue as ``bench gateway``, over TCP:

* **throughput and round trip per journal**: ``file_fsync_*`` (fdatasync per
  batch, the default), ``file_nofsync_*`` (no fsync) and ``jetstream_*`` (each
  batch acknowledged by a quorum of the three servers, which write it to their
  own files without fsync, JetStream's default): sustained orders/s at
  saturation (``*_orders_per_s``) and round trip p50/p99/p99.9 at each offered
  rate (``*_rtt_p99_us_50000`` ...), measured as bench/gateway.py measures them.
* **failover** (``failover_ms_*``): a leader gateway and a hot standby on the
  stream; one client places orders one after another through the SDK, which
  knows both endpoints; the leader is killed (SIGKILL) and the time from the
  last acknowledgement before the kill to the first one after is recorded. The
  killed gateway is started again as the standby, and so on, ``--failovers``
  times. The lease is ``LEASE_MS``; the client's timeout ``CLIENT_TIMEOUT_S``.
  Afterwards every acknowledged order must rest exactly once on the last
  leader: ``acked_orders_lost`` and ``acked_orders_doubled`` count those that do not.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from bench.gateway import Plan, measure_rtt, measure_throughput, write_venue
from engine.client import Client, ClientKeys
from engine.core.types import SelfTrade, Side
from engine.gateway.process import GatewayProcess
from engine.schemas import Ack
from engine.schemas_replication import OrderFound
from engine.tools.nats_cluster import NatsCluster, free_port

LEASE_MS = 1500
CLIENT_TIMEOUT_S = 0.25
_STEADY_S = 0.3        # orders acknowledged before each kill
_MID, _TICK = 1_850_000, 100


def _jetstream(cluster: NatsCluster, stream: str) -> dict:
    return {"kind": "jetstream", "servers": cluster.urls, "stream": stream, "lease_ms": LEASE_MS,
            "ack_timeout_ms": 2000, "snapshot_every": 0}


def _journals(cluster: NatsCluster) -> list[tuple[str, str, dict | None]]:
    """(key prefix, fsync, [journal] section) of the compared journals."""
    return [("file_fsync", "batch", None), ("file_nofsync", "none", None),
            ("jetstream", "none", _jetstream(cluster, "bench"))]


def measure_journals(plan: Plan, directory: Path, cluster: NatsCluster, log) -> dict:
    """Throughput and round trips of the gateway on each journal."""
    results: dict = {}
    for prefix, fsync, journal in _journals(cluster):
        config = write_venue(directory, "tcp", plan.clients, fsync, journal=journal, name=f"venue-{prefix}.toml")
        with GatewayProcess(config, directory / f"gateway-{prefix}.log") as gw:
            tput = measure_throughput(gw, directory, plan)
            results[f"{prefix}_orders_per_s"] = round(tput["orders_per_s"])
            log(f"  {prefix}: {tput['orders_per_s']:,.0f} orders/s at saturation")
            for rate in plan.rates:
                r = measure_rtt(gw, directory, plan, rate)
                for name in ("p50", "p99", "p999"):
                    results[f"{prefix}_rtt_{name}_us_{rate}"] = r[name]
                results[f"{prefix}_rtt_rate_achieved_{rate}"] = round(r["rate_achieved"])
                results[f"{prefix}_rtt_lost_{rate}"] = r["lost"]
                log(f"  {prefix} {rate:,}/s offered: p50 {r['p50']} us, p99 {r['p99']} us, p99.9 {r['p999']} us "
                    f"({r['rate_achieved']:,.0f}/s acked, {r['lost']} unanswered)")
    return results


def measure_failovers(count: int, directory: Path, cluster: NatsCluster, log) -> dict:
    """Kill the leader ``count`` times under a stream of orders; failover times and
    whether every acknowledged order rests exactly once afterwards."""
    ports = [free_port(), free_port()]
    configs = [write_venue(directory, "tcp", 1, "none", journal=_jetstream(cluster, "failover"),
                           orders_endpoint=f"tcp://127.0.0.1:{port}", name=f"venue-failover-{i}.toml")
               for i, port in enumerate(ports)]
    logs = [directory / f"failover-{i}.log" for i in range(2)]
    gateways = [GatewayProcess(configs[0], logs[0]), GatewayProcess(configs[1], logs[1], standby=True)]
    leader = 0
    keys = directory / "keys"
    client = Client([f"tcp://127.0.0.1:{port}" for port in ports],
                    ClientKeys.from_files(keys / "c0.key_secret", keys / "server.key"),
                    timeout=CLIENT_TIMEOUT_S, failover_s=120.0)
    acked: set[int] = set()
    times_ms: list[float] = []
    i = 0

    def place() -> float | None:
        nonlocal i
        i += 1
        cid = client.next_id()
        reply = client.place(0, Side.BUY, 10, _MID - (1 + i % 200) * _TICK, client_order_id=cid,
                             stp=SelfTrade.STP_NONE)
        if isinstance(reply, (Ack, OrderFound)):
            acked.add(cid)
            return time.monotonic()
        return None

    try:
        client.logon()
        for kill in range(count):
            steady_until = time.monotonic() + _STEADY_S
            last_ack = None
            while time.monotonic() < steady_until:
                last_ack = place() or last_ack
            gateways[leader].kill()
            first_ack = None
            while first_ack is None:
                first_ack = place()
            times_ms.append((first_ack - last_ack) * 1000)
            log(f"  failover {kill + 1}/{count}: {times_ms[-1]:,.0f} ms")
            gateways[1 - leader].wait_ready(10)
            gateways[leader] = GatewayProcess(configs[leader], logs[leader], standby=True)
            leader = 1 - leader
        resting: dict[int, int] = {}
        for order in client.all_open_orders():
            resting[order.client_order_id] = resting.get(order.client_order_id, 0) + 1
    finally:
        client.close()
        for gw in gateways:
            gw.kill()
    return {"failovers": count, "failover_lease_ms": LEASE_MS, "failover_client_timeout_ms": CLIENT_TIMEOUT_S * 1000,
            "failover_ms_p50": round(statistics.median(times_ms)) if times_ms else None,
            "failover_ms_max": round(max(times_ms)) if times_ms else None,
            "failover_ms_min": round(min(times_ms)) if times_ms else None,
            "failover_acked_orders": len(acked),
            "acked_orders_lost": len(acked - set(resting)),
            "acked_orders_doubled": sum(1 for n in resting.values() if n > 1)}


def run_replication_bench(plan: Plan, failovers: int, log=print) -> dict:
    """Every measurement; returns the flat results dict."""
    results: dict = {"gateway_clients": plan.clients, "gateway_batch_orders": plan.batch,
                     "gateway_duration_s": plan.duration, "gateway_rtt_duration_s": plan.rtt_duration,
                     "jetstream_servers": 3, "jetstream_replicas": 3}
    with tempfile.TemporaryDirectory(prefix="bench-replication-") as tmp:
        directory = Path(tmp)
        with NatsCluster(directory / "nats") as cluster:
            log("journals: throughput and round trip over TCP")
            results.update(measure_journals(plan, directory, cluster, log))
            if failovers:
                log(f"failover: {failovers} leader kills, lease {LEASE_MS} ms")
                results.update(measure_failovers(failovers, directory, cluster, log))
    try:
        from bench.core import machine

        results.update(machine())
    except ImportError:
        pass
    return results
