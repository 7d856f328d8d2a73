"""Deposits and reorgs on a real node (anvil): a deposit is credited only once its block is
final, so one that a reorg removes is never credited and its id, reassigned by the vault to the
next deposit, credits that deposit; a reorg deeper than the watcher trusted (a confirmations
count) stops the watcher instead of crediting past it."""

from __future__ import annotations

import random

import pytest
from conftest import requires_anvil
from settlement_helpers import ACCOUNTS, INITIAL, USDC, Venue, setup_venue
from test_deposit_watcher import chain_ledger, engine_for, engine_ledger

from settlement.anvil import Anvil
from settlement.chain import connect
from settlement.deposit_log import CREDIT, DepositLog
from settlement.deposits import DepositReorged, DepositWatcher, InProcessDeposits

SLOTS = 2
FINALITY = 2 * SLOTS   # anvil's finalized block is two epochs below the head


@pytest.fixture
def finality_venue():
    """A venue on anvil with a short finality depth, its initial deposits final."""
    requires_anvil()
    with Anvil(["--slots-in-an-epoch", str(SLOTS)]) as node:
        venue = setup_venue(connect(node.url))
        node.rpc("anvil_mine", [hex(FINALITY)])
        yield node, venue


def _forget_nonces(venue: Venue) -> None:
    """After a reorg the wallets' nonces went back: clients re-read them from the node."""
    venue.clients.clear()


def test_a_deposit_reorged_out_before_finality_is_never_credited(finality_venue, tmp_path):
    """The issue's scenario: Alice deposits 777, a reorg removes it, Bob's 999,999 gets her id."""
    node, venue = finality_venue
    eng = engine_for(venue)
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng),
                             record=DepositLog(tmp_path / "deposits.jsonl"))
    assert watcher.poll() == len(ACCOUNTS) * len(INITIAL)
    alice, bob = 2, 3
    alice_before, bob_before = eng.balances(alice)[USDC][0], eng.balances(bob)[USDC][0]

    snapshot = node.rpc("evm_snapshot")
    venue.deposit(alice, USDC, 777)
    alice_id = venue.vault.contract.functions.depositCount().call()
    assert watcher.poll() == 0                           # mined, not final: not credited
    assert node.rpc("evm_revert", [snapshot])            # the reorg: Alice's deposit is gone
    _forget_nonces(venue)
    venue.deposit(bob, USDC, 999_999)
    assert venue.vault.contract.functions.depositCount().call() == alice_id   # Bob has Alice's id
    assert watcher.poll() == 0
    node.rpc("anvil_mine", [hex(FINALITY)])
    assert watcher.poll() == 1
    assert eng.last_deposit_id == alice_id
    assert eng.balances(alice)[USDC][0] == alice_before
    assert eng.balances(bob)[USDC][0] == bob_before + 999_999
    assert engine_ledger(eng) == chain_ledger(venue)

    # anvil_reorg, the node's own reorg: a deposit dropped from the replaced blocks is never credited
    venue.deposit(alice, USDC, 555)
    node.rpc("anvil_reorg", [2, []])
    _forget_nonces(venue)
    node.rpc("anvil_mine", [hex(FINALITY)])
    assert watcher.poll() == 0
    assert engine_ledger(eng) == chain_ledger(venue)
    eng.check_integrity()


def test_random_reorgs_never_credit_a_deposit_outside_the_final_chain(finality_venue):
    node, venue = finality_venue
    eng = engine_for(venue)
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng))
    rng = random.Random(11)
    for step in range(30):
        action = rng.choice(("deposit", "deposit", "mine", "reorg"))
        if action == "deposit":
            venue.deposit(rng.choice(ACCOUNTS[1:]), USDC, rng.randrange(1, 10**6))
        elif action == "mine":
            node.rpc("anvil_mine", [hex(rng.randrange(1, FINALITY + 1))])
        else:
            node.rpc("anvil_reorg", [rng.randrange(1, FINALITY + 1), []])   # never below the finalized block
            _forget_nonces(venue)
        watcher.poll()
        # every deposit the engine holds is in the final chain, in the block it was credited from
        final = venue.w3.eth.get_block("finalized")["number"]
        for entry in watcher.record.done(eng.last_deposit_id):
            d = entry.deposit
            assert entry.action == CREDIT and d.block <= final, (step, d)
            assert venue.w3.eth.get_block(d.block)["hash"].to_0x_hex() == d.block_hash, (step, d)
    node.rpc("anvil_mine", [hex(FINALITY)])
    watcher.poll()
    assert eng.last_deposit_id == venue.vault.contract.functions.depositCount().call()
    assert engine_ledger(eng) == chain_ledger(venue)
    eng.check_integrity()


def test_a_reorg_deeper_than_the_confirmations_stops_the_watcher(finality_venue, tmp_path):
    """On a chain without finality the watcher trusts N confirmations; a deeper reorg under a
    credited deposit is found, and the watcher refuses to go on, also after a restart."""
    node, venue = finality_venue
    eng = engine_for(venue)
    path = tmp_path / "deposits.jsonl"
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng),
                             confirmations=2, record=DepositLog(path))
    watcher.poll()
    venue.deposit(2, USDC, 777)
    assert watcher.poll() == 0                           # one confirmation only
    node.rpc("anvil_mine", ["0x1"])
    assert watcher.poll() == 1
    credited = eng.last_deposit_id
    node.rpc("anvil_reorg", [3, []])                     # deeper than the two confirmations
    _forget_nonces(venue)
    venue.deposit(3, USDC, 999_999)
    node.rpc("anvil_mine", ["0x3"])
    with pytest.raises(DepositReorged, match=f"deposit {credited} credited 777"):
        watcher.poll()
    with pytest.raises(DepositReorged):
        watcher.poll()
    restarted = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng),
                               confirmations=2, record=DepositLog(path))
    with pytest.raises(DepositReorged):
        restarted.poll()
    assert eng.last_deposit_id == credited               # Bob's deposit (same id) was not credited past it
