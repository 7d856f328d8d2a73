"""Deposit watcher: vault Deposit events credited to the engine exactly once."""

from settlement_helpers import ACCOUNTS, INITIAL

from engine.assets import AssetSpec
from engine.core.matcher import MatchingEngine
from engine.core.types import EventKind
from settlement.accounts import AddressBook
from settlement.chain import ChainClient, fund_dev_account
from settlement.deposits import DepositWatcher, InProcessDeposits


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
