"""A gateway's hot standby: with the replicated journal, a gateway starts as a
follower of the stream, applies every batch the leader appends (the same
commands through the same deterministic core, so the same state hash), remembers its orders for FindOrder and
serves nothing; it becomes the leader when the lease is free (the leader
stopped, or died and its lease expired), reads the stream up to its epoch
marker and only then binds its sockets."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from engine.journal_jetstream import JetStreamJournal, JournalUnavailable
from engine.replay import Rebuilt, apply_batches

log = logging.getLogger("engine.gateway")

_POLL_S = 0.05
_STATUS_EVERY_S = 1.0


def follow_until_leader(journal: JetStreamJournal, rebuilt: Rebuilt, on_batch: Callable[[np.ndarray], None],
                        on_standby: Callable[[int], None] | None = None) -> Rebuilt:
    """Follow the stream until this journal takes the lease; returns the engine
    caught up to the epoch marker. While following, the log says
    ``standby at seq N state_hash H`` whenever the state moved (at most once a
    second, and once it is idle), so an operator can compare it with the leader."""
    engine, last_ts = rebuilt.engine, rebuilt.last_ts
    if not _try_lead(journal):
        log.info("standby: following stream %s from seq %d", journal.stream, engine.last_seq)
        if on_standby is not None:
            on_standby(engine.last_seq)
        logged_seq, logged_at = engine.last_seq, 0.0
        while not _try_lead(journal):
            try:
                _batches, _commands, ts = apply_batches(engine, journal.read(engine.last_seq + 1),
                                                        on_batch=on_batch)
            except JournalUnavailable as err:  # a server died, the stream elects a leader: try again
                log.warning("standby: %s", err)
                time.sleep(_POLL_S)
                continue
            last_ts = ts or last_ts
            now = time.monotonic()
            if engine.last_seq != logged_seq and (not _batches or now - logged_at >= _STATUS_EVERY_S):
                log.info("standby at seq %d state_hash %s", engine.last_seq, engine.state_hash())
                logged_seq, logged_at = engine.last_seq, now
            if not _batches:
                time.sleep(_POLL_S)
    batches, commands, ts = apply_batches(engine, journal.read(engine.last_seq + 1), on_batch=on_batch)
    log.info("leading from seq %d (epoch %d, %d batches read at takeover)", engine.last_seq, journal.epoch, batches)
    return Rebuilt(engine, rebuilt.snapshot_seq, rebuilt.batches + batches, rebuilt.commands + commands,
                   ts or last_ts)


def _try_lead(journal: JetStreamJournal) -> bool:
    """try_lead, False while the cluster does not answer (a lease taken just
    before is held until it expires, then taken again)."""
    try:
        return journal.try_lead()
    except JournalUnavailable as err:
        log.warning("standby: %s", err)
        return False
