"""Where the batch job reads settled-to-be records: the FillSource interface, an append-only
file implementation and the engine's journal (a file journal, or a JetStream stream read
through ``CommittedStream``).

Fill ids, withdrawal ids and freeze ids share one id space (engine seq * 65536 + index within
the command) and increase with the engine's sequence, so one cursor orders them: a withdrawal
is never settled before the fills that preceded it in the engine, and an account's freeze
(its wallet's exit request) comes after every record of that account.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from settlement.records import (
    FILLS_PER_SEQ,
    FREEZE_DTYPE,
    SETTLEMENT_FILL_DTYPE,
    WITHDRAWAL_DTYPE,
    UnitTable,
    empty_fills,
    empty_withdrawals,
    freeze_records,
    settlement_records,
)


class FillSource(Protocol):
    """Fills and withdrawals in id order."""

    def read(self, after_id: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(fills, withdrawals) with id > after_id: the `limit` lowest ids of both kinds together."""
        ...

    def freezes(self) -> np.ndarray:
        """Every account freeze (FREEZE_DTYPE) the source holds, in id order."""
        ...


class RecordFileSource:
    """Three append-only files of raw records in `directory`: fills.bin (SETTLEMENT_FILL_DTYPE),
    withdrawals.bin (WITHDRAWAL_DTYPE) and freezes.bin (FREEZE_DTYPE). A torn record at the end
    (crash mid-append) is ignored until it is complete."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._files = {"fill_id": self.directory / "fills.bin", "withdrawal_id": self.directory / "withdrawals.bin",
                       "freeze_id": self.directory / "freezes.bin"}

    def append(self, fills: np.ndarray | None = None, withdrawals: np.ndarray | None = None,
               freezes: np.ndarray | None = None) -> None:
        """Append records (ids must keep increasing) and fsync."""
        for key, records, dtype in (("fill_id", fills, SETTLEMENT_FILL_DTYPE),
                                    ("withdrawal_id", withdrawals, WITHDRAWAL_DTYPE),
                                    ("freeze_id", freezes, FREEZE_DTYPE)):
            if records is None or len(records) == 0:
                continue
            if records.dtype != dtype:
                raise ValueError(f"{key} records must have dtype {dtype}")
            existing = self._load(key, dtype)
            ids = records[key]
            if np.any(ids[1:] <= ids[:-1]) or (len(existing) and ids[0] <= existing[key][-1]):
                raise ValueError(f"{key} must increase strictly")
            with open(self._files[key], "ab") as file:
                file.write(records.tobytes())
                file.flush()
                os.fsync(file.fileno())

    def read(self, after_id: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(fills, withdrawals) with id > after_id: the `limit` lowest ids of both kinds together."""
        fills = self._after(self._load("fill_id", SETTLEMENT_FILL_DTYPE), "fill_id", after_id, limit)
        withdrawals = self._after(self._load("withdrawal_id", WITHDRAWAL_DTYPE), "withdrawal_id", after_id, limit)
        fills, withdrawals = _lowest_ids(fills, withdrawals, limit)
        return fills.copy(), withdrawals.copy()

    def freezes(self) -> np.ndarray:
        """Every account freeze (FREEZE_DTYPE) in the file, in id order."""
        return self._load("freeze_id", FREEZE_DTYPE).copy()

    def _load(self, key: str, dtype: np.dtype) -> np.ndarray:
        path = self._files[key]
        if not path.exists():
            return np.zeros(0, dtype=dtype)
        whole = path.stat().st_size // dtype.itemsize
        if whole == 0:
            return np.zeros(0, dtype=dtype)
        return np.memmap(path, dtype=dtype, mode="r", shape=(whole,))

    @staticmethod
    def _after(records: np.ndarray, key: str, after_id: int, limit: int) -> np.ndarray:
        start = int(np.searchsorted(records[key], np.uint64(after_id), side="right"))
        return records[start:start + limit]


class JournalFillSource:
    """FillSource over the engine's journal: the FILL and DEBITED events each
    journaled batch carries become fills and withdrawals (ids seq * 65536 +
    index of the event within its command's journaled events). Only committed
    batches are read, so nothing settles that a crash could still take back.
    Option series listed at run time (SERIES_LISTED) join ``units`` as the
    journal is scanned, with their freezes, from its start."""

    def __init__(self, journal, units: UnitTable) -> None:
        self.journal = journal
        self.units = units
        self._freezes = [np.zeros(0, dtype=FREEZE_DTYPE)]
        self._freezes_to = 0   # the freezes and listings of seqs up to here are in _freezes and units

    def read(self, after_id: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(fills, withdrawals) with id > after_id: the `limit` lowest ids of both kinds together."""
        committed = self.journal.committed_seq
        self.freezes()
        fills_parts, withdrawal_parts, count = [], [], 0
        for batch in self.journal.read(max(1, after_id // FILLS_PER_SEQ)):
            if batch.first_seq > committed:
                break
            events = batch.events[batch.events["seq"] <= committed]
            self.units.add_listings(batch.commands, events)
            fills, withdrawals = settlement_records(events, self.units)
            fills = fills[fills["fill_id"] > after_id]
            withdrawals = withdrawals[withdrawals["withdrawal_id"] > after_id]
            fills_parts.append(fills)
            withdrawal_parts.append(withdrawals)
            count += len(fills) + len(withdrawals)
            if count >= limit:
                break
        fills = np.concatenate(fills_parts) if fills_parts else empty_fills(0)
        withdrawals = np.concatenate(withdrawal_parts) if withdrawal_parts else empty_withdrawals(0)
        return _lowest_ids(fills, withdrawals, limit)

    def freezes(self) -> np.ndarray:
        """Every account freeze (FREEZE_DTYPE) in committed journal batches, in id order
        (each journal batch is read once)."""
        committed = self.journal.committed_seq
        for batch in self.journal.read(self._freezes_to + 1):
            if batch.last_seq > committed:
                break
            if batch.first_seq > self._freezes_to:
                self._freezes.append(freeze_records(batch.events))
                self.units.add_listings(batch.commands, batch.events)
                self._freezes_to = batch.last_seq
        self._freezes = [np.concatenate(self._freezes)]
        return self._freezes[0].copy()


class CommittedStream:
    """A JetStream journal (engine/journal_jetstream.py) as settlement reads it,
    the journal of a ``JournalFillSource``: everything the stream holds is
    committed (a quorum stored each batch before the gateway acknowledged it),
    so ``committed_seq`` is the stream's last batch, asked of the stream."""

    def __init__(self, journal) -> None:
        self.journal = journal

    @property
    def committed_seq(self) -> int:
        """The engine seq of the stream's last batch."""
        return self.journal.stream_last_seq()

    def read(self, from_seq: int = 1):
        """The stream's batches with commands at or after ``from_seq``."""
        return self.journal.read(from_seq)

    def close(self) -> None:
        """Close the connection to the stream."""
        self.journal.close()


def _lowest_ids(fills: np.ndarray, withdrawals: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """The fills and withdrawals among the ``limit`` lowest ids of both kinds together
    (each kind is in id order)."""
    if limit <= 0:
        return fills[:0], withdrawals[:0]
    if len(fills) + len(withdrawals) > limit:
        cutoff = np.sort(np.concatenate([fills["fill_id"], withdrawals["withdrawal_id"]]))[limit - 1]
        fills = fills[fills["fill_id"] <= cutoff]
        withdrawals = withdrawals[withdrawals["withdrawal_id"] <= cutoff]
    return fills, withdrawals
