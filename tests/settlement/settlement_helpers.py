"""Helpers of the settlement tests: the Venue (a deployed vault with funded dev wallets), record
builders, the expected ledger by plain integers, and the job drivers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from settlement.accounts import AddressBook, dev_address_book, dev_private_key
from settlement.batch import Batch, build_batch
from settlement.chain import ChainClient, fund_dev_account
from settlement.job import SettlementJob
from settlement.records import SETTLEMENT_FILL_DTYPE, WITHDRAWAL_DTYPE
from settlement.vault import SHARES, Deployment, Vault, deploy, revert_decoder

ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY = -1, -2, -3  # dev key ids of the venue's roles
ACCOUNTS = tuple(range(7))  # 0 is the fee account
EXIT_WINDOW = 24 * 3600  # seconds the operator has to serve an exit request
CHALLENGE_WINDOW = 3600  # seconds before a withdrawal is claimable
AAPLX, USDC, WETH = 1, 5, 7
INITIAL = {AAPLX: 1_000_000_000, USDC: 5_000_000_000_000, WETH: 500_000_000_000}  # ledger units per user


@dataclass
class Venue:
    """A deployed vault with funded dev wallets for ACCOUNTS and the role keys."""

    w3: object
    deployment: Deployment
    vault: Vault
    book: AddressBook
    confirmations: int = 1
    clients: dict[int, ChainClient] = field(default_factory=dict)

    def client(self, key_id: int, **options) -> ChainClient:
        """A ChainClient for dev key `key_id` (an account, or ADMIN/OPERATOR/GUARDIAN_KEY)."""
        options.setdefault("confirmations", self.confirmations)
        if options != {"confirmations": self.confirmations}:
            return ChainClient(self.w3, dev_private_key(key_id), decoder=revert_decoder(), **options)
        if key_id not in self.clients:
            self.clients[key_id] = ChainClient(self.w3, dev_private_key(key_id), decoder=revert_decoder(), **options)
        return self.clients[key_id]

    @property
    def operator(self) -> ChainClient:
        """The operator's client."""
        return self.client(OPERATOR_KEY)

    def token(self, asset_id: int):
        """The TestToken contract of `asset_id`."""
        return self.vault.token(self.deployment.assets[asset_id]["token"])

    def scale(self, asset_id: int) -> int:
        """Chain units (token units, or shares) per ledger unit."""
        return self.deployment.scale(asset_id)

    def deposit(self, account: int, asset_id: int, ledger_amount: int) -> dict:
        """Mint, approve and deposit `ledger_amount` for `account` (shares of a SHARES asset, approved
        at their current token value); the deposit receipt."""
        user = self.client(account)
        amount = ledger_amount * self.scale(asset_id)
        if self.deployment.kind(asset_id) == SHARES:
            token = self.vault.share_token(self.deployment.assets[asset_id]["token"])
            user.transact(token.functions.mintShares(user.address, amount))
            allowance = token.functions.getUnderlyingAmountByShares(amount).call()
        else:
            token = self.token(asset_id)
            user.transact(token.functions.mint(user.address, amount))
            allowance = amount
        user.transact(token.functions.approve(self.vault.address, allowance))
        return user.transact(self.vault.contract.functions.deposit(asset_id, amount))

    def build(self, fills: np.ndarray, withdrawals: np.ndarray | None = None, served: tuple[str, ...] = ()) -> Batch:
        """The next batch over `fills` and `withdrawals`, serving the exit requests of `served`."""
        batch_id, last_hash = self.vault.last_batch()
        if withdrawals is None:
            withdrawals = np.zeros(0, dtype=WITHDRAWAL_DTYPE)
        return build_batch(batch_id + 1, last_hash, fills, withdrawals, self.book, served)

    def settle(self, batch: Batch) -> dict:
        """Settle `batch` as the operator."""
        return self.operator.transact(self.vault.contract.functions.settle(*batch.settle_args()))

    def ledger(self) -> dict[tuple[int, int], tuple[int, int]]:
        """(settled, claimable) on chain for every (account, asset in INITIAL) with a non-zero balance."""
        out = {}
        for account, wallet in self.book.items():
            for asset_id in INITIAL:
                balance = self.vault.balance(wallet, asset_id)
                if balance != (0, 0):
                    out[(account, asset_id)] = balance
        return out


def make_fills(rows: list[tuple]) -> np.ndarray:
    """Fills from (fill_id, buyer, seller, base, quote, base_amount, quote_amount, buyer_fee, seller_fee)."""
    return np.array(rows, dtype=SETTLEMENT_FILL_DTYPE)


def make_withdrawals(rows: list[tuple]) -> np.ndarray:
    """Withdrawals from (withdrawal_id, account, asset, amount)."""
    return np.array(rows, dtype=WITHDRAWAL_DTYPE)


def setup_venue(w3, confirmations: int = 1) -> Venue:
    """Deploy the vault and tokens on `w3`, fund the dev wallets and deposit INITIAL for every account
    (the fee account too: rebates can exceed the fees of a batch)."""
    book = dev_address_book(ACCOUNTS)
    for key_id in (ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY, *ACCOUNTS):
        fund_dev_account(w3, ChainClient(w3, dev_private_key(key_id)).address, 10**21)
    admin = ChainClient(w3, dev_private_key(ADMIN_KEY), decoder=revert_decoder())
    operator = ChainClient(w3, dev_private_key(OPERATOR_KEY)).address
    guardian = ChainClient(w3, dev_private_key(GUARDIAN_KEY)).address
    deployment = deploy(admin, operator=operator, guardian=guardian, exit_window=EXIT_WINDOW,
                        challenge_window=CHALLENGE_WINDOW)
    venue = Venue(w3, deployment, Vault(w3, deployment.vault), book, confirmations)
    for account in ACCOUNTS:
        for asset_id, amount in INITIAL.items():
            venue.deposit(account, asset_id, amount)
    return venue




def chain_time(w3) -> int:
    """The embedded chain's clock: the timestamp its next block gets. Not the latest block's: the
    next one is stamped with the wall clock of when the latest was mined (or the session's
    snapshot reverted to), which can be any time later."""
    return w3.eth.get_block("pending")["timestamp"]


def advance_time(w3, seconds: int) -> None:
    """Move the embedded chain's clock forward by `seconds` (mines a block stamped then)."""
    w3.provider.ethereum_tester.time_travel(chain_time(w3) + seconds)


def expected_ledger(fills: np.ndarray, withdrawals: np.ndarray | None = None) -> dict:
    """(settled, claimable) per (account, asset) after INITIAL deposits for 0..6, by plain ints."""
    ledger = {(a, asset): [amount, 0] for a in range(7) for asset, amount in INITIAL.items()}

    def add(account, asset, amount):
        ledger.setdefault((account, asset), [0, 0])[0] += amount

    for fid, buyer, seller, base, quote, qty, value, bfee, sfee in fills.tolist():
        add(buyer, base, qty)
        add(seller, base, -qty)
        add(buyer, quote, -(value + bfee))
        add(seller, quote, value - sfee)
        add(0, quote, bfee + sfee)
    for _, account, asset, amount in ([] if withdrawals is None else withdrawals.tolist()):
        add(account, asset, -amount)
        ledger[(account, asset)][1] += amount
    return {key: tuple(value) for key, value in ledger.items() if value != [0, 0]}


class Crash(Exception):
    """Stands for the process dying at a step."""


def random_records(seed: int, n_fills: int, n_withdrawals: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fills among users 1..6 small enough never to overdraw INITIAL; withdrawals interleaved."""
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(1, 10 * (n_fills + n_withdrawals) + 10), n_fills + n_withdrawals,
                             replace=False)).astype(np.uint64) << np.uint64(16)
    is_fill = np.zeros(len(ids), dtype=bool)
    is_fill[rng.choice(len(ids), n_fills, replace=False)] = True
    fills = np.zeros(n_fills, dtype=SETTLEMENT_FILL_DTYPE)
    fills["fill_id"] = ids[is_fill]
    buyers = rng.integers(1, 7, n_fills)
    fills["buyer"] = buyers
    fills["seller"] = (buyers + rng.integers(1, 6, n_fills) - 1) % 6 + 1
    fills["base_asset"] = rng.choice([AAPLX, WETH], n_fills)
    fills["quote_asset"] = USDC
    fills["base_amount"] = rng.integers(1, 1_000_000, n_fills)
    fills["quote_amount"] = rng.integers(1, 100_000_000, n_fills)
    fills["buyer_fee"] = rng.integers(-1_000, 10_000, n_fills)
    fills["seller_fee"] = rng.integers(-1_000, 10_000, n_fills)
    withdrawals = np.zeros(n_withdrawals, dtype=WITHDRAWAL_DTYPE)
    withdrawals["withdrawal_id"] = ids[~is_fill]
    withdrawals["account"] = rng.integers(1, 7, n_withdrawals)
    withdrawals["asset"] = rng.choice([AAPLX, USDC, WETH], n_withdrawals)
    withdrawals["amount"] = rng.integers(1, 1_000_000, n_withdrawals)
    return fills, withdrawals


def make_job(venue: Venue, source, state_dir, **options) -> SettlementJob:
    """A job with a fresh operator client (a new process would have one)."""
    client = ChainClient(venue.w3, dev_private_key(OPERATOR_KEY), confirmations=venue.confirmations,
                         decoder=revert_decoder(), receipt_timeout=60, stuck_after=10)
    options.setdefault("max_records", 7)
    options.setdefault("max_wait", 0.0)
    return SettlementJob(source, client, venue.vault, venue.book, state_dir, **options)


def settle_all(job: SettlementJob) -> list[int]:
    """Step until nothing is due; the ids settled."""
    settled = []
    while (batch_id := job.step()) is not None:
        settled.append(batch_id)
    return settled


def assert_settled_exactly_once(venue: Venue, job: SettlementJob, fills, withdrawals) -> None:
    """Chain balances equal the engine's; batch records tile the source with no gap or overlap."""
    assert venue.ledger() == expected_ledger(fills, withdrawals)
    batch_id, batch_hash = venue.vault.last_batch()
    checkpoint = job.store.checkpoint()
    assert (checkpoint.batch_id, checkpoint.batch_hash) == (batch_id, "0x" + batch_hash.hex())
    position = 0
    for i in range(1, batch_id + 1):
        record = job.store.batch(i)
        assert record.after_id == position
        position = record.last_id
    assert position == int(max(fills["fill_id"].max(initial=0), withdrawals["withdrawal_id"].max(initial=0)))


class Miner:
    """Mines a block on `node` every `interval` seconds while running (automine off)."""

    def __init__(self, node, interval: float = 0.1) -> None:
        self.node = node
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.node.rpc("evm_mine")

    def __enter__(self) -> Miner:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
