"""The file journal and snapshots (engine/journal.py) and offline replay
(engine/replay.py), without a gateway process."""

from __future__ import annotations

import errno
import os
import random
import select

import numpy as np
import pytest
from gateway_harness import AMZN, PX, TICK, write_venue
from journal_faults import SEGMENTS, SNAPSHOT_TEMPS, faulty

from engine.config import encode_venue, load_config
from engine.venue import build_engine, genesis_commands
from engine.core.records import COMMAND_DTYPE, EVENT_DTYPE
from engine.core.types import CommandKind, EventKind, Side
from engine.journal import FileJournal, JournalError, JournalFailure, settlement_events
from engine.replay import ReplayError, main as replay_main, rebuild


@pytest.fixture
def venue(tmp_path, keys):
    return load_config(write_venue(tmp_path, keys))


def _orders(rng: random.Random, n: int) -> np.ndarray:
    cmds = np.zeros(n, dtype=COMMAND_DTYPE)
    cmds["kind"] = CommandKind.NEW_ORDER
    cmds["instrument"] = AMZN
    cmds["account"] = [rng.choice((1, 2, 3)) for _ in range(n)]
    cmds["side"] = [rng.choice((Side.BUY, Side.SELL)) for _ in range(n)]
    cmds["order_type"] = 1
    cmds["tif"] = 1
    cmds["stp"] = 0
    cmds["price"] = [PX + rng.randint(-5, 5) * TICK for _ in range(n)]
    cmds["qty"] = [10 * rng.randint(1, 10) for _ in range(n)]
    cmds["client_order_id"] = np.arange(1, n + 1)
    return cmds


def _run(engine, journal, commands: np.ndarray, ts: int = 1) -> np.ndarray:
    first = engine.last_seq + 1
    commands = commands.copy()
    commands["seq"] = np.arange(first, first + len(commands))
    commands["ts"] = ts
    events = engine.process(commands)
    journal.append(commands, settlement_events(events))
    return events


def _fill_journal(venue, batches: int = 10, seed: int = 0, **options):
    journal = FileJournal.create_or_open(venue.journal_path, encode_venue(venue.venue), **options)
    engine = build_engine(venue.venue)
    _run(engine, journal, genesis_commands(venue))
    rng = random.Random(seed)
    for k in range(batches):
        _run(engine, journal, _orders(rng, rng.randint(1, 40)), ts=k + 2)
    return journal, engine


def _segment(venue):
    (path,) = sorted(venue.journal_path.glob("journal-*.log"))
    return path


def test_append_read_round_trip(venue):
    journal, engine = _fill_journal(venue)
    batches = list(journal.read())
    assert batches[0].first_seq == 1 and batches[-1].last_seq == engine.last_seq == journal.last_seq
    assert all(b.first_seq == a.last_seq + 1 for a, b in zip(batches, batches[1:]))
    fills = np.concatenate([b.fills for b in batches])
    assert len(fills) > 0 and set(fills["kind"].tolist()) == {EventKind.FILL}
    credits = np.concatenate([b.events for b in batches])
    assert EventKind.CREDITED in set(credits["kind"].tolist())
    middle = batches[4].first_seq + 1
    assert next(journal.read(middle)).first_seq == middle
    assert sum(len(f) for f in journal.fills(middle)) == int((fills["seq"] >= middle).sum())
    with pytest.raises(JournalError, match="do not follow"):
        journal.append(batches[1].commands, batches[1].events)
    journal.close()
    reopened = FileJournal.open_reader(venue.journal_path)
    assert reopened.last_seq == engine.last_seq


def test_rebuild_equals_live_state_with_and_without_snapshot(venue):
    journal, engine = _fill_journal(venue, batches=5, seed=1)
    journal.write_snapshot(engine.last_seq, engine.snapshot())
    rng = random.Random(7)
    for k in range(5):
        _run(engine, journal, _orders(rng, 30), ts=100 + k)
    full = rebuild(journal, use_snapshot=False)
    fast = rebuild(journal)
    assert full.snapshot_seq == 0 and fast.snapshot_seq > 0 and fast.batches == 5
    assert full.engine.state_hash() == fast.engine.state_hash() == engine.state_hash()
    assert full.last_ts == 104
    journal.close()


def test_a_snapshot_that_cannot_be_restored_stops_recovery_with_a_reason(venue):
    journal, engine = _fill_journal(venue, batches=3)
    journal.write_snapshot(engine.last_seq, b"not an engine")  # intact file, unusable content
    with pytest.raises(ReplayError, match="cannot be restored.*move it out"):
        rebuild(journal)
    assert rebuild(journal, use_snapshot=False).engine.state_hash() == engine.state_hash()
    journal.close()


def test_replay_cli_prints_the_state_hash(venue, capsys):
    journal, engine = _fill_journal(venue, batches=3)
    journal.close()
    assert replay_main([str(venue.journal_path)]) == 0
    out = capsys.readouterr().out
    assert f"state_hash {engine.state_hash()}" in out and f"last_seq {engine.last_seq}" in out
    assert replay_main([str(venue.journal_path / "missing")]) == 1


@pytest.mark.parametrize("cut", [1, 17, 39, 40, 41, 200, -1])
def test_torn_tail_is_truncated(venue, cut):
    journal, engine = _fill_journal(venue, batches=6)
    last = list(journal.read())[-1]
    journal.close()
    path = _segment(venue)
    size = path.stat().st_size
    record = 40 + len(last.commands) * COMMAND_DTYPE.itemsize + len(last.events) * EVENT_DTYPE.itemsize
    start = size - record
    keep = start + (cut if cut > 0 else record - 1)
    with open(path, "r+b") as f:
        f.truncate(min(keep, size - 1))
    reader = FileJournal.open_reader(venue.journal_path)
    assert reader.last_seq == last.first_seq - 1
    assert path.stat().st_size == min(keep, size - 1)  # a reader never writes
    writer = FileJournal.create_or_open(venue.journal_path, encode_venue(venue.venue))
    assert writer.last_seq == last.first_seq - 1 and path.stat().st_size == start
    writer.append(last.commands, last.events)  # the same seqs are written again after the torn record
    assert writer.last_seq == last.last_seq
    writer.close()
    assert [b.last_seq for b in FileJournal.open_reader(venue.journal_path).read()][-1] == last.last_seq


def test_zero_filled_tail_is_truncated(venue):
    journal, engine = _fill_journal(venue, batches=3)
    journal.close()
    path = _segment(venue)
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\0" * 4096)
    writer = FileJournal.create_or_open(venue.journal_path, encode_venue(venue.venue))
    assert writer.last_seq == engine.last_seq and path.stat().st_size == size
    writer.close()


def test_corruption_before_the_tail_is_an_error(venue):
    journal, _engine = _fill_journal(venue, batches=6)
    journal.close()
    path = _segment(venue)
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(JournalError, match="corrupt record"):
        FileJournal.create_or_open(venue.journal_path, encode_venue(venue.venue))


def test_segments_rotate_and_read_across(venue):
    journal, engine = _fill_journal(venue, batches=30, segment_bytes=4096)
    segments = sorted(venue.journal_path.glob("journal-*.log"))
    assert len(segments) > 3
    seqs = np.concatenate([b.commands["seq"] for b in journal.read()])
    assert seqs.tolist() == list(range(1, engine.last_seq + 1))
    late = int(segments[-1].name[8:28]) + 1
    assert next(journal.read(late)).first_seq == late
    assert rebuild(journal, use_snapshot=False).engine.state_hash() == engine.state_hash()
    journal.close()


def test_one_writer_and_one_venue(venue, tmp_path):
    journal, _engine = _fill_journal(venue, batches=1)
    with pytest.raises(JournalError, match="locked"):
        FileJournal.create_or_open(venue.journal_path, encode_venue(venue.venue))
    journal.close()
    other = venue.venue.__class__(**{**{f: getattr(venue.venue, f) for f in venue.venue.__struct_fields__},
                                     "max_orders": 7})
    with pytest.raises(JournalError, match="different venue definition"):
        FileJournal.create_or_open(venue.journal_path, encode_venue(other))
    with pytest.raises(JournalError, match="not a journal"):
        FileJournal.open_reader(tmp_path / "nothing-here")


def test_snapshots_atomic_newest_good_one_wins(venue):
    journal, engine = _fill_journal(venue, batches=4, snapshots_kept=2)
    first = engine.last_seq
    journal.write_snapshot(first, b"first")
    _run(engine, journal, _orders(random.Random(3), 5))
    journal.write_snapshot(engine.last_seq, b"second")
    _run(engine, journal, _orders(random.Random(4), 5))
    journal.write_snapshot(engine.last_seq, b"third")
    snaps = sorted(venue.journal_path.glob("snapshot-*.snap"))
    assert len(snaps) == 2 and not list(venue.journal_path.glob("*.tmp"))
    assert journal.load_snapshot().data == b"third"
    raw = bytearray(snaps[-1].read_bytes())
    raw[-1] ^= 1
    snaps[-1].write_bytes(bytes(raw))
    assert journal.load_snapshot().data == b"second"
    with pytest.raises(JournalError, match="past the journal"):
        journal.write_snapshot(engine.last_seq + 1, b"future")
    journal.close()


def test_replay_detects_a_diverging_journal(venue):
    journal, _engine = _fill_journal(venue, batches=3)
    batches = list(journal.read())
    journal.close()
    for path in venue.journal_path.glob("journal-*.log"):
        os.unlink(path)
    forged = FileJournal.create_or_open(venue.journal_path, encode_venue(venue.venue))
    for batch in batches:
        events = batch.events.copy()
        if len(events) and batch.first_seq > 1:
            events["price"] += TICK  # fills the engine never produced
        forged.append(batch.commands, events)
    with pytest.raises(ReplayError, match="different fills"):
        rebuild(forged, use_snapshot=False)
    forged.close()


@pytest.mark.parametrize("policy", ["batch", "interval", "none"])
def test_fsync_policies_commit_and_notify(venue, policy):
    journal, engine = _fill_journal(venue, batches=3, fsync=policy, fsync_interval_ms=20)
    journal.sync()
    assert journal.committed_seq == journal.last_seq == engine.last_seq
    journal.clear_notifications()
    _run(engine, journal, _orders(random.Random(9), 5))
    if policy == "batch":  # replies wait for the disk
        journal.sync()
    assert journal.committed_seq == engine.last_seq
    ready, _, _ = select.select([journal.notify_fd], [], [], 5.0)
    assert ready  # the gateway's loop wakes up to send what is committed
    journal.close()
    assert FileJournal.open_reader(venue.journal_path).last_seq == engine.last_seq


def test_rotation_commits_the_closed_segment(venue):
    journal, engine = _fill_journal(venue, batches=20, segment_bytes=2048)
    journal.sync()
    assert journal.committed_seq == engine.last_seq
    journal.close()


def test_readers_see_only_what_is_on_disk(venue):
    """The settlement job reads the journal while the gateway writes it: a
    reader's committed_seq is the writer's durable mark, never ahead of fsync."""
    journal, engine = _fill_journal(venue, batches=2, fsync="none")
    reader = FileJournal.open_reader(venue.journal_path)
    assert reader.committed_seq == 0 < engine.last_seq  # nothing synced since the journal was created
    journal.sync()
    assert reader.committed_seq == engine.last_seq
    _run(engine, journal, _orders(random.Random(11), 5))
    assert reader.committed_seq < engine.last_seq == journal.committed_seq  # 'none' releases unsynced
    journal.close()
    assert reader.committed_seq == engine.last_seq
    durable = FileJournal.create_or_open(venue.journal_path, encode_venue(venue.venue))
    _run(engine, durable, _orders(random.Random(12), 5))
    durable.sync()
    assert reader.committed_seq == durable.committed_seq == engine.last_seq
    durable.close()


def _durable_mark(venue) -> int:
    return int.from_bytes((venue.journal_path / "durable").read_bytes()[:8], "little")


def _assert_stopped(journal, engine) -> None:
    """Every way to go on with a failed journal raises JournalFailure."""
    with pytest.raises(JournalFailure, match="exit and recover"):
        journal.committed_seq
    with pytest.raises(JournalFailure):
        journal.sync()
    with pytest.raises(JournalFailure):
        journal.write_snapshot(journal.last_seq, engine.snapshot())
    with pytest.raises(JournalFailure):
        _run(engine, journal, _orders(random.Random(5), 3))


def _assert_recovers(venue, last_seq: int) -> None:
    """Reopened without the fault, the journal holds every record that reached the file
    (a torn one is cut), and it replays."""
    reopened = FileJournal.create_or_open(venue.journal_path, encode_venue(venue.venue))
    assert reopened.last_seq == last_seq
    live = build_engine(venue.venue)
    for batch in reopened.read():
        live.process(batch.commands)
    assert rebuild(reopened).engine.state_hash() == live.state_hash()
    _run(live, reopened, _orders(random.Random(6), 4))
    reopened.sync()
    assert reopened.committed_seq == live.last_seq
    reopened.close()


@pytest.mark.parametrize("code", [errno.EIO, errno.ENOSPC])
@pytest.mark.parametrize("policy", ["batch", "interval"])
def test_a_failed_fdatasync_stops_the_journal(venue, monkeypatch, code, policy):
    """The sync thread's failure reaches the writer: the loop is woken, nothing past the
    durable mark is ever committed, every later call raises, and reopening recovers."""
    journal, engine = _fill_journal(venue, batches=3, fsync=policy, fsync_interval_ms=1)
    journal.sync()
    durable = journal.committed_seq
    journal.clear_notifications()
    monkeypatch.setattr(os, "fdatasync", faulty("fdatasync", code, SEGMENTS))
    _run(engine, journal, _orders(random.Random(4), 5))
    while not journal.failed:  # (a wake-up of the last good sync may come first)
        ready, _, _ = select.select([journal.notify_fd], [], [], 10.0)
        assert ready, "the failure must wake the gateway's loop"
        journal.clear_notifications()
    _assert_stopped(journal, engine)
    assert _durable_mark(venue) == durable < engine.last_seq
    journal.close()  # releases the files without syncing again
    monkeypatch.undo()
    _assert_recovers(venue, engine.last_seq - 3)  # the refused batch of 3 never reached the file


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_failed_write_stops_the_journal_and_the_torn_record_is_cut(venue, monkeypatch, code):
    journal, engine = _fill_journal(venue, batches=3)
    journal.sync()
    written = engine.last_seq
    monkeypatch.setattr(os, "write", faulty("write", code, SEGMENTS))
    with pytest.raises(JournalFailure, match="append failed"):
        _run(engine, journal, _orders(random.Random(4), 5))
    assert journal.last_seq == written
    _assert_stopped(journal, engine)
    journal.close()
    monkeypatch.undo()
    _assert_recovers(venue, written)


def test_a_failed_fdatasync_at_rotation_stops_the_journal(venue, monkeypatch):
    journal, engine = _fill_journal(venue, batches=2, segment_bytes=1)
    journal.sync()
    monkeypatch.setattr(os, "fdatasync", faulty("fdatasync", errno.EIO, SEGMENTS))
    with pytest.raises(JournalFailure, match="append failed"):
        _run(engine, journal, _orders(random.Random(4), 5))
    _assert_stopped(journal, engine)
    journal.close()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO])
def test_a_failed_snapshot_write_stops_the_journal_and_keeps_the_older_snapshot(venue, monkeypatch, code):
    journal, engine = _fill_journal(venue, batches=3)
    journal.write_snapshot(engine.last_seq, engine.snapshot())
    older = journal.load_snapshot()
    _run(engine, journal, _orders(random.Random(4), 5))
    monkeypatch.setattr(os, "fsync", faulty("fsync", code, SNAPSHOT_TEMPS))
    with pytest.raises(JournalFailure, match="snapshot write failed"):
        journal.write_snapshot(engine.last_seq, engine.snapshot())
    assert not list(venue.journal_path.glob("*.tmp"))
    assert journal.load_snapshot() == older
    _assert_stopped(journal, engine)
    journal.close()
    monkeypatch.undo()
    _assert_recovers(venue, engine.last_seq - 3)
