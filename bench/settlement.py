"""``python -m bench settlement [--json PATH] [--quick]`` (also ``python -m bench.settlement``).

Measures the settlement side: netting throughput (1,000,000 fills over 10,000 accounts), the
StandardMerkleTree build for 1,000,000 fills, and on anvil the gas of settling batches of 100,
1,000 and 10,000 fills over 10, 100 and 1,000 accounts, with a one-hour challenge window.

After funding, every balance slot is changed once more in each of the next two epochs, so
every slot has both its checkpoints, as in a venue that has run for a while. Each size then settles two batches in a
fresh epoch: the first changes every balance slot it touches for the first time in the epoch
(its balances go to the checkpoints: once an hour per slot in a running venue), the second is
the steady state of a venue that settles many batches an epoch (a slot it touches that the
first did not is checkpointed there: sparse batches pay that on most slots). The gas of a settle
transaction splits exactly into the intrinsic 21,000, the calldata (EIP-2028: 16 gas a
non-zero byte, 4 a zero byte of the transaction's input) and execution (the rest: storage,
hashing, the loop; net of refunds). Anvil runs the Cancun rules, where that split is what the
transaction pays; from Prague on, EIP-7623 raises calldata-heavy transactions to a floor of
10 gas a calldata token, reported beside it. The calldata is split again into the published
fills (`fills`, 84 bytes a fill) and the rest (header, deltas, withdrawals).

The JSON holds flat keys: netting_fills_per_s, merkle_build_s_1m, and per F fills over A
accounts: deltas_F_A, gas_per_batch_F_A (steady), gas_per_fill_F_A, exec_per_fill_F_A,
exec_first_per_fill_F_A (the epoch's first batch), fills_calldata_per_fill_F_A,
other_calldata_per_fill_F_A, floor_per_fill_F_A (EIP-7623 floor).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from eth_hash.backends.pysha3 import keccak256 as keccak

from settlement.accounts import AddressBook, dev_private_key
from settlement.anvil import Anvil
from settlement.batch import build_batch, encode_fill_leaves, entry_words
from settlement.chain import ChainClient, connect, fund_dev_account
from settlement.merkle import EMPTY_ROOT, StandardMerkleTree, leaf_hashes_of_encoded
from settlement.netting import net_fills
from settlement.records import SETTLEMENT_FILL_DTYPE, WITHDRAWAL_DTYPE
from settlement.vault import CHALLENGE_WINDOW, TEST_ASSETS, Vault, deploy, revert_decoder

QUOTE = 5  # USDC
BASES = (1, 2, 3, 4, 6, 7)  # AAPLX, AMZNX, TSLA.M, NVDA.M, WBTC, WETH
FUNDING = 10**15  # ledger units of every asset per account before measuring
TREASURY_KEY, OPERATOR_KEY = -10, -11
FUNDING_DELTAS_PER_BATCH = 600
ANVIL_GAS_LIMIT = 1_000_000_000  # room for the largest batches; the report flags those over 30M
INTRINSIC_GAS = 21_000


def synthetic_fills(n: int, accounts: int, seed: int = 1) -> np.ndarray:
    """`n` fills between accounts 1..`accounts` on the BASES/USDC pairs, with fees."""
    rng = np.random.default_rng(seed)
    fills = np.zeros(n, dtype=SETTLEMENT_FILL_DTYPE)
    fills["fill_id"] = (np.arange(n, dtype=np.uint64) + np.uint64(1)) << np.uint64(16)
    buyers = rng.integers(1, accounts + 1, n)
    fills["buyer"] = buyers
    fills["seller"] = (buyers + rng.integers(0, accounts - 1, n)) % accounts + 1
    fills["base_asset"] = rng.choice(BASES, n)
    fills["quote_asset"] = QUOTE
    fills["base_amount"] = rng.integers(1, 10**6, n)
    fills["quote_amount"] = rng.integers(1, 10**9, n)
    fills["buyer_fee"] = fills["quote_amount"] // 1000
    fills["seller_fee"] = fills["quote_amount"] // 2000
    return fills


def synthetic_book(accounts: int) -> AddressBook:
    """Accounts 0..`accounts` with deterministic addresses (no keys: they never sign here)."""
    return AddressBook({a: "0x" + keccak(b"bench" + a.to_bytes(8, "big"))[12:].hex() for a in range(accounts + 1)})


def measure_netting(n: int, accounts: int, repeats: int = 3) -> float:
    """Best fills/s of net_fills over `repeats` runs."""
    fills = synthetic_fills(n, accounts)
    best = min(_timed(lambda: net_fills(fills)) for _ in range(repeats))
    return n / best


def measure_merkle(n: int, accounts: int) -> float:
    """Seconds to encode, hash and build the StandardMerkleTree of `n` fills."""
    fills = synthetic_fills(n, accounts)
    book = synthetic_book(accounts)
    return _timed(lambda: StandardMerkleTree(leaf_hashes_of_encoded(encode_fill_leaves(fills, book))))


def measure_gas(sizes: list[int], account_counts: list[int], log) -> dict[str, float]:
    """Gas of settling batches of F fills over A accounts on anvil, for every (F, A): the
    first batch of an epoch and the steady state, split into execution and calldata."""
    results: dict[str, float] = {}
    with Anvil(["--gas-limit", str(ANVIL_GAS_LIMIT), "--hardfork", "cancun", "--no-request-size-limit"]) as node:
        w3 = connect(node.url)
        for accounts in account_counts:
            vault, operator, book = _funded_venue(w3, accounts)
            for _ in range(2):   # both checkpoints of every slot written, as in a running venue
                _start_epoch(node, w3)
                _fund(vault, operator, book, accounts, 1)
            for n in sizes:
                _start_epoch(node, w3)
                first = _settle_measured(vault, operator, book, n, accounts, seed=2 * (n + accounts))
                steady = _settle_measured(vault, operator, book, n, accounts, seed=2 * (n + accounts) + 1)
                key = f"{n}_{accounts}"
                results[f"deltas_{key}"] = steady["deltas"]
                results[f"gas_per_batch_{key}"] = steady["gas"]
                results[f"gas_per_fill_{key}"] = round(steady["gas"] / n, 1)
                results[f"exec_per_fill_{key}"] = round(steady["execution"] / n, 1)
                results[f"exec_first_per_fill_{key}"] = round(first["execution"] / n, 1)
                results[f"fills_calldata_per_fill_{key}"] = round(steady["fills_calldata"] / n, 1)
                results[f"other_calldata_per_fill_{key}"] = round(steady["other_calldata"] / n, 1)
                results[f"floor_per_fill_{key}"] = round(steady["floor"] / n, 1)
                log(f"gas: {n} fills over {accounts} accounts: {steady['deltas']} deltas, {steady['gas']:,} gas, "
                    f"execution {steady['execution'] / n:,.1f} a fill ({first['execution'] / n:,.1f} first in "
                    f"its epoch), published fills {steady['fills_calldata'] / n:,.1f} a fill")
    return results


def calldata_gas(data: bytes) -> int:
    """EIP-2028 calldata gas: 16 a non-zero byte, 4 a zero byte."""
    zeros = data.count(0)
    return 4 * zeros + 16 * (len(data) - zeros)


def calldata_tokens(data: bytes) -> int:
    """EIP-7623 calldata tokens: 1 a zero byte, 4 a non-zero byte."""
    zeros = data.count(0)
    return zeros + 4 * (len(data) - zeros)


def _settle_measured(vault: Vault, operator: ChainClient, book: AddressBook, n: int, accounts: int,
                     seed: int) -> dict[str, int]:
    """Settle the next batch of `n` synthetic fills; its gas, split."""
    batch_id, last_hash = vault.last_batch()
    batch = build_batch(batch_id + 1, last_hash, synthetic_fills(n, accounts, seed=seed),
                        np.zeros(0, dtype=WITHDRAWAL_DTYPE), book)
    args = batch.settle_args()
    receipt = operator.transact(vault.contract.functions.settle(*args))
    data = bytes.fromhex(vault.contract.encode_abi("settle", args=args)[2:])
    without_fills = bytes.fromhex(vault.contract.encode_abi("settle", args=(*args[:3], b""))[2:])
    calldata = calldata_gas(data)
    return {"deltas": len(batch.deltas), "gas": receipt["gasUsed"],
            "execution": receipt["gasUsed"] - INTRINSIC_GAS - calldata,
            "fills_calldata": calldata - calldata_gas(without_fills),
            "other_calldata": calldata_gas(without_fills),
            "floor": INTRINSIC_GAS + 10 * calldata_tokens(data)}


def _start_epoch(node: Anvil, w3) -> None:
    """Mine the next block at the start of the vault's next epoch (one second in), so the
    batches after it share an epoch for the next hour."""
    now = w3.eth.get_block("latest")["timestamp"]
    node.rpc("evm_setNextBlockTimestamp", [(now // CHALLENGE_WINDOW + 1) * CHALLENGE_WINDOW + 1])
    node.rpc("evm_mine")


def _funded_venue(w3, accounts: int) -> tuple[Vault, ChainClient, AddressBook]:
    """A fresh vault where accounts 0..`accounts` hold FUNDING of every asset (moved from a
    treasury wallet's deposits, account `accounts` + 1 of the returned book, by funding batches)."""
    treasury = ChainClient(w3, dev_private_key(TREASURY_KEY), decoder=revert_decoder())
    operator = ChainClient(w3, dev_private_key(OPERATOR_KEY), decoder=revert_decoder())
    for client in (treasury, operator):
        fund_dev_account(w3, client.address, 10**22)
    deployment = deploy(treasury, operator=operator.address, guardian=treasury.address, exit_window=10**9)
    vault = Vault(w3, deployment.vault)
    total = 2 * FUNDING * (accounts + 1)
    for asset_id, spec in TEST_ASSETS.items():
        amount = spec.to_chain(total)
        token = vault.token(deployment.assets[asset_id]["token"])
        treasury.transact(token.functions.mint(treasury.address, amount))
        treasury.transact(token.functions.approve(vault.address, amount))
        treasury.transact(vault.contract.functions.deposit(asset_id, amount))
    book = AddressBook({**dict(synthetic_book(accounts).items()), accounts + 1: treasury.address})
    _fund(vault, operator, book, accounts, FUNDING)
    return vault, operator, book


def _fund(vault: Vault, operator: ChainClient, book: AddressBook, accounts: int, amount: int) -> None:
    """Move `amount` of every asset from the treasury (account `accounts` + 1) to each of the
    accounts 0..`accounts`, in batches of FUNDING_DELTAS_PER_BATCH."""
    grants = [(a, asset) for a in range(accounts + 1) for asset in TEST_ASSETS]
    for start in range(0, len(grants), FUNDING_DELTAS_PER_BATCH):
        deltas = _funding_deltas(grants[start:start + FUNDING_DELTAS_PER_BATCH], accounts + 1, book, amount)
        batch_id, last_hash = vault.last_batch()
        operator.transact(vault.contract.functions.settle((batch_id + 1, last_hash, EMPTY_ROOT, []), deltas, [], b""))


def _funding_deltas(grants: list[tuple[int, int]], treasury_account: int, book: AddressBook, amount: int) -> list[int]:
    """Words moving `amount` from the treasury to each (account, asset) of `grants`."""
    assets = [asset for _, asset in grants]
    accounts = [account for account, _ in grants]
    counts = {asset: assets.count(asset) for asset in set(assets)}
    assets += list(counts)
    accounts += [treasury_account] * len(counts)
    amounts = [amount] * len(grants) + [-amount * counts[asset] for asset in counts]
    return list(entry_words(np.array(assets), book.wallet_ints(np.array(accounts)), np.array(amounts)))


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def run(quick: bool, log, fills: int | None = None, sizes: list[int] | None = None,
        account_counts: list[int] | None = None) -> dict[str, float]:
    """Every settlement measurement; `quick` uses smaller sizes (a smoke run). `fills` (netting and
    Merkle), `sizes` (fills per batch) and `account_counts` override the chosen sizes (bench/suites.py)."""
    n = fills or (100_000 if quick else 1_000_000)
    results: dict[str, float] = {"netting_fills": n, "netting_accounts": 10_000}
    results["netting_fills_per_s"] = round(measure_netting(n, 10_000))
    log(f"netting: {results['netting_fills_per_s']:,.0f} fills/s ({n:,} fills, 10,000 accounts)")
    key = "merkle_build_s_1m" if n == 1_000_000 else f"merkle_build_s_{n // 1000}k"
    results[key] = round(measure_merkle(n, 10_000), 3)
    log(f"merkle: {results[key]:.2f} s for {n:,} fills")
    sizes = sizes or ([100, 1_000] if quick else [100, 1_000, 10_000])
    account_counts = account_counts or ([10, 100] if quick else [10, 100, 1_000])
    results.update(measure_gas(sizes, account_counts, log))
    return results


def table(results: dict[str, float]) -> str:
    """One row per (fills, accounts): execution and calldata gas per settled fill, per batch."""
    keys = sorted((int(k.split("_")[3]), int(k.split("_")[4])) for k in results if k.startswith("gas_per_fill_"))
    lines = ["gas per settled fill (steady state unless said; calldata EIP-2028; floor: EIP-7623 from Prague)",
             f"{'fills':>7}{'accounts':>9}{'deltas':>8}{'execution':>11}{'first in epoch':>16}"
             f"{'fills calldata':>16}{'other calldata':>16}{'total':>8}{'floor':>8}{'gas per batch':>15}"]
    for n, a in keys:
        key = f"{n}_{a}"
        lines.append(f"{n:>7,}{a:>9,}{results[f'deltas_{key}']:>8,}{results[f'exec_per_fill_{key}']:>11,.0f}"
                     f"{results[f'exec_first_per_fill_{key}']:>16,.0f}{results[f'fills_calldata_per_fill_{key}']:>16,.0f}"
                     f"{results[f'other_calldata_per_fill_{key}']:>16,.0f}{results[f'gas_per_fill_{key}']:>8,.0f}"
                     f"{results[f'floor_per_fill_{key}']:>8,.0f}{results[f'gas_per_batch_{key}']:>15,}")
    over = [k for k, v in results.items() if k.startswith("gas_per_batch_") and v > 30_000_000]
    if over:
        lines.append("over a 30M-gas block (split such batches): " + ", ".join(k[len("gas_per_batch_"):] for k in over))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Run the settlement benchmark and print (and optionally write) the results."""
    parser = argparse.ArgumentParser(prog="python -m bench settlement", description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the flat results object to this file")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke run")
    args = parser.parse_args(argv)
    results = run(args.quick, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(f"netting: {results['netting_fills_per_s']:,.0f} fills/s")
    for key in (k for k in results if k.startswith("merkle_build_s_")):
        print(f"{key}: {results[key]} s")
    print(table(results))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
