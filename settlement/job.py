"""The settlement batch job: read records after the checkpoint, cut a batch, net it, commit the
fills, settle on chain, wait for confirmations, checkpoint. Exactly once.

The chain's last batch id and hash are the truth. Before anything is sent the job writes the
batch's record (its cut of the source, hashes, and every signed transaction for it) to
`state_dir/batches/`; after a crash at any step it compares the chain with the checkpoint and
that record and resumes:

* chain at the checkpoint, batch record without a mined transaction: rebroadcast the recorded
  signed transaction (or sign one) and wait - the same batch, never a second one;
* chain one batch ahead with the recorded hash: the transaction was mined; confirm, checkpoint;
* the checkpointed transaction's block gone, but a recorded version of that transaction mined
  again in another block (or pending again, then mined): after a shallow reorg it is the same
  batch on chain, recognised by the batch id and hash its BatchSettled log carries; confirm it
  again and move the checkpoint to its new block;
* chain behind the checkpoint with the batch neither mined nor pending: ReorgError (a reorg
  deeper than the confirmations); chain further ahead or with another hash: JobError.

With an ExitQueue (settlement/exits.py) each batch also serves the exit requests it may, and
a batch without records is settled just to serve them; the batch record keeps `served`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from web3.logs import DISCARD

from settlement.accounts import AddressBook
from settlement.batch import Batch, build_batch
from settlement.chain import ChainClient, ChainError, ReorgError, RpcError, SignedTx
from settlement.exits import ExitQueue
from settlement.source import FillSource
from settlement.vault import Vault

STEPS = ("before_send", "after_send", "after_mined", "before_checkpoint")
"""The points where `step_hook` runs (crash-injection tests raise there)."""

ZERO_HASH = "0x" + "00" * 32
EPOCH_FIRST_GAS_MULTIPLE = 2
"""Gas limit of a settle transaction in estimates: an epoch's first batch costs up to two steady ones."""


class JobError(ChainError):
    """The chain, the job's records and the source disagree in a way the job must not repair."""


@dataclass
class Checkpoint:
    """The last batch settled with enough confirmations, and where it ended in the source."""

    batch_id: int = 0
    batch_hash: str = ZERO_HASH
    last_id: int = 0
    tx_hash: str | None = None
    block_number: int | None = None
    block_hash: str | None = None


@dataclass
class BatchRecord:
    """A batch's cut of the source and its commitments, plus every signed transaction sent for it."""

    batch_id: int
    prev_hash: str
    after_id: int
    last_id: int
    record_count: int
    fills_root: str
    batch_hash: str
    txs: list[dict] = field(default_factory=list)  # {"hash", "raw", "fields"}
    served: list[str] = field(default_factory=list)  # wallets whose exit requests it serves

    def signed(self) -> list[SignedTx]:
        """The recorded transactions, oldest first."""
        return [SignedTx(tx["fields"], bytes.fromhex(tx["raw"][2:]), bytes.fromhex(tx["hash"][2:]))
                for tx in self.txs]

    def add(self, tx: SignedTx) -> None:
        """Record another signed version of the settle transaction."""
        self.txs.append({"hash": "0x" + tx.tx_hash.hex(), "raw": "0x" + tx.raw.hex(), "fields": tx.fields})


class JobStore:
    """The job's files: checkpoint.json and batches/NNNNNNNNN.json, written atomically."""

    def __init__(self, state_dir: Path, start_after: int = 0) -> None:
        self.state_dir = Path(state_dir)
        self.batches_dir = self.state_dir / "batches"
        self.batches_dir.mkdir(parents=True, exist_ok=True)
        self.start_after = start_after

    def checkpoint(self) -> Checkpoint:
        """The last checkpoint, or the genesis one (batch 0, source position `start_after`)."""
        path = self.state_dir / "checkpoint.json"
        if not path.exists():
            return Checkpoint(last_id=self.start_after)
        return Checkpoint(**json.loads(path.read_text()))

    def write_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint."""
        self._write(self.state_dir / "checkpoint.json", asdict(checkpoint))

    def batch(self, batch_id: int) -> BatchRecord | None:
        """The record of batch `batch_id`, if the job wrote one."""
        path = self._batch_path(batch_id)
        return BatchRecord(**json.loads(path.read_text())) if path.exists() else None

    def write_batch(self, record: BatchRecord) -> None:
        """Write (or replace) a batch record."""
        self._write(self._batch_path(record.batch_id), asdict(record))

    def _batch_path(self, batch_id: int) -> Path:
        return self.batches_dir / f"{batch_id:09d}.json"

    def _write(self, path: Path, data: dict) -> None:
        tmp = path.with_suffix(".tmp")
        with open(tmp, "w") as file:
            file.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def rebuild_batch(record: BatchRecord, source: FillSource, book: AddressBook) -> Batch:
    """Batch `record` rebuilt from the source; JobError if the source no longer yields it."""
    fills, withdrawals = source.read(record.after_id, record.record_count)
    batch = build_batch(record.batch_id, bytes.fromhex(record.prev_hash[2:]), fills, withdrawals, book, record.served)
    if len(fills) + len(withdrawals) != record.record_count or "0x" + batch.batch_hash.hex() != record.batch_hash:
        raise JobError(f"the source no longer yields batch {record.batch_id} as recorded")
    return batch


class SettlementJob:
    """Settles the records of a FillSource on a SettlementVault, batch by batch, exactly once."""

    def __init__(self, source: FillSource, client: ChainClient, vault: Vault, book: AddressBook, state_dir: Path,
                 *, max_records: int = 10_000, max_wait: float = 5.0, max_entries: int = 3_000, start_after: int = 0,
                 step_hook: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 exits: ExitQueue | None = None) -> None:
        self.source = source
        self.client = client
        self.vault = vault
        self.book = book
        self.store = JobStore(state_dir, start_after)
        self.max_records = max_records
        self.max_wait = max_wait
        self.max_entries = max_entries
        self.step_hook = step_hook
        self.clock = clock
        self.exits = exits
        self._waiting_since: float | None = None

    def step(self) -> int | None:
        """Finish any batch in flight, then settle the next one if it is due (max_records
        available, or records waiting for max_wait seconds). Return the id of the batch
        settled now, or None. A batch also serves the exit requests it may (exits.py); with
        no records due, one without records serves them."""
        checkpoint, finished = self.resume()
        fills, withdrawals = self.source.read(checkpoint.last_id, self.max_records)
        count = len(fills) + len(withdrawals)
        if count == 0:
            self._waiting_since = None
            if self.exits is None or not (served := self.exits.servable(self.source, checkpoint.last_id)):
                return finished
            return self._settle(checkpoint, build_batch(checkpoint.batch_id + 1, bytes.fromhex(
                checkpoint.batch_hash[2:]), fills, withdrawals, self.book, served))
        if count < self.max_records:
            now = self.clock()
            if self._waiting_since is None:
                self._waiting_since = now
            if now - self._waiting_since < self.max_wait:
                return finished
        self._waiting_since = None
        batch = self._fitting_batch(checkpoint, fills, withdrawals)
        if self.exits is not None and (served := self.exits.servable(
                self.source, last_record_id(batch.fills, batch.withdrawals))):
            batch = build_batch(batch.batch_id, batch.prev_hash, batch.fills, batch.withdrawals, self.book, served)
        return self._settle(checkpoint, batch)

    def run(self, stop: threading.Event, poll_interval: float = 0.5) -> None:
        """Call `step` until `stop` is set."""
        while not stop.is_set():
            self.step()
            stop.wait(poll_interval)

    def resume(self) -> tuple[Checkpoint, int | None]:
        """Reconcile the checkpoint and the batch in flight with the chain (see the module doc).
        Return the checkpoint to continue from and the id of a batch finished now, if any."""
        checkpoint = self.store.checkpoint()
        chain_id, chain_hash = self.vault.last_batch()
        if not self._checkpoint_canonical(checkpoint, chain_id):
            checkpoint = self._checkpoint_remined(checkpoint)
            chain_id, chain_hash = self.vault.last_batch()
        chain_hash_hex = "0x" + chain_hash.hex()
        if chain_id > checkpoint.batch_id + 1:
            raise JobError(f"chain is at batch {chain_id}, this job checkpointed {checkpoint.batch_id}: "
                           "another settler is using this vault")
        if chain_id == checkpoint.batch_id and chain_hash_hex != checkpoint.batch_hash:
            raise JobError(f"batch {chain_id} on chain has hash {chain_hash_hex}, checkpoint {checkpoint.batch_hash}")
        record = self.store.batch(checkpoint.batch_id + 1)
        if chain_id == checkpoint.batch_id + 1 and (record is None or record.batch_hash != chain_hash_hex):
            raise JobError(f"batch {chain_id} on chain ({chain_hash_hex}) was not recorded by this job")
        if record is None or record.prev_hash != checkpoint.batch_hash:
            return checkpoint, None
        checkpoint = self._finish(record, rebuild_batch(record, self.source, self.book))
        return checkpoint, record.batch_id

    # -- internals --

    def _settle(self, checkpoint: Checkpoint, batch: Batch) -> int:
        """Record `batch` (the source after the checkpoint, cut where it ends), settle it."""
        fills, withdrawals = batch.fills, batch.withdrawals
        record = BatchRecord(batch.batch_id, checkpoint.batch_hash, checkpoint.last_id,
                             last_record_id(fills, withdrawals) or checkpoint.last_id, len(fills) + len(withdrawals),
                             "0x" + batch.fills_root.hex(), "0x" + batch.batch_hash.hex(), served=list(batch.served))
        self.store.write_batch(record)
        self._finish(record, batch)
        return batch.batch_id

    def _fitting_batch(self, checkpoint: Checkpoint, fills: np.ndarray, withdrawals: np.ndarray) -> Batch:
        """The next batch, cut shorter while it has more than max_entries deltas + withdrawals
        (about 3,000 gas each with the packed balances, twice that in an epoch's first batch:
        keep one settle transaction well inside a block)."""
        prev_hash = bytes.fromhex(checkpoint.batch_hash[2:])
        while True:
            batch = build_batch(checkpoint.batch_id + 1, prev_hash, fills, withdrawals, self.book)
            count = len(fills) + len(withdrawals)
            if len(batch.deltas) + len(batch.withdrawal_words) <= self.max_entries or count == 1:
                return batch
            fills, withdrawals = self.source.read(checkpoint.last_id, count // 2)

    def _reorg_depth(self) -> str:
        return f"a reorg deeper than {self.client.confirmations} confirmation(s)"

    def _checkpoint_canonical(self, checkpoint: Checkpoint, chain_id: int) -> bool:
        """Whether the checkpointed batch is still in the block the checkpoint names."""
        if checkpoint.tx_hash is None:
            if chain_id < checkpoint.batch_id:
                raise ReorgError(f"chain is back at batch {chain_id} after checkpoint {checkpoint.batch_id}: "
                                 f"{self._reorg_depth()}")
            return True
        receipt = self.client.find_receipt(bytes.fromhex(checkpoint.tx_hash[2:]))
        return (chain_id >= checkpoint.batch_id and receipt is not None
                and "0x" + bytes(receipt["blockHash"]).hex() == checkpoint.block_hash)

    def _checkpoint_remined(self, checkpoint: Checkpoint) -> Checkpoint:
        """The checkpoint moved to the block where a reorg put its batch again: a recorded version
        of the settle transaction mined (or pending, then mined) whose BatchSettled log names the
        checkpointed batch id and hash, confirmed again. ReorgError if the batch is gone."""
        gone = f"batch {checkpoint.batch_id} left block {checkpoint.block_number}"
        record = self.store.batch(checkpoint.batch_id)
        versions = record.signed() if record is not None else []
        mined = [(receipt, tx) for tx in versions if (receipt := self.client.find_receipt(tx.tx_hash)) is not None]
        if not mined:
            if not any(self.client.is_known(tx.tx_hash) for tx in versions):
                raise ReorgError(f"{gone} and is neither mined nor pending: {self._reorg_depth()}")
            mined = [self.client.wait_mined(versions)]
        receipt, tx = mined[0]
        if not self._settled_by(receipt, checkpoint):
            raise ReorgError(f"{gone}; its transaction 0x{tx.tx_hash.hex()} was mined again but did not settle "
                             f"batch {checkpoint.batch_id} with hash {checkpoint.batch_hash}: {self._reorg_depth()}")
        receipt = self.client.confirm(receipt, tx)
        moved = Checkpoint(checkpoint.batch_id, checkpoint.batch_hash, checkpoint.last_id, "0x" + tx.tx_hash.hex(),
                           receipt["blockNumber"], "0x" + bytes(receipt["blockHash"]).hex())
        self.store.write_checkpoint(moved)
        return moved

    def _settled_by(self, receipt: dict, checkpoint: Checkpoint) -> bool:
        """Whether `receipt` is a successful settle of the checkpointed batch (its id and hash)."""
        if receipt["status"] != 1:
            return False
        logs = self.vault.contract.events.BatchSettled().process_receipt(receipt, errors=DISCARD)
        return any(log["address"] == self.vault.address and log["args"]["batchId"] == checkpoint.batch_id
                   and "0x" + bytes(log["args"]["batchHash"]).hex() == checkpoint.batch_hash for log in logs)

    def _finish(self, record: BatchRecord, batch: Batch) -> Checkpoint:
        """Get `record`'s batch settled and confirmed, sending only what is needed; checkpoint it."""
        receipt, tx = self._mined(record, batch)
        self._step("after_mined")
        receipt = self.client.confirm(receipt, tx)
        self._step("before_checkpoint")
        checkpoint = Checkpoint(record.batch_id, record.batch_hash, record.last_id, "0x" + tx.tx_hash.hex(),
                                receipt["blockNumber"], "0x" + bytes(receipt["blockHash"]).hex())
        self.store.write_checkpoint(checkpoint)
        return checkpoint

    def _mined(self, record: BatchRecord, batch: Batch) -> tuple[dict, SignedTx]:
        """The mined settle transaction of `record`, sending or rebroadcasting it if needed."""
        sent = record.signed()
        for tx in sent:
            receipt = self.client.find_receipt(tx.tx_hash)
            if receipt is not None and receipt["status"] == 1:
                return receipt, tx
            if receipt is not None:
                sent = []  # mined but failed: its nonce is spent; estimate and sign afresh
                break
        if sent and not any(self.client.is_known(tx.tx_hash) for tx in sent):
            try:
                self.client.broadcast(sent[-1])
            except RpcError:
                sent = []  # the node refuses it (nonce used elsewhere, dropped): sign afresh
        if not sent:
            # The first batch of an epoch writes the wallets' new checkpoints and costs up to two steady
            # ones; estimated just before an epoch boundary, it may be mined after it. Unused gas is refunded.
            tx = self.client.prepare(self.vault.contract.functions.settle(*batch.settle_args()),
                                     gas_multiple=EPOCH_FIRST_GAS_MULTIPLE)
            record.txs = []
            record.add(tx)
            self.store.write_batch(record)
            self._step("before_send")
            self.client.broadcast(tx)
            self._step("after_send")
            sent = [tx]

        def keep(replacement: SignedTx) -> None:
            record.add(replacement)
            self.store.write_batch(record)

        return self.client.wait_mined(sent, replace_stuck=True, on_replace=keep)

    def _step(self, name: str) -> None:
        if self.step_hook is not None:
            self.step_hook(name)


def last_record_id(fills: np.ndarray, withdrawals: np.ndarray) -> int:
    """The highest fill or withdrawal id among the records (0 if none)."""
    return int(max(fills["fill_id"].max(initial=0), withdrawals["withdrawal_id"].max(initial=0)))
