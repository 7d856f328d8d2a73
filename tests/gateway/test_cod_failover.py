"""Cancel-on-disconnect survives the gateway, with real processes: the leader
of a replicated journal is killed (kill -9) with a hot standby on three
nats-servers, or a gateway on the file journal is killed and restarted. An
account whose cancel-on-disconnect session died with it and does not log on
again within the session timeout has its orders cancelled by the new gateway
(a journaled MASS_CANCEL, so the state hash still equals an offline replay);
an account whose client logs on again in time keeps its orders; an account
without cancel-on-disconnect is untouched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from gateway_harness import ACCOUNTS, AMZN, PX, TICK, UNLIMITED_RATES, client_keys, write_venue
from nats_harness import nats_cluster  # noqa: F401 - a fixture

from engine.client import Client
from engine.core.types import CommandKind, Side
from engine.gateway.process import GatewayProcess
from engine.journal import FileJournal
from engine.schemas import Ack

_SESSION = {"heartbeat_ms": 200, "timeout_ms": 3_000}  # the wait for a client to log on again
_WAIT_S = 60.0  # for a takeover or restart under load (the test waits on events, not on this)


def _venue(directory, keys, port: int, journal: dict):
    return write_venue(directory, keys, session=_SESSION,
                       endpoints={"orders": f"tcp://127.0.0.1:{port}", "market_data": "tcp://127.0.0.1:*"},
                       journal={"snapshot_every": 0, **journal},
                       gateway={"max_message_bytes": 65_536, "max_requests_per_message": 256, **UNLIMITED_RATES})


def _rest_orders(client: Client, n: int, offset: int) -> set[int]:
    acks = [client.place(AMZN, Side.BUY, 10, PX - (offset + k) * TICK) for k in range(n)]
    assert all(isinstance(a, Ack) for a in acks), acks
    return {a.order_id for a in acks}


def _resting(ops: Client, name: str) -> set[int]:
    return {o.order_id for o in ops.all_open_orders(account=ACCOUNTS[name])}


class Heartbeats(threading.Thread):
    """A client that keeps its session alive: a heartbeat every 100 ms, through
    the SDK, which logs on again as before by itself, after failing over to
    another endpoint or finding its connection made again to a restarted
    gateway. A heartbeat unanswered while the gateway is down is sent again."""

    def __init__(self, client: Client) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.client.heartbeat()
            except TimeoutError:
                continue


def _wait_cancelled(ops: Client, name: str, orders: set[int]) -> None:
    deadline = time.monotonic() + _WAIT_S
    while not _resting(ops, name).isdisjoint(orders):
        assert time.monotonic() < deadline, f"{name}'s orders were not cancelled after the takeover"
        time.sleep(0.2)


def _mass_cancelled(batches) -> list[tuple[int, int]]:
    """(seq, account) of the MASS_CANCEL commands of every instrument in the batches
    (in these tests only the gateway's cancel-on-disconnect sends them)."""
    out = []
    for batch in batches:
        c = batch.commands
        mine = (c["kind"] == CommandKind.MASS_CANCEL) & (c["instrument"] == -1)
        out += [(int(seq), int(account)) for seq, account in zip(c["seq"][mine], c["account"][mine])]
    return out


def _scenario(keys, start_gateway, crash, endpoints: list[str]) -> Client:
    """mm (cancel-on-disconnect) goes silent with the crash, retail (too) keeps
    its client heartbeating, fund (without) is silent: after the takeover mm's
    orders are cancelled, retail's and fund's stay. Returns an operator client
    of the new gateway."""
    mm = Client(endpoints[0], client_keys(keys, "mm"), timeout=5.0)
    retail = Client(endpoints, client_keys(keys, "retail"), timeout=0.5, failover_s=_WAIT_S)
    fund = Client(endpoints[0], client_keys(keys, "fund"), timeout=5.0)
    beats = Heartbeats(retail)
    try:
        assert mm.logon(cancel_on_disconnect=True).cancel_on_disconnect
        assert retail.logon(cancel_on_disconnect=True).cancel_on_disconnect
        assert not fund.logon().cancel_on_disconnect
        placed = {"mm": _rest_orders(mm, 3, 10), "retail": _rest_orders(retail, 2, 20),
                  "fund": _rest_orders(fund, 2, 30)}
        beats.start()
        time.sleep(0.5)  # the registry is written off the loop, within milliseconds of the Logons
        crash()
        start_gateway()
        ops = Client(endpoints, client_keys(keys, "ops"), timeout=2.0, failover_s=_WAIT_S)
        _wait_cancelled(ops, "mm", placed["mm"])
        # mm's cancel marks the end of the wait: the others were given the same time.
        assert placed["retail"] <= _resting(ops, "retail"), "retail logged on again in time but lost its orders"
        assert placed["fund"] <= _resting(ops, "fund"), "fund had no cancel-on-disconnect but lost its orders"
        assert beats.is_alive()
        return ops
    finally:
        beats.stop.set()
        beats.join(_WAIT_S)
        for client in (mm, retail, fund):
            client.close()


@pytest.mark.slow
def test_cod_orders_of_the_dead_leader_are_cancelled_by_the_standby(tmp_path, keys, nats_cluster):
    from engine.journal_jetstream import JetStreamJournal
    from engine.tools.nats_cluster import free_port

    ports = [free_port(), free_port()]
    journal = {"kind": "jetstream", "servers": nats_cluster.urls, "stream": "codfail", "lease_ms": 1500,
               "ack_timeout_ms": 2000, "path": str(tmp_path / "unused")}
    leader = GatewayProcess(_venue(tmp_path / "a", keys, ports[0], journal), tmp_path / "a.log")
    standby = GatewayProcess(_venue(tmp_path / "b", keys, ports[1], journal), tmp_path / "b.log", standby=True)
    endpoints = [f"tcp://127.0.0.1:{port}" for port in ports]
    ops = None
    try:
        ops = _scenario(keys, lambda: standby.wait_ready(_WAIT_S), leader.kill, endpoints)
        status = ops.status()
        out = subprocess.run([sys.executable, "-m", "engine", "replay", "--jetstream", ",".join(nats_cluster.urls),
                              "--stream", "codfail", "--json"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        replayed = json.loads(out.stdout)
        assert (replayed["last_seq"], replayed["state_hash"]) == (status.last_seq, status.state_hash)
        with JetStreamJournal.connect(nats_cluster.urls, "codfail", None) as reader:
            cancels = _mass_cancelled(reader.read(1))
        assert [account for _, account in cancels] == [ACCOUNTS["mm"]]
    finally:
        if ops is not None:
            ops.close()
        standby.stop()
        leader.kill()


@pytest.mark.slow
def test_cod_orders_are_cancelled_after_a_crash_and_restart_on_the_file_journal(tmp_path, keys):
    from engine.tools.nats_cluster import free_port

    port = free_port()
    config = _venue(tmp_path / "v", keys, port, {"kind": "file"})
    gateways = [GatewayProcess(config, tmp_path / "first.log")]
    ops = None
    try:
        ops = _scenario(keys, lambda: gateways.append(GatewayProcess(config, tmp_path / "second.log")),
                        gateways[0].kill, [f"tcp://127.0.0.1:{port}"])
        status = ops.status()
        out = subprocess.run([sys.executable, "-m", "engine", "replay", str(tmp_path / "v" / "journal"), "--json"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        replayed = json.loads(out.stdout)
        assert (replayed["last_seq"], replayed["state_hash"]) == (status.last_seq, status.state_hash)
        reader = FileJournal.open_reader(tmp_path / "v" / "journal")
        try:
            cancels = _mass_cancelled(reader.read(1))
        finally:
            reader.close()
        assert [account for _, account in cancels] == [ACCOUNTS["mm"]]
    finally:
        if ops is not None:
            ops.close()
        for gateway in gateways:
            gateway.kill()


@pytest.mark.slow
def test_a_deposed_leader_cannot_get_a_live_firms_orders_cancelled(tmp_path, keys, nats_cluster):
    """The leader stalls past its lease (SIGSTOP) with a Logon asking for
    cancel-on-disconnect waiting for it from fund, an account that the new
    leader serves without it. Awake, the old leader must not register fund: the
    next takeover would cancel fund's orders. It stops (exit code 3), the
    registry names only the account whose cancel-on-disconnect session is live,
    and after the new leader is killed in turn, the third gateway cancels only
    the silent cancel-on-disconnect account."""
    from engine.journal_jetstream import JetStreamJournal
    from engine.schemas import Logon
    from engine.tools.nats_cluster import free_port

    ports = [free_port() for _ in range(3)]
    journal = {"kind": "jetstream", "servers": nats_cluster.urls, "stream": "codfence", "lease_ms": 1500,
               "ack_timeout_ms": 2000, "path": str(tmp_path / "unused")}
    old = GatewayProcess(_venue(tmp_path / "a", keys, ports[0], journal), tmp_path / "a.log")
    new = GatewayProcess(_venue(tmp_path / "b", keys, ports[1], journal), tmp_path / "b.log", standby=True)
    third = None  # started once new leads, so that new is the one that takes over
    endpoints = [f"tcp://127.0.0.1:{port}" for port in ports]
    retail = Client(endpoints, client_keys(keys, "retail"), timeout=0.5, failover_s=_WAIT_S)
    to_old = Client(endpoints[0], client_keys(keys, "fund"), timeout=5.0)
    fund = mm = ops = None
    beats = Heartbeats(retail)

    def registered() -> list[int]:
        with JetStreamJournal.connect(nats_cluster.urls, "codfence", None) as reader:
            return json.loads(reader.call(reader.key_value("cod").get("accounts")).value)["accounts"]

    try:
        assert retail.logon(cancel_on_disconnect=True).cancel_on_disconnect
        kept = _rest_orders(retail, 2, 20)
        beats.start()
        to_old.heartbeat()  # connected: its next message reaches the old leader as soon as it runs
        os.kill(old.pid, signal.SIGSTOP)
        new.wait_ready(_WAIT_S)
        third = GatewayProcess(_venue(tmp_path / "c", keys, ports[2], journal), tmp_path / "c.log", standby=True)
        fund = Client(endpoints[1:], client_keys(keys, "fund"), timeout=2.0, failover_s=_WAIT_S)
        assert not fund.logon().cancel_on_disconnect
        funds = _rest_orders(fund, 2, 30)
        to_old.send([to_old._requests.by_request_id(Logon, True)[0]])
        assert registered() == [ACCOUNTS["retail"]]  # as the new leader took it over
        os.kill(old.pid, signal.SIGCONT)
        assert old.process.wait(_WAIT_S) == 3  # fenced
        assert registered() == [ACCOUNTS["retail"]]

        mm = Client(endpoints[1], client_keys(keys, "mm"), timeout=5.0)
        assert mm.logon(cancel_on_disconnect=True).cancel_on_disconnect
        silent = _rest_orders(mm, 2, 10)
        time.sleep(0.5)  # the registry is written off the loop, within milliseconds of the Logon
        new.kill()
        third.wait_ready(_WAIT_S)
        ops = Client(endpoints[2], client_keys(keys, "ops"), timeout=5.0)
        _wait_cancelled(ops, "mm", silent)
        assert funds <= _resting(ops, "fund"), "the deposed leader got fund's orders cancelled"
        assert kept <= _resting(ops, "retail")
    finally:
        beats.stop.set()
        beats.join(_WAIT_S)
        for client in (retail, to_old, fund, mm, ops):
            if client is not None:
                client.close()
        for gateway in filter(None, (old, new, third)):
            if gateway.process.poll() is None:
                os.kill(gateway.pid, signal.SIGCONT)
            gateway.kill()


@pytest.mark.slow
def test_a_client_logs_on_again_by_itself_when_its_gateway_restarted(tmp_path, keys):
    """A restart shorter than the client's timeout: the client's next request
    reaches the new gateway as if nothing happened, but that gateway knows no
    session of it. The SDK sees the connection made again and sends its Logon
    (with cancel-on-disconnect) first, so retail keeps its orders; mm, silent,
    marks the end of the wait."""
    from engine.schemas import Pong
    from engine.tools.nats_cluster import free_port

    port = free_port()
    config = _venue(tmp_path / "v", keys, port, {"kind": "file"})
    endpoint = f"tcp://127.0.0.1:{port}"
    gateways = [GatewayProcess(config, tmp_path / "first.log")]
    retail = Client(endpoint, client_keys(keys, "retail"), timeout=5.0)
    mm = Client(endpoint, client_keys(keys, "mm"), timeout=5.0)
    ops = None
    try:
        assert retail.logon(cancel_on_disconnect=True).cancel_on_disconnect
        assert mm.logon(cancel_on_disconnect=True).cancel_on_disconnect
        kept, silent = _rest_orders(retail, 2, 20), _rest_orders(mm, 2, 10)
        time.sleep(0.5)  # the registry is written off the loop, within milliseconds of the Logons
        gateways[0].kill()
        gateways.append(GatewayProcess(config, tmp_path / "second.log"))
        time.sleep(0.5)  # ZeroMQ connects again by itself (every 100 ms)
        ops = Client(endpoint, client_keys(keys, "ops"), timeout=5.0)
        deadline = time.monotonic() + _WAIT_S
        while not _resting(ops, "mm").isdisjoint(silent):
            assert isinstance(retail.heartbeat(), Pong)
            assert time.monotonic() < deadline, "mm's orders were not cancelled after the restart"
            time.sleep(0.1)
        assert kept <= _resting(ops, "retail")
    finally:
        for client in filter(None, (retail, mm, ops)):
            client.close()
        for gateway in gateways:
            gateway.kill()


@pytest.mark.slow
def test_the_async_client_logs_on_again_when_its_gateway_restarted(tmp_path, keys):
    """AsyncClient as Client above: after a restart its next request is preceded
    by its Logon, so retail keeps its orders; mm, silent, marks the end of the wait."""
    import asyncio

    from engine.client_async import AsyncClient
    from engine.tools.nats_cluster import free_port

    port = free_port()
    config = _venue(tmp_path / "v", keys, port, {"kind": "file"})
    endpoint = f"tcp://127.0.0.1:{port}"
    gateways = [GatewayProcess(config, tmp_path / "first.log")]
    mm = Client(endpoint, client_keys(keys, "mm"), timeout=5.0)

    async def restart_between_requests() -> tuple[set[int], set[int]]:
        async with AsyncClient(endpoint, client_keys(keys, "retail"), timeout=5.0) as retail:
            assert (await retail.logon(cancel_on_disconnect=True)).cancel_on_disconnect
            acks = [await retail.place(AMZN, Side.BUY, 10, PX - (20 + k) * TICK) for k in range(2)]
            assert all(isinstance(a, Ack) for a in acks), acks
            assert mm.logon(cancel_on_disconnect=True).cancel_on_disconnect
            silent = _rest_orders(mm, 2, 10)
            await asyncio.sleep(0.5)  # the registry is written off the loop, within milliseconds of the Logons
            gateways[0].kill()
            gateways.append(GatewayProcess(config, tmp_path / "second.log"))
            await asyncio.sleep(0.5)  # ZeroMQ connects again by itself
            with Client(endpoint, client_keys(keys, "ops"), timeout=5.0) as ops:
                deadline = time.monotonic() + _WAIT_S
                while not _resting(ops, "mm").isdisjoint(silent):
                    await retail.heartbeat()
                    assert time.monotonic() < deadline, "mm's orders were not cancelled after the restart"
                    await asyncio.sleep(0.1)
                return {a.order_id for a in acks}, _resting(ops, "retail")

    try:
        kept, resting = asyncio.run(restart_between_requests())
        assert kept <= resting
    finally:
        mm.close()
        for gateway in gateways:
            gateway.kill()
