"""The vault's packed balances on the embedded EVM: three assets a slot with no lane bleeding
into another, the int64 cap per lane, and the checkpoints behind the last unchallenged state
(a pause pays every wallet its balance at the end of the epoch two before the pause's)."""

from __future__ import annotations

import eth._utils.headers
import numpy as np
import pytest
from settlement_helpers import (
    AAPLX,
    ACCOUNTS,
    CHALLENGE_WINDOW,
    EXIT_WINDOW,
    GUARDIAN_KEY,
    USDC,
    WETH,
    advance_time,
    chain_time,
    expected_ledger,
    make_fills,
    make_withdrawals,
)
from test_settlement_vault import FILLS, reverts

MAX_LEDGER = 2**63 - 1
NVDA, TSLA = 4, 3   # TSLA.M, NVDA.M and USDC share a balance slot (ids 3, 4, 5)


def to_epoch_start(w3) -> None:
    """Move the clock to 10 s into the next epoch, so a test's steps stay inside the epochs it counts."""
    now = chain_time(w3)
    advance_time(w3, (now // CHALLENGE_WINDOW + 1) * CHALLENGE_WINDOW + 10 - now)


def test_the_clock_moves_on_when_the_wall_clock_ran_hours_past_the_latest_block(venue, monkeypatch):
    """The next block is stamped with the wall clock of when the latest was mined: after a long
    run since the session's snapshot, hours later than the latest block (time_travel refuses to go
    back to a time computed from the latest block)."""
    wall_clock = eth._utils.headers.eth_now
    monkeypatch.setattr(eth._utils.headers, "eth_now", lambda: wall_clock() + 3 * CHALLENGE_WINDOW)
    venue.w3.provider.ethereum_tester.mine_blocks()  # the block after it is stamped three hours later
    later = chain_time(venue.w3)
    # (blocks mined faster than one a second put the chain ahead of the wall clock: by far less than an hour)
    assert later > venue.w3.eth.get_block("latest")["timestamp"] + 2 * CHALLENGE_WINDOW
    to_epoch_start(venue.w3)
    assert chain_time(venue.w3) == (later // CHALLENGE_WINDOW + 1) * CHALLENGE_WINDOW + 10
    advance_time(venue.w3, CHALLENGE_WINDOW)
    assert chain_time(venue.w3) == (later // CHALLENGE_WINDOW + 2) * CHALLENGE_WINDOW + 10


def test_lanes_of_one_slot_stay_apart_up_to_the_int64_cap(venue):
    holder = venue.book.wallet(1)
    venue.deposit(1, NVDA, MAX_LEDGER)
    venue.deposit(1, TSLA, 7)
    venue.deposit(2, NVDA, 1)
    assert [venue.vault.balance(holder, asset)[0] for asset in (TSLA, NVDA, USDC)] == [7, MAX_LEDGER, 5_000_000_000_000]
    with reverts(f"BalanceTooLarge(wallet={holder.lower()}, assetId={NVDA})"):
        venue.deposit(1, NVDA, 1)
    with reverts(f"BalanceTooLarge(wallet={holder.lower()}, assetId={NVDA})"):
        venue.settle(venue.build(make_fills([(65536, 1, 2, NVDA, USDC, 1, 10, 0, 0)])))
    # One batch moves every lane of both wallets' slot.
    fills = make_fills([(65536, 2, 1, NVDA, USDC, MAX_LEDGER - 1, 3, 0, 0), (65537, 2, 1, TSLA, USDC, 7, 1, 0, 0)])
    venue.settle(venue.build(fills))
    assert [venue.vault.balance(holder, asset)[0] for asset in (TSLA, NVDA, USDC)] == [0, 1, 5_000_000_000_004]
    assert [venue.vault.balance(venue.book.wallet(2), asset)[0] for asset in (TSLA, NVDA, USDC)] == [
        7, MAX_LEDGER, 4_999_999_999_996]
    with reverts(f"NegativeBalance(wallet={holder.lower()}, assetId={NVDA})"):
        venue.settle(venue.build(make_fills([(65538, 3, 1, NVDA, USDC, 2, 1, 0, 0)])))


def test_claims_pay_only_withdrawals_that_are_final(venue):
    to_epoch_start(venue.w3)
    user, vault = venue.client(2), venue.vault.contract.functions
    venue.settle(venue.build(make_fills([]), make_withdrawals([(1, 2, USDC, 100)])))
    advance_time(venue.w3, CHALLENGE_WINDOW)
    venue.settle(venue.build(make_fills([]), make_withdrawals([(2, 2, USDC, 20)])))
    with reverts("ClaimNotYet"):
        user.prepare(vault.claim(USDC))
    advance_time(venue.w3, CHALLENGE_WINDOW)
    before = venue.token(USDC).functions.balanceOf(user.address).call()
    user.transact(vault.claim(USDC))   # the first withdrawal is final, the second not yet
    assert venue.token(USDC).functions.balanceOf(user.address).call() - before == 100 * venue.scale(USDC)
    assert venue.vault.balance(user.address, USDC)[1] == 20
    with reverts("ClaimNotYet"):
        user.prepare(vault.claim(USDC))
    advance_time(venue.w3, CHALLENGE_WINDOW)
    user.transact(vault.claim(USDC))
    assert venue.token(USDC).functions.balanceOf(user.address).call() - before == 120 * venue.scale(USDC)


def second_fills() -> np.ndarray:
    return make_fills([(1 << 20, 2, 4, WETH, USDC, 7_000_000, 21_000_000, 2_100, 1_000),
                       (1 << 20 | 1, 4, 1, AAPLX, USDC, 300_000, 66_000_000, 0, 6_600)])


def third_fills() -> np.ndarray:
    return make_fills([(1 << 21, 5, 2, AAPLX, USDC, 100_000, 22_000_000, 2_200, 0),
                       (1 << 21 | 1, 1, 6, WETH, USDC, 1_000_000, 3_000_000, 0, 300)])


def test_a_pause_pays_everyone_the_end_of_the_epoch_two_before_and_the_vault_ends_empty(venue):
    """Batch 1 is final when the guardian pauses; batches 2 (the epoch before the pause's) and 3
    (the pause's epoch) are not: every escape pays the state after batch 1 (its withdrawal
    included, batch 3's not), plus deposits made since, and the vault pays out exactly what it
    holds."""
    vault = venue.vault.contract.functions
    to_epoch_start(venue.w3)
    first = make_fills(FILLS)
    first_withdrawals = make_withdrawals([(196609, 2, USDC, 5_000)])
    venue.settle(venue.build(first, first_withdrawals))
    advance_time(venue.w3, 2 * CHALLENGE_WINDOW)
    venue.settle(venue.build(second_fills()))
    advance_time(venue.w3, CHALLENGE_WINDOW)
    venue.settle(venue.build(third_fills(), make_withdrawals([(1 << 21 | 2, 4, WETH, 1_000)])))
    venue.deposit(6, USDC, 777)   # real tokens: counted in every state
    venue.client(GUARDIAN_KEY).transact(vault.pause())

    unchallenged = expected_ledger(first, first_withdrawals)
    unchallenged[(6, USDC)] = (unchallenged[(6, USDC)][0] + 777, 0)
    for account in ACCOUNTS:
        for asset in (AAPLX, USDC, WETH):
            settled, claimable = unchallenged.get((account, asset), (0, 0))
            assert venue.vault.escape_balance(venue.book.wallet(account), asset) == (settled + claimable, 0)

    venue.client(3).transact(vault.requestExit())   # never served while paused
    advance_time(venue.w3, EXIT_WINDOW)
    venue.client(1).transact(vault.freezeVault(venue.client(3).address))
    for account in ACCOUNTS:
        venue.client(account).transact(vault.escape([AAPLX, USDC, WETH]))
        for asset in (AAPLX, USDC, WETH):
            settled, claimable = unchallenged.get((account, asset), (0, 0))
            got = venue.token(asset).functions.balanceOf(venue.client(account).address).call()
            assert got == (settled + claimable) * venue.scale(asset), (account, asset)
    for asset in (AAPLX, USDC, WETH):
        assert venue.token(asset).functions.balanceOf(venue.vault.address).call() == 0
    assert vault.recovering().call() is True
    with reverts("VaultRecovering"):   # batches 2 and 3 are void for good
        venue.client(GUARDIAN_KEY).prepare(vault.unpause())


def test_a_false_alarm_can_be_undone_while_no_escape_took_the_paused_state(venue):
    vault = venue.vault.contract.functions
    to_epoch_start(venue.w3)
    venue.settle(venue.build(make_fills(FILLS)))
    venue.client(GUARDIAN_KEY).transact(vault.pause())
    venue.client(GUARDIAN_KEY).transact(vault.unpause())
    advance_time(venue.w3, 2 * CHALLENGE_WINDOW)
    after = expected_ledger(make_fills(FILLS))
    assert venue.vault.escape_balance(venue.book.wallet(1), USDC) == (after[(1, USDC)][0], 0)
    venue.settle(venue.build(second_fills()))
