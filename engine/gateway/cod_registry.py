"""The durable registry of the accounts that have a live cancel-on-disconnect
session: what a gateway that takes over (a standby becoming leader, or a
gateway restarted on its journal) reads to cancel the orders of the firms whose
connections died with the previous one.

``CodRegistry`` is the interface, with two implementations chosen like the
journal (engine/journals.py):

* ``FileCodRegistry``: the file ``cod-accounts.json`` in the file journal's
  directory, replaced atomically (temp file, fsync, rename, fsync of the
  directory). The journal's flock makes its process the only writer.
* ``JetStreamCodRegistry``: key ``accounts`` of the key-value bucket
  ``<stream>-cod`` (replicas as the stream). Every write is a compare-and-set
  on the revision this leader wrote last, and taking over rewrites the key with
  the new leader's epoch: a deposed leader's later write (a process paused past
  its lease that wakes up) names a revision that is no longer the last, the
  bucket refuses it and the registry fails with ``JournalFenced``. So a stale
  process can neither add an account (whose orders the next takeover would
  cancel) nor drop one (whose firm would lose its protection).

Writes leave the gateway's loop: ``record`` hands over the latest set and a
thread of the registry writes it (only the newest set, when several came
meanwhile). A crash between a Logon and that write (milliseconds) loses the
registration.
"""

from __future__ import annotations

import abc
import json
import logging
import os
import threading
import time
from pathlib import Path

from engine.config import Config
from engine.journal import Journal, JournalError, JournalFailure

log = logging.getLogger("engine.gateway")

FILE_NAME = "cod-accounts.json"
_KEY = "accounts"
_RETRY_S = 0.2  # wait before writing again after the store did not answer
_TAKE_OVER_S = 20.0  # how long a new leader retries reading the registry while the cluster elects


def encode_accounts(accounts: frozenset[int], epoch: int = 0) -> bytes:
    """The stored form: JSON with the sorted accounts (and the writing leader's epoch)."""
    doc: dict = {"accounts": sorted(accounts)}
    if epoch:
        doc["epoch"] = epoch
    return json.dumps(doc).encode()


def decode_accounts(data: bytes, where: str, max_accounts: int) -> frozenset[int]:
    """The accounts of a stored registry; JournalError naming ``where`` if it is damaged."""
    try:
        accounts = json.loads(data)["accounts"]
        if not all(type(a) is int and 0 <= a < max_accounts for a in accounts):
            raise ValueError(f"accounts must be integers in 0..{max_accounts - 1}")
    except (ValueError, KeyError, TypeError) as err:
        raise JournalError(f"cancel-on-disconnect registry {where} is damaged ({err}); remove it to start "
                           "without it (the accounts it named then keep their orders)") from err
    return frozenset(accounts)


class CodRegistry(abc.ABC):
    """Accounts with a live cancel-on-disconnect session, kept durable by a
    writer thread (see the module docstring)."""

    def __init__(self, max_accounts: int) -> None:
        self.max_accounts = max_accounts
        self._wanted: frozenset[int] | None = None  # the newest set handed over, not yet stored
        self._written: frozenset[int] | None = None
        self._failure: JournalFailure | None = None
        self._closing = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def take_over(self) -> frozenset[int]:
        """Read the accounts the previous gateway left registered, make this
        process the registry's writer and start its writer thread."""
        accounts = self._take_over()
        self._written = accounts
        self._thread = threading.Thread(target=self._write_loop, name="cod-registry", daemon=True)
        self._thread.start()
        return accounts

    def record(self, accounts: frozenset[int]) -> None:
        """Store ``accounts`` as the registered set, off the caller's thread;
        raises JournalFenced once another gateway has taken the registry over."""
        with self._changed:
            if self._failure is not None:
                raise self._failure
            self._wanted = accounts
            self._changed.notify_all()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until the last recorded set is stored; False if it was not in time
        (or the registry failed)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._wanted is None or self._failure is not None, timeout) \
                and self._failure is None

    def close(self) -> None:
        """Store what was recorded last (a bounded wait) and stop the writer."""
        if self._thread is None:
            return
        self.flush()
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join()
        self._thread = None

    def _write_loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._wanted is not None or self._closing)
                if self._wanted is None:
                    return
                accounts = self._wanted
            if accounts != self._written:
                try:
                    self._store(accounts)
                except JournalFailure as err:
                    log.critical("cancel-on-disconnect registry: %s", err)
                    with self._changed:
                        self._failure = err
                        self._changed.notify_all()
                    return
                except Exception as err:  # noqa: BLE001 - the store did not answer: write again
                    log.warning("cancel-on-disconnect registry not stored (%s); retrying", err)
                    with self._changed:
                        if self._changed.wait_for(lambda: self._closing, _RETRY_S):
                            return
                    continue
                self._written = accounts
            with self._changed:
                if self._wanted is accounts:
                    self._wanted = None
                    self._changed.notify_all()

    @abc.abstractmethod
    def _take_over(self) -> frozenset[int]:
        """Read the stored set (empty if none) and become its writer."""

    @abc.abstractmethod
    def _store(self, accounts: frozenset[int]) -> None:
        """Store the set durably; JournalFailure if this process may no longer write."""


class FileCodRegistry(CodRegistry):
    """The registry as a file beside the file journal (its flock holder writes)."""

    def __init__(self, directory: str | Path, max_accounts: int) -> None:
        super().__init__(max_accounts)
        self.path = Path(directory) / FILE_NAME

    def _take_over(self) -> frozenset[int]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return frozenset()
        return decode_accounts(data, str(self.path), self.max_accounts)

    def _store(self, accounts: frozenset[int]) -> None:
        temp = self.path.with_suffix(".tmp")
        with open(temp, "wb") as out:
            out.write(encode_accounts(accounts))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


class JetStreamCodRegistry(CodRegistry):
    """The registry as key ``accounts`` of bucket ``<stream>-cod``, written by
    compare-and-set on the revision this leader wrote last (see the module
    docstring). ``journal`` is the leading JetStreamJournal, whose connection
    and epoch it uses."""

    def __init__(self, journal, max_accounts: int) -> None:
        super().__init__(max_accounts)
        self.journal = journal
        self.kv = None  # the bucket, opened (or created) at the takeover
        self.revision = 0  # of the registry's last value this process wrote

    def _take_over(self) -> frozenset[int]:
        from engine.journal_jetstream import JournalUnavailable

        deadline = time.monotonic() + _TAKE_OVER_S
        while True:  # a server just died, its Raft groups elect a leader: ask again
            try:
                if self.kv is None:
                    self.kv = self.journal.key_value("cod")
                self.revision, accounts = self.journal.call(self._seal())
                return accounts
            except JournalUnavailable as err:
                if time.monotonic() > deadline:
                    raise
                log.warning("cancel-on-disconnect registry: %s; retrying", err)
                time.sleep(_RETRY_S)

    async def _seal(self) -> tuple[int, frozenset[int]]:
        """Read the stored set and write it again under this leader's epoch,
        compare-and-set on the revision read (a write of the old leader in between
        is read and sealed in turn): from then on only this leader writes."""
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        while True:
            try:
                entry = await self.kv.get(_KEY)
                revision, accounts = entry.revision, decode_accounts(
                    entry.value, f"{self.journal.stream}-cod", self.max_accounts)
            except KeyNotFoundError:  # a delete or purge of the key reads as not found too
                revision, accounts = 0, frozenset()
            try:
                value = encode_accounts(accounts, self.journal.epoch)
                sealed = (await self.kv.update(_KEY, value, last=revision) if revision
                          else await self.kv.create(_KEY, value))
            except KeyWrongLastSequenceError:
                continue
            log.info("cancel-on-disconnect registry %s-cod taken over by epoch %d: accounts %s",
                     self.journal.stream, self.journal.epoch, sorted(accounts) or "none")
            return sealed, accounts

    def _store(self, accounts: frozenset[int]) -> None:
        self.revision = self.journal.call(self._update(accounts))

    async def _update(self, accounts: frozenset[int]) -> int:
        """Write the set, compare-and-set on this leader's last revision. Refused,
        the key holds either this epoch's own earlier write whose answer was lost
        (a timeout: write again after it) or another leader's: fenced."""
        from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

        from engine.journal_jetstream import JournalFenced

        while True:
            try:
                return await self.kv.update(_KEY, encode_accounts(accounts, self.journal.epoch), last=self.revision)
            except KeyWrongLastSequenceError:
                try:
                    entry = await self.kv.get(_KEY)
                except KeyNotFoundError:  # deleted meanwhile: not this leader's to write any more either
                    entry = None
                if entry is None or json.loads(entry.value).get("epoch") != self.journal.epoch:
                    raise JournalFenced(f"the cancel-on-disconnect registry {self.journal.stream}-cod was written "
                                        f"by another gateway since epoch {self.journal.epoch} wrote it; "
                                        "stopping") from None
                self.revision = entry.revision


def open_cod_registry(config: Config, journal: Journal) -> CodRegistry:
    """The registry beside the gateway's journal (call ``take_over`` once leading)."""
    max_accounts = config.venue.max_accounts
    if config.journal.kind == "jetstream":
        return JetStreamCodRegistry(journal, max_accounts)
    return FileCodRegistry(config.journal_path, max_accounts)
