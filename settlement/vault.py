"""The SettlementVault and TestToken contracts from Python: committed artifacts, deployment
(vault + test tokens + allow-list), the deployment file, and typed reads of the vault.

Each listed asset has a kind (the vault's ``AssetKind``): ``plain`` tokens are counted in token
units, ``shares`` tokens (rebasing stock tokens such as xStocks) in their shares. The vault's and
the engine's ledger units of an asset are ``chain amount / scale`` in that unit (``Deployment.scale``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path

from web3 import Web3

from engine.assets import AssetSpec
from settlement.chain import ChainClient, RevertDecoder

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"

TEST_ASSETS: dict[int, AssetSpec] = {
    1: AssetSpec(symbol="AAPLX", decimals=18, ledger_decimals=6),
    2: AssetSpec(symbol="AMZNX", decimals=18, ledger_decimals=6),
    3: AssetSpec(symbol="TSLA.M", decimals=18, ledger_decimals=6),
    4: AssetSpec(symbol="NVDA.M", decimals=18, ledger_decimals=6),
    5: AssetSpec(symbol="USDC", decimals=6, ledger_decimals=6),
    6: AssetSpec(symbol="WBTC", decimals=8, ledger_decimals=8),
    7: AssetSpec(symbol="WETH", decimals=18, ledger_decimals=9),
}
"""Asset id -> spec of the test tokens `deploy` creates on local chains."""

PLAIN, SHARES = "plain", "shares"
"""Asset kinds: counted in token units, or in shares (a rebasing token)."""

ASSET_KINDS = (PLAIN, SHARES)
"""The vault's AssetKind enum, in order: the kind's index is its value on chain."""


@cache
def load_artifact(name: str) -> dict:
    """The committed artifact (abi, bytecode, compiler, settings) of contract `name`."""
    return json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())


def revert_decoder() -> RevertDecoder:
    """A decoder for every custom error of the settlement contracts."""
    return RevertDecoder([load_artifact(name)["abi"] for name in ("SettlementVault", "TestToken", "MockRebasingToken")])


@dataclass
class Deployment:
    """Where the vault and its tokens live: written by `deploy`, read by every other command."""

    chain_id: int
    vault: str
    block: int
    assets: dict[int, dict] = field(default_factory=dict)  # id -> {symbol, token, decimals, ledger_decimals, kind}

    def save(self, path: Path) -> None:
        """Write the deployment as JSON."""
        Path(path).write_text(json.dumps(asdict(self), indent=1, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Deployment:
        """Read a file written by `save`."""
        data = json.loads(Path(path).read_text())
        data["assets"] = {int(k): v for k, v in data["assets"].items()}
        return cls(**data)

    def kind(self, asset_id: int) -> str:
        """PLAIN or SHARES (files written before asset kinds existed list plain tokens only)."""
        return self.assets[asset_id].get("kind", PLAIN)

    def scale(self, asset_id: int) -> int:
        """Chain units (token units, or shares for a SHARES asset) per ledger unit of `asset_id`."""
        info = self.assets[asset_id]
        return 10 ** (info["decimals"] - info["ledger_decimals"])


CHALLENGE_WINDOW = 3600
"""Production default of the vault's challenge window (seconds before a withdrawal is claimable)."""


def deploy(client: ChainClient, *, operator: str, guardian: str, exit_window: int,
           challenge_window: int = CHALLENGE_WINDOW, assets: dict[int, AssetSpec] = TEST_ASSETS,
           shares: frozenset[int] = frozenset()) -> Deployment:
    """Deploy a test token per asset and a SettlementVault (client's key = admin), list the assets.
    `exit_window`: seconds the operator has to serve an exit request; `challenge_window`: seconds
    a withdrawal waits before it is claimable; `shares`: the asset ids that get a rebasing
    MockRebasingToken, listed as SHARES (the others get a TestToken, listed as PLAIN)."""
    w3 = client.w3
    listed = {}
    for asset_id, spec in assets.items():
        kind = SHARES if asset_id in shares else PLAIN
        artifact = load_artifact("MockRebasingToken" if kind == SHARES else "TestToken")
        factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
        receipt = client.transact(factory.constructor(f"Test {spec.symbol}", spec.symbol, spec.decimals))
        listed[asset_id] = {"symbol": spec.symbol, "token": receipt["contractAddress"], "decimals": spec.decimals,
                            "ledger_decimals": spec.ledger_decimals, "kind": kind}
    vault_artifact = load_artifact("SettlementVault")
    vault_factory = w3.eth.contract(abi=vault_artifact["abi"], bytecode=vault_artifact["bytecode"])
    receipt = client.transact(vault_factory.constructor(client.address, operator, guardian, exit_window, challenge_window))
    vault = Vault(w3, receipt["contractAddress"])
    for asset_id, info in listed.items():
        client.transact(vault.contract.functions.listAsset(asset_id, info["token"], info["ledger_decimals"],
                                                           ASSET_KINDS.index(info["kind"])))
    return Deployment(chain_id=w3.eth.chain_id, vault=vault.address, block=receipt["blockNumber"], assets=listed)


class Vault:
    """Read access to a deployed SettlementVault; `contract.functions` builds calls to send."""

    def __init__(self, w3: Web3, address: str) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.contract = w3.eth.contract(address=self.address, abi=load_artifact("SettlementVault")["abi"])

    def last_batch(self, block: int | str | bytes = "latest") -> tuple[int, bytes]:
        """(last settled batch id, its hash) as of one block (a tag such as "latest" is resolved to
        its block hash first); (0, 32 zero bytes) before the first batch."""
        if isinstance(block, str):
            # Two reads at "latest" can straddle a new block: the id before a batch, the hash after it.
            block = bytes(self.w3.eth.get_block(block)["hash"])
        functions = self.contract.functions
        return (functions.lastBatchId().call(block_identifier=block),
                bytes(functions.lastBatchHash().call(block_identifier=block)))

    def balance(self, wallet: str, asset_id: int) -> tuple[int, int]:
        """(settled, claimable) of `wallet` in ledger units."""
        settled, claimable = self.contract.functions.balanceOf(wallet, asset_id).call()
        return settled, claimable

    def escape_balance(self, wallet: str, asset_id: int) -> tuple[int, int]:
        """(what `escape` would pay `wallet` in ledger units now, the time from which that is
        final or 0): while paused, the last unchallenged state."""
        amount, final_at = self.contract.functions.escapeBalanceOf(wallet, asset_id).call()
        return int(amount), int(final_at)

    def wallet_state(self, wallet: str, block: int | str = "latest") -> tuple[int, bool]:
        """(exit request time or 0, whether its exit was served or it escaped)."""
        requested_at, exited = self.contract.functions.walletState(wallet).call(block_identifier=block)
        return int(requested_at), bool(exited)

    def fills_root(self, batch_id: int) -> bytes:
        """The fills root recorded for `batch_id` (zero if none)."""
        return bytes(self.contract.functions.fillsRootOf(batch_id).call())

    def verify_fill(self, batch_id: int, proof: list[bytes], leaf_values: tuple) -> bool:
        """The vault's own check that a fill (leaf values) is in batch `batch_id`."""
        return self.contract.functions.verifyFill(batch_id, proof, leaf_values).call()

    def asset_info(self, asset_id: int) -> tuple[str, int, str]:
        """(token address, scale, kind) of a listed asset, as the vault holds them."""
        token, scale, kind = self.contract.functions.assetInfo(asset_id).call()
        return token, int(scale), ASSET_KINDS[kind]

    def token(self, token_address: str):
        """A TestToken / ERC-20 contract object at `token_address`."""
        return self.w3.eth.contract(address=Web3.to_checksum_address(token_address),
                                    abi=load_artifact("TestToken")["abi"])

    def share_token(self, token_address: str):
        """A MockRebasingToken / share-token contract object (sharesOf, transferShares, multiplier)."""
        return self.w3.eth.contract(address=Web3.to_checksum_address(token_address),
                                    abi=load_artifact("MockRebasingToken")["abi"])
