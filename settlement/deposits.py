"""The deposit watcher: vault Deposit events -> engine credits, exactly once.

The engine is the truth for what has been credited: it accepts a tracked
deposit only as its ``last_deposit_id + 1`` and rejects replays
(docs/matching.md). The watcher therefore keeps no state of its own that
matters: after any crash it asks the engine for ``last_deposit_id`` and
credits the confirmed deposits after it, in id order. A deposit from a wallet
the address book does not know is skipped (the id is consumed, nothing is
credited; the funds stay on that wallet's vault balance).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from engine.core.types import EventKind, Reject
from settlement.accounts import AddressBook, AddressBookError
from settlement.vault import Deployment, Vault

log = logging.getLogger(__name__)


class DepositError(Exception):
    """The engine refused a deposit for a reason the watcher cannot fix."""


class EngineDeposits(Protocol):
    """What the watcher needs from the engine (in-process or through the gateway)."""

    def last_deposit_id(self) -> int:
        """The highest deposit id the engine has credited or skipped."""
        ...

    def credit_deposit(self, account: int, asset: int, amount: int, deposit_id: int) -> str | None:
        """Credit one deposit; None if credited, else the reject code's name."""
        ...

    def skip_deposit(self, deposit_id: int) -> str | None:
        """Consume a deposit id without credit; None if done, else the reject code's name."""
        ...


@dataclass(frozen=True)
class Deposit:
    """One confirmed Deposit event, in ledger units."""

    deposit_id: int
    wallet: str
    asset: int
    amount: int
    block: int


class DepositWatcher:
    """Credits each vault deposit to the engine once it has `confirmations` blocks."""

    def __init__(self, vault: Vault, deployment: Deployment, book: AddressBook, engine: EngineDeposits,
                 confirmations: int = 1, max_blocks: int = 5_000) -> None:
        if confirmations < 1:
            raise ValueError("confirmations must be at least 1")
        self.vault = vault
        self.book = book
        self.engine = engine
        self.confirmations = confirmations
        self.max_blocks = max_blocks
        self._scale = {int(asset): 10 ** (info["decimals"] - info["ledger_decimals"])
                       for asset, info in deployment.assets.items()}
        self._asset_of = {vault.w3.to_checksum_address(info["token"]): int(asset)
                          for asset, info in deployment.assets.items()}
        self._from_block = deployment.block   # scan hint only; ids decide what is credited

    def confirmed_deposits(self) -> list[Deposit]:
        """Deposits with enough confirmations not yet scanned, in id order."""
        safe = self.vault.w3.eth.block_number - self.confirmations + 1
        found: list[Deposit] = []
        while self._from_block <= safe:
            to_block = min(safe, self._from_block + self.max_blocks - 1)
            for entry in self.vault.contract.events.Deposit().get_logs(from_block=self._from_block,
                                                                      to_block=to_block):
                args = entry["args"]
                asset = self._asset_of[self.vault.w3.to_checksum_address(args["token"])]
                found.append(Deposit(int(args["depositId"]), args["wallet"], asset,
                                     int(args["amount"]) // self._scale[asset], int(entry["blockNumber"])))
            self._from_block = to_block + 1
        return sorted(found, key=lambda d: d.deposit_id)

    def poll(self) -> int:
        """Credit every confirmed deposit after the engine's last; the number credited or skipped."""
        done = 0
        last = self.engine.last_deposit_id()
        for deposit in self.confirmed_deposits():
            if deposit.deposit_id <= last:
                continue
            try:
                account = self.book.account(deposit.wallet)
            except AddressBookError:
                log.warning("deposit %d from unknown wallet %s skipped", deposit.deposit_id, deposit.wallet)
                outcome = self.engine.skip_deposit(deposit.deposit_id)
            else:
                outcome = self.engine.credit_deposit(account, deposit.asset, deposit.amount, deposit.deposit_id)
            if outcome == "DUPLICATE_DEPOSIT":
                continue
            if outcome is not None:
                raise DepositError(f"deposit {deposit.deposit_id} refused by the engine: {outcome}")
            last = deposit.deposit_id
            done += 1
        return done


class InProcessDeposits:
    """EngineDeposits over a MatchingEngine in this process (tests, demo)."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def last_deposit_id(self) -> int:
        return self.engine.last_deposit_id

    def credit_deposit(self, account: int, asset: int, amount: int, deposit_id: int) -> str | None:
        return _outcome(self.engine.credit(account, asset, amount, deposit_id=deposit_id))

    def skip_deposit(self, deposit_id: int) -> str | None:
        return _outcome(self.engine.skip_deposit(deposit_id))


def _outcome(events) -> str | None:
    event = events[0]
    return None if event.kind != EventKind.REJECTED else Reject(event.reason).name
