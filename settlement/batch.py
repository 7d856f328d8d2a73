"""A settlement batch: netted deltas, withdrawals, the exit requests it serves, the fills' Merkle
root and the batch hash,
encoded exactly as SettlementVault.settle takes them (see the contract's doc comment).

Nothing here talks to a chain; the same code builds a batch for the job, for `verify` and
for `prove`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from eth_hash.backends.pysha3 import keccak256 as keccak
from web3 import Web3

from settlement.accounts import AddressBook
from settlement.merkle import EMPTY_ROOT, StandardMerkleTree, leaf_hashes_of_encoded
from settlement.netting import check_conservation, net_fills
from settlement.records import FEE_ACCOUNT, SETTLEMENT_FILL_DTYPE, WITHDRAWAL_DTYPE

FILL_LEAF_TYPES = ("uint64", "address", "address", "uint16", "uint16", "uint64", "uint64", "int64", "int64")
"""StandardMerkleTree leaf of a fill: (fillId, buyer wallet, seller wallet, baseAsset,
quoteAsset, baseAmount, quoteAmount, buyerFee, sellerFee); the vault's Fill struct."""

MAX_ASSET_ID = 0xFFFF
_AMOUNT_MASK = (1 << 64) - 1


class BatchError(ValueError):
    """Records that cannot form a batch (asset id out of range, unknown account...)."""


@dataclass(frozen=True, eq=False)
class Batch:
    """Everything `settle` needs for one batch, and what it commits to."""

    batch_id: int
    prev_hash: bytes
    fills: np.ndarray
    withdrawals: np.ndarray
    net: np.ndarray
    fills_root: bytes
    deltas: tuple[int, ...]
    withdrawal_words: tuple[int, ...]
    batch_hash: bytes
    tree: StandardMerkleTree | None
    book: AddressBook
    served: tuple[str, ...] = ()   # wallets whose exit requests this batch serves

    def settle_args(self) -> tuple:
        """The arguments of SettlementVault.settle: header (id, previous hash, fills root, served),
        deltas, withdrawals and the published fills."""
        return ((self.batch_id, self.prev_hash, self.fills_root, list(self.served)), list(self.deltas),
                list(self.withdrawal_words), publish_fills(self.fills, self.book))

    def proof(self, fill_id: int) -> tuple[tuple, list[bytes]]:
        """(leaf values, Merkle proof) of the fill `fill_id` in this batch."""
        matches = np.flatnonzero(self.fills["fill_id"] == np.uint64(fill_id))
        if matches.size == 0 or self.tree is None:
            raise BatchError(f"fill {fill_id} is not in batch {self.batch_id}")
        index = int(matches[0])
        return fill_leaf_values(self.fills[index:index + 1], self.book)[0], self.tree.proof(index)


def build_batch(batch_id: int, prev_hash: bytes, fills: np.ndarray, withdrawals: np.ndarray,
                book: AddressBook, served: Sequence[str] = ()) -> Batch:
    """Net `fills` and `withdrawals`, commit the fills in a Merkle tree and encode the batch;
    `served` are the wallets whose exit requests it serves (their accounts are frozen and
    every record of theirs is in this batch or an earlier one)."""
    if fills.dtype != SETTLEMENT_FILL_DTYPE or withdrawals.dtype != WITHDRAWAL_DTYPE:
        raise BatchError("fills / withdrawals have the wrong dtype")
    for name, values in (("base_asset", fills["base_asset"]), ("quote_asset", fills["quote_asset"]),
                         ("asset", withdrawals["asset"])):
        if values.size and (values.min() < 0 or values.max() > MAX_ASSET_ID):
            raise BatchError(f"{name} outside [0, {MAX_ASSET_ID}]: the vault keys assets by uint16")
    net = net_fills(fills, withdrawals)
    check_conservation(net)
    tree = fills_tree(fills, book)
    fills_root = EMPTY_ROOT if tree is None else tree.root
    deltas = entry_words(net["asset"], book.wallet_ints(net["account"]), net["delta"])
    withdrawal_words = entry_words(net["asset"], book.wallet_ints(net["account"]), net["withdrawn"])
    served = tuple(Web3.to_checksum_address(wallet) for wallet in served)
    return Batch(batch_id, bytes(prev_hash), fills, withdrawals, net, fills_root, deltas, withdrawal_words,
                 batch_hash(prev_hash, batch_id, fills_root, deltas, withdrawal_words, served), tree, book, served)


def fills_tree(fills: np.ndarray, book: AddressBook) -> StandardMerkleTree | None:
    """The StandardMerkleTree of the fills' leaves (None for no fills: the root is EMPTY_ROOT)."""
    if len(fills) == 0:
        return None
    return StandardMerkleTree(leaf_hashes_of_encoded(encode_fill_leaves(fills, book)))


def entry_words(assets: np.ndarray, wallets: list[int], amounts: np.ndarray) -> tuple[int, ...]:
    """Packed words (wallet << 80 | asset << 64 | uint64(amount)) of the non-zero amounts,
    sorted by (wallet, asset) as the vault requires: each wallet's entries are contiguous, so
    the vault reads and writes its state and packed balance slots once per batch."""
    words = [
        (wallet << 80) | (asset << 64) | (amount & _AMOUNT_MASK)
        for asset, wallet, amount in zip(assets.tolist(), wallets, amounts.tolist(), strict=True)
        if amount != 0
    ]
    words.sort()
    return tuple(words)


def batch_hash(prev_hash: bytes, batch_id: int, fills_root: bytes, deltas, withdrawal_words,
               served: Sequence[str] = ()) -> bytes:
    """keccak256(abi.encode(prevHash, batchId, fillsRoot, keccak256(packed deltas),
    keccak256(packed withdrawals), keccak256(packed served))): the vault's batch chaining
    (abi.encodePacked pads each address of an array to 32 bytes)."""
    return keccak(b"".join([
        bytes(prev_hash),
        batch_id.to_bytes(32, "big"),
        bytes(fills_root),
        keccak(b"".join(word.to_bytes(32, "big") for word in deltas)),
        keccak(b"".join(word.to_bytes(32, "big") for word in withdrawal_words)),
        keccak(b"".join(bytes.fromhex(wallet[2:]).rjust(32, b"\0") for wallet in served)),
    ]))


def encode_fill_leaves(fills: np.ndarray, book: AddressBook) -> np.ndarray:
    """abi.encode of every fill's leaf values, one 288-byte row per fill (vectorized)."""
    n = len(fills)
    out = np.zeros((n, len(FILL_LEAF_TYPES), 32), dtype=np.uint8)
    accounts = np.concatenate([fills["buyer"], fills["seller"]])
    unique, index = np.unique(accounts, return_inverse=True)
    wallet_bytes = np.frombuffer(b"".join(w.to_bytes(20, "big") for w in book.wallet_ints(unique)),
                                 dtype=np.uint8).reshape(len(unique), 20)
    out[:, 1, 12:] = wallet_bytes[index[:n]]
    out[:, 2, 12:] = wallet_bytes[index[n:]]
    columns = ((0, "fill_id"), (3, "base_asset"), (4, "quote_asset"), (5, "base_amount"),
               (6, "quote_amount"), (7, "buyer_fee"), (8, "seller_fee"))
    for word, name in columns:
        values = fills[name].astype(np.uint64 if name == "fill_id" else np.int64)
        out[:, word, 24:] = values.astype(values.dtype.newbyteorder(">")).view(np.uint8).reshape(n, 8)
        if values.dtype == np.int64:
            out[:, word, :24] = np.where(values < 0, 0xFF, 0).astype(np.uint8)[:, None]
    return out.reshape(n, len(FILL_LEAF_TYPES) * 32)


PUBLISHED_FILL_DTYPE = np.dtype([("fill_id", ">u8"), ("buyer", "u1", 20), ("seller", "u1", 20), ("base_asset", ">u2"),
                                 ("quote_asset", ">u2"), ("base_amount", ">u8"), ("quote_amount", ">u8"),
                                 ("buyer_fee", ">i8"), ("seller_fee", ">i8")])
"""One published fill: the leaf values of the fills tree, big-endian, 84 bytes."""


def publish_fills(fills: np.ndarray, book: AddressBook) -> bytes:
    """The fills as the vault publishes them (settle's `fills`): the fee account's wallet
    (20 bytes), then one PUBLISHED_FILL_DTYPE row per fill. Anyone can recompute the batch's
    deltas and fills root from it (settlement/audit.py)."""
    rows = np.zeros(len(fills), dtype=PUBLISHED_FILL_DTYPE)
    for name in PUBLISHED_FILL_DTYPE.names:
        if name in ("buyer", "seller"):
            rows[name] = np.frombuffer(b"".join(wallet.to_bytes(20, "big") for wallet in book.wallet_ints(fills[name])),
                                       dtype=np.uint8).reshape(len(fills), 20)
        else:
            rows[name] = fills[name]
    return book.wallet_ints(np.array([FEE_ACCOUNT]))[0].to_bytes(20, "big") + rows.tobytes()


def read_published_fills(data: bytes) -> tuple[np.ndarray, AddressBook]:
    """(fills, address book) of published fills: accounts are numbered by wallet (the fee
    wallet is FEE_ACCOUNT); BatchError if the bytes are not published fills."""
    if len(data) < 20 or (len(data) - 20) % PUBLISHED_FILL_DTYPE.itemsize:
        raise BatchError(f"{len(data)} bytes are not published fills")
    rows = np.frombuffer(data, dtype=PUBLISHED_FILL_DTYPE, offset=20)
    wallets = {bytes(data[:20]): FEE_ACCOUNT}
    for row in np.concatenate([rows["buyer"], rows["seller"]]):
        wallets.setdefault(row.tobytes(), len(wallets))
    fills = np.zeros(len(rows), dtype=SETTLEMENT_FILL_DTYPE)
    for name in PUBLISHED_FILL_DTYPE.names:
        if name in ("buyer", "seller"):
            fills[name] = [wallets[row.tobytes()] for row in rows[name]]
        else:
            fills[name] = rows[name]
    book = AddressBook({account: "0x" + wallet.hex() for wallet, account in wallets.items()})
    return fills, book


def fill_leaf_values(fills: np.ndarray, book: AddressBook) -> list[tuple]:
    """Each fill's leaf values (the vault's Fill struct), in order."""
    return [
        (fid, book.wallet(buyer), book.wallet(seller), base_asset, quote_asset, base, quote, buyer_fee, seller_fee)
        for fid, buyer, seller, base_asset, quote_asset, base, quote, buyer_fee, seller_fee in fills.tolist()
    ]

