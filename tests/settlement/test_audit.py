"""The watchtower: every batch recomputed from the fills it published; the stolen-operator-key
drain is detected and the vault paused before the thief can claim."""

from __future__ import annotations

import json

import numpy as np
import pytest
from settlement_helpers import (
    CHALLENGE_WINDOW,
    GUARDIAN_KEY,
    USDC,
    advance_time,
    make_fills,
    make_withdrawals,
    setup_venue,
)
from test_settlement_vault import FILLS

from settlement.__main__ import main
from settlement.accounts import dev_private_key
from settlement.audit import Watchtower
from settlement.batch import entry_words, publish_fills
from settlement.chain import ChainClient, RevertError, connect, fund_dev_account
from settlement.merkle import EMPTY_ROOT
from settlement.vault import revert_decoder

VICTIM = 3


def test_honest_batches_match_their_published_fills(venue):
    tower = Watchtower(venue.vault, venue.deployment.block)
    venue.settle(venue.build(make_fills(FILLS), make_withdrawals([(196609, 2, USDC, 5)])))
    venue.settle(venue.build(make_fills([])))
    audits = tower.poll()
    assert [(a.batch_id, a.fills, a.ok) for a in audits] == [(1, len(FILLS), True), (2, 0, True)]
    assert tower.poll() == []


def drain(venue, thief: str, published: bytes, served: tuple[str, ...] = ()) -> int:
    """The stolen operator key moves the victim's whole USDC balance to the thief and withdraws
    it, serving the exit requests of `served`; the amount stolen."""
    stolen = venue.vault.balance(venue.book.wallet(VICTIM), USDC)[0]
    victim = venue.book.wallet_ints(np.array([VICTIM]))[0]
    wallets = sorted([victim, int(thief, 16)])
    amounts = np.array([stolen if w == int(thief, 16) else -stolen for w in wallets])
    deltas = entry_words(np.array([USDC, USDC]), wallets, amounts)
    withdrawals = entry_words(np.array([USDC]), [int(thief, 16)], np.array([stolen]))
    batch_id, last_hash = venue.vault.last_batch()
    venue.operator.transact(venue.vault.contract.functions.settle(
        (batch_id + 1, last_hash, EMPTY_ROOT, list(served)), list(deltas), list(withdrawals), published))
    return stolen


@pytest.mark.parametrize("published", ["empty fills", "unreadable"])
def test_stolen_operator_key_drain_is_paused_before_the_thief_can_claim(venue, published):
    thief = ChainClient(venue.w3, b"\x66" * 32, decoder=revert_decoder())
    fund_dev_account(venue.w3, thief.address, 10**20)
    data = publish_fills(make_fills([]), venue.book) if published == "empty fills" else b"\x01" * 7
    drain(venue, thief.address, data)
    assert venue.vault.balance(venue.book.wallet(VICTIM), USDC)[0] == 0
    with pytest.raises(RevertError, match="ClaimNotYet"):   # the challenge window
        thief.prepare(venue.vault.contract.functions.claim(USDC))

    tower = Watchtower(venue.vault, venue.deployment.block, guardian=venue.client(GUARDIAN_KEY))
    [audit] = tower.poll()
    assert not audit.ok
    assert ("deltas differ" if published == "empty fills" else "cannot be read") in audit.problem
    assert venue.vault.contract.functions.paused().call() is True
    advance_time(venue.w3, CHALLENGE_WINDOW)
    with pytest.raises(RevertError, match="EnforcedPause"):
        thief.prepare(venue.vault.contract.functions.claim(USDC))
    assert venue.token(USDC).functions.balanceOf(thief.address).call() == 0


def test_audit_command_on_anvil_reports_and_pauses(anvil_node, monkeypatch, capsys):
    venue = setup_venue(connect(anvil_node.url))
    venue.settle(venue.build(make_fills(FILLS)))
    thief = ChainClient(venue.w3, b"\x66" * 32)
    drain(venue, thief.address, publish_fills(make_fills([]), venue.book))
    monkeypatch.setenv("GUARDIAN_HEX", dev_private_key(GUARDIAN_KEY).hex())
    argv = ["audit", "--rpc-url", anvil_node.url, "--vault", venue.vault.address]
    assert main([*argv, "--guardian-key-env", "GUARDIAN_HEX"]) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["batch_id"], line["match"]) for line in lines] == [(1, True), (2, False)]
    assert venue.vault.contract.functions.paused().call() is True


def test_watchtower_polls_a_quiet_anvil_chain(anvil_node):
    """A poll with no new block since the last one finds nothing; anvil refuses a log range that
    ends before it starts, which stopped `audit --poll` on an idle chain."""
    venue = setup_venue(connect(anvil_node.url))
    tower = Watchtower(venue.vault, venue.deployment.block)
    assert tower.poll() == []
    assert tower.poll() == []          # the same head: nothing new, no error
    venue.settle(venue.build(make_fills(FILLS)))
    assert [(audit.batch_id, audit.ok) for audit in tower.poll()] == [(1, True)]
