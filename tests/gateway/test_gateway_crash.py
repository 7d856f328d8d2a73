"""Crash recovery: kill -9 the gateway at random points under load, restart it,
and check that

* the recovered state hash equals an offline replay of the journal (from genesis,
  while the gateway itself recovers from its latest snapshot plus the tail);
* every acknowledged order is in the journal at its acknowledged seq and is
  present (resting with the right open quantity) or accounted for by its fills
  and cancels;
* no sequence number is reused: an ack's seq always names the same command;
* after a quiet kill, the hash after recovery equals the hash before the crash;
* a failed journal write or fdatasync (injected EIO / ENOSPC) stops the gateway
  with exit code 3, no acknowledgement is past the journal's durable mark, and
  the restarted gateway recovers every acknowledged order.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from gateway_harness import AMZN, PX, TICK, connect, write_venue
from journal_faults import ENV, SEGMENTS, SNAPSHOT_TEMPS, sitecustomize_source

from engine.config import decode_venue
from engine.venue import build_engine
from engine.core.records import COMMAND_DTYPE, EVENT_DTYPE
from engine.core.types import CommandKind, EventKind, Side
from engine.gateway.process import GatewayProcess
from engine.journal import FileJournal
from engine.schemas import Ack, Cancel, NewOrder

KILL_POINTS = 22
C_KIND, C_ACCOUNT, C_CID = (COMMAND_DTYPE.names.index(n) for n in ("kind", "account", "client_order_id"))
E_SEQ, E_OID, E_CID = (EVENT_DTYPE.names.index(n) for n in ("seq", "order_id", "client_order_id"))


class Load(threading.Thread):
    """One client sending batches of crossing orders and cancels, recording acks."""

    def __init__(self, endpoint: str, keys, name: str, seed: int, acks: list) -> None:
        super().__init__(daemon=True)
        self.client = connect(endpoint, keys, name, timeout=0.05)
        self.rng = random.Random(seed)
        self.acks = acks
        self.stop = threading.Event()
        self.resting: list[int] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                batch = [NewOrder(self.client.next_id(), AMZN, self.rng.choice((Side.BUY, Side.SELL)),
                                  10 * self.rng.randint(1, 10), PX + self.rng.randint(-4, 4) * TICK, stp=0)
                         for _ in range(self.rng.randint(1, 25))]
                if self.resting and self.rng.random() < 0.5:
                    batch.append(Cancel(self.client.next_id(), self.resting.pop(self.rng.randrange(len(self.resting)))))
                self.client.send(batch)
                try:
                    while True:
                        for reply in self.client.recv(0.005):
                            if isinstance(reply, Ack):
                                self.acks.append(reply)
                                self.resting.append(reply.order_id)
                except TimeoutError:
                    pass
        finally:
            self.client.close()


def _replay(journal_path):
    """Replay the whole journal offline: (engine, commands by seq, per-order fate)."""
    journal = FileJournal.open_reader(journal_path)
    engine = build_engine(decode_venue(journal.genesis))
    commands = {}
    fate = defaultdict(lambda: {"accepted": None, "filled": 0, "cancelled": 0})
    for batch in journal.read():
        for rec in batch.commands.tolist():
            commands[rec[0]] = rec
        events = engine.process(batch.commands)
        for ev in events[events["kind"] == EventKind.ACCEPTED].tolist():
            fate[ev[E_OID]]["accepted"] = ev
        fills = events[events["kind"] == EventKind.FILL]
        for oid, moid, qty in zip(fills["order_id"].tolist(), fills["maker_order_id"].tolist(),
                                  fills["qty"].tolist()):
            fate[oid]["filled"] += qty
            fate[moid]["filled"] += qty
        cancels = events[events["kind"] == EventKind.CANCELLED]
        for oid, qty in zip(cancels["order_id"].tolist(), cancels["qty"].tolist()):
            fate[oid]["cancelled"] += qty
    assert sorted(commands) == list(range(1, engine.last_seq + 1))  # contiguous, never reused
    return engine, commands, fate


def _check(gw, keys, journal_path, acks: list, seq_owner: dict) -> str:
    ops = connect(gw.orders, keys, "ops")
    try:
        status = ops.status()
    finally:
        ops.close()
    engine, commands, fate = _replay(journal_path)
    assert (status.last_seq, status.state_hash) == (engine.last_seq, engine.state_hash())
    for ack in acks:
        command = commands[ack.seq]
        kind, cid, account = command[C_KIND], command[C_CID], command[C_ACCOUNT]
        assert (kind, cid) == (CommandKind.NEW_ORDER, ack.client_order_id), f"seq {ack.seq} names another command"
        assert seq_owner.setdefault(ack.seq, cid) == cid, f"seq {ack.seq} reused"
        accepted = fate[ack.order_id]["accepted"]
        assert accepted is not None and accepted[E_SEQ] == ack.seq and accepted[E_CID] == cid
        resting = engine.order(ack.order_id)
        done = fate[ack.order_id]["filled"] + fate[ack.order_id]["cancelled"]
        if resting is not None:
            assert resting.leaves == ack.qty - fate[ack.order_id]["filled"]
            assert resting.account == account
        else:
            assert done == ack.qty, f"order {ack.order_id}: {done} of {ack.qty} accounted for"
    return status.state_hash


def test_kill_minus_nine_under_load(tmp_path, keys):
    config = write_venue(tmp_path, keys, journal={"snapshot_every": 300, "snapshot_min_interval_s": 0})
    journal_path = tmp_path / "journal"
    log = tmp_path / "gateway.log"
    rng = random.Random(20240601)
    acks: list[Ack] = []
    seq_owner: dict[int, int] = {}
    gw = GatewayProcess(config, log)
    try:
        for point in range(KILL_POINTS):
            _check(gw, keys, journal_path, acks, seq_owner)
            loads = [Load(gw.orders, keys, name, rng.random(), acks) for name in ("mm", "retail")]
            for load in loads:
                load.start()
            quiet = point % 5 == 4
            time.sleep(rng.uniform(0.05, 0.4))
            if quiet:  # stop the load, take the hash, then crash
                for load in loads:
                    load.stop.set()
                    load.join()
                before = _check(gw, keys, journal_path, acks, seq_owner)
            gw.kill()
            for load in loads:
                load.stop.set()
                load.join()
            gw = GatewayProcess(config, log)
            if quiet:
                assert _check(gw, keys, journal_path, acks, seq_owner) == before
        _check(gw, keys, journal_path, acks, seq_owner)
    finally:
        gw.kill()
    assert len(acks) > 100  # the kills happened under load
    recoveries = re.findall(r"recovered seq (\d+) .*\(snapshot at (\d+)", log.read_text())
    assert len(recoveries) == KILL_POINTS + 1
    assert any(int(snap) > 0 for _seq, snap in recoveries)  # snapshot + tail recovery was exercised


def _orders(client, n: int, rng: random.Random) -> list[NewOrder]:
    return [NewOrder(client.next_id(), AMZN, rng.choice((Side.BUY, Side.SELL)), 10 * rng.randint(1, 5),
                     PX + rng.randint(-3, 3) * TICK, stp=0) for _ in range(n)]


def _collect_acks(client, acks: list, quiet: float) -> None:
    """Add every Ack that arrives until `quiet` seconds pass without a reply."""
    try:
        while True:
            acks.extend(r for r in client.recv(quiet) if isinstance(r, Ack))
    except TimeoutError:
        pass


@pytest.mark.parametrize(("function", "code", "files"), [
    ("fdatasync", "EIO", SEGMENTS), ("fdatasync", "ENOSPC", SEGMENTS), ("write", "ENOSPC", SEGMENTS),
    ("fsync", "ENOSPC", SNAPSHOT_TEMPS)])
def test_a_journal_failure_stops_the_gateway_and_no_ack_is_lost(tmp_path, keys, monkeypatch, function, code, files):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(sitecustomize_source())
    disk_fails = tmp_path / "disk-fails"  # the fault is armed once this file exists
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), str(Path(__file__).parent)]))
    monkeypatch.setenv(ENV, f"{function}:{code}:{files}:{disk_fails}")
    config = write_venue(tmp_path, keys, journal={"snapshot_every": 1, "snapshot_min_interval_s": 0})
    journal_path, log = tmp_path / "journal", tmp_path / "gateway.log"
    rng = random.Random(11)
    acks: list[Ack] = []
    gw = GatewayProcess(config, log)
    try:
        client = connect(gw.orders, keys, "mm")
        for _ in range(5):
            client.send(_orders(client, 10, rng))
            _collect_acks(client, acks, 0.3)
        assert len(acks) == 50
        disk_fails.touch()
        refused = _orders(client, 10, rng)
        client.send(refused)
        assert gw.process.wait(timeout=30) == 3  # stopped by itself, with the journal failure's code
        _collect_acks(client, acks, 0.5)
        client.close()
    finally:
        gw.kill()
    durable = int.from_bytes((journal_path / "durable").read_bytes()[:8], "little")
    assert max(ack.seq for ack in acks) <= durable
    if files == SEGMENTS:  # (a batch whose snapshot failed is durable: its acks may have left)
        assert not {o.client_order_id for o in refused} & {ack.client_order_id for ack in acks}
    assert "journal failure: stopping" in log.read_text()
    disk_fails.unlink()
    gw = GatewayProcess(config, log)
    try:
        _check(gw, keys, journal_path, acks, {})
    finally:
        gw.stop()
