"""A journal of a venue with a main pool written by the build before deposit
requests (tests/data/old_pool_journal, made by tests/data/make_old_pool_journal.py
at commit 6dce055) still replays: its POOL_DEPOSIT commands mint at once as they
did, to the same state hash from genesis and from its version-5 snapshot plus the
tail, with every stored POOL_PAID event reproduced.

The journal trades options, so its state holds cost bases, which the state hash
covers: the recorded hash is that of the build with costs (expected.json says so).
Both replays reach that same hash: the snapshot's positions, loaded at their value
at the mark (a version-5 snapshot kept no costs), end where the genesis replay's do."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.core.types import EventKind
from engine.journal import FileJournal
from engine.replay import rebuild

DATA = Path(__file__).parent / "data" / "old_pool_journal"
EXPECTED = json.loads((DATA / "expected.json").read_text())


@pytest.fixture
def journal(tmp_path) -> Path:
    """A copy of the old journal directory (a replay must not touch the test data)."""
    return shutil.copytree(DATA / "journal", tmp_path / "journal")


@pytest.mark.parametrize(("options", "key"), [((), "replay"), (("--use-snapshot",), "replay_from_snapshot")])
def test_old_pool_journal_replays_to_the_old_state_hash(journal, options, key):
    out = subprocess.run([sys.executable, "-m", "engine", "replay", str(journal), "--json", *options],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    report, expected = json.loads(out), EXPECTED[key]
    assert {name: report[name] for name in expected} == expected
    assert expected["snapshot_seq"] == (0 if key == "replay" else 29)


def test_old_pool_deposits_mint_at_once_as_they_did(journal):
    reader = FileJournal.open_reader(journal)
    stored = np.concatenate([batch.events for batch in reader.read()])
    paid = stored[stored["kind"] == EventKind.POOL_PAID]
    # Three immediate deposits (two events each, request id 0) and one redemption executed.
    assert (paid["order_id"] == 0).sum() == 6 and (paid["order_id"] == 1).sum() == 2
    engine = rebuild(reader, use_snapshot=False, verify=True).engine   # verify: stored events == replayed ones
    assert engine.state_hash() == EXPECTED["replay"]["state_hash"]
    info = engine.pool_info()
    assert info.deposits == () and [r[:3] for r in info.pending] == [(2, 1, 5_000 * 10**6)]
    assert info.deposit_cooldown_ns == 0
