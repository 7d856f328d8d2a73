"""The watchtower: recompute every settled batch from the fills it published and report any
batch whose netted deltas or fills root differ from what the operator posted (or whose fills
cannot be read: that is a mismatch too); with the guardian's key, pause the vault.

A batch's fills are in the calldata of its settle transaction (settlement/batch.py
`publish_fills`). The recomputation uses the job's own code: `read_published_fills` ->
`net_fills` (netting.py) -> `entry_words`, and `fills_tree` (merkle.py's StandardMerkleTree). A pause
during the vault's challenge window stops the claims of the challenged batch; exits stay open and
pay the last unchallenged state (the vault's doc comment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from web3.exceptions import Web3Exception

from settlement.accounts import AddressBookError
from settlement.batch import BatchError, entry_words, fills_tree, read_published_fills
from settlement.chain import ChainClient
from settlement.merkle import EMPTY_ROOT
from settlement.netting import NettingError, net_fills
from settlement.records import WITHDRAWAL_DTYPE
from settlement.vault import Vault


@dataclass(frozen=True)
class BatchAudit:
    """The outcome of recomputing one batch; `problem` is None when it matches."""

    batch_id: int
    tx_hash: str
    fills: int
    problem: str | None

    @property
    def ok(self) -> bool:
        """Whether the batch matches its published fills."""
        return self.problem is None


def audit_batch(vault: Vault, log) -> BatchAudit:
    """Recompute the batch of one BatchSettled log from the fills its transaction published."""
    batch_id = int(log["args"]["batchId"])
    tx_hash = "0x" + bytes(log["transactionHash"]).hex()
    try:
        tx = vault.w3.eth.get_transaction(log["transactionHash"])
        function, args = vault.contract.decode_function_input(tx["input"])
    except (Web3Exception, ValueError) as err:
        return BatchAudit(batch_id, tx_hash, 0, f"published fills cannot be read: {err}")
    if function.fn_name != "settle" or tx["to"] != vault.address:
        return BatchAudit(batch_id, tx_hash, 0, "published fills cannot be read: not a direct settle call")
    try:
        fills, book = read_published_fills(bytes(args["fills"]))
        net = net_fills(fills, np.zeros(0, dtype=WITHDRAWAL_DTYPE))
        deltas = entry_words(net["asset"], book.wallet_ints(net["account"]), net["delta"])
        tree = fills_tree(fills, book)
    except (BatchError, NettingError, AddressBookError) as err:
        return BatchAudit(batch_id, tx_hash, 0, f"published fills cannot be read: {err}")
    root = EMPTY_ROOT if tree is None else tree.root
    header = args["header"]
    if root != bytes(header["fillsRoot"]) or root != bytes(log["args"]["fillsRoot"]):
        return BatchAudit(batch_id, tx_hash, len(fills), "fills root differs from the published fills")
    if list(deltas) != [int(word) for word in args["deltas"]]:
        return BatchAudit(batch_id, tx_hash, len(fills), "deltas differ from the netting of the published fills")
    return BatchAudit(batch_id, tx_hash, len(fills), None)


class Watchtower:
    """Audits a vault's batches in order, once each; pauses the vault on a mismatch when it
    holds the guardian's key."""

    def __init__(self, vault: Vault, from_block: int = 0, guardian: ChainClient | None = None) -> None:
        self.vault = vault
        self.guardian = guardian
        self._from_block = from_block

    def poll(self) -> list[BatchAudit]:
        """Audit the batches settled since the last poll; pause on the first mismatch."""
        latest = self.vault.w3.eth.block_number
        if latest < self._from_block:   # no new block: a node refuses a range that ends before it starts
            return []
        logs = self.vault.contract.events.BatchSettled().get_logs(from_block=self._from_block, to_block=latest)
        self._from_block = latest + 1
        audits = [audit_batch(self.vault, log) for log in logs]
        if self.guardian is not None and any(not audit.ok for audit in audits):
            if not self.vault.contract.functions.paused().call():
                self.guardian.transact(self.vault.contract.functions.pause())
        return audits
