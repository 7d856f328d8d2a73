"""The command journal and engine snapshots.

``Journal`` is the interface the gateway writes through: append a sequenced batch,
read batches from a sequence number, write and load snapshots. ``FileJournal``
implements it on a local directory; ``JetStreamJournal``
(engine/journal_jetstream.py) on a NATS JetStream stream replicated over three
servers, with the same record bytes.

Directory layout::

    genesis.bin                          venue definition the engine is built from
    journal-<first seq, 20 digits>.log   segments of length-prefixed batch records
    snapshot-<seq, 20 digits>.snap       engine snapshots (atomic: temp + fsync + rename)
    durable                              8 bytes: the highest seq known to be on disk
    lock                                 flock of the one writer

A batch record holds the batch's sequenced commands (COMMAND_DTYPE) and the
settlement-relevant events they produced (EVENT_DTYPE: FILL, CREDITED,
DEBITED), so the settlement job reads fills without running the engine::

    magic "VJR1" | crc32 | body_len u32 | n_cmds u32 | n_events u32 | 0 u32 | first_seq i64 | last_seq i64 | body
    body = commands bytes + events bytes; crc32 covers everything after the crc field.
    The 40-byte header keeps the records 8-byte aligned, as the core's batch API needs.

Seqs are contiguous: each record starts at the previous record's last seq + 1.
A crash can leave a torn record at the end of the last segment; opening for
writing truncates it (and only it: a bad record followed by a good one is
corruption and raises). Readers stop before a torn tail.

Fail-stop: a failed write or sync (EIO, ENOSPC ...) stops the journal for good.
A failed fsync is never retried, because after one the page cache no longer
tells what reached the disk (the "fsyncgate" lesson of PostgreSQL). From then on
``committed_seq``, ``append``, ``sync`` and ``write_snapshot`` raise
``JournalFailure``, so nothing past the durable mark is acknowledged; the
writer's process exits and recovery starts again from what is on disk.
"""

from __future__ import annotations

import abc
import fcntl
import logging
import os
import re
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine.core.records import COMMAND_DTYPE, EVENT_DTYPE, JOURNALED_EVENT_KINDS
from engine.core.types import EventKind

log = logging.getLogger("engine.journal")


_MAGIC = b"VJR1"
_HEADER = struct.Struct("<4sIIIIIqq")  # magic, crc, body_len, n_cmds, n_events, reserved, first_seq, last_seq
_CRC_FROM = 8  # the crc covers the header after magic and crc, then the body
_SNAP_MAGIC = b"VSN1"
_SNAP_HEADER = struct.Struct("<4sIqQ")  # magic, crc(seq + length + data), seq, length
_SEGMENT = re.compile(r"^journal-(\d{20})\.log$")
_SNAPSHOT = re.compile(r"^snapshot-(\d{20})\.snap$")
_GENESIS = "genesis.bin"
_DURABLE = "durable"
FSYNC_POLICIES = ("batch", "interval", "none")


class JournalError(RuntimeError):
    """The journal is corrupt, locked, or does not match the venue."""


class JournalFailure(JournalError):
    """A write or sync of the journal failed and the journal has stopped: its
    process must exit without acknowledging anything more, then recover."""


class JournalBatch(NamedTuple):
    """One journaled batch: commands with seqs first_seq..last_seq and their
    settlement events."""

    first_seq: int
    last_seq: int
    commands: np.ndarray
    events: np.ndarray

    @property
    def fills(self) -> np.ndarray:
        """The batch's FILL events."""
        return self.events[self.events["kind"] == EventKind.FILL]


class Snapshot(NamedTuple):
    """An engine snapshot taken after command ``seq``."""

    seq: int
    data: bytes


class Journal(abc.ABC):
    """Append-only log of sequenced command batches plus engine snapshots."""

    @property
    @abc.abstractmethod
    def genesis(self) -> bytes:
        """The venue definition the journal's engine is built from."""

    @property
    @abc.abstractmethod
    def last_seq(self) -> int:
        """Seq of the last journaled command (0 when empty)."""

    @property
    @abc.abstractmethod
    def committed_seq(self) -> int:
        """For the writer, the seq up to which replies may leave: durable under the
        'batch' fsync policy, written under 'interval' and 'none'. For a reader
        (settlement), the seq up to which the journal is durable."""

    @abc.abstractmethod
    def append(self, commands: np.ndarray, events: np.ndarray) -> None:
        """Journal one batch: contiguous seqs following last_seq. It becomes
        committed later (see committed_seq); the journal signals that on notify_fd."""

    @property
    @abc.abstractmethod
    def notify_fd(self) -> int:
        """A file descriptor that turns readable when committed_seq advances
        (read it empty with clear_notifications)."""

    @abc.abstractmethod
    def clear_notifications(self) -> None:
        """Empty notify_fd."""

    @abc.abstractmethod
    def read(self, from_seq: int = 1) -> Iterator[JournalBatch]:
        """Batches holding commands with seq >= from_seq, in order."""

    @abc.abstractmethod
    def write_snapshot(self, seq: int, data: bytes) -> None:
        """Store an engine snapshot taken after command seq (atomically)."""

    @abc.abstractmethod
    def load_snapshot(self) -> Snapshot | None:
        """The newest intact snapshot, or None."""

    @abc.abstractmethod
    def sync(self) -> None:
        """Make everything appended so far durable (blocks)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Sync and release the journal."""

    def fills(self, from_seq: int = 1) -> Iterator[np.ndarray]:
        """FILL events of the batches from from_seq (for the settlement job)."""
        for batch in self.read(from_seq):
            fills = batch.fills
            if len(fills):
                yield fills[fills["seq"] >= from_seq]


class _Scan(NamedTuple):
    offsets: list[tuple[int, int, int]]  # (offset, first_seq, last_seq) of good records
    good_end: int                         # end of the last good record
    size: int                             # file size


class FileJournal(Journal):
    """Journal in a local directory (see the module docstring for the format).

    ``FileJournal.create_or_open(path, genesis, ...)`` opens for writing (one
    writer, flock), creating the directory and its genesis on first use;
    ``FileJournal.open_reader(path)`` opens read-only (replay, settlement).

    A writer under the 'batch' or 'interval' policy syncs in a background
    thread (fdatasync releases the GIL): the gateway keeps processing while a
    batch reaches the disk and sends that batch's replies once committed_seq
    passes it. 'batch' syncs as soon as anything is unsynced, so one fdatasync
    covers every batch written meanwhile (group commit); 'interval' syncs at most
    every fsync_interval_ms and does not hold replies back."""

    def __init__(self, path: Path, *, writer: bool, fsync: str = "batch", fsync_interval_ms: int = 5,
                 segment_bytes: int = 64 << 20, snapshots_kept: int = 2) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy must be one of {FSYNC_POLICIES}")
        self.path = Path(path)
        self.writer = writer
        self.fsync_policy = fsync
        self.fsync_interval = fsync_interval_ms / 1000
        self.segment_bytes = segment_bytes
        self.snapshots_kept = snapshots_kept
        self._lock_fd = -1
        self._fd = -1
        self._segment_size = 0
        genesis = self.path / _GENESIS
        if not genesis.exists():
            raise JournalError(f"{self.path} is not a journal (no {_GENESIS})")
        self._genesis = genesis.read_bytes()
        if writer:
            self._lock()
        self._last_seq = self._recover_tail()
        self._durable = 0
        self._durable_fd = -1
        self._fd_lock = threading.Lock()         # held while the fd is synced or swapped
        self._changed = threading.Condition()    # guards _last_seq / _durable for the syncer
        self._stopping = False
        self._failure: tuple[str, OSError] | None = None  # what failed first; set once, never cleared
        if writer:
            # What survived a crash in the page cache is made durable before anything new.
            if self._fd != -1:
                os.fdatasync(self._fd)
            self._durable_fd = os.open(self.path / _DURABLE, os.O_RDWR | os.O_CREAT, 0o644)
            self._set_durable(self._last_seq)
        self._notify_r, self._notify_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC) if writer else (-1, -1)
        self._syncer = None
        if writer and fsync != "none":
            self._syncer = threading.Thread(target=self._sync_loop, name="journal-sync", daemon=True)
            self._syncer.start()

    # -- opening ---------------------------------------------------------------

    @classmethod
    def create_or_open(cls, path: str | Path, genesis: bytes, **options) -> FileJournal:
        """Open the journal at path for writing, creating it with this genesis if
        it does not exist; raise JournalError if it exists with another genesis."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        target = path / _GENESIS
        if not target.exists():
            _atomic_write(target, genesis)
        elif target.read_bytes() != genesis:
            raise JournalError(f"{path} was created for a different venue definition (assets, instruments, "
                               "accounts or limits changed); start a new journal or restore the old config")
        return cls(path, writer=True, **options)

    @classmethod
    def open_reader(cls, path: str | Path) -> FileJournal:
        """Open an existing journal read-only (ignores a torn tail, never writes)."""
        return cls(Path(path), writer=False)

    def _lock(self) -> None:
        self._lock_fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise JournalError(f"{self.path} is locked by another writer") from err

    def _segments(self) -> list[tuple[int, Path]]:
        found = []
        for entry in self.path.iterdir():
            m = _SEGMENT.match(entry.name)
            if m:
                found.append((int(m.group(1)), entry))
        return sorted(found)

    def _recover_tail(self) -> int:
        """Scan the last segment; truncate a torn tail (writer) and find last_seq."""
        segments = self._segments()
        if not segments:
            return 0
        first, path = segments[-1]
        scan = _scan_segment(path)
        if scan.good_end != scan.size:
            if _has_valid_record_after(path, scan.good_end):
                raise JournalError(f"{path}: corrupt record at offset {scan.good_end} followed by valid records")
            if self.writer:
                log.warning("journal %s: discarding torn tail of %d bytes at offset %d",
                            path.name, scan.size - scan.good_end, scan.good_end)
                with open(path, "r+b") as f:
                    f.truncate(scan.good_end)
                    os.fsync(f.fileno())
        if scan.offsets:
            if scan.offsets[0][1] != first:
                raise JournalError(f"{path}: first record starts at seq {scan.offsets[0][1]}, name says {first}")
            last = scan.offsets[-1][2]
        else:
            last = first - 1
        if self.writer:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            self._segment_size = scan.good_end
        return last

    # -- Journal interface ---------------------------------------------------------

    @property
    def genesis(self) -> bytes:
        return self._genesis

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def committed_seq(self) -> int:
        if not self.writer:
            return self.durable_seq
        self._check()
        return self._durable if self.fsync_policy == "batch" else self._last_seq

    @property
    def failed(self) -> bool:
        """Whether a write or sync failed (the journal has stopped)."""
        return self._failure is not None

    def _fail(self, what: str, err: OSError) -> None:
        """Stop the journal after a failed write or sync: wake everyone waiting (the
        syncer, sync(), the gateway's loop through notify_fd) to see the failure."""
        with self._changed:
            if self._failure is None:
                self._failure = (what, err)
                log.critical("journal %s: %s failed (%s); the journal has stopped at durable seq %d",
                             self.path, what, err, self._durable)
            self._changed.notify_all()
        self._signal()

    def _check(self) -> None:
        """Raise JournalFailure if the journal has stopped."""
        if self._failure is not None:
            what, err = self._failure
            raise JournalFailure(f"journal {self.path}: {what} failed ({err}); stopped at durable seq "
                                 f"{self._durable}: exit and recover from the disk") from err

    @property
    def durable_seq(self) -> int:
        """The highest seq known to be on disk (a reader reads the writer's mark)."""
        if self.writer:
            return self._durable
        try:
            with open(self.path / _DURABLE, "rb") as f:
                mark = int.from_bytes(f.read(8), "little")
        except FileNotFoundError:
            return 0
        return min(mark, self._scan_last_seq())

    def _scan_last_seq(self) -> int:
        segments = self._segments()
        if not segments:
            return 0
        first, path = segments[-1]
        scan = _scan_segment(path)
        return scan.offsets[-1][2] if scan.offsets else first - 1

    def _set_durable(self, seq: int) -> None:
        with self._changed:
            if seq > self._durable or self._durable == 0:
                self._durable = max(seq, self._durable)
                # Written only after the data it vouches for is synced; losing this
                # write leaves an older mark, never a mark ahead of the disk.
                os.pwrite(self._durable_fd, self._durable.to_bytes(8, "little"), 0)
            self._changed.notify_all()

    @property
    def notify_fd(self) -> int:
        return self._notify_r

    def clear_notifications(self) -> None:
        try:
            while os.read(self._notify_r, 4096):
                pass
        except BlockingIOError:
            pass

    def append(self, commands: np.ndarray, events: np.ndarray) -> None:
        if not self.writer:
            raise JournalError("journal opened read-only")
        if commands.dtype != COMMAND_DTYPE or events.dtype != EVENT_DTYPE or len(commands) == 0:
            raise ValueError("append() takes a non-empty COMMAND_DTYPE array and an EVENT_DTYPE array")
        self._check()
        first, last = int(commands["seq"][0]), int(commands["seq"][-1])
        if first != self._last_seq + 1 or last - first + 1 != len(commands):
            raise JournalError(f"batch seqs {first}..{last} do not follow last seq {self._last_seq}")
        record = encode_record(commands, events)
        try:
            if self._fd == -1 or self._segment_size >= self.segment_bytes:
                self._rotate(first)
            _write_all(self._fd, record)
        except OSError as err:
            # A short write leaves a torn record, which recovery truncates.
            self._fail("append", err)
            self._check()
        self._segment_size += len(record)
        with self._changed:
            self._last_seq = last
            self._changed.notify_all()
        if self._syncer is None:
            self._signal()

    def _signal(self) -> None:
        try:
            os.write(self._notify_w, b"\0")
        except BlockingIOError:
            pass  # the pipe is full: the reader has a wake-up pending anyway

    def _sync_loop(self) -> None:
        while True:
            with self._changed:
                while self._durable >= self._last_seq and not self._stopping and self._failure is None:
                    self._changed.wait()
                if self._failure is not None or (self._stopping and self._durable >= self._last_seq):
                    return
                target = self._last_seq
            if self.fsync_policy == "interval":
                time.sleep(self.fsync_interval)
            self._sync_to(target)

    def _sync_to(self, target: int) -> None:
        """Sync the segment, then move the durable mark to target; a failure stops the journal."""
        try:
            with self._fd_lock:
                if self._fd != -1:
                    os.fdatasync(self._fd)
            self._set_durable(target)
        except OSError as err:
            self._fail("sync", err)
            return
        self._signal()

    def sync(self) -> None:
        target = self._last_seq
        if self._syncer is None:
            self._check()
            self._sync_to(target)
        else:
            with self._changed:
                while self._durable < target and self._failure is None:
                    self._changed.wait()
        self._check()

    def _rotate(self, first_seq: int) -> None:
        path = self.path / f"journal-{first_seq:020d}.log"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        _fsync_dir(self.path)
        with self._fd_lock:
            old, self._fd = self._fd, fd
            if old != -1:
                if self.fsync_policy != "none":
                    os.fdatasync(old)  # everything before first_seq is in the old segment
                os.close(old)
        self._segment_size = 0
        if old != -1 and self.fsync_policy != "none":
            self._set_durable(first_seq - 1)

    def read(self, from_seq: int = 1) -> Iterator[JournalBatch]:
        segments = self._segments()
        start = 0
        for i, (first, _path) in enumerate(segments):
            if first <= from_seq:
                start = i
        expected = None
        for first, path in segments[start:]:
            for batch in _read_segment(path):
                if expected is not None and batch.first_seq != expected:
                    raise JournalError(f"{path}: seq gap: expected {expected}, found {batch.first_seq}")
                expected = batch.last_seq + 1
                if batch.last_seq < from_seq:
                    continue
                if batch.first_seq < from_seq:
                    keep = batch.commands["seq"] >= from_seq
                    batch = JournalBatch(from_seq, batch.last_seq, batch.commands[keep],
                                         batch.events[batch.events["seq"] >= from_seq])
                yield batch

    def write_snapshot(self, seq: int, data: bytes) -> None:
        if not self.writer:
            raise JournalError("journal opened read-only")
        if seq > self._last_seq:
            raise JournalError(f"snapshot at seq {seq} is past the journal's last seq {self._last_seq}")
        self.sync()  # the snapshot must never be ahead of the durable journal
        try:
            _atomic_write(self.path / f"snapshot-{seq:020d}.snap", encode_snapshot(seq, data))
            for _seq, old in self._snapshots()[:-self.snapshots_kept]:
                old.unlink()
        except OSError as err:
            # The older snapshots and the journal are intact; the disk is not to be trusted.
            self._fail("snapshot write", err)
            self._check()

    def _snapshots(self) -> list[tuple[int, Path]]:
        found = []
        for entry in self.path.iterdir():
            m = _SNAPSHOT.match(entry.name)
            if m:
                found.append((int(m.group(1)), entry))
        return sorted(found)

    def load_snapshot(self) -> Snapshot | None:
        for seq, path in reversed(self._snapshots()):
            if seq > self._last_seq:
                log.warning("snapshot %s is past the journal's last seq %d; ignored", path.name, self._last_seq)
                continue
            snap = decode_snapshot(path.read_bytes())
            if snap is not None and snap.seq == seq:
                return snap
            log.warning("snapshot %s is damaged; trying an older one", path.name)
        return None

    def close(self) -> None:
        """Sync and release the journal; after a failure, release it without syncing
        (and raise JournalFailure if this last sync is what failed)."""
        if self._syncer is not None:
            with self._changed:
                self._stopping = True
                self._changed.notify_all()
            self._syncer.join()
            self._syncer = None
        stopped_before = self._failure is not None
        if self._fd != -1 and not stopped_before:
            self._sync_to(self._last_seq)
        for fd in (self._fd, self._notify_r, self._notify_w, self._durable_fd, self._lock_fd):
            if fd != -1:
                os.close(fd)
        self._fd = self._notify_r = self._notify_w = self._durable_fd = self._lock_fd = -1
        if not stopped_before:
            self._check()

    def __enter__(self) -> FileJournal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# -- record I/O ----------------------------------------------------------------------


def _parse(buf: bytes | memoryview, offset: int) -> tuple[int, int, int, int, int] | None:
    """(record length, first, last, n_cmds, n_events) of an intact record at offset, else None."""
    if len(buf) - offset < _HEADER.size:
        return None
    magic, crc, body_len, n_cmds, n_events, _reserved, first, last = _HEADER.unpack_from(buf, offset)
    end = offset + _HEADER.size + body_len
    if (magic != _MAGIC or end > len(buf) or n_cmds < 1 or last - first + 1 != n_cmds
            or body_len != n_cmds * COMMAND_DTYPE.itemsize + n_events * EVENT_DTYPE.itemsize):
        return None
    view = memoryview(buf)
    if zlib.crc32(view[offset + _HEADER.size:end], zlib.crc32(view[offset + _CRC_FROM:offset + _HEADER.size])) != crc:
        return None
    return end - offset, first, last, n_cmds, n_events


def encode_record(commands: np.ndarray, events: np.ndarray) -> bytes:
    """One batch as a journal record (header + body, see the module docstring);
    the replicated journal sends the same bytes as one message."""
    first, last = int(commands["seq"][0]), int(commands["seq"][-1])
    body = commands.tobytes() + events.tobytes()
    head = _HEADER.pack(_MAGIC, 0, len(body), len(commands), len(events), 0, first, last)
    crc = zlib.crc32(body, zlib.crc32(head[_CRC_FROM:]))
    return _HEADER.pack(_MAGIC, crc, len(body), len(commands), len(events), 0, first, last) + body


def decode_record(data: bytes) -> JournalBatch:
    """The batch of one whole record; JournalError if it is damaged or has bytes after it."""
    parsed = _parse(data, 0)
    if parsed is None or parsed[0] != len(data):
        raise JournalError("damaged journal record")
    return _batch_at(data, 0, parsed)


def _batch_at(data: bytes, offset: int, parsed: tuple[int, int, int, int, int]) -> JournalBatch:
    _length, first, last, n_cmds, n_events = parsed
    body = offset + _HEADER.size
    split = body + n_cmds * COMMAND_DTYPE.itemsize
    commands = np.require(np.frombuffer(data, COMMAND_DTYPE, n_cmds, body), requirements="CA")
    events = np.require(np.frombuffer(data, EVENT_DTYPE, n_events, split), requirements="CA")
    return JournalBatch(first, last, commands, events)


def encode_snapshot(seq: int, data: bytes) -> bytes:
    """A snapshot with its header (magic, crc, seq, length)."""
    crc = zlib.crc32(data, zlib.crc32(struct.pack("<qQ", seq, len(data))))
    return _SNAP_HEADER.pack(_SNAP_MAGIC, crc, seq, len(data)) + data


def decode_snapshot(raw: bytes) -> Snapshot | None:
    """The snapshot in raw (encode_snapshot's bytes), or None if it is damaged."""
    if len(raw) < _SNAP_HEADER.size:
        return None
    magic, crc, seq, length = _SNAP_HEADER.unpack_from(raw)
    data = raw[_SNAP_HEADER.size:]
    if (magic == _SNAP_MAGIC and length == len(data)
            and zlib.crc32(data, zlib.crc32(struct.pack("<qQ", seq, length))) == crc):
        return Snapshot(seq, data)
    return None


def _scan_segment(path: Path) -> _Scan:
    data = path.read_bytes()
    offsets, offset, expected = [], 0, None
    while True:
        parsed = _parse(data, offset)
        if parsed is None:
            break
        length, first, last, _n, _e = parsed
        if expected is not None and first != expected:
            raise JournalError(f"{path}: seq gap at offset {offset}: expected {expected}, found {first}")
        offsets.append((offset, first, last))
        expected = last + 1
        offset += length
    return _Scan(offsets, offset, len(data))


def _has_valid_record_after(path: Path, offset: int) -> bool:
    data = path.read_bytes()
    pos = data.find(_MAGIC, offset + 1)
    while pos != -1:
        if _parse(data, pos) is not None:
            return True
        pos = data.find(_MAGIC, pos + 1)
    return False


def _read_segment(path: Path) -> Iterator[JournalBatch]:
    data = path.read_bytes()
    offset = 0
    while True:
        parsed = _parse(data, offset)
        if parsed is None:
            return
        yield _batch_at(data, offset, parsed)
        offset += parsed[0]


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write a file so that it either exists whole or not at all."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        tmp.unlink(missing_ok=True)  # a partial file would only take space (readers ignore *.tmp)
        raise
    os.replace(tmp, path)
    _fsync_dir(path.parent)


_JOURNALED = np.zeros(256, dtype=bool)
_JOURNALED[list(JOURNALED_EVENT_KINDS)] = True


def settlement_events(events: np.ndarray) -> np.ndarray:
    """The events of a batch that the journal keeps (FILL, CREDITED, DEBITED)."""
    return events[_JOURNALED[events["kind"]]]
