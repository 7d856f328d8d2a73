"""The deposit watcher: vault Deposit events in the final chain -> engine credits, exactly once.

A deposit is credited only once its block is final: by default at the node's ``finalized``
block; on a chain without one, after a configured number of confirmations. Before a reorg,
a deposit that may still vanish is never credited, and its id (which the vault reassigns to
the next deposit on the new chain) is never used up.

The engine is the truth for what has been credited: it accepts a tracked deposit only as its
``last_deposit_id + 1`` and rejects replays (docs/matching.md). After any crash the watcher
asks the engine for ``last_deposit_id`` and handles the final deposits after it, in id order.

The watcher's record (settlement/deposit_log.py) keeps the block hash of every deposit it
handled. Each poll checks that the newest recorded block is still canonical (an ancestor of a
canonical block is canonical, so that one check covers every earlier record). If it is not,
a reorg went deeper than the finality the watcher trusted: the engine holds credits the chain
does not back, and the watcher stops with DepositReorged, on this poll and on every later one
and after a restart, until an operator reconciles.

A rebasing stock token is listed in shares (settlement/vault.py ``SHARES``): its Deposit events
carry the shares the vault received, and the engine's ledger units of it are those shares / scale,
so a rebase changes neither. The conversion is the same for both kinds, in the asset's own unit.

A deposit the engine cannot credit (a wallet without an account, a token the deployment file
does not list, an asset the engine does not have, an amount above the engine's cap) uses its
id up with a journaled SKIP_DEPOSIT, recorded with its reason and logged; the funds stay on the
wallet's vault balance. It never stops the deposits after it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from web3.exceptions import Web3Exception

from engine.core.types import EventKind, Reject
from engine.units import VALUE_LIMIT
from settlement.accounts import AddressBook, AddressBookError
from settlement.deposit_log import CREDIT, SKIP, Deposit, DepositLog
from settlement.vault import SHARES, Deployment, Vault

log = logging.getLogger(__name__)

FINALIZED = "finalized"

_DEPOSIT_REFUSALS = frozenset({"UNKNOWN_ACCOUNT", "UNKNOWN_ASSET", "INVALID_AMOUNT", "AMOUNT_OVERFLOW"})
"""Engine rejects of a credit that are about the deposit itself: it is skipped, the rest go on."""


class DepositError(Exception):
    """The engine refused a deposit for a reason the watcher cannot fix."""


class DepositReorged(DepositError):
    """A deposit the engine holds is in a block that is no longer canonical."""


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


class DepositWatcher:
    """Credits each final vault deposit to the engine once; refuses to go on past a reorg under one.

    ``confirmations`` None (the default) trusts the node's ``finalized`` block; a number N
    trusts a block N - 1 blocks below the head, for chains without finality.
    """

    def __init__(self, vault: Vault, deployment: Deployment, book: AddressBook, engine: EngineDeposits, *,
                 confirmations: int | None = None, record: DepositLog | None = None, max_blocks: int = 5_000) -> None:
        if confirmations is not None and confirmations < 1:
            raise ValueError("confirmations must be at least 1")
        self.vault = vault
        self.book = book
        self.engine = engine
        self.confirmations = confirmations
        self.record = DepositLog() if record is None else record
        self.max_blocks = max_blocks
        self._scale = {int(asset): deployment.scale(asset) for asset in deployment.assets}
        self._unit = {int(asset): "shares" if deployment.kind(asset) == SHARES else "token units"
                      for asset in deployment.assets}
        self._asset_of = {vault.w3.to_checksum_address(info["token"]): int(asset)
                          for asset, info in deployment.assets.items()}
        self._deployed_at = deployment.block
        self._from_block: int | None = None   # scan hint only; ids decide what is credited
        self._stopped: DepositReorged | None = None

    def final_block(self) -> int:
        """The newest block the watcher trusts not to be reorged."""
        w3 = self.vault.w3
        if self.confirmations is not None:
            return w3.eth.block_number - self.confirmations + 1
        try:
            return int(w3.eth.get_block(FINALIZED)["number"])
        except (Web3Exception, ValueError) as err:   # nodes word it differently: unknown tag, no block, bad params
            raise DepositError(f"the node has no '{FINALIZED}' block ({err}); on a chain without finality, "
                               "credit after a number of confirmations instead") from err

    def confirmed_deposits(self) -> list[Deposit]:
        """Deposits in final blocks not yet scanned, in id order."""
        if self._from_block is None:
            self._from_block = self._deployed_at
        final = self.final_block()
        found: list[Deposit] = []
        while self._from_block <= final:
            to_block = min(final, self._from_block + self.max_blocks - 1)
            for entry in self.vault.contract.events.Deposit().get_logs(from_block=self._from_block,
                                                                      to_block=to_block):
                found.append(self._deposit(entry))
            self._from_block = to_block + 1
        return sorted(found, key=lambda d: d.deposit_id)

    def off_chain(self, deposits: list[Deposit], *, every: bool = False) -> list[tuple[Deposit, str | None]]:
        """Those of ``deposits`` (newest block first) whose block left the canonical chain, each with
        the hash of the canonical block at its height (None above the head). Unless ``every``, the
        walk stops at the first block still canonical: its ancestors are canonical too."""
        out: list[tuple[Deposit, str | None]] = []
        canonical: dict[int, str | None] = {}
        head = self.vault.w3.eth.block_number
        for d in deposits:
            if d.block not in canonical:
                canonical[d.block] = (self.vault.w3.eth.get_block(d.block)["hash"].to_0x_hex()
                                      if d.block <= head else None)
                if canonical[d.block] == d.block_hash and not every:
                    break
            if canonical[d.block] != d.block_hash:
                out.append((d, canonical[d.block]))
        return out

    def poll(self) -> int:
        """Credit (or skip, with a reason) every final deposit after the engine's last; the number
        handled. Raises DepositReorged, now and on every later poll, if a deposit the engine handled
        is no longer on chain."""
        if self._stopped is not None:
            raise self._stopped
        last = self.engine.last_deposit_id()
        done = [entry.deposit for entry in self.record.done(last)]
        if self._from_block is None:
            self._resume_scan(last, done)
        new = [d for d in self.confirmed_deposits() if d.deposit_id > last]
        # Checked after the scan: a reorg before it shows in the records, one during it in what was read.
        count = self.vault.contract.functions.depositCount().call()
        if last > count:
            self._stop([f"the engine has handled deposit ids up to {last}, the vault has made {count} deposits"])
        if done and self.off_chain(done[:1]):
            self._stop([self._describe(d, now) for d, now in self.off_chain(done)])
        moved = self.off_chain(new[::-1], every=True)
        if moved:
            log.warning("the chain reorganised under deposits being read (%s): reading them again next poll",
                        "; ".join(f"deposit {d.deposit_id} in block {d.block}" for d, _ in moved))
            self._from_block = None
            return 0
        return sum(self._handle(deposit) for deposit in new)

    # -- internals --

    def _deposit(self, entry) -> Deposit:
        args = entry["args"]
        token = self.vault.w3.to_checksum_address(args["token"])
        asset = self._asset_of.get(token)
        token_amount = int(args["amount"])
        return Deposit(deposit_id=int(args["depositId"]), wallet=args["wallet"], token=token,
                       token_amount=token_amount, asset=asset,
                       amount=None if asset is None else token_amount // self._scale[asset],
                       block=int(entry["blockNumber"]), block_hash=entry["blockHash"].to_0x_hex(),
                       tx_hash=entry["transactionHash"].to_0x_hex())

    def _resume_scan(self, last: int, done: list[Deposit]) -> None:
        if done:
            self._from_block = done[0].block   # the deposits before it are all handled
        elif last:
            log.warning("the engine handled deposits up to %d before this record began: their blocks "
                        "cannot be checked against reorgs", last)

    def _describe(self, deposit: Deposit, canonical_hash: str | None) -> str:
        entry = self.record.entry(deposit.deposit_id)
        what = (f"credited {deposit.amount} of asset {deposit.asset} to wallet {deposit.wallet}"
                if entry.action == CREDIT else f"skipped ({entry.reason})")
        return (f"deposit {deposit.deposit_id} {what}: its block {deposit.block} {deposit.block_hash} is now "
                f"{canonical_hash or 'above the head'}")

    def _stop(self, what: list[str]) -> None:
        self._stopped = DepositReorged(
            "a reorg removed deposits the engine already handled, so its balances are not what the chain "
            "backs. Stopped: reconcile the engine with the final chain before crediting more. " + "; ".join(what))
        log.critical("%s", self._stopped)
        raise self._stopped

    def _handle(self, deposit: Deposit) -> bool:
        """Credit or skip one deposit; False if the engine had already handled its id."""
        reason = self._refusal(deposit)
        if reason is None:
            self.record.write(deposit, CREDIT)
            outcome = self.engine.credit_deposit(self.book.account(deposit.wallet), deposit.asset, deposit.amount,
                                                 deposit.deposit_id)
            if outcome == "DUPLICATE_DEPOSIT":
                return False
            if outcome in _DEPOSIT_REFUSALS:
                reason = f"the engine refused the credit: {outcome}"
            elif outcome is not None:
                raise DepositError(f"deposit {deposit.deposit_id} refused by the engine: {outcome}")
            else:
                log.info("deposit %d: credited %d of asset %d to %s", deposit.deposit_id, deposit.amount,
                         deposit.asset, deposit.wallet)
                return True
        self.record.write(deposit, SKIP, reason)
        log.warning("deposit %d (%d %s of %s from %s, tx %s) skipped, not credited: %s",
                    deposit.deposit_id, deposit.token_amount, self._unit.get(deposit.asset, "token units"),
                    deposit.token, deposit.wallet, deposit.tx_hash, reason)
        outcome = self.engine.skip_deposit(deposit.deposit_id)
        if outcome == "DUPLICATE_DEPOSIT":
            return False
        if outcome is not None:
            raise DepositError(f"deposit {deposit.deposit_id}: skip refused by the engine: {outcome}")
        return True

    def _refusal(self, deposit: Deposit) -> str | None:
        """Why the engine cannot take this deposit, known before asking it; None if it may."""
        try:
            self.book.account(deposit.wallet)
        except AddressBookError:
            return "the wallet has no account"
        if deposit.asset is None:
            return "the token is not listed in the deployment file"
        if deposit.amount > VALUE_LIMIT:
            return f"the amount is above the engine's cap of {VALUE_LIMIT} ledger units"
        return None


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
