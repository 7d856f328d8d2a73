"""Collateral transfers between shards in the core: each transfer id applies
once and in order per pair of shards, leg OUT is a withdrawal (free balance,
margin, frozen accounts), and the counters survive a snapshot."""

from __future__ import annotations

import pytest

from engine.assets import AssetSpec
from engine.core.matcher import MatchingEngine
from engine.core.transfers import transfer_id, transfer_route
from engine.core.types import EventKind, Reject

USDC = 0


def _engine() -> MatchingEngine:
    engine = MatchingEngine(16, 1_000, True, 0)
    engine.add_asset(AssetSpec(symbol="USDC", decimals=6, ledger_decimals=6))
    engine.open_account(1)
    engine.credit(1, USDC, 1_000)
    return engine


def _reason(events) -> int:
    assert len(events) == 1 and events[0].kind == EventKind.REJECTED
    return events[0].reason


def test_transfer_ids():
    tid = transfer_id(2, 5, 7)
    assert transfer_route(tid) == (2, 5, 7)
    for bad in ((1, 1, 1), (16, 0, 1), (0, 1, 0), (0, 1, 1 << 40)):
        with pytest.raises(ValueError):
            transfer_id(*bad)
    with pytest.raises(ValueError, match="not a transfer id"):
        transfer_route(5)


def test_each_id_once_and_in_order():
    engine = _engine()
    first = transfer_id(0, 1, 1)
    (out,) = engine.transfer_out(first, 1, USDC, 300)
    assert out.kind == EventKind.TRANSFERRED_OUT and out.order_id == first and out.leaves == 700
    assert _reason(engine.transfer_out(first, 1, USDC, 300)) == Reject.TRANSFER_DUPLICATE
    assert _reason(engine.transfer_out(transfer_id(0, 1, 3), 1, USDC, 1)) == Reject.TRANSFER_GAP
    assert _reason(engine.transfer_out(12345, 1, USDC, 1)) == Reject.INVALID_TRANSFER
    # another destination has its own numbers
    assert engine.transfer_out(transfer_id(0, 2, 1), 1, USDC, 100)[0].kind == EventKind.TRANSFERRED_OUT
    # incoming: per source shard
    (got,) = engine.transfer_in(transfer_id(3, 0, 1), 1, USDC, 50)
    assert got.kind == EventKind.TRANSFERRED_IN and got.leaves == 650
    assert _reason(engine.transfer_in(transfer_id(3, 0, 1), 1, USDC, 50)) == Reject.TRANSFER_DUPLICATE
    assert _reason(engine.transfer_in(transfer_id(3, 0, 3), 1, USDC, 50)) == Reject.TRANSFER_GAP
    out_last, in_last, sent = engine.transfers()
    assert out_last[1] == 1 and out_last[2] == 1 and in_last[3] == 1
    assert sent[1] == (1, USDC, 300) and sent[2] == (1, USDC, 100)
    assert engine.balances(1)[USDC] == (650, 0)
    engine.check_integrity()


def test_refused_out_changes_nothing():
    engine = _engine()
    before = engine.balances(1), engine.transfers()
    tid = transfer_id(0, 1, 1)
    assert _reason(engine.transfer_out(tid, 1, USDC, 1_001)) == Reject.INSUFFICIENT_BALANCE
    assert _reason(engine.transfer_out(tid, 1, USDC, 0)) == Reject.INVALID_AMOUNT
    assert _reason(engine.transfer_out(tid, 9, USDC, 1)) == Reject.UNKNOWN_ACCOUNT
    assert _reason(engine.transfer_out(tid, 1, 4, 1)) == Reject.UNKNOWN_ASSET
    engine.freeze_account(1)
    assert _reason(engine.transfer_out(tid, 1, USDC, 1)) == Reject.ACCOUNT_IS_FROZEN
    # nothing moved and the refused id is still the next one: nothing was counted
    assert (engine.balances(1), engine.transfers()) == before


def test_snapshot_and_hash():
    unused = _engine()
    assert MatchingEngine.from_snapshot(unused.snapshot()).state_hash() == unused.state_hash()
    engine = _engine()
    engine.transfer_out(transfer_id(0, 1, 1), 1, USDC, 10)
    engine.transfer_in(transfer_id(1, 0, 1), 1, USDC, 10)
    # same balances as the unused engine, but the counters are state
    assert engine.balances(1) == unused.balances(1) and engine.state_hash() != unused.state_hash()
    restored = MatchingEngine.from_snapshot(engine.snapshot())
    assert restored.state_hash() == engine.state_hash() and restored.transfers() == engine.transfers()
    assert _reason(restored.transfer_out(transfer_id(0, 1, 1), 1, USDC, 10)) == Reject.TRANSFER_DUPLICATE
