"""StandardMerkleTree compatibility: a vector from @openzeppelin/merkle-tree, proofs, batch leaves."""

from __future__ import annotations

import numpy as np
from eth_abi import encode
from hypothesis import given, settings
from hypothesis import strategies as st
from settlement_helpers import make_fills

from settlement.accounts import AddressBook
from settlement.batch import FILL_LEAF_TYPES, encode_fill_leaves, fill_leaf_values
from settlement.merkle import StandardMerkleTree, leaf_hashes_of_encoded, standard_leaf_hash, verify

# Computed with @openzeppelin/merkle-tree 1.0.8: StandardMerkleTree.of(VALUES, FILL_LEAF_TYPES),
# tree.root and tree.getProof(3).
VALUES = [[i * 1000 + 3, "0x" + format(i + 1, "040x"), "0x" + format(i + 100, "040x"), i % 3, 9, 5 + i,
           77 * i + 1, -i, i * 2] for i in range(7)]
OZ_ROOT = "5eabb5613210773929883906386b953804961faf107f17e27c6bb00f7d4f946c"
OZ_PROOF_3 = [
    "c42048dd766e1f7d80866157e762d35ab7f15a460ca96f6cbfbda4760b6751c1",
    "17691f3ff9f1f44c8812b003081fa816d567e16e4892cc5ae197ce9187051fc8",
    "ae096752be7e779616ed3d94db39b8029fb21dd5bf41108d83e79a72bf5b3325",
]


def test_matches_openzeppelin_merkle_tree():
    tree = StandardMerkleTree([standard_leaf_hash(FILL_LEAF_TYPES, v) for v in VALUES])
    assert tree.root.hex() == OZ_ROOT
    assert [p.hex() for p in tree.proof(3)] == OZ_PROOF_3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=70))
def test_every_proof_verifies_and_wrong_leaves_do_not(leaves):
    tree = StandardMerkleTree(leaves)
    for i, leaf in enumerate(leaves):
        proof = tree.proof(i)
        assert verify(tree.root, leaf, proof)
        assert len(leaves) == 1 or not verify(tree.root, bytes(32), proof)


def test_vectorized_leaf_encoding_equals_eth_abi():
    rng = np.random.default_rng(7)
    n = 50
    rows = zip(rng.integers(0, 2**62, n).tolist(), rng.integers(0, 9, n).tolist(), rng.integers(0, 9, n).tolist(),
               rng.integers(0, 65536, n).tolist(), rng.integers(0, 65536, n).tolist(),
               rng.integers(1, 2**63 - 1, n).tolist(), rng.integers(1, 2**63 - 1, n).tolist(),
               rng.integers(-2**63, 2**63 - 1, n).tolist(), rng.integers(-2**63, 2**63 - 1, n).tolist(), strict=True)
    fills = make_fills(list(rows))
    book = AddressBook({a: "0x" + format(a * 7919 + 12345, "040x") for a in range(9)})
    encoded = encode_fill_leaves(fills, book)
    values = fill_leaf_values(fills, book)
    assert [bytes(row) for row in encoded] == [encode(list(FILL_LEAF_TYPES), list(v)) for v in values]
    assert leaf_hashes_of_encoded(encoded) == [standard_leaf_hash(FILL_LEAF_TYPES, v) for v in values]
