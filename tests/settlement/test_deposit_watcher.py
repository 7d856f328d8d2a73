"""Deposit watcher: vault Deposit events credited to the engine exactly once."""

import dataclasses
import logging

import pytest
from settlement_helpers import ACCOUNTS, ADMIN_KEY, INITIAL, USDC, WETH

from engine.assets import AssetSpec
from engine.core.matcher import MatchingEngine
from engine.core.types import EventKind
from engine.units import VALUE_LIMIT
from settlement.accounts import AddressBook
from settlement.chain import ChainClient, fund_dev_account
from settlement.deposit_log import CREDIT, SKIP, DepositLog, DepositLogError
from settlement.deposits import DepositReorged, DepositWatcher, InProcessDeposits
from settlement.vault import Deployment, load_artifact


def engine_for(venue) -> MatchingEngine:
    """A risk engine whose asset ids are the vault's (id 0 is not listed on chain)."""
    eng = MatchingEngine(risk=True, fee_account=0)
    eng.add_asset(AssetSpec(symbol="UNLISTED", decimals=18, ledger_decimals=6))
    for asset_id in sorted(venue.deployment.assets):
        info = venue.deployment.assets[asset_id]
        assert eng.add_asset(AssetSpec(symbol=info["symbol"], decimals=info["decimals"],
                                       ledger_decimals=info["ledger_decimals"])) == asset_id
    for account in ACCOUNTS:
        eng.open_account(account)
    return eng


def engine_ledger(eng) -> dict:
    return {(a, asset): total for a in ACCOUNTS for asset, (total, _) in enumerate(eng.balances(a)) if total}


def chain_ledger(venue) -> dict:
    return {(a, asset): settled for a in ACCOUNTS for asset in venue.deployment.assets
            if (settled := venue.vault.balance(venue.book.wallet(a), asset)[0])}


def test_credits_every_confirmed_deposit_once(venue):
    eng = engine_for(venue)
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng))
    assert watcher.poll() == len(ACCOUNTS) * len(INITIAL)
    assert engine_ledger(eng) == chain_ledger(venue) != {}
    assert watcher.poll() == 0
    # a restarted watcher (no memory) asks the engine and credits nothing twice
    restarted = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng))
    assert restarted.poll() == 0
    venue.deposit(3, 5, 1_234)
    assert restarted.poll() == 1
    assert engine_ledger(eng) == chain_ledger(venue)
    eng.check_integrity()


def test_waits_for_confirmations(venue):
    eng = engine_for(venue)
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng), confirmations=3)
    credited = watcher.poll()
    assert credited < len(ACCOUNTS) * len(INITIAL)   # the newest deposits are too young
    venue.w3.provider.ethereum_tester.mine_blocks(2)
    assert credited + watcher.poll() == len(ACCOUNTS) * len(INITIAL)
    assert engine_ledger(eng) == chain_ledger(venue)


def test_unknown_wallet_is_skipped_without_blocking_later_deposits(venue):
    eng = engine_for(venue)
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng))
    watcher.poll()
    stranger = ChainClient(venue.w3, b"\x42" * 32)
    fund_dev_account(venue.w3, stranger.address, 10**20)
    token = venue.token(5)
    stranger.transact(token.functions.mint(stranger.address, 10**6))
    stranger.transact(token.functions.approve(venue.vault.address, 10**6))
    stranger.transact(venue.vault.contract.functions.deposit(5, 10**6))
    venue.deposit(2, 5, 777)
    before = eng.balances(2)[5][0]
    assert watcher.poll() == 2
    assert eng.balances(2)[5][0] == before + 777
    assert eng.last_deposit_id == len(ACCOUNTS) * len(INITIAL) + 2
    assert engine_ledger(eng) == chain_ledger(venue)


def test_resumes_from_the_engines_last_deposit(venue):
    eng = engine_for(venue)
    # the engine had credited the first five deposits before the watcher crashed
    partial = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng))
    deposits = partial.confirmed_deposits()
    for d in deposits[:5]:
        assert eng.credit(venue.book.account(d.wallet), d.asset, d.amount, deposit_id=d.deposit_id)[0].kind == \
            EventKind.CREDITED
    fresh = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng))
    assert fresh.poll() == len(deposits) - 5
    assert engine_ledger(eng) == chain_ledger(venue)


def test_address_book_round_trip(tmp_path, venue):
    venue.book.save(tmp_path / "book.json")
    assert dict(AddressBook.load(tmp_path / "book.json").items()) == dict(venue.book.items())


def _deploy_token(venue, symbol: str, decimals: int) -> str:
    """A TestToken deployed by the admin after the venue's deployment; its address."""
    artifact = load_artifact("TestToken")
    factory = venue.w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    return venue.client(ADMIN_KEY).transact(factory.constructor(f"Test {symbol}", symbol, decimals))["contractAddress"]


def _deposit_token(venue, account: int, asset_id: int, token_address: str, amount: int) -> None:
    user = venue.client(account)
    token = venue.vault.token(token_address)
    user.transact(token.functions.mint(user.address, amount))
    user.transact(token.functions.approve(venue.vault.address, amount))
    user.transact(venue.vault.contract.functions.deposit(asset_id, amount))


def test_a_deposit_above_the_engines_cap_does_not_stop_the_others(venue, tmp_path, caplog):
    eng = engine_for(venue)
    record = DepositLog(tmp_path / "deposits.jsonl")
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng), record=record)
    watcher.poll()
    first = eng.last_deposit_id + 1
    venue.deposit(2, WETH, VALUE_LIMIT + 1)              # above the engine's cap: never creditable
    venue.deposit(3, WETH, VALUE_LIMIT - 1)              # fits one balance, not the asset's supply
    venue.deposit(4, USDC, 999_999)                      # an ordinary deposit after them
    before = {a: eng.balances(a)[asset][0] for a, asset in ((2, WETH), (3, WETH), (4, USDC))}
    with caplog.at_level(logging.WARNING, logger="settlement.deposits"):
        assert watcher.poll() == 3
    assert eng.last_deposit_id == first + 2
    assert eng.balances(2)[WETH][0] == before[2] and eng.balances(3)[WETH][0] == before[3]
    assert eng.balances(4)[USDC][0] == before[4] + 999_999
    # visible: recorded with its reason (and logged), and the skip is the engine's own command
    reasons = [DepositLog(tmp_path / "deposits.jsonl").entry(first + k) for k in range(3)]
    assert [(e.action, e.deposit.wallet) for e in reasons] == [
        (SKIP, venue.book.wallet(2)), (SKIP, venue.book.wallet(3)), (CREDIT, venue.book.wallet(4))]
    assert "cap" in reasons[0].reason and "AMOUNT_OVERFLOW" in reasons[1].reason
    assert sum("skipped, not credited" in r.getMessage() for r in caplog.records) == 2
    eng.check_integrity()


def test_a_deposit_of_an_asset_listed_later_does_not_stop_the_others(venue, tmp_path):
    eng = engine_for(venue)                              # knows the assets of the deployment only
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng))
    watcher.poll()
    first = eng.last_deposit_id + 1
    late = _deploy_token(venue, "LATE", 18)
    venue.client(ADMIN_KEY).transact(venue.vault.contract.functions.listAsset(8, late, 6, 0))
    _deposit_token(venue, 2, 8, late, 5 * 10**18)      # a token the deployment file does not list
    venue.deposit(3, USDC, 4_321)
    assert watcher.poll() == 2
    assert eng.last_deposit_id == first + 1
    assert watcher.record.entry(first).action == SKIP and "deployment" in watcher.record.entry(first).reason
    # the deployment file lists it now, the engine still does not have the asset: the engine refuses
    listed = Deployment(venue.deployment.chain_id, venue.deployment.vault, venue.deployment.block,
                        {**venue.deployment.assets, 8: {"symbol": "LATE", "token": late, "decimals": 18,
                                                        "ledger_decimals": 6}})
    watcher = DepositWatcher(venue.vault, listed, venue.book, InProcessDeposits(eng))
    _deposit_token(venue, 2, 8, late, 10**18)
    venue.deposit(3, USDC, 1_000)
    before = eng.balances(3)[USDC][0]
    assert watcher.poll() == 2
    assert eng.last_deposit_id == first + 3
    assert watcher.record.entry(first + 2).reason == "the engine refused the credit: UNKNOWN_ASSET"
    assert eng.balances(3)[USDC][0] == before + 1_000


def test_a_reorg_under_a_credited_deposit_stops_the_watcher(venue, tmp_path):
    """The embedded chain finalizes every block at once, so a revert there is a reorg past
    finality: the watcher cannot prevent the credit, and must find it and refuse to go on."""
    eng = engine_for(venue)
    path = tmp_path / "deposits.jsonl"
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng),
                             record=DepositLog(path))
    watcher.poll()
    tester = venue.w3.provider.ethereum_tester
    snapshot = tester.take_snapshot()
    venue.deposit(2, USDC, 777)                          # Alice
    assert watcher.poll() == 1
    alice_id = eng.last_deposit_id
    tester.revert_to_snapshot(snapshot)                  # the reorg: Alice's deposit is gone
    venue.deposit(3, USDC, 999_999)                      # Bob's deposit gets Alice's id
    bob_before = eng.balances(3)[USDC][0]
    for _ in range(2):                                   # every later poll refuses as well
        with pytest.raises(DepositReorged, match=f"deposit {alice_id} credited 777 of asset {USDC}"):
            watcher.poll()
    restarted = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng),
                               record=DepositLog(path))
    with pytest.raises(DepositReorged):
        restarted.poll()
    assert eng.balances(3)[USDC][0] == bob_before       # nothing credited past the reorg
    assert eng.last_deposit_id == alice_id


def test_deposits_moved_by_a_reorg_while_read_wait_for_the_next_poll(venue, monkeypatch):
    eng = engine_for(venue)
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng))
    read = watcher.confirmed_deposits
    stale = [dataclasses.replace(d, block_hash="0x" + "11" * 32) for d in read()]
    monkeypatch.setattr(watcher, "confirmed_deposits", lambda: stale)
    assert watcher.poll() == 0 and eng.last_deposit_id == 0
    monkeypatch.setattr(watcher, "confirmed_deposits", read)
    assert watcher.poll() == len(ACCOUNTS) * len(INITIAL)
    assert engine_ledger(eng) == chain_ledger(venue)


def test_deposit_log_survives_a_torn_last_line(venue, tmp_path):
    eng = engine_for(venue)
    path = tmp_path / "deposits.jsonl"
    DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng), record=DepositLog(path)).poll()
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"deposit_id": 99, "wal')        # a crash while writing a line
    assert DepositLog(path).entry(eng.last_deposit_id).action == CREDIT
    assert path.read_bytes() == whole                           # the torn tail is cut off
    path.write_bytes(b"not json\n" + whole)
    with pytest.raises(DepositLogError, match="not a deposit record"):
        DepositLog(path)


def test_the_engine_ahead_of_the_vaults_deposits_stops_the_watcher(venue):
    """Without a record (a lost state directory), a reorg that leaves the vault fewer deposits
    than the engine handled is still found."""
    eng = engine_for(venue)
    DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng)).poll()
    tester = venue.w3.provider.ethereum_tester
    snapshot = tester.take_snapshot()
    venue.deposit(2, USDC, 777)
    DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng)).poll()
    tester.revert_to_snapshot(snapshot)
    tester.mine_blocks(5)
    fresh = DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(eng))
    with pytest.raises(DepositReorged, match=f"up to {eng.last_deposit_id}, the vault has made "
                                             f"{eng.last_deposit_id - 1} deposits"):
        fresh.poll()
