"""The batch job across restarts and reorgs: a checkpointed batch that a shallow reorg puts in
another block is recognised, not a halt; a stuck settle transaction is bumped again after a
restart, never above the fee cap."""

from __future__ import annotations

import itertools
import math
import time

import pytest
from settlement_helpers import (
    OPERATOR_KEY,
    Miner,
    assert_settled_exactly_once,
    make_job,
    random_records,
    settle_all,
    setup_venue,
)

from settlement.chain import FEE_BUMP, ChainClient, ReceiptTimeout, connect
from settlement.accounts import dev_private_key
from settlement.source import RecordFileSource
from settlement.vault import revert_decoder


class Chain:
    """Snapshots and reverts on the embedded EVM or on anvil: a reorg, as a test can make one."""

    def __init__(self, venue, node=None) -> None:
        self.venue = venue
        self.node = node

    def snapshot(self):
        """A snapshot of the chain now."""
        if self.node is None:
            return self.venue.w3.provider.ethereum_tester.take_snapshot()
        return self.node.rpc("evm_snapshot")

    def reorg_to(self, snapshot, new_blocks: int) -> None:
        """Drop every block after `snapshot` and mine `new_blocks` empty ones in their place."""
        if self.node is None:
            tester = self.venue.w3.provider.ethereum_tester
            tester.revert_to_snapshot(snapshot)
            tester.mine_blocks(new_blocks)
            return
        self.node.rpc("evm_revert", [snapshot])
        for _ in range(new_blocks):
            self.node.rpc("evm_mine")


@pytest.fixture(params=["embedded", "anvil"])
def chain(request) -> Chain:
    """The venue on the embedded EVM, then on a fresh anvil node."""
    if request.param == "embedded":
        return Chain(request.getfixturevalue("venue"))
    node = request.getfixturevalue("anvil_node")
    return Chain(setup_venue(connect(node.url)), node)


def _settle_then_reorg_the_second_batch(chain: Chain, tmp_path):
    """Settle batch 1, then batch 2; a reorg drops batch 2's block. Returns the source, the
    records and batch 2's recorded settle transaction."""
    fills, withdrawals = random_records(31, 12, 2)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    assert make_job(chain.venue, source, tmp_path / "state").step() == 1
    before = chain.snapshot()
    job = make_job(chain.venue, source, tmp_path / "state")
    assert job.step() == 2
    dropped = job.store.checkpoint()
    chain.reorg_to(before, 3)
    assert chain.venue.vault.last_batch()[0] == 1
    (tx,) = job.store.batch(2).signed()
    assert "0x" + tx.tx_hash.hex() == dropped.tx_hash
    return source, fills, withdrawals, tx, dropped


def test_a_checkpointed_batch_mined_again_in_another_block_is_recognised(chain, tmp_path):
    venue = chain.venue
    source, fills, withdrawals, tx, dropped = _settle_then_reorg_the_second_batch(chain, tmp_path)
    venue.operator.broadcast(tx)  # the reorg's new blocks include the same signed transaction
    receipt, _ = venue.operator.wait_mined([tx])
    assert "0x" + bytes(receipt["blockHash"]).hex() != dropped.block_hash
    job = make_job(venue, source, tmp_path / "state")
    settle_all(job)
    assert_settled_exactly_once(venue, job, fills, withdrawals)
    moved = job.store.checkpoint()
    assert (moved.batch_id, moved.batch_hash, moved.tx_hash) == (2, dropped.batch_hash, dropped.tx_hash)
    assert (moved.block_number, moved.block_hash) == (receipt["blockNumber"], "0x" + bytes(receipt["blockHash"]).hex())
    assert venue.vault.last_batch()[0] == 2  # nothing settled twice


def test_anvil_reorg_putting_the_batch_in_a_new_block_is_recognised(anvil_node, tmp_path):
    """anvil_reorg replaces the last block with a new one holding the same settle transaction."""
    venue = setup_venue(connect(anvil_node.url))
    fills, withdrawals = random_records(34, 12, 2)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    job = make_job(venue, source, tmp_path / "state")
    assert settle_all(job) == [1, 2]
    dropped = job.store.checkpoint()
    (tx,) = job.store.batch(2).signed()
    anvil_node.rpc("anvil_reorg", [1, [["0x" + tx.raw.hex(), 0]]])
    assert "0x" + bytes(venue.w3.eth.get_block(dropped.block_number)["hash"]).hex() != dropped.block_hash
    job = make_job(venue, source, tmp_path / "state")
    assert job.step() is None
    moved = job.store.checkpoint()
    assert (moved.batch_id, moved.tx_hash, moved.block_number) == (2, dropped.tx_hash, dropped.block_number)
    assert moved.block_hash != dropped.block_hash
    assert_settled_exactly_once(venue, job, fills, withdrawals)


def test_a_checkpointed_batch_pending_again_after_a_reorg_is_waited_for(anvil_node, tmp_path):
    chain = Chain(setup_venue(connect(anvil_node.url)), anvil_node)
    venue = chain.venue
    source, fills, withdrawals, tx, dropped = _settle_then_reorg_the_second_batch(chain, tmp_path)
    anvil_node.rpc("evm_setAutomine", [False])
    venue.operator.broadcast(tx)  # back in the mempool after the reorg
    assert venue.operator.find_receipt(tx.tx_hash) is None
    with Miner(anvil_node):
        job = make_job(venue, source, tmp_path / "state")
        settle_all(job)
    assert_settled_exactly_once(venue, job, fills, withdrawals)
    assert job.store.checkpoint().block_hash != dropped.block_hash


def test_a_stuck_settle_is_bumped_again_after_a_restart_up_to_the_fee_cap(anvil_node, tmp_path):
    venue = setup_venue(connect(anvil_node.url))
    fills, withdrawals = random_records(32, 5)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    anvil_node.rpc("evm_setAutomine", [False])

    def job(**options):
        # The waits run on a clock that counts polls (a tenth of a second each): stuck after 3 polls,
        # timed out after 21, so each wait bumps the same number of times however slow the machine.
        polls = itertools.count()
        options = {"clock": lambda: next(polls) / 10, "receipt_timeout": 2.0, **options}
        job = make_job(venue, source, tmp_path / "state")
        job.client = ChainClient(venue.w3, dev_private_key(OPERATOR_KEY), decoder=revert_decoder(), stuck_after=0.2,
                                 max_replacements=2, **options)
        return job

    with pytest.raises(ReceiptTimeout):
        job().step()
    sent = job().store.batch(1).signed()
    assert len(sent) == 3  # sent, then bumped to the replacement limit
    with pytest.raises(ReceiptTimeout):
        job().step()
    restarted = job().store.batch(1).signed()
    assert len(restarted) == 5  # after a restart the limit counts again: two more bumps
    for older, newer in zip(restarted, restarted[1:]):
        assert newer.nonce == older.nonce
        assert newer.fields["maxFeePerGas"] >= older.fields["maxFeePerGas"] * FEE_BUMP
        assert newer.fields["maxPriorityFeePerGas"] >= older.fields["maxPriorityFeePerGas"] * FEE_BUMP

    # The fee cap leaves room for one more bump only.
    fee = restarted[-1].fields["maxFeePerGas"]
    cap = math.ceil(math.ceil(fee * FEE_BUMP) * FEE_BUMP) - 1
    with pytest.raises(ReceiptTimeout, match=f"1 replacement.*at the cap of {cap} wei"):
        job(max_fee_per_gas=cap).step()
    capped = job().store.batch(1).signed()
    assert len(capped) == 6
    newest = capped[-1]
    assert fee * FEE_BUMP <= newest.fields["maxFeePerGas"] <= cap

    with Miner(anvil_node):  # a real wait for the miner's next block, no timeout tested here
        resumed = job(max_fee_per_gas=cap, clock=time.monotonic, receipt_timeout=60)
        settle_all(resumed)
    assert_settled_exactly_once(venue, resumed, fills, withdrawals)
    assert resumed.store.checkpoint().tx_hash == "0x" + newest.tx_hash.hex()


def test_the_fee_cap_bounds_first_sends_and_replacements(venue):
    cap = 3 * 10**9
    client = ChainClient(venue.w3, dev_private_key(OPERATOR_KEY), decoder=revert_decoder(), max_fee_per_gas=cap)
    tx = client.prepare(venue.vault.contract.functions.settle(*venue.build(random_records(33, 3)[0]).settle_args()))
    versions = [tx]
    while (newer := client.replacement(versions[-1])) is not None:
        versions.append(newer)
    assert len(versions) > 1
    for older, newer in zip(versions, versions[1:]):
        assert newer.nonce == older.nonce
        assert newer.fields["maxFeePerGas"] >= older.fields["maxFeePerGas"] * FEE_BUMP
    assert all(v.fields["maxPriorityFeePerGas"] <= v.fields["maxFeePerGas"] <= cap for v in versions)
    assert versions[-1].fields["maxFeePerGas"] * FEE_BUMP > cap
