"""Rebasing stock tokens (xStocks: balance = shares x a multiplier the issuer changes) accounted in
shares, on anvil: wallets deposit, trade through the engine, the token rebases up or down, and
every wallet leaves (claim or escape) with exactly the shares the engine and the vault owe it, the
last one included; a plain token beside it is unaffected. Listing refuses the wrong kind."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest
from settlement_helpers import ADMIN_KEY, EXIT_WINDOW, GUARDIAN_KEY, OPERATOR_KEY, Venue
from web3.logs import DISCARD

from engine.core.matcher import MatchingEngine
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, EventKind, OrderType, SelfTrade, Side, TimeInForce
from engine.defaults import DEFAULT_ASSETS, stock_pair
from settlement.__main__ import main as settlement_main
from settlement.accounts import dev_address_book, dev_private_key
from settlement.chain import ChainClient, RevertError, connect, fund_dev_account
from settlement.deposits import DepositWatcher, InProcessDeposits
from settlement.records import UnitTable, settlement_records
from settlement.vault import ASSET_KINDS, PLAIN, SHARES, Deployment, Vault, deploy, load_artifact, revert_decoder

ONE = 10**18  # the token's multiplier precision
USDC, AMZNX = 0, 1  # engine and vault asset ids: DEFAULT_ASSETS[0], [1]; AMZNX is the rebasing xStock
FEE, WALLETS = 0, (1, 2, 3, 4)
PRICE = 1_850_000  # AMZNX/USDC: $185.0000 per whole share unit


class RebasingVenue:
    """A vault on anvil listing USDC (plain) and AMZNX (a MockRebasingToken, in shares), an engine
    with the same asset ids credited by the deposit watcher, and the AMZNX/USDC pair."""

    def __init__(self, w3) -> None:
        book = dev_address_book((FEE, *WALLETS))
        for key in (ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY, FEE, *WALLETS):
            fund_dev_account(w3, ChainClient(w3, dev_private_key(key)).address, 10**21)
        admin = ChainClient(w3, dev_private_key(ADMIN_KEY), decoder=revert_decoder())
        deployment = deploy(admin, operator=ChainClient(w3, dev_private_key(OPERATOR_KEY)).address,
                            guardian=ChainClient(w3, dev_private_key(GUARDIAN_KEY)).address,
                            exit_window=EXIT_WINDOW, challenge_window=0,
                            assets=dict(enumerate(DEFAULT_ASSETS[:2])), shares=frozenset({AMZNX}))
        self.chain = Venue(w3, deployment, Vault(w3, deployment.vault), book)
        self.token = self.chain.vault.share_token(deployment.assets[AMZNX]["token"])
        self.usdc = self.chain.token(USDC)
        self.engine = MatchingEngine(risk=True, fee_account=FEE)
        for spec in DEFAULT_ASSETS[:2]:
            self.engine.add_asset(spec)
        self.pair = self.engine.add_instrument(
            msgspec.structs.replace(stock_pair("AMZNX"), maker_fee_bps=-1, taker_fee_bps=5))
        for account in (FEE, *WALLETS):
            self.engine.open_account(account)
        self.watcher = DepositWatcher(self.chain.vault, deployment, book, InProcessDeposits(self.engine),
                                      confirmations=1)
        self.seq = 0

    def run(self, *rows: tuple) -> np.ndarray:
        """Engine events of commands (kind, account, field=value ...), sequenced after the last."""
        commands = np.zeros(len(rows), COMMAND_DTYPE)
        self.seq = max(self.seq, self.engine.last_seq)
        for command, (kind, account, fields) in zip(commands, rows, strict=True):
            self.seq += 1
            command["seq"], command["kind"], command["account"] = self.seq, kind, account
            for name, value in fields.items():
                command[name] = value
        return self.engine.process(commands)

    def settle(self, events: np.ndarray, served: tuple[str, ...] = ()) -> None:
        """Settle the fills and withdrawals of `events` in the next batch, serving `served`."""
        fills, withdrawals = settlement_records(events, UnitTable.of_engine(self.engine))
        self.chain.settle(self.chain.build(fills, withdrawals, served))

    def engine_balance(self, account: int, asset: int) -> int:
        return self.engine.balances(account)[asset][0]

    def vault_settled(self, account: int, asset: int) -> int:
        return self.chain.vault.balance(self.chain.book.wallet(account), asset)[0]

    def vault_shares(self) -> int:
        return self.token.functions.sharesOf(self.chain.vault.address).call()


def order(venue: RebasingVenue, account: int, side: Side, qty: int) -> tuple:
    return (CommandKind.NEW_ORDER, account, {"instrument": venue.pair, "side": side, "order_type": OrderType.LIMIT,
                                             "tif": TimeInForce.GTC, "stp": SelfTrade.CANCEL_NEWEST, "qty": qty,
                                             "price": PRICE})


def debit(account: int, asset: int, amount: int) -> tuple:
    return (CommandKind.DEBIT, account, {"asset": asset, "qty": amount})


@pytest.fixture
def rebasing_venue(anvil_node) -> RebasingVenue:
    return RebasingVenue(connect(anvil_node.url))


@pytest.mark.parametrize("multiplier", [ONE * 5 // 4 + 7, ONE * 3 // 5 + 3], ids=["positive", "negative"])
def test_every_wallet_leaves_with_exactly_its_shares_after_a_rebase(rebasing_venue, multiplier):
    venue, chain = rebasing_venue, rebasing_venue.chain
    scale = chain.scale(AMZNX)
    deposits = {1: (10_000_000, 0), 2: (3_333_333, 2_000_000_000), 3: (0, 5_000_000_000), 4: (7_000_001, 0)}
    for account, (shares, usdc) in deposits.items():
        for asset, amount in ((AMZNX, shares), (USDC, usdc)):
            if amount:
                chain.deposit(account, asset, amount)
    assert venue.watcher.poll() == 5

    venue.run((CommandKind.SET_REFERENCE, 0, {"instrument": venue.pair, "price": PRICE}))
    events = venue.run(order(venue, 1, Side.SELL, 4_000), order(venue, 3, Side.BUY, 3_000),
                       order(venue, 2, Side.BUY, 500), order(venue, 4, Side.SELL, 1_500),
                       order(venue, 3, Side.BUY, 2_000))
    assert np.count_nonzero(events["kind"] == EventKind.FILL) == 4
    venue.settle(events)

    # The issuer rebases; then wallet 4 deposits again: credited the shares the vault received.
    before = {account: venue.engine_balance(account, AMZNX) for account in (FEE, *WALLETS)}
    chain.client(ADMIN_KEY).transact(venue.token.functions.setMultiplier(multiplier))
    receipt = chain.deposit(4, AMZNX, 1_500_000)
    event = chain.vault.contract.events.Deposit().process_receipt(receipt, errors=DISCARD)[0]["args"]
    assert event["amount"] == 1_500_000 * scale
    assert venue.watcher.poll() == 1
    before[4] += 1_500_000
    assert {a: venue.engine_balance(a, AMZNX) for a in before} == before
    assert {a: venue.vault_settled(a, AMZNX) for a in before} == before
    assert venue.vault_shares() == sum(before.values()) * scale

    # Wallets 1 and 2 withdraw everything and claim; 3, 4 and the fee account exit and escape.
    owed = {a: {asset: venue.engine_balance(a, asset) for asset in (USDC, AMZNX)} for a in (FEE, *WALLETS)}
    venue.settle(venue.run(*[debit(a, asset, amount) for a in (1, 2) for asset, amount in owed[a].items() if amount]))
    for account in (1, 2):
        client = chain.client(account)
        for asset, amount in owed[account].items():
            if amount:
                client.transact(chain.vault.contract.functions.claim(asset))
    leaving = (3, FEE, 4)   # wallet 4, the last AMZNX holder, leaves last
    for account in leaving:
        chain.client(account).transact(chain.vault.contract.functions.requestExit())
        venue.engine.freeze_account(account)
    venue.settle(venue.run(), served=tuple(chain.book.wallet(a) for a in leaving))
    for account in leaving:
        chain.client(account).transact(chain.vault.contract.functions.escape([USDC, AMZNX]))

    for account in (FEE, *WALLETS):
        wallet = chain.book.wallet(account)
        shares = venue.token.functions.sharesOf(wallet).call()
        assert shares == owed[account][AMZNX] * scale
        assert venue.token.functions.balanceOf(wallet).call() == shares * multiplier // ONE
        assert venue.usdc.functions.balanceOf(wallet).call() == owed[account][USDC] * chain.scale(USDC)
        assert chain.vault.balance(wallet, AMZNX) == chain.vault.balance(wallet, USDC) == (0, 0)
    assert venue.vault_shares() == venue.token.functions.balanceOf(chain.vault.address).call() == 0
    assert venue.usdc.functions.balanceOf(chain.vault.address).call() == 0
    venue.engine.check_integrity()


def test_listing_checks_the_kind_against_the_token(rebasing_venue):
    chain = rebasing_venue.chain
    admin = chain.client(ADMIN_KEY)
    list_asset = chain.vault.contract.functions.listAsset
    assert chain.vault.asset_info(AMZNX) == (rebasing_venue.token.address, chain.scale(AMZNX), SHARES)
    assert chain.vault.asset_info(USDC)[2] == PLAIN

    def new_token(artifact: str) -> str:
        data = load_artifact(artifact)
        factory = chain.w3.eth.contract(abi=data["abi"], bytecode=data["bytecode"])
        return admin.transact(factory.constructor("Other", "OTH", 18))["contractAddress"]

    rebasing, plain = new_token("MockRebasingToken"), new_token("TestToken")
    with pytest.raises(RevertError, match="^RebasingTokenAsPlain"):
        admin.prepare(list_asset(7, rebasing, 6, ASSET_KINDS.index(PLAIN)))
    with pytest.raises(RevertError, match="^NotAShareToken"):
        admin.prepare(list_asset(7, plain, 6, ASSET_KINDS.index(SHARES)))
    admin.transact(list_asset(7, rebasing, 6, ASSET_KINDS.index(SHARES)))
    admin.transact(list_asset(8, plain, 6, ASSET_KINDS.index(PLAIN)))
    assert chain.vault.asset_info(7)[2] == SHARES and chain.vault.asset_info(8)[2] == PLAIN


def test_a_share_deposit_needs_its_allowance_and_whole_ledger_units(rebasing_venue):
    chain, token = rebasing_venue.chain, rebasing_venue.token
    scale = chain.scale(AMZNX)
    user = chain.client(1)
    chain.client(ADMIN_KEY).transact(token.functions.setMultiplier(ONE * 3 // 2))
    user.transact(token.functions.mintShares(user.address, 5 * scale))
    user.transact(token.functions.approve(chain.vault.address, 2 * scale))   # worth 4/3 scale shares
    with pytest.raises(RevertError, match="^ERC20InsufficientAllowance"):
        user.prepare(chain.vault.contract.functions.deposit(AMZNX, 2 * scale))
    with pytest.raises(RevertError, match="^InvalidAmount"):
        user.prepare(chain.vault.contract.functions.deposit(AMZNX, scale + 1))
    user.transact(token.functions.approve(chain.vault.address, 3 * scale))
    user.transact(chain.vault.contract.functions.deposit(AMZNX, 2 * scale))
    assert chain.vault.balance(user.address, AMZNX) == (2, 0)
    assert token.functions.sharesOf(user.address).call() == 3 * scale


def test_cli_deploys_a_rebasing_test_token_listed_in_shares(anvil_node, tmp_path):
    out = tmp_path / "deployment.json"
    assert settlement_main(["deploy", "--chain", anvil_node.url, "--dev-key", "-2", "--share-asset", "1",
                            "--out", str(out)]) == 0
    deployment = Deployment.load(out)
    vault = Vault(connect(anvil_node.url), deployment.vault)
    kinds = {asset: (deployment.kind(asset), vault.asset_info(asset)[2]) for asset in deployment.assets}
    assert kinds == {asset: (SHARES, SHARES) if asset == 1 else (PLAIN, PLAIN) for asset in deployment.assets}
    assert vault.share_token(deployment.assets[1]["token"]).functions.multiplier().call() == ONE
