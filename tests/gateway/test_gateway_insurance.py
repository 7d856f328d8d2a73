"""The insurance pool through a real gateway process: GetInsurance answers the
pool's balances and the waterfall's totals (NO_POOLS on a venue without pools),
SweepFees is an operator's and moves the insurance pool's share of fees, the
journal keeps the FEES_SWEPT payment (settlement's input) and a restart
rebuilds the same state; bad [pools] sections are named."""

from __future__ import annotations

import pytest
from gateway_harness import ACCOUNTS, AMZN, PX, USDC, write_venue

from engine.config import ConfigError, decode_venue, encode_venue, load_config
from engine.core.types import EventKind, Side
from engine.core.types import Reject as Code
from engine.gateway.process import GatewayProcess
from engine.journal import FileJournal
from engine.schemas import Ack, GatewayReject, Reject
from engine.schemas_insurance import FeesSwept, Insurance
from engine.venue import build_engine

POOLS = {"insurance_account": ACCOUNTS["fund"], "main_account": ACCOUNTS["poor"],
         "insurance": {"fee_share_bps": 5_000, "penalty_bps": 50}}


def test_a_venue_without_pools_refuses_the_insurance_requests_clearly(tmp_path, keys, clients):
    path = write_venue(tmp_path, keys)
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        ops = clients(gw, "ops")
        reply = ops.insurance()
        assert isinstance(reply, Reject) and reply.code == GatewayReject.NO_POOLS and "[pools]" in reply.text
        reply = ops.sweep_fees(USDC)
        assert isinstance(reply, Reject) and reply.code == Code.POOLS_NOT_SET


def test_the_insurance_pool_is_queried_and_swept_through_the_gateway(tmp_path, keys, clients):
    path = write_venue(tmp_path, keys, pools=POOLS)
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        ops, mm, trader = (clients(gw, n) for n in ("ops", "mm", "retail"))
        assert isinstance(mm.place(AMZN, Side.SELL, 10_000, PX), Ack)
        assert isinstance(trader.place(AMZN, Side.BUY, 10_000, PX), Ack)
        pool = trader.insurance()                       # anyone may look
        assert isinstance(pool, Insurance)
        assert (pool.insurance_account, pool.main_account) == (ACCOUNTS["fund"], ACCOUNTS["poor"])
        due = pool.balances[USDC].fees_due
        assert due > 0 and pool.steps == [] and pool.penalties_held == []
        denied = trader.sweep_fees(USDC)
        assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED
        bad = ops.sweep_fees(99)
        assert isinstance(bad, Reject) and bad.code == Code.UNKNOWN_ASSET
        swept = ops.sweep_fees(USDC)
        assert isinstance(swept, FeesSwept) and (swept.asset, swept.amount) == (USDC, due)
        again = ops.sweep_fees(USDC)
        assert isinstance(again, Reject) and again.code == Code.NOTHING_TO_SWEEP
        after = ops.insurance()
        assert after.balances[USDC].total == pool.balances[USDC].total + due
        assert after.balances[USDC].fees_due == 0
        state = ops.status().state_hash

    with GatewayProcess(path, tmp_path / "gateway2.log") as gw:
        ops = clients(gw, "ops")
        assert ops.status().state_hash == state
        assert ops.insurance().balances[USDC].total == after.balances[USDC].total

    reader = FileJournal.open_reader(tmp_path / "journal")
    stored = [e for batch in reader.read() for e in batch.events if e["kind"] == EventKind.FEES_SWEPT]
    assert [(int(e["account"]), int(e["maker_account"]), int(e["qty"])) for e in stored] == [
        (0, ACCOUNTS["fund"], due)]


@pytest.mark.parametrize("pools, message", [
    ({"insurance_account": 99}, "insurance_account 99 is not a listed account"),
    ({"insurance_account": 0}, "insurance_account 0 is not a listed account"),       # the fee account
    ({"insurance_account": 3, "main_account": 3}, "must differ"),
    ({"insurance_account": 3, "main_account": 42}, "main_account 42"),
    ({"insurance_account": 3, "insurance": {"penalty_bps": 10_001}}, "penalty_bps"),
    ({"insurance_account": 3, "insurance": {"fee_share_bps": -1}}, "fee_share_bps"),
    ({"insurance_account": 3, "insurance": {"step_lots": -5}}, "step_lots"),
    ({"insurance_account": 3, "insurance": {"penalty": 5}}, "penalty"),
    ({"main_account": 4}, "insurance_account"),
])
def test_bad_pools_sections_are_named(tmp_path, keys, pools, message):
    path = write_venue(tmp_path, keys, pools=pools)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_the_pools_are_part_of_the_venue_definition(tmp_path, keys):
    config = load_config(write_venue(tmp_path, keys, pools=POOLS))
    assert config.venue.pools.insurance_account == ACCOUNTS["fund"]
    assert decode_venue(encode_venue(config.venue)) == config.venue
    engine = build_engine(config.venue)
    assert engine.insurance_state().main_account == ACCOUNTS["poor"]
    plain = load_config(write_venue(tmp_path / "plain", keys)).venue
    assert plain.pools is None and build_engine(plain).insurance_state() is None


def test_a_genesis_written_before_penalties_were_held_keeps_its_rule(tmp_path, keys):
    """A venue defined now holds a liquidation's penalty across its steps; the
    genesis of a venue defined before has no such field and replays by its rule
    (each command's penalty released at its end: tests/test_penalty_held.py)."""
    import msgspec

    config = load_config(write_venue(tmp_path, keys, pools=POOLS))
    assert config.venue.pools.hold_penalty
    old = msgspec.msgpack.decode(encode_venue(config.venue))
    del old["pools"]["hold_penalty"]
    spec = decode_venue(msgspec.msgpack.encode(old))
    assert not spec.pools.hold_penalty
    assert spec == msgspec.structs.replace(config.venue, pools=msgspec.structs.replace(config.venue.pools,
                                                                                       hold_penalty=False))
