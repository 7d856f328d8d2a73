"""A journal written by an older build (tests/data/old_journal, made by
tests/data/make_old_journal.py at commit 2ff7132) still replays: to the same
state from genesis and from its newest snapshot plus the tail, with every
batch's stored fills, credits and debits reproduced byte for byte.

The journal trades options, so its state holds cost bases (docs/pools.md,
"Cost basis"), which the state hash covers: the recorded hashes are this
build's. Its snapshots are older than version 6 and kept no costs, so a
replay from one starts its positions at their value at the mark: the two
replays agree on everything but the costs, and their hashes differ."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest

from engine.core import snapshot as snap
from engine.core.types import EventKind
from engine.journal import FileJournal
from engine.replay import rebuild

DATA = Path(__file__).parent / "data" / "old_journal"
EXPECTED = json.loads((DATA / "expected.json").read_text())


@pytest.fixture
def journal(tmp_path) -> Path:
    """A copy of the old journal directory (a replay must not touch the test data)."""
    return shutil.copytree(DATA / "journal", tmp_path / "journal")


@pytest.mark.parametrize(("options", "key"), [((), "replay"), (("--use-snapshot",), "replay_from_snapshot")])
def test_old_journal_replays_to_the_old_state_hash(journal, options, key):
    # The CLI exits 1 if a replayed batch's fills, credits or debits differ from the stored ones.
    out = subprocess.run([sys.executable, "-m", "engine", "replay", str(journal), "--json", *options],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    report, expected = json.loads(out), EXPECTED[key]
    assert {name: report[name] for name in expected} == expected


def test_old_journal_exercises_snapshot_and_tail():
    full, tail = EXPECTED["replay"], EXPECTED["replay_from_snapshot"]
    assert full["snapshot_seq"] == 0 and full["commands"] == full["last_seq"]
    assert 0 < tail["snapshot_seq"] < tail["last_seq"] == full["last_seq"]
    assert tail["commands"] == tail["last_seq"] - tail["snapshot_seq"]


def test_old_journal_replays_the_events_it_stored(journal):
    reader = FileJournal.open_reader(journal)
    stored = np.concatenate([batch.events for batch in reader.read()])
    assert {EventKind.FILL, EventKind.CREDITED, EventKind.DEBITED} <= set(stored["kind"].tolist())
    rebuilt = rebuild(reader, use_snapshot=False, verify=True)   # verify: stored events == replayed ones
    assert rebuilt.engine.state_hash() == EXPECTED["replay"]["state_hash"]


def test_old_journal_replays_from_its_snapshot_to_the_same_state_but_the_costs(journal):
    reader = FileJournal.open_reader(journal)
    states = [snap.DECODER.decode(rebuild(reader, use_snapshot=use).engine.snapshot()) for use in (False, True)]
    full, tail = states
    assert full.costs and tail.costs and full.costs != tail.costs
    assert msgspec.structs.replace(full, costs=b"") == msgspec.structs.replace(tail, costs=b"")
