"""The deposit watcher's record of what it asked the engine to do with each vault deposit.

One JSON line per deposit: its id, wallet, token and amount, the block number and hash and the
transaction it came in, and the action (credit, or skip and why). A line is written and fsynced
before its command is sent, so every deposit the engine holds has its block hash on record (a
line whose command never ran has an id above the engine's ``last_deposit_id`` and is replaced
when the deposit is handled again). The block hashes are how the watcher finds a credited
deposit whose block left the canonical chain; the skip reasons show which deposits the engine
never credited.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

CREDIT = "credit"
SKIP = "skip"


class DepositLogError(Exception):
    """The record file holds a line that is not a deposit record."""


@dataclass(frozen=True)
class Deposit:
    """One Deposit event of the vault, where it was mined, and its ledger amount."""

    deposit_id: int
    wallet: str
    token: str
    token_amount: int      # the Deposit event's amount: token base units, or shares of a SHARES asset
    asset: int | None      # the vault's asset id; None if the token is not in the deployment file
    amount: int | None     # ledger units; None if the token is not in the deployment file
    block: int
    block_hash: str        # 0x-hex
    tx_hash: str           # 0x-hex


@dataclass(frozen=True)
class Entry:
    """What the watcher asked the engine to do with one deposit."""

    deposit: Deposit
    action: str            # CREDIT or SKIP
    reason: str = ""       # why a deposit was skipped


class DepositLog:
    """The record, in a file (``path``) or, without one, in memory only (a demo's watcher)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self._entries: dict[int, Entry] = {}
        if self.path is not None and self.path.exists():
            self._load()

    def write(self, deposit: Deposit, action: str, reason: str = "") -> Entry:
        """Record an action, durably, before its command is sent; it replaces an earlier line of that id."""
        entry = Entry(deposit, action, reason)
        if self.path is not None:
            line = json.dumps({**asdict(deposit), "action": action, "reason": reason}, sort_keys=True) + "\n"
            with open(self.path, "a", encoding="utf-8") as file:
                file.write(line)
                file.flush()
                os.fsync(file.fileno())
        self._entries[deposit.deposit_id] = entry
        return entry

    def entry(self, deposit_id: int) -> Entry | None:
        """The action recorded for a deposit id, if any."""
        return self._entries.get(deposit_id)

    def done(self, last_id: int) -> list[Entry]:
        """The entries the engine has acted on (ids up to its ``last_deposit_id``), newest block first."""
        return sorted((e for i, e in self._entries.items() if i <= last_id),
                      key=lambda e: (e.deposit.block, e.deposit.deposit_id), reverse=True)

    def _load(self) -> None:
        data = self.path.read_bytes()
        whole = data[:data.rfind(b"\n") + 1]
        if whole != data:
            # A torn last line (a crash while writing it): its command was never sent.
            with open(self.path, "r+b") as file:
                file.truncate(len(whole))
                os.fsync(file.fileno())
        for number, line in enumerate(whole.decode("utf-8").splitlines(), 1):
            try:
                fields = json.loads(line)
                action, reason = fields.pop("action"), fields.pop("reason")
                self._entries[fields["deposit_id"]] = Entry(Deposit(**fields), action, reason)
            except (ValueError, KeyError, TypeError) as err:
                raise DepositLogError(f"{self.path}:{number}: not a deposit record: {err}") from None
