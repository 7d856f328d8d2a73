"""Rebalancing an account's collateral between two real shard gateways through
the router: a crash between the debit and the credit is finished exactly once
(also after the destination shard restarts from its journal), racing
operators cannot apply a transfer twice or create collateral, and replayed or
forged legs are refused."""

from __future__ import annotations

import threading
import time

import pytest
from shards_harness import A, B, USDC, RouterThread, connect, start_shard, write_venue

from engine.client import Client, ClientKeys
from engine.core.transfers import transfer_id
from engine.core.types import Reject as CoreReject
from engine.rebalance import RebalanceError, finish_pending, main, rebalance
from engine.schemas import GatewayReject, Reject
from engine.schemas_shards import TransferLeg, TransferredIn, TransferredOut

RETAIL = 2          # home shard b, 100,000 USDC there
UNIT = 10**6


@pytest.fixture
def venue(tmp_path):
    path = write_venue(tmp_path)
    gateways = {"a": start_shard(path, "a"), "b": start_shard(path, "b")}
    router = RouterThread(path)
    deadline = time.monotonic() + 10
    while not (router.router.up(A) and router.router.up(B)):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield path, gateways, router
    router.stop()
    for gw in gateways.values():
        gw.stop()


def _direct(path, gw, name="ops") -> Client:
    keys = path.parent / "keys"
    return Client(gw.orders, ClientKeys.from_files(keys / f"{name}.key_secret", keys / "server.key"))


def _usdc(path, gw) -> int:
    with _direct(path, gw) as ops:
        return ops.balances(RETAIL).balances[USDC].total


def test_crash_between_the_steps_finished_exactly_once(venue):
    path, gateways, router = venue
    with connect(path, "ops") as ops:
        # the tool crashed after leg OUT: shard b debited, shard a not credited
        out = ops.transfer(TransferLeg.OUT, transfer_id(B, A, 1), RETAIL, USDC, 2_500 * UNIT)
        assert isinstance(out, TransferredOut)
    assert _usdc(path, gateways["b"]) == 97_500 * UNIT and _usdc(path, gateways["a"]) == 0
    # the destination shard crashes too, and comes back from its journal
    gateways["a"].kill()
    gateways["a"] = start_shard(path, "a")
    deadline = time.monotonic() + 10
    while not router.router.up(A):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    keys = path.parent / "keys" / "ops.key_secret"
    assert main(["--config", str(path), "--key", str(keys), "--resume"]) == 0
    assert main(["--config", str(path), "--key", str(keys), "--resume"]) == 0   # nothing left: no second credit
    assert _usdc(path, gateways["a"]) == 2_500 * UNIT and _usdc(path, gateways["b"]) == 97_500 * UNIT
    with connect(path, "ops") as ops:
        assert finish_pending(ops, B, A) is None
        # a replayed leg IN is refused, a forged later one too
        again = ops.transfer(TransferLeg.IN, transfer_id(B, A, 1), RETAIL, USDC, 2_500 * UNIT)
        assert isinstance(again, Reject) and again.code == CoreReject.TRANSFER_DUPLICATE
        forged = ops.transfer(TransferLeg.IN, transfer_id(B, A, 3), RETAIL, USDC, 10**6 * UNIT)
        assert isinstance(forged, Reject) and forged.code == CoreReject.TRANSFER_GAP
        # the next rebalance takes the next number; the router's merged balance is the sum
        done = rebalance(ops, A, B, RETAIL, USDC, 500 * UNIT)
        assert isinstance(done, TransferredIn) and done.transfer_id == transfer_id(A, B, 1)
        merged = ops.balances(RETAIL)
        assert merged.balances[USDC].total == 100_000 * UNIT
    assert _usdc(path, gateways["a"]) == 2_000 * UNIT and _usdc(path, gateways["b"]) == 98_000 * UNIT


def test_racing_operators_create_no_collateral(venue):
    path, gateways, _router = venue
    outcomes: list = []

    def race():
        with connect(path, "ops") as ops:
            for _ in range(5):
                try:
                    outcomes.append(rebalance(ops, B, A, RETAIL, USDC, 100 * UNIT))
                except RebalanceError as err:
                    outcomes.append(err)

    threads = [threading.Thread(target=race) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == 15
    with connect(path, "ops") as ops:
        finish_pending(ops, B, A)   # a transfer a racer left half done
        sent, got = ops.transfers(B), ops.transfers(A)
    moved = sent.out_last[A]
    # every transfer sent was credited once; nothing was credited that was not sent
    assert moved == got.in_last[B] >= sum(isinstance(o, TransferredIn) for o in outcomes) >= 1
    assert _usdc(path, gateways["a"]) == moved * 100 * UNIT
    assert _usdc(path, gateways["b"]) == 100_000 * UNIT - moved * 100 * UNIT
    # a client key cannot send a leg at all
    with connect(path, "retail") as retail:
        refused = retail.transfer(TransferLeg.IN, transfer_id(B, A, moved + 1), RETAIL, USDC, UNIT)
        assert isinstance(refused, Reject) and refused.code == GatewayReject.NOT_AUTHORIZED
