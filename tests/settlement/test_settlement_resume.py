"""The batch job across restarts: a stuck settle transaction is bumped again after a restart,
never above the fee cap."""

from __future__ import annotations

import math

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


def test_a_stuck_settle_is_bumped_again_after_a_restart_up_to_the_fee_cap(anvil_node, tmp_path):
    venue = setup_venue(connect(anvil_node.url))
    fills, withdrawals = random_records(32, 5)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    anvil_node.rpc("evm_setAutomine", [False])

    def job(**options):
        job = make_job(venue, source, tmp_path / "state")
        job.client = ChainClient(venue.w3, dev_private_key(OPERATOR_KEY), decoder=revert_decoder(), stuck_after=0.2,
                                 receipt_timeout=2.0, max_replacements=2, **options)
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

    with Miner(anvil_node):
        resumed = job(max_fee_per_gas=cap)
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
