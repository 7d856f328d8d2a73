"""OpenZeppelin StandardMerkleTree, single proofs: same leaves, layout, root and proofs as the
npm package @openzeppelin/merkle-tree, so OpenZeppelin's MerkleProof verifies them on chain.

Layout: leaf hash = keccak256(keccak256(abi.encode(values))); leaf hashes are sorted ascending;
the tree is an array of 2n-1 nodes with the sorted leaves stored from the end backwards
(tree[2n-2-i] = leaf i) and tree[i] = keccak256(sorted(tree[2i+1], tree[2i+2])).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from eth_abi import encode
from eth_hash.backends.pysha3 import keccak256 as keccak
from sha3 import keccak_256  # the C hasher behind eth_hash's pysha3 backend, for the hot loops

EMPTY_ROOT = bytes(32)
"""The root recorded for a batch without fills (StandardMerkleTree has no empty tree)."""


def standard_leaf_hash(types: Sequence[str], values: Sequence) -> bytes:
    """keccak256(keccak256(abi.encode(types, values))): a StandardMerkleTree leaf."""
    return keccak(keccak(encode(list(types), list(values))))


def leaf_hashes_of_encoded(encoded: np.ndarray) -> list[bytes]:
    """Leaf hashes of rows that are already abi-encoded (a 2-D uint8 array, one row per leaf)."""
    width = encoded.shape[1]
    buffer = memoryview(np.ascontiguousarray(encoded)).cast("B")
    return [keccak_256(keccak_256(buffer[start:start + width]).digest()).digest()
            for start in range(0, len(buffer), width)]


def hash_pair(a: bytes, b: bytes) -> bytes:
    """The commutative node hash: keccak256 of the two children, smaller first."""
    return keccak(a + b) if a < b else keccak(b + a)


class StandardMerkleTree:
    """A StandardMerkleTree over leaf hashes given in value order (value i = leaf_hashes[i])."""

    def __init__(self, leaf_hashes: Sequence[bytes]) -> None:
        n = len(leaf_hashes)
        if n == 0:
            raise ValueError("a Merkle tree needs at least one leaf")
        order = np.argsort(np.array(leaf_hashes, dtype="S32"), kind="stable")
        size = 2 * n - 1
        # The leaf of rank r (ascending hash) sits at size - 1 - r: the leaves fill the tail reversed.
        tree: list[bytes] = [b""] * (n - 1) + [leaf_hashes[i] for i in order[::-1].tolist()]
        tree_index = np.empty(n, dtype=np.int64)
        tree_index[order] = size - 1 - np.arange(n)
        # Internal nodes level by level from the deepest: the children of nodes [lo, hi) are
        # the contiguous slice [2lo+1, 2hi+1), all computed before.
        depth = (n - 1).bit_length()
        for level in range(depth - 1, -1, -1):
            lo, hi = (1 << level) - 1, min((1 << (level + 1)) - 1, n - 1)
            children = tree[2 * lo + 1:2 * hi + 1]
            tree[lo:hi] = [keccak_256(a + b).digest() if a < b else keccak_256(b + a).digest()
                           for a, b in zip(children[0::2], children[1::2])]
        self._tree = tree
        self._tree_index = tree_index

    @property
    def root(self) -> bytes:
        """The root hash."""
        return self._tree[0]

    def __len__(self) -> int:
        return len(self._tree_index)

    def leaf_hash(self, value_index: int) -> bytes:
        """The leaf hash of value `value_index`."""
        return self._tree[int(self._tree_index[value_index])]

    def proof(self, value_index: int) -> list[bytes]:
        """The sibling hashes from value `value_index`'s leaf up to the root."""
        index = int(self._tree_index[value_index])
        proof = []
        while index > 0:
            sibling = index - 1 if index % 2 == 0 else index + 1
            proof.append(self._tree[sibling])
            index = (index - 1) // 2
        return proof


def process_proof(leaf_hash: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` leads to from `leaf_hash` (MerkleProof.processProof)."""
    node = leaf_hash
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node


def verify(root: bytes, leaf_hash: bytes, proof: Sequence[bytes]) -> bool:
    """Whether `proof` proves `leaf_hash` under `root` (MerkleProof.verify)."""
    return process_proof(leaf_hash, proof) == root
