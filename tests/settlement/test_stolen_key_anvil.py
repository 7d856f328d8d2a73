"""A stolen operator key on anvil: its draining batch (which also serves the thief's own exit
request) pays the thief nothing, by claim or by escape, once the watchtower pauses inside the
challenge window; the victim and everyone else leave with their balances from before the
attack, and the vault pays out exactly what it holds."""

from __future__ import annotations

import pytest
from settlement_helpers import (
    AAPLX,
    ACCOUNTS,
    CHALLENGE_WINDOW,
    EXIT_WINDOW,
    GUARDIAN_KEY,
    INITIAL,
    USDC,
    WETH,
    expected_ledger,
    make_fills,
    setup_venue,
)
from test_audit import VICTIM, drain
from test_settlement_vault import FILLS

from settlement.audit import Watchtower
from settlement.batch import publish_fills
from settlement.chain import ChainClient, RevertError, connect, fund_dev_account
from settlement.vault import revert_decoder


def advance(node, seconds: int) -> None:
    """Move anvil's clock forward by `seconds` and mine a block."""
    node.rpc("evm_increaseTime", [seconds])
    node.rpc("evm_mine")


def test_stolen_operator_key_pays_the_thief_nothing_and_everyone_leaves_whole(anvil_node):
    venue = setup_venue(connect(anvil_node.url))
    vault = venue.vault.contract.functions
    venue.settle(venue.build(make_fills(FILLS)))
    advance(anvil_node, 2 * CHALLENGE_WINDOW)   # the honest batch is final
    before = expected_ledger(make_fills(FILLS))

    thief = ChainClient(venue.w3, b"\x66" * 32, decoder=revert_decoder())
    fund_dev_account(venue.w3, thief.address, 10**20)
    thief.transact(vault.requestExit())
    stolen = drain(venue, thief.address, publish_fills(make_fills([]), venue.book), served=(thief.address,))
    assert stolen == before[(VICTIM, USDC)][0] > 0
    assert venue.vault.wallet_state(thief.address)[1] is True   # its exit is served: escape is open
    with pytest.raises(RevertError, match="EscapeNotYet"):       # but not before the batch is final
        thief.prepare(vault.escape([USDC]))
    with pytest.raises(RevertError, match="ClaimNotYet"):
        thief.prepare(vault.claim(USDC))

    tower = Watchtower(venue.vault, venue.deployment.block, guardian=venue.client(GUARDIAN_KEY))
    assert [audit.ok for audit in tower.poll()] == [True, False]
    assert vault.paused().call() is True
    advance(anvil_node, 2 * CHALLENGE_WINDOW)
    with pytest.raises(RevertError, match="EnforcedPause"):
        thief.prepare(vault.claim(USDC))
    thief.transact(vault.escape([USDC]))   # pays the thief's balance before its batch: nothing
    assert venue.token(USDC).functions.balanceOf(thief.address).call() == 0

    victim = venue.client(VICTIM)
    victim.transact(vault.requestExit())   # no batch serves it while paused ...
    advance(anvil_node, EXIT_WINDOW)
    venue.client(1).transact(vault.freezeVault(victim.address))   # ... so anyone freezes the vault
    for account in ACCOUNTS:
        wallet = venue.client(account)
        wallet.transact(vault.escape([AAPLX, USDC, WETH]))
        for asset in (AAPLX, USDC, WETH):
            paid = venue.token(asset).functions.balanceOf(wallet.address).call()
            assert paid == before[(account, asset)][0] * venue.scale(asset), (account, asset)
    for asset in (AAPLX, USDC, WETH):   # every wallet left; nothing paid twice, nothing missing
        assert venue.token(asset).functions.balanceOf(venue.vault.address).call() == 0
        assert sum(before[(account, asset)][0] for account in ACCOUNTS) == INITIAL[asset] * len(ACCOUNTS)
