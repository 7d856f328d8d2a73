"""The cancel-on-disconnect registry: the file beside the file journal is
written atomically and read back, a damaged one stops the start with a clear
error; the JetStream bucket is fenced: a deposed leader (paused past its
lease, then awake) can neither add an account to it (whose orders the next
takeover would cancel) nor drop one, and learns that it is fenced."""

from __future__ import annotations

import itertools
import json

import pytest
from nats_harness import nats_cluster  # noqa: F401 - a fixture

from engine.gateway.cod_registry import FILE_NAME, FileCodRegistry
from engine.journal import JournalError, JournalFailure

_streams = itertools.count()


def test_the_file_registry_is_read_back_by_the_next_gateway(tmp_path):
    first = FileCodRegistry(tmp_path, max_accounts=64)
    assert first.take_over() == frozenset()
    first.record(frozenset({3, 1}))
    assert first.flush()
    first.record(frozenset({1}))
    first.close()
    assert json.loads((tmp_path / FILE_NAME).read_text()) == {"accounts": [1]}
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temp file left
    second = FileCodRegistry(tmp_path, max_accounts=64)
    try:
        assert second.take_over() == frozenset({1})
    finally:
        second.close()


@pytest.mark.parametrize("content", [b"{not json", b'{"accounts": [1, "2"]}', b'{"accounts": [64]}', b"[]"])
def test_a_damaged_file_registry_is_a_clear_error(tmp_path, content):
    (tmp_path / FILE_NAME).write_bytes(content)
    with pytest.raises(JournalError, match="cancel-on-disconnect registry .* is damaged .* remove it"):
        FileCodRegistry(tmp_path, max_accounts=64).take_over()


def _journal(cluster, stream: str, genesis: bytes | None):
    from engine.journal_jetstream import JetStreamJournal

    return JetStreamJournal.connect(cluster.urls, stream, genesis, lease_ms=60_000)


def _lead(journal) -> None:
    assert journal.try_lead()
    list(journal.read(journal.last_seq + 1))


def _stored(journal) -> dict:
    """The registry's key as stored in the bucket."""
    kv = journal.key_value("cod")
    return json.loads(journal.call(kv.get("accounts")).value)


def test_a_deposed_leader_cannot_change_the_registry(nats_cluster):
    from engine.gateway.cod_registry import JetStreamCodRegistry
    from engine.journal_jetstream import JournalFenced

    stream = f"cod{next(_streams)}"
    old = _journal(nats_cluster, stream, b"venue")
    new = _journal(nats_cluster, stream, None)
    old_registry = new_registry = None
    try:
        _lead(old)
        old_registry = JetStreamCodRegistry(old, max_accounts=64)
        assert old_registry.take_over() == frozenset()
        old_registry.record(frozenset({1, 2}))
        assert old_registry.flush()

        # The old leader stalls past its lease; the standby takes over and seals the registry.
        new._io.call(new.lease_kv.purge("leader"))  # what the lease's expiry does
        _lead(new)
        new_registry = JetStreamCodRegistry(new, max_accounts=64)
        assert new_registry.take_over() == frozenset({1, 2})
        assert _stored(new) == {"accounts": [1, 2], "epoch": new.epoch}

        # The old leader wakes up before the new one wrote anything: its sessions
        # went silent (drop 1 and 2) and a Logon it had queued arrives (add 3, an
        # account the new leader serves without cancel-on-disconnect: the next
        # takeover would cancel its orders). The takeover's rewrite fenced it.
        old_registry.record(frozenset({3}))
        assert not old_registry.flush()
        with pytest.raises(JournalFenced, match="written by another gateway"):
            old_registry.record(frozenset())
        assert _stored(new) == {"accounts": [1, 2], "epoch": new.epoch}

        new_registry.record(frozenset({1}))  # 2 did not come back and was cancelled; 1 logged on again
        assert new_registry.flush()
        assert _stored(new) == {"accounts": [1], "epoch": new.epoch}
    finally:
        for registry in (old_registry, new_registry):
            if registry is not None:
                registry.close()
        for journal in (old, new):
            try:
                journal.close()
            except JournalFailure:
                pass


def test_an_account_stays_registered_until_its_cancel_is_committed(tmp_path):
    from engine.gateway.cod_recovery import CodRecovery

    registry = FileCodRegistry(tmp_path, max_accounts=64)
    registry.take_over()
    recovery = CodRecovery(registry, frozenset({1, 2}), grace_s=3.0)

    def stored() -> list[int]:
        assert registry.flush()
        return json.loads((tmp_path / FILE_NAME).read_text())["accounts"]

    try:
        recovery.sessions_changed(frozenset({1, 5}), frozenset())  # 1 is back, 5 is new
        assert stored() == [1, 2, 5]
        assert recovery.overdue(2.9) == frozenset()
        assert recovery.overdue(3.0) == frozenset({2})
        assert recovery.overdue(9.0) == frozenset()  # once
        recovery.cancelled({2}, 10)
        recovery.sessions_changed(frozenset({1}), frozenset({5}))  # 5's session was lost, its cancel not yet run
        assert stored() == [1, 2, 5]
        recovery.cancelled({5}, 11)
        assert not recovery.committed(9)
        assert recovery.committed(10)
        recovery.sessions_changed(frozenset({1}), frozenset())
        assert stored() == [1, 5]
        assert recovery.committed(11)
        recovery.sessions_changed(frozenset({1}), frozenset())
        assert stored() == [1]
    finally:
        registry.close()


def test_a_write_whose_answer_was_lost_does_not_fence_its_own_leader(nats_cluster):
    """The bucket stored a write of this leader but its answer never came (a
    timeout): the next compare-and-set names an old revision, finds this epoch's
    own value there and writes again; only another epoch's value fences."""
    from engine.gateway.cod_registry import JetStreamCodRegistry, encode_accounts

    stream = f"cod{next(_streams)}"
    journal = _journal(nats_cluster, stream, b"venue")
    registry = None
    try:
        _lead(journal)
        registry = JetStreamCodRegistry(journal, max_accounts=64)
        registry.take_over()
        journal.call(registry.kv.put("accounts", encode_accounts(frozenset({7}), journal.epoch)))  # answer lost
        registry.record(frozenset({1}))
        assert registry.flush()
        assert _stored(journal) == {"accounts": [1], "epoch": journal.epoch}
        journal.call(registry.kv.put("accounts", encode_accounts(frozenset({7}), journal.epoch + 1)))
        registry.record(frozenset({2}))
        assert not registry.flush()
        assert _stored(journal) == {"accounts": [7], "epoch": journal.epoch + 1}
    finally:
        if registry is not None:
            registry.close()
        journal.close()
