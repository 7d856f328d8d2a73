"""Opening the journal a config names: the local file journal (the default) or
the replicated JetStream stream (``[journal] kind = "jetstream"``)."""

from __future__ import annotations

from engine.config import Config, JournalSection, encode_venue
from engine.journal import FileJournal, Journal


def open_journal(config: Config) -> Journal:
    """The gateway's journal for this config, opened for writing (a JetStream
    journal opens as a follower; it appends once it leads)."""
    jc = config.journal
    genesis = encode_venue(config.venue)
    if jc.kind == "jetstream":
        return connect_jetstream(jc, genesis)
    return FileJournal.create_or_open(config.journal_path, genesis, fsync=jc.fsync,
                                      fsync_interval_ms=jc.fsync_interval_ms, segment_bytes=jc.segment_bytes,
                                      snapshots_kept=jc.snapshots_kept)


def connect_jetstream(jc: JournalSection, genesis: bytes | None) -> Journal:
    """A JetStream journal with the section's servers, stream and timings (genesis
    None: the stream must exist, as for replay)."""
    from engine.journal_jetstream import JetStreamJournal

    return JetStreamJournal.connect(jc.servers, jc.stream, genesis, replicas=jc.replicas,
                                    ack_timeout_ms=jc.ack_timeout_ms, publish_attempts=jc.publish_attempts,
                                    lease_ms=jc.lease_ms)
