"""The demo's chain: an anvil process on loopback (or, where anvil is missing or
``--chain embedded`` asks for it, the embedded in-process EVM), the vault and test
tokens deployed with the settlement package's own code, wallets' deposits, claims and
exit requests, the chain clock moved past a challenge window, gas per settled batch."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from demo.processes import ProcessGroup
from demo.venue_config import ACCOUNTS, CHALLENGE_WINDOW_S, REBASING
from engine.config import load_config
from settlement.accounts import AddressBook, dev_address_book, dev_private_key
from settlement.anvil import anvil_command, free_port
from settlement.chain import EMBEDDED, ChainClient, ChainError, connect, fund_dev_account
from settlement.vault import SHARES, Deployment, Vault, deploy, revert_decoder

ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY = -1, -2, -3   # dev key ids of the venue's roles
EXIT_WINDOW_S = 24 * 3600


def pick_chain(choice: str) -> tuple[str, str]:
    """('anvil' | 'embedded', why): ``auto`` takes anvil when it is installed."""
    if choice == "embedded":
        return "embedded", "asked for with --chain embedded"
    if anvil_command() is not None:
        return "anvil", "installed from the npm lock"
    if choice == "anvil":
        raise SystemExit("--chain anvil: anvil is not installed (npm ci, package @foundry-rs/anvil)")
    return "embedded", "anvil not found (npm missing?): the settlement part falls back to the embedded in-process EVM"


@dataclass
class DemoChain:
    """The chain, the deployed vault, the address book and the wallets' clients."""

    kind: str
    url: str
    w3: object
    deployment: Deployment
    vault: Vault
    book: AddressBook
    symbols: dict[str, int]

    @classmethod
    def start(cls, kind: str, group: ProcessGroup, run: Path, config_path: Path) -> DemoChain:
        """Start the node (anvil as a child of ``group``), fund the dev wallets, deploy the vault
        listing the config's assets under their engine ids, write deployment and address book."""
        if kind == "anvil":
            url = f"http://127.0.0.1:{free_port()}"
            group.start("anvil", [*anvil_command(), "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]],
                        lambda: _answers(url))
            w3 = connect(url)
        else:
            url, w3 = EMBEDDED, connect()
        book = dev_address_book(account.id for account in ACCOUNTS)
        for key_id in (ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY, *(account.id for account in ACCOUNTS)):
            fund_dev_account(w3, ChainClient(w3, dev_private_key(key_id)).address, 10**21)
        assets = dict(enumerate(load_config(config_path).venue.assets))
        symbols = {spec.symbol: asset_id for asset_id, spec in assets.items()}
        admin = ChainClient(w3, dev_private_key(ADMIN_KEY), decoder=revert_decoder())
        deployment = deploy(admin, operator=ChainClient(w3, dev_private_key(OPERATOR_KEY)).address,
                            guardian=ChainClient(w3, dev_private_key(GUARDIAN_KEY)).address,
                            exit_window=EXIT_WINDOW_S, challenge_window=CHALLENGE_WINDOW_S, assets=assets,
                            shares=frozenset(symbols[symbol] for symbol in REBASING))
        deployment.save(run / "deployment.json")
        book.save(run / "addressbook.json")
        return cls(kind, url, w3, deployment, Vault(w3, deployment.vault), book, symbols)

    def wallet(self, account: int) -> ChainClient:
        """The chain client of ``account``'s dev wallet."""
        return ChainClient(self.w3, dev_private_key(account), decoder=revert_decoder())

    def deposit_calls(self, account: int, asset_id: int, ledger_amount: int) -> list:
        """The three calls of one deposit, each needing the one before mined: mint test tokens (shares
        of a rebasing token) to the wallet, approve the vault, deposit."""
        address = self.book.wallet(account)
        amount = ledger_amount * self.deployment.scale(asset_id)
        token_address = self.deployment.assets[asset_id]["token"]
        if self.deployment.kind(asset_id) == SHARES:
            token = self.vault.share_token(token_address)
            mint = token.functions.mintShares(address, amount)
            allowance = token.functions.getUnderlyingAmountByShares(amount).call()
        else:
            token = self.vault.token(token_address)
            mint = token.functions.mint(address, amount)
            allowance = amount
        return [mint, token.functions.approve(self.vault.address, allowance),
                self.vault.contract.functions.deposit(asset_id, amount)]

    def token_balance(self, account: int, asset_id: int) -> int:
        """The wallet's own token balance (outside the vault), in token units."""
        token = self.vault.token(self.deployment.assets[asset_id]["token"])
        return token.functions.balanceOf(self.book.wallet(account)).call()

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` empty blocks (deposits and exit requests gain confirmations)."""
        if self.kind == "anvil":
            self.w3.provider.make_request("anvil_mine", [hex(blocks)])
        else:
            self.w3.provider.ethereum_tester.mine_blocks(blocks)

    def advance(self, seconds: int) -> None:
        """Move the chain's clock forward by ``seconds`` and mine a block there."""
        if self.kind == "anvil":
            self.w3.provider.make_request("evm_increaseTime", [seconds])
            self.mine()
        else:
            # The pending block's time: eth-tester stamps it with the wall clock of when the
            # latest was mined, so "latest" + seconds can already lie in its past on an idle chain.
            now = self.w3.eth.get_block("pending")["timestamp"]
            self.w3.provider.ethereum_tester.time_travel(now + seconds)

    def settled_batches(self) -> list[dict]:
        """Every BatchSettled on chain: batch id, gas used by its transaction, block."""
        logs = self.vault.contract.events.BatchSettled().get_logs(from_block=self.deployment.block)
        return [{"batch_id": int(log["args"]["batchId"]), "block": log["blockNumber"],
                 "gas": int(self.w3.eth.get_transaction_receipt(log["transactionHash"])["gasUsed"])}
                for log in logs]

    def deposit_all(self) -> int:
        """Every demo account's deposits; returns how many were made. All mints are sent at once and
        mined, then all approvals, then all deposits: three waits instead of one per transaction."""
        steps = []
        for account in ACCOUNTS:
            wallet = self.wallet(account.id)   # one client, one nonce allocator, per wallet
            for symbol, amount in account.deposits.items():
                asset_id = self.symbols[symbol]
                ledger = _ledger(amount, self.deployment.assets[asset_id]["ledger_decimals"])
                steps.append((wallet, self.deposit_calls(account.id, asset_id, ledger)))
        for phase in range(3):
            sent = []
            for wallet, calls in steps:
                tx = wallet.prepare(calls[phase])
                wallet.broadcast(tx)
                sent.append((wallet, tx))
            for wallet, tx in sent:
                wallet.wait([tx])
        return len(steps)


def _ledger(decimal: str, ledger_decimals: int) -> int:
    return int(Decimal(decimal).scaleb(ledger_decimals))


def _answers(url: str) -> bool:
    try:
        connect(url, timeout=1.0)
        return True
    except ChainError:   # not up yet
        return False
