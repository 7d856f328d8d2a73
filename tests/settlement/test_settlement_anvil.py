"""Integration on a real node (anvil on a free loopback port): pending and stuck transactions,
confirmations, reorgs, the job's crash recovery with a transaction in the mempool, the CLI."""

from __future__ import annotations

import json
import threading

import pytest
from settlement_helpers import (
    CHALLENGE_WINDOW,
    OPERATOR_KEY,
    USDC,
    Crash,
    Miner,
    assert_settled_exactly_once,
    make_job,
    make_withdrawals,
    random_records,
    settle_all,
    setup_venue,
)

from settlement.__main__ import main as settlement_main
from settlement.accounts import dev_address_book, dev_private_key
from settlement.chain import FEE_BUMP, ChainClient, ReorgError, connect, fund_dev_account
from settlement.source import RecordFileSource
from settlement.vault import Deployment, Vault, revert_decoder


@pytest.fixture
def anvil_venue(anvil_node):
    """The venue deployed on a fresh anvil."""
    return anvil_node, setup_venue(connect(anvil_node.url))


def test_stuck_transaction_is_replaced_with_same_nonce_and_higher_fees(anvil_venue):
    node, venue = anvil_venue
    node.rpc("evm_setAutomine", [False])
    client = ChainClient(venue.w3, dev_private_key(OPERATOR_KEY), decoder=revert_decoder(), stuck_after=0.3,
                         receipt_timeout=30, poll_interval=0.05)
    first = client.prepare(venue.vault.contract.functions.settle(*venue.build(random_records(1, 5)[0]).settle_args()))
    client.broadcast(first)
    replacements = []
    timer = threading.Timer(1.5, lambda: node.rpc("evm_mine"))
    timer.start()
    receipt, mined = client.wait_mined([first], replace_stuck=True, on_replace=replacements.append)
    timer.join()
    assert replacements and mined in replacements
    assert mined.nonce == first.nonce
    assert mined.fields["maxFeePerGas"] >= first.fields["maxFeePerGas"] * FEE_BUMP
    assert mined.fields["maxPriorityFeePerGas"] >= first.fields["maxPriorityFeePerGas"] * FEE_BUMP
    assert client.confirm(receipt, mined)["status"] == 1
    assert client.find_receipt(first.tx_hash) is None
    assert venue.vault.last_batch()[0] == 1


def test_confirmations_are_waited_for(anvil_venue):
    node, venue = anvil_venue
    node.rpc("evm_setAutomine", [False])
    client = ChainClient(venue.w3, dev_private_key(OPERATOR_KEY), decoder=revert_decoder(), confirmations=3,
                         receipt_timeout=30)
    with Miner(node):
        receipt = client.transact(venue.vault.contract.functions.settle(*venue.build(random_records(2, 3)[0])
                                                                      .settle_args()))
        assert venue.w3.eth.block_number >= receipt["blockNumber"] + 2


def test_job_resumes_with_its_transaction_still_in_the_mempool(anvil_venue, tmp_path):
    node, venue = anvil_venue
    fills, withdrawals = random_records(3, 12, 2)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    node.rpc("evm_setAutomine", [False])

    def crash(name):
        if name == "after_send":
            raise Crash(name)

    with pytest.raises(Crash):
        make_job(venue, source, tmp_path / "state", step_hook=crash).step()
    pending = make_job(venue, source, tmp_path / "state").store.batch(1).signed()[0]
    assert venue.w3.eth.get_transaction(pending.tx_hash)["blockNumber"] is None
    with Miner(node):
        job = make_job(venue, source, tmp_path / "state")
        settle_all(job)
    assert_settled_exactly_once(venue, job, fills, withdrawals)
    assert job.store.checkpoint().tx_hash is not None
    assert job.store.batch(1).txs[0]["hash"] == "0x" + pending.tx_hash.hex()


def test_job_rebroadcasts_a_signed_transaction_the_node_never_saw(anvil_venue, tmp_path):
    node, venue = anvil_venue
    fills, withdrawals = random_records(4, 6)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)

    def crash(name):
        if name == "before_send":
            raise Crash(name)

    with pytest.raises(Crash):
        make_job(venue, source, tmp_path / "state", step_hook=crash).step()
    job = make_job(venue, source, tmp_path / "state")
    assert not job.client.is_known(job.store.batch(1).signed()[0].tx_hash)
    settle_all(job)
    assert_settled_exactly_once(venue, job, fills, withdrawals)


def test_reorg_of_a_settled_batch_is_detected(anvil_venue, tmp_path):
    node, venue = anvil_venue
    fills, withdrawals = random_records(5, 5)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    snapshot = node.rpc("evm_snapshot")
    job = make_job(venue, source, tmp_path / "state")
    settle_all(job)
    checkpoint = job.store.checkpoint()
    receipt = job.client.find_receipt(bytes.fromhex(checkpoint.tx_hash[2:]))
    node.rpc("evm_revert", [snapshot])
    for _ in range(3):
        node.rpc("evm_mine")
    with pytest.raises(ReorgError):
        job.client.check_canonical(receipt)
    with pytest.raises(ReorgError, match="reorg deeper than"):
        make_job(venue, source, tmp_path / "state").step()


def test_cli_deploy_run_status_verify_prove(anvil_node, tmp_path, capsys):
    chain = ["--chain", anvil_node.url]
    deployment_file = tmp_path / "deployment.json"
    assert settlement_main(["deploy", *chain, "--dev-key", "-2", "--out", str(deployment_file)]) == 0
    deployment = Deployment.load(deployment_file)
    assert sorted(deployment.assets) == [1, 2, 3, 4, 5, 6, 7]
    dev_address_book(range(7)).save(tmp_path / "book.json")
    source = RecordFileSource(tmp_path / "source")
    source.append(withdrawals=make_withdrawals([(65536, 3, USDC, 1)]))
    common = ["--deployment", str(deployment_file), "--state", str(tmp_path / "state"),
              "--source", str(tmp_path / "source"), "--addressbook", str(tmp_path / "book.json")]
    capsys.readouterr()

    # Nothing deposited yet: the withdrawal would overdraw; the job reports the decoded revert.
    assert settlement_main(["run", *chain, *common, "--dev-key", "-2", "--once"]) == 1
    assert "NegativeBalance" in capsys.readouterr().err

    w3 = connect(anvil_node.url)
    vault = Vault(w3, deployment.vault)
    user = ChainClient(w3, dev_private_key(3), decoder=revert_decoder())
    fund_dev_account(w3, user.address, 10**20)
    token = vault.token(deployment.assets[USDC]["token"])
    user.transact(token.functions.mint(user.address, 10**9))
    user.transact(token.functions.approve(vault.address, 10**9))
    user.transact(vault.contract.functions.deposit(USDC, 10**9))
    fills, _ = random_records(9, 4)
    fills = fills[fills["fill_id"] > 65536]
    fills["buyer"] = fills["seller"] = 3  # self-trades without fees net to zero: funded by the deposit
    fills["buyer_fee"] = fills["seller_fee"] = 0
    source.append(fills=fills)

    assert settlement_main(["run", *chain, *common, "--dev-key", "-2", "--once"]) == 0
    assert settlement_main(["status", *chain, "--deployment", str(deployment_file), "--state", str(tmp_path / "state"),
                            "--source", str(tmp_path / "source")]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["chain_batch_id"], status["in_sync"], status["unsettled_records"]) == (2, True, 0)
    assert settlement_main(["verify", *chain, *common, "2"]) == 0
    assert json.loads(capsys.readouterr().out)["match"] is True
    assert settlement_main(["prove", *chain, *common, str(int(fills["fill_id"][0]))]) == 0
    proof = json.loads(capsys.readouterr().out)
    assert (proof["batch_id"], proof["verified_on_chain"]) == (2, True)
    assert vault.balance(user.address, USDC) == (10**9 - 1, 1)


def test_batch_estimated_in_one_epoch_and_mined_in_the_next(anvil_venue, tmp_path):
    """The first batch of an epoch writes the wallets' new checkpoints and costs up to twice a steady
    one; a batch whose gas was estimated just before an epoch boundary and mined after it must still
    have gas enough (it ran out: ReentrancySentryOOG, and the job stopped)."""
    node, venue = anvil_venue
    fills, withdrawals = random_records(7, 80)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills[:40], withdrawals)
    job = make_job(venue, source, tmp_path / "state", max_wait=0.0)
    assert job.step() == 1
    source.append(fills[40:], withdrawals)

    def cross_epoch(name):
        if name == "before_send":   # estimated in this epoch, mined in the next
            node.rpc("evm_increaseTime", [CHALLENGE_WINDOW])

    job = make_job(venue, source, tmp_path / "state", max_wait=0.0, step_hook=cross_epoch)
    assert job.step() == 2
    assert venue.vault.last_batch()[0] == 2
