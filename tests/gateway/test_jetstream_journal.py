"""JetStreamJournal on a three-server cluster: appends become committed only
once the stream acknowledged them, followers read the same batches, snapshots
round-trip, a stream refuses another venue, and the fencing: a leader that lost
its lease can append nothing more (split brain), in-process and as processes."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from nats_harness import nats_cluster  # noqa: F401 - a fixture

from engine.core.records import COMMAND_DTYPE, EVENT_DTYPE
from engine.core.types import CommandKind
from engine.journal import JournalError, JournalFailure

_streams = itertools.count()


def _stream() -> str:
    return f"t{next(_streams)}"


def _batch(first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    commands = np.zeros(n, COMMAND_DTYPE)
    commands["seq"] = np.arange(first, first + n)
    commands["kind"] = CommandKind.NEW_ORDER
    commands["client_order_id"] = commands["seq"] * 7
    events = np.zeros(1, EVENT_DTYPE)
    events["seq"] = first
    return commands, events


def _open(cluster, stream, genesis=b"venue", **options):
    from engine.journal_jetstream import JetStreamJournal

    return JetStreamJournal.connect(cluster.urls, stream, genesis, **options)


def _lead(journal) -> None:
    assert journal.try_lead()
    list(journal.read(journal.last_seq + 1))  # up to the epoch marker


def _wait_committed(journal, seq: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while journal.committed_seq < seq:
        assert time.monotonic() < deadline, f"seq {seq} not committed"
        time.sleep(0.01)


def test_appends_commit_and_followers_read_the_same_batches(nats_cluster):
    stream = _stream()
    leader = _open(nats_cluster, stream)
    follower = _open(nats_cluster, stream, genesis=None)
    try:
        _lead(leader)
        assert not follower.try_lead()  # the lease is taken
        seq = 1
        sent = []
        for n in (1, 5, 3, 200):
            commands, events = _batch(seq, n)
            leader.append(commands, events)
            sent.append((commands, events))
            seq += n
        leader.sync()
        assert leader.committed_seq == leader.last_seq == seq - 1
        read = list(follower.read(1))
        assert [(b.commands.tobytes(), b.events.tobytes()) for b in read] == \
            [(c.tobytes(), e.tobytes()) for c, e in sent]
        assert follower.last_seq == seq - 1
        more = _batch(seq, 2)
        leader.append(*more)
        leader.sync()
        assert [b.first_seq for b in follower.read(follower.last_seq + 1)] == [seq]  # reads on from where it was
        assert [b.first_seq for b in follower.read(3)] == [3, 7, 10, seq]  # from the middle of a batch
    finally:
        leader.close()
        follower.close()


def test_append_is_refused_before_leading_and_out_of_order(nats_cluster):
    journal = _open(nats_cluster, _stream())
    try:
        with pytest.raises(JournalError, match="only the leader"):
            journal.append(*_batch(1, 1))
        _lead(journal)
        with pytest.raises(JournalError, match="do not follow"):
            journal.append(*_batch(2, 1))
    finally:
        journal.close()


def test_snapshot_round_trip_and_recovery_reads_only_after_it(nats_cluster):
    stream = _stream()
    leader = _open(nats_cluster, stream)
    try:
        _lead(leader)
        leader.append(*_batch(1, 4))
        leader.write_snapshot(4, b"state at 4")
        leader.append(*_batch(5, 2))
        leader.sync()
    finally:
        leader.close()
    reader = _open(nats_cluster, stream, genesis=None)
    try:
        snap = reader.load_snapshot()
        assert snap.seq == 4 and snap.data == b"state at 4"
        assert [(b.first_seq, b.last_seq) for b in reader.read(5)] == [(5, 6)]
    finally:
        reader.close()


def test_recovery_from_a_snapshot_at_the_end_of_the_stream(nats_cluster):
    stream = _stream()
    leader = _open(nats_cluster, stream)
    try:
        _lead(leader)
        leader.append(*_batch(1, 4))
        leader.write_snapshot(4, b"state at 4")
    finally:
        leader.close()
    successor = _open(nats_cluster, stream)
    try:
        assert successor.load_snapshot().seq == 4
        assert list(successor.read(5)) == [] and successor.last_seq == 4
        _lead(successor)  # the lease was given up on close: taken at once
        successor.append(*_batch(5, 1))
        successor.sync()
        assert successor.committed_seq == 5
    finally:
        successor.close()


def test_a_stream_refuses_another_venue_definition(nats_cluster):
    stream = _stream()
    _open(nats_cluster, stream, genesis=b"venue A").close()
    with pytest.raises(JournalError, match="different venue definition"):
        _open(nats_cluster, stream, genesis=b"venue B")


def test_unreachable_servers_are_a_journal_error():
    pytest.importorskip("nats")
    from engine.journal_jetstream import JetStreamJournal
    from engine.tools.nats_cluster import free_port

    with pytest.raises(JournalError, match="cannot open JetStream stream"):
        JetStreamJournal.connect([f"nats://127.0.0.1:{free_port()}"], "nowhere", b"venue")


def test_split_brain_the_old_leader_is_fenced(nats_cluster):
    """A leader paused past its lease (simulated by dropping the lease key, as its
    expiry does) wakes up and appends: the stream refuses the batch, the journal
    fails stop (JournalFenced), nothing of it is committed, and the stream holds
    only the new leader's batch for that seq."""
    from engine.journal_jetstream import JournalFenced

    stream = _stream()
    old = _open(nats_cluster, stream, lease_ms=60_000)
    new = _open(nats_cluster, stream, genesis=None, lease_ms=60_000)
    try:
        _lead(old)
        old.append(*_batch(1, 3))
        old.sync()
        assert not new.try_lead()
        new._io.call(new.lease_kv.purge("leader"))  # the old leader's lease ran out
        assert list(b.last_seq for b in new.read(1)) == [3]
        _lead(new)
        assert new.epoch > old.epoch
        new.append(*_batch(4, 1))
        new.sync()
        old.append(*_batch(4, 2))  # the old leader's own seq 4: refused
        with pytest.raises(JournalFenced, match="leads now"):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                old.committed_seq  # noqa: B018 - raises once the refusal arrived
                time.sleep(0.01)
        with pytest.raises(JournalFailure):
            old.append(*_batch(6, 1))
        reader = _open(nats_cluster, stream, genesis=None)
        try:
            batches = list(reader.read(1))
        finally:
            reader.close()
        assert [(b.first_seq, b.last_seq) for b in batches] == [(1, 3), (4, 4)]
    finally:
        old.close()
        new.close()


def test_a_deposed_leader_closing_cleanly_leaves_its_successors_lease(nats_cluster):
    """A leader deposed without knowing it (its lease ran out while it was paused)
    that then stops cleanly gives up only the lease it held: the successor's
    lease key stays, so the successor keeps leading (an unconditional delete
    dropped it and let a third gateway take over from a healthy leader)."""
    stream = _stream()
    old = _open(nats_cluster, stream, lease_ms=60_000)
    new = _open(nats_cluster, stream, genesis=None, lease_ms=60_000)
    third = _open(nats_cluster, stream, genesis=None, lease_ms=60_000)
    try:
        _lead(old)
        new._io.call(new.lease_kv.purge("leader"))  # the old leader's lease ran out
        _lead(new)
        old.close()                                 # a clean stop, still believing it leads
        entry = new._io.call(new.lease_kv.get("leader"))
        assert entry.value == new.holder.encode() and entry.revision == new.epoch
        assert not third.try_lead()
    finally:
        for journal in (old, new, third):
            journal.close()


def test_a_jetstream_journal_needs_servers(tmp_path, keys):
    from gateway_harness import write_venue

    from engine.config import ConfigError, load_config

    path = write_venue(tmp_path, keys, journal={"kind": "jetstream", "path": str(tmp_path / "j")})
    with pytest.raises(ConfigError, match="needs journal.servers"):
        load_config(path)
    path = write_venue(tmp_path, keys, journal={"kind": "kafka", "path": str(tmp_path / "j")})
    with pytest.raises(ConfigError, match="kind"):
        load_config(path)


def test_a_reader_knows_the_streams_last_batch_and_rereads_from_near_its_seq(nats_cluster, monkeypatch):
    """Settlement's view of a stream: stream_last_seq is the last batch's seq
    (behind an epoch marker too), and a read from an earlier seq starts at a
    remembered batch before it, not at the stream's start."""
    import engine.journal_jetstream as jetstream

    monkeypatch.setattr(jetstream, "_MARK_EVERY", 4)
    stream = _stream()
    leader = _open(nats_cluster, stream)
    reader = _open(nats_cluster, stream, genesis=None)
    try:
        assert reader.stream_last_seq() == 0
        _lead(leader)  # its epoch marker is the stream's last message now
        assert reader.stream_last_seq() == 0
        for first in range(1, 41, 2):
            leader.append(*_batch(first, 2))
        leader.sync()
        assert reader.stream_last_seq() == 40
        everything = np.concatenate([b.commands for b in reader.read(1)])
        assert everything["seq"].tolist() == list(range(1, 41))
        starts = []
        real_chunks = reader._read_chunks
        monkeypatch.setattr(reader, "_read_chunks", lambda start: starts.append(start) or real_chunks(start))
        again = list(reader.read(30))  # from the middle of batch 29-30
        assert np.concatenate([b.commands for b in again]).tobytes() == everything[29:].tobytes()
        assert starts and starts[0] > 2, "the read started at the stream's start"
    finally:
        leader.close()
        reader.close()
