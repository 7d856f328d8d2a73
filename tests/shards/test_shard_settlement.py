"""Settlement of two shards' journals merged into one batch sequence on the
embedded chain: trades on both shards, a rebalance and a withdrawal that spends
the collateral moved in; after settlement each wallet's on-chain balance equals
the sum of its shard ledgers; a merge restarted after a crash mid-segment merges
every record exactly once. Each runs with two file shards and with shard a on
a JetStream stream (three nats-servers) beside file shard b."""

from __future__ import annotations

import time
import uuid

import msgspec
import numpy as np
import pytest
from nats_harness import nats_cluster  # noqa: F401 - a fixture
from shards_harness import (A, AMZN, B, PX, TSLA, TSLA_PX, TSLAX, USDC, RouterThread, connect, shards_doc,
                            start_shard, write_venue)

from engine.client import Client, ClientKeys
from engine.config import to_toml
from engine.core.types import Side
from engine.rebalance import rebalance
from engine.schemas import Ack, Debited
from engine.shards import load_shards, shard_config
from settlement.__main__ import _parser as settlement_parser, _source as settlement_source
from settlement.accounts import dev_address_book, dev_private_key
from settlement.chain import ChainClient, connect as chain_connect, fund_dev_account
from settlement.job import JobError, SettlementJob
from settlement.shard_merge import ShardMerge
from settlement.vault import Vault, deploy, revert_decoder

ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY = -1, -2, -3
MM, RETAIL = 1, 2
UNIT = 10**6
GENESIS = {(MM, 0): 1_000_000, (MM, 1): 1_000, (MM, 2): 1_000, (MM, 3): 1_000, (RETAIL, 0): 100_000}
"""The venue's opening credits (tokens), deposited on chain too."""


@pytest.fixture(params=["file", "stream"])
def traded(request, tmp_path):
    """A sharded venue after trading on both shards, a rebalance each way and a
    withdrawal; the gateways stopped. (shards path, {(account, asset): sum of shard totals})
    With "stream", shard a journals to a JetStream stream on three servers, shard b to a file."""
    path = write_venue(tmp_path)
    if request.param == "stream":
        cluster = request.getfixturevalue("nats_cluster")
        doc = shards_doc(tmp_path / "journals")
        doc["shards"][0].update(journal_kind="jetstream", stream=f"settle-{uuid.uuid4().hex[:12]}",
                                servers=cluster.urls, journal="")
        path.write_text(to_toml(doc))
    gateways = [start_shard(path, "a"), start_shard(path, "b")]
    router = RouterThread(path)
    try:
        deadline = time.monotonic() + 10
        while not (router.router.up(A) and router.router.up(B)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with connect(path, "ops") as ops, connect(path, "mm") as mm, connect(path, "retail") as retail:
            rebalance(ops, A, B, MM, TSLAX, 300 * UNIT)           # mm's TSLA.M to shard b
            rebalance(ops, B, A, RETAIL, USDC, 20_000 * UNIT)     # retail's USDC to shard a
            assert isinstance(mm.place(AMZN, Side.SELL, 5_000, PX), Ack)
            assert isinstance(retail.place(AMZN, Side.BUY, 2_000, PX), Ack)        # fill on a
            assert isinstance(mm.place(TSLA, Side.SELL, 4_000, TSLA_PX), Ack)
            assert isinstance(retail.place(TSLA, Side.BUY, 1_000, TSLA_PX), Ack)   # fill on b
            rebalance(ops, A, B, RETAIL, 1, 2 * UNIT)             # the AMZNX bought on a, to b
            withdrawal = retail.debit(RETAIL, 1, UNIT)            # withdrawn from b (its home)
            assert isinstance(withdrawal, Debited)
        ledgers = {}
        keys = path.parent / "keys"
        for gw in gateways:
            with Client(gw.orders, ClientKeys.from_files(keys / "ops.key_secret", keys / "server.key")) as ops:
                for account in (0, MM, RETAIL):
                    for asset, row in enumerate(ops.balances(account).balances):
                        ledgers[(account, asset)] = ledgers.get((account, asset), 0) + row.total
    finally:
        router.stop()
        for gw in gateways:
            gw.stop()
    return path, ledgers


_opened: list[ShardMerge] = []


@pytest.fixture(autouse=True)
def _close_merges():
    """Close the merges a test opened (a stream shard's holds a NATS connection)."""
    yield
    while _opened:
        _opened.pop().close()


def _merge(path, out_dir, **options) -> ShardMerge:
    _opened.append(ShardMerge.open(path, out_dir, **options))
    return _opened[-1]


def test_two_shards_settle_as_one_sequence(traded, tmp_path):
    path, ledgers = traded
    merge = _merge(path, tmp_path / "merged", max_records=2)
    assert merge.step() == 3          # a fill on each shard, the withdrawal on b
    fills, withdrawals = merge.out.read(0, 100)
    assert len(fills) == 2 and len(withdrawals) == 1
    ids = np.sort(np.concatenate([fills["fill_id"], withdrawals["withdrawal_id"]]))
    assert ids.tolist() == [1, 2, 3]
    assert merge.step() == 0          # nothing new: exactly once

    w3 = chain_connect()
    for key_id in (ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY, 0, MM, RETAIL):
        fund_dev_account(w3, ChainClient(w3, dev_private_key(key_id)).address, 10**21)
    admin = ChainClient(w3, dev_private_key(ADMIN_KEY), decoder=revert_decoder())
    assets = dict(enumerate(load_shards(path).venue.venue.assets))
    deployment = deploy(admin, operator=ChainClient(w3, dev_private_key(OPERATOR_KEY)).address,
                        guardian=ChainClient(w3, dev_private_key(GUARDIAN_KEY)).address,
                        exit_window=24 * 3600, challenge_window=0, assets=assets)
    vault = Vault(w3, deployment.vault)
    book = dev_address_book([0, MM, RETAIL])
    for (account, asset), tokens in GENESIS.items():
        user = ChainClient(w3, dev_private_key(account), decoder=revert_decoder())
        amount = tokens * UNIT * deployment.scale(asset)
        token = vault.token(deployment.assets[asset]["token"])
        user.transact(token.functions.mint(user.address, amount))
        user.transact(token.functions.approve(vault.address, amount))
        user.transact(vault.contract.functions.deposit(asset, amount))
    operator = ChainClient(w3, dev_private_key(OPERATOR_KEY), decoder=revert_decoder(), receipt_timeout=60)
    job = SettlementJob(merge.out, operator, vault, book, tmp_path / "job", max_records=2, max_wait=0.0)
    settled = []
    while (batch := job.step()) is not None:
        settled.append(batch)
    assert settled == [1, 2]
    for (account, asset), total in ledgers.items():
        on_chain, claimable = vault.balance(book.wallet(account), asset)
        withdrawn = UNIT if (account, asset) == (RETAIL, 1) else 0
        assert (on_chain, claimable) == (total, withdrawn), (account, asset)


def test_merge_restart_after_crash_merges_once(traded, tmp_path):
    path, _ledgers = traded
    clean = _merge(path, tmp_path / "clean", max_records=1)
    clean.step()
    expected = clean.out.read(0, 100)

    crashing = _merge(path, tmp_path / "crashed", max_records=1)
    appended = []

    def crash_on_second(fills=None, withdrawals=None, freezes=None):
        appended.append(1)
        if len(appended) == 2:
            raise OSError("crash after the segment was written ahead, before its records")
        type(crashing.out).append(crashing.out, fills, withdrawals, freezes)

    crashing.out.append = crash_on_second
    with pytest.raises(OSError, match="crash"):
        crashing.step()
    assert crashing.state["intent"] is not None
    resumed = _merge(path, tmp_path / "crashed", max_records=1)
    assert resumed.step() > 0
    assert resumed.step() == 0
    got = resumed.out.read(0, 100)
    for have, want in zip(got, expected):
        assert have.tobytes() == want.tobytes()
    assert resumed.positions == clean.positions


def test_merge_orders_spending_after_the_fill_that_funded_it(tmp_path):
    """Shard b's fill gives retail TSLA.M, a transfer moves it to shard a, and
    shard a pays it out: a comes first in each round, but its withdrawal is
    merged after b's fill (the vault would refuse it before)."""
    path = write_venue(tmp_path)
    gateways = [start_shard(path, "a"), start_shard(path, "b")]
    router = RouterThread(path)
    try:
        deadline = time.monotonic() + 10
        while not (router.router.up(A) and router.router.up(B)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with connect(path, "ops") as ops, connect(path, "mm") as mm, connect(path, "retail") as retail:
            rebalance(ops, A, B, MM, TSLAX, 100 * UNIT)
            assert isinstance(mm.place(TSLA, Side.SELL, 1_000, TSLA_PX), Ack)
            assert isinstance(retail.place(TSLA, Side.BUY, 1_000, TSLA_PX), Ack)   # retail gets 1 TSLA.M on b
            rebalance(ops, B, A, RETAIL, TSLAX, UNIT)
        keys = path.parent / "keys"
        with Client(gateways[A].orders, ClientKeys.from_files(keys / "ops.key_secret", keys / "server.key")) as ops:
            assert isinstance(ops.debit(RETAIL, TSLAX, UNIT), Debited)       # paid out on shard a
    finally:
        router.stop()
        for gw in gateways:
            gw.stop()
    merge = _merge(path, tmp_path / "merged", max_records=1)
    assert merge.step() == 2
    fills, withdrawals = merge.out.read(0, 10)
    assert len(fills) == 1 and len(withdrawals) == 1
    assert fills["buyer"][0] == RETAIL and withdrawals["account"][0] == RETAIL
    assert fills["fill_id"][0] < withdrawals["withdrawal_id"][0]


def test_settlement_command_line_reads_the_merge(traded, tmp_path):
    """`python -m settlement run --shards shards.toml --merged DIR` settles the
    merge: its source merges on each read, in the order ShardMerge.step gives."""
    path, _ledgers = traded
    expected = _merge(path, tmp_path / "direct", max_records=2)
    expected.step()
    args = settlement_parser().parse_args([
        "run", "--deployment", str(tmp_path / "d.json"), "--state", str(tmp_path / "job"), "--addressbook",
        str(tmp_path / "book.json"), "--dev-key", "0", "--shards", str(path), "--merged", str(tmp_path / "cli"),
        "--max-records", "2"])
    source = settlement_source(args)
    _opened.append(source)
    got = source.read(0, 100)
    for have, want in zip(got, expected.out.read(0, 100)):
        assert len(have) and have.tobytes() == want.tobytes()
    assert settlement_parser().parse_args(["status", "--deployment", "d.json", "--shards", str(path)]).merged is None
    with pytest.raises(JobError, match="--shards needs --merged"):
        settlement_source(settlement_parser().parse_args(["status", "--deployment", "d", "--shards", str(path)]))


def _without_none(value):
    """A config document as TOML can hold it (no None values)."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


def test_settlement_reads_one_shards_journal_from_the_command_line(traded, tmp_path):
    """`--journal DIR` (file shard) or `--jetstream SERVERS --stream NAME`
    (stream shard), with the shard's venue config, reads the records the
    merge reads from that shard."""
    path, _ledgers = traded
    shards = load_shards(path)
    a = shards.shards[A]
    config = tmp_path / "a.toml"
    config.write_text(to_toml(_without_none(msgspec.to_builtins(shard_config(shards, "a").file))))
    where = (["--jetstream", ",".join(a.servers), "--stream", a.stream] if a.journal_kind == "jetstream"
             else ["--journal", str(a.journal_path)])
    source = settlement_source(settlement_parser().parse_args(
        ["status", "--deployment", "d.json", *where, "--config", str(config)]))
    try:
        got = source.read(0, 1 << 40)
    finally:
        source.journal.close()
    want = _merge(path, tmp_path / "merged").sources[A].read(0, 1 << 40)
    assert len(got[0]) == 1  # the fill on shard a
    for have, expected in zip(got, want):
        assert have.tobytes() == expected.tobytes()
