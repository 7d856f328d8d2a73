"""Rebuilding engine state from a journal: crash recovery (the gateway) and
``python -m engine replay JOURNAL`` (offline, prints the state hash).

Recovery loads the newest intact snapshot (``MatchingEngine.from_snapshot``) and
replays the journal after it; without one (or with ``use_snapshot=False``) it
builds an empty engine from the journal's genesis and replays everything. Each
replayed batch's fills (and credits/debits) must equal the journaled ones, so a
core that no longer reproduces the journal is caught instead of silently diverging.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine.config import decode_venue
from engine.journal import FileJournal, Journal, JournalBatch, JournalError, settlement_events
from engine.venue import build_engine


class ReplayError(RuntimeError):
    """The journal does not replay to what it recorded."""


class Rebuilt(NamedTuple):
    """Result of a rebuild: the engine and how it was reached."""

    engine: object
    snapshot_seq: int   # seq of the snapshot used, 0 for a full replay
    batches: int        # journal batches replayed
    commands: int       # commands replayed
    last_ts: int        # ts of the last replayed command (0 if none)


def rebuild(journal: Journal, use_snapshot: bool = True, verify: bool = True,
            on_batch: Callable[[np.ndarray], None] | None = None) -> Rebuilt:
    """Rebuild the engine state the journal describes (on_batch sees the commands
    of each replayed batch)."""
    from engine.core.matcher import MatchingEngine

    snap = journal.load_snapshot() if use_snapshot else None
    if snap is not None:
        try:
            engine = MatchingEngine.from_snapshot(snap.data)
        except ValueError as err:
            raise ReplayError(f"the snapshot at seq {snap.seq} cannot be restored ({err}); move it out of the "
                              "journal directory to rebuild from the journal alone") from err
        if engine.last_seq != snap.seq:
            raise ReplayError(f"snapshot file says seq {snap.seq}, its engine state says {engine.last_seq}")
    else:
        engine = build_engine(decode_venue(journal.genesis))
    batches, commands, last_ts = apply_batches(engine, journal.read(engine.last_seq + 1), verify, on_batch)
    if engine.last_seq != journal.last_seq:
        raise ReplayError(f"replay ended at seq {engine.last_seq}, journal ends at {journal.last_seq}")
    return Rebuilt(engine, snap.seq if snap is not None else 0, batches, commands, last_ts)


def apply_batches(engine, batches: Iterable[JournalBatch], verify: bool = True,
                  on_batch: Callable[[np.ndarray], None] | None = None) -> tuple[int, int, int]:
    """Run journaled batches through the engine (recovery, a standby following the
    stream), on_batch seeing each one's commands; returns (batches, commands, ts
    of the last command or 0)."""
    count = commands = last_ts = 0
    for batch in batches:
        if int(batch.commands["seq"][0]) != engine.last_seq + 1:
            raise ReplayError(f"journal batch starts at seq {int(batch.commands['seq'][0])}, "
                              f"engine is at {engine.last_seq}")
        events = engine.process(batch.commands)
        if verify:
            kept = settlement_events(events)
            if kept.tobytes() != batch.events.tobytes():
                raise ReplayError(f"replaying seqs {batch.first_seq}..{batch.last_seq} gave different fills "
                                  "than the journal recorded (the core changed behaviour?)")
        if on_batch is not None:
            on_batch(batch.commands)
        count += 1
        commands += len(batch.commands)
        last_ts = int(batch.commands["ts"][-1])
    return count, commands, last_ts


def main(argv: list[str] | None = None) -> int:
    """Command line: rebuild state from a journal directory and print its hash."""
    parser = argparse.ArgumentParser(prog="python -m engine replay",
                                     description="Rebuild engine state from a journal and print the state hash.")
    parser.add_argument("journal", type=Path, nargs="?", help="journal directory (the config's journal.path)")
    parser.add_argument("--jetstream", metavar="SERVERS",
                        help="replay a JetStream stream instead: comma-separated nats:// server URLs")
    parser.add_argument("--stream", default="venue", help="the JetStream stream (with --jetstream)")
    parser.add_argument("--use-snapshot", action="store_true",
                        help="start from the newest snapshot instead of replaying from genesis")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if (args.journal is None) == (args.jetstream is None):
        parser.error("give a journal directory or --jetstream SERVERS")
    try:
        if args.jetstream:
            from engine.journal_jetstream import JetStreamJournal

            journal = JetStreamJournal.connect(args.jetstream.split(","), args.stream, None)
        else:
            journal = FileJournal.open_reader(args.journal)
        try:
            result = rebuild(journal, use_snapshot=args.use_snapshot)
        finally:
            if args.jetstream:
                journal.close()
    except (JournalError, ReplayError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    report = {"last_seq": result.engine.last_seq, "state_hash": result.engine.state_hash(),
              "snapshot_seq": result.snapshot_seq, "batches": result.batches, "commands": result.commands,
              "resting_orders": result.engine.resting_orders}
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
