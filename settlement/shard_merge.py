"""The merge of shard journals into one record sequence for the one vault
(docs/sharding.md, "Settlement").

Each shard's journal (a file journal, or a JetStream stream read through
``CommittedStream``) yields fills and withdrawals (``JournalFillSource``) with
ids of its own. The merge appends them, shard segment by shard segment, to one
``RecordFileSource`` under new ids (1, 2, 3 ... in merge order), which the
ordinary settlement job then settles batch by batch. The order is defined and
recorded:

* rounds over the shards in index order; in each, a shard's segment is its
  committed commands after its position, cut (at a command boundary) before the
  first TRANSFERRED_IN whose TRANSFERRED_OUT is not merged yet, so that no
  record that spends collateral moved in from another shard settles before the
  records that gave that collateral to the source shard (the vault refuses a
  negative balance), and after ``max_records`` records;
* ``merge.json`` holds each shard's position (the last seq merged), the
  transfer numbers merged per pair of shards and the next merged id. A segment
  is written ahead there (shard, end, first id) before its records are
  appended, so a merge restarted after a crash appends exactly the records the
  crash left out, and each record is merged exactly once.

Transfers themselves move nothing on chain: the vault holds one balance per
(wallet, asset), the sum of that account's shard ledgers and of transfers in
flight.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from engine.journal import FileJournal
from engine.shards import load_shards, shard_config
from settlement.gateway_link import unit_table_from_config
from settlement.records import FILLS_PER_SEQ, UnitTable
from settlement.source import CommittedStream, JournalFillSource, RecordFileSource

TRANSFERRED_OUT, TRANSFERRED_IN = 52, 53   # engine.core.types.EventKind (settlement imports no engine core)
_SRC_SHIFT, _DST_SHIFT, _NUMBER_MASK = 48, 40, (1 << 40) - 1   # engine/core/transfers.pyx transfer ids


class ShardMerge:
    """Merges the committed records of shard journals (in shard index order) into
    ``RecordFileSource(out_dir)``; ``units[i]`` maps shard i's instrument ids.
    It is itself a FillSource: each read merges first (``python -m settlement
    run --shards shards.toml --merged DIR``)."""

    def __init__(self, journals: list, units: list[UnitTable], out_dir: Path, *, max_records: int = 10_000) -> None:
        self.journals = journals
        self.sources = [JournalFillSource(j, u) for j, u in zip(journals, units)]
        self.out = RecordFileSource(out_dir)
        self.path = Path(out_dir) / "merge.json"
        self.max_records = max_records
        n = len(journals)
        self.state = {"positions": [0] * n, "merged_out": [[0] * n for _ in range(n)], "next_id": 1, "intent": None}
        if self.path.exists():
            self.state = json.loads(self.path.read_text())
            if len(self.state["positions"]) != n:
                raise ValueError(f"{self.path} merges {len(self.state['positions'])} shards, not {n}")

    @classmethod
    def open(cls, shards_path: str | Path, out_dir: Path, *, max_records: int = 10_000) -> ShardMerge:
        """The merge of every shard of a shards file: a file shard's journal read
        from its directory, a JetStream shard's from its stream."""
        shards = load_shards(shards_path)
        journals = []
        try:
            for shard in shards.shards:
                if shard.journal_kind == "jetstream":
                    from engine.journal_jetstream import JetStreamJournal  # needs nats-py, for stream shards only

                    journals.append(CommittedStream(JetStreamJournal.connect(shard.servers, shard.stream, None)))
                else:
                    journals.append(FileJournal.open_reader(shard.journal_path))
        except BaseException:
            for journal in journals:
                journal.close()
            raise
        units = [unit_table_from_config(shard_config(shards, s.name)) for s in shards.shards]
        return cls(journals, units, out_dir, max_records=max_records)

    def close(self) -> None:
        """Close the shards' journals."""
        for journal in self.journals:
            journal.close()

    def read(self, after_id: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """FillSource: merge what the shards committed since the last call, then
        the merged records with id > after_id (the settlement job reads the merge)."""
        self.step()
        return self.out.read(after_id, limit)

    def freezes(self) -> np.ndarray:
        """FillSource: the merged freezes (none: forced-exit freezes are not merged yet)."""
        return self.out.freezes()

    @property
    def positions(self) -> list[int]:
        """The last seq merged of each shard."""
        return list(self.state["positions"])

    def step(self) -> int:
        """Finish a segment a crash interrupted, then merge rounds until no shard
        has anything to add; the number of records merged."""
        merged = 0
        if self.state["intent"] is not None:
            merged += self._apply(**self.state["intent"])
        progress = True
        while progress:
            progress = False
            for shard in range(len(self.journals)):
                end = self._segment_end(shard)
                if end > self.state["positions"][shard]:
                    self.state["intent"] = {"shard": shard, "end": end, "first_id": self.state["next_id"]}
                    self._save()
                    merged += self._apply(**self.state["intent"])
                    progress = True
        return merged

    # -- internals --

    def _segment_end(self, shard: int) -> int:
        """The last seq of the next segment of ``shard`` (its position if none)."""
        start = self.state["positions"][shard]
        journal = self.journals[shard]
        committed = journal.committed_seq
        merged_out = self.state["merged_out"]
        end = committed
        for batch in journal.read(start + 1):
            if batch.first_seq > committed:
                break
            events = batch.events[(batch.events["seq"] > start) & (batch.events["seq"] <= committed)]
            incoming = events[events["kind"] == TRANSFERRED_IN]
            ids = incoming["order_id"].astype(np.int64)
            src, number = ids >> _SRC_SHIFT, ids & _NUMBER_MASK
            waiting = [int(seq) for seq, s, n in zip(incoming["seq"], src, number) if n > merged_out[s][shard]]
            if waiting:
                end = waiting[0] - 1
                break
        fills, withdrawals = self._records(shard, start, end)
        if len(fills) + len(withdrawals) > self.max_records:
            ids = np.sort(np.concatenate([fills["fill_id"], withdrawals["withdrawal_id"]]))
            end = max(start + 1, int(ids[self.max_records - 1]) // FILLS_PER_SEQ)
        return end

    def _records(self, shard: int, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Shard ``shard``'s fills and withdrawals of seqs start+1..end."""
        bound = (end + 1) * FILLS_PER_SEQ
        fills, withdrawals = self.sources[shard].read((start + 1) * FILLS_PER_SEQ - 1, 1 << 62)
        return fills[fills["fill_id"] < bound], withdrawals[withdrawals["withdrawal_id"] < bound]

    def _apply(self, shard: int, end: int, first_id: int) -> int:
        """Append the segment (ids from ``first_id``) that is not in the output yet,
        then record the shard's new position."""
        start = self.state["positions"][shard]
        fills, withdrawals = self._records(shard, start, end)
        order = np.argsort(np.concatenate([fills["fill_id"], withdrawals["withdrawal_id"]]), kind="stable")
        new_ids = np.empty(len(order), dtype=np.uint64)
        new_ids[order] = np.arange(first_id, first_id + len(order), dtype=np.uint64)
        fills, withdrawals = fills.copy(), withdrawals.copy()
        fills["fill_id"], withdrawals["withdrawal_id"] = new_ids[:len(fills)], new_ids[len(fills):]
        last_fill, last_withdrawal = self._last_ids()
        self.out.append(fills=fills[fills["fill_id"] > last_fill],
                        withdrawals=withdrawals[withdrawals["withdrawal_id"] > last_withdrawal])
        self._count_transfers_out(shard, start, end)
        self.state["positions"][shard] = end
        self.state["next_id"] = first_id + len(order)
        self.state["intent"] = None
        self._save()
        return len(order)

    def _count_transfers_out(self, shard: int, start: int, end: int) -> None:
        for batch in self.journals[shard].read(start + 1):
            if batch.first_seq > end:
                break
            events = batch.events[(batch.events["seq"] > start) & (batch.events["seq"] <= end)]
            for tid in events[events["kind"] == TRANSFERRED_OUT]["order_id"].astype(np.int64):
                dst, number = (int(tid) >> _DST_SHIFT) & 0xFF, int(tid) & _NUMBER_MASK
                self.state["merged_out"][shard][dst] = max(self.state["merged_out"][shard][dst], number)

    def _last_ids(self) -> tuple[int, int]:
        fills, withdrawals = self.out.read(0, 1 << 62)
        return (int(fills["fill_id"][-1]) if len(fills) else 0,
                int(withdrawals["withdrawal_id"][-1]) if len(withdrawals) else 0)

    def _save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as file:
            file.write(json.dumps(self.state, indent=1) + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, self.path)
