"""Forced exit end to end: a wallet's exit request on chain freezes its engine account, the job
settles everything up to the freeze and serves the request in that batch, the wallet takes its
whole settled balance, and settlement between everyone else goes on. The attack of issue 11
(request an exit, keep trading, escape when a pending batch goes against the wallet) fails."""

from __future__ import annotations

import numpy as np
import pytest
from settlement_helpers import AAPLX, CHALLENGE_WINDOW, EXIT_WINDOW, USDC, advance_time, make_job, settle_all
from test_deposit_watcher import chain_ledger, engine_for, engine_ledger

from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, EventKind, Reject, Side, TimeInForce
from engine.defaults import stock_pair
from engine.schemas import AccountFrozen
from engine.schemas import Reject as RejectReply
from settlement.chain import ChainClient, RevertError, fund_dev_account
from settlement.deposits import DepositWatcher, InProcessDeposits
from settlement.exits import ExitQueue, ExitWatcher, GatewayFreezes, InProcessFreezes
from settlement.records import FREEZE_DTYPE, UnitTable, freeze_records, settlement_records
from settlement.source import RecordFileSource

ATTACKER, COUNTERPARTY, OTHER = 1, 2, 3
PX = 2_000_000   # $200.00


class Exchange:
    """An in-process engine over the venue's assets whose journaled records go to a record file."""

    def __init__(self, venue, directory) -> None:
        self.venue = venue
        self.engine = engine_for(venue)
        DepositWatcher(venue.vault, venue.deployment, venue.book, InProcessDeposits(self.engine)).poll()
        spec = stock_pair("AAPLX")
        self.instrument = self.engine.add_instrument(spec)
        self.engine.set_reference_price(self.instrument, PX)
        self.units = UnitTable.of_engine(self.engine)
        self.source = RecordFileSource(directory)

    def run(self, kind: int, **fields) -> np.ndarray:
        """One command through the batch API; its records appended to the source."""
        command = np.zeros(1, dtype=COMMAND_DTYPE)
        command["kind"] = kind
        for name, value in fields.items():
            command[name] = value
        events = self.engine.process(command)
        fills, withdrawals = settlement_records(events, self.units)
        self.source.append(fills, withdrawals, freeze_records(events))
        return events

    def freeze_account(self, account: int) -> str | None:
        """The exit watcher's command, journaled like any other (EngineFreezes)."""
        event = self.run(CommandKind.FREEZE_ACCOUNT, account=account)[0]
        return None if event["kind"] != EventKind.REJECTED else Reject(event["reason"]).name

    def order(self, account: int, side: int, qty: int, tif: int = TimeInForce.GTC) -> np.ndarray:
        return self.run(CommandKind.NEW_ORDER, account=account, instrument=self.instrument, side=side,
                        order_type=1, tif=tif, price=PX, qty=qty)

    def trade(self, seller: int, buyer: int, qty: int) -> None:
        self.order(seller, Side.SELL, qty)
        assert EventKind.FILL in self.order(buyer, Side.BUY, qty, TimeInForce.IOC)["kind"]


@pytest.fixture
def exchange(venue, tmp_path) -> Exchange:
    return Exchange(venue, tmp_path / "source")


def exit_job(venue, exchange, tmp_path, **options):
    queue = ExitQueue(venue.vault, venue.book, venue.deployment.block)
    return make_job(venue, exchange.source, tmp_path / "state", exits=queue, max_records=1_000, **options)


def test_request_exit_keep_trading_and_escape_against_a_pending_batch_fails(venue, exchange, tmp_path):
    vault = venue.vault.contract.functions
    attacker = venue.client(ATTACKER)
    watcher = ExitWatcher(venue.vault, venue.deployment.block, venue.book, exchange, confirmations=1)
    exchange.trade(ATTACKER, COUNTERPARTY, 1_000)
    attacker.transact(vault.requestExit())
    # The attacker keeps trading until the watcher acts: a buy it will regret, and a resting ask.
    exchange.trade(COUNTERPARTY, ATTACKER, 5_000)
    exchange.order(ATTACKER, Side.SELL, 700)
    assert watcher.poll() == 1
    assert exchange.engine.is_frozen(ATTACKER) and watcher.poll() == 0
    assert all(reserved == 0 for _, reserved in exchange.engine.balances(ATTACKER))   # its ask is cancelled
    refused = exchange.order(ATTACKER, Side.BUY, 10)
    assert refused["kind"].tolist() == [EventKind.REJECTED] and refused["reason"][0] == Reject.ACCOUNT_IS_FROZEN
    refused = exchange.run(CommandKind.DEBIT, account=ATTACKER, asset=USDC, qty=1)
    assert refused["reason"][0] == Reject.ACCOUNT_IS_FROZEN
    # The batch against it is pending: escaping now, even a window later, is refused.
    advance_time(venue.w3, EXIT_WINDOW - 10)
    with pytest.raises(RevertError, match="EscapeNotOpen"):
        attacker.prepare(vault.escape([USDC, AAPLX]))

    job = exit_job(venue, exchange, tmp_path)
    assert settle_all(job) == [1]
    assert job.store.batch(1).served == [attacker.address]
    assert venue.vault.wallet_state(attacker.address)[1] is True
    assert chain_ledger(venue) == engine_ledger(exchange.engine)   # the pending fills settled first
    owed = {asset: venue.vault.balance(attacker.address, asset)[0] for asset in (USDC, AAPLX)}
    advance_time(venue.w3, 2 * CHALLENGE_WINDOW)   # escapes pay final balances
    attacker.transact(vault.escape([USDC, AAPLX]))
    for asset, amount in owed.items():
        assert amount == exchange.engine.balances(ATTACKER)[asset][0]
        assert venue.token(asset).functions.balanceOf(attacker.address).call() == amount * venue.scale(asset)

    # Everyone else goes on trading and settling.
    exchange.trade(COUNTERPARTY, OTHER, 2_000)
    assert settle_all(job) == [2]
    ledger = engine_ledger(exchange.engine)
    assert {k: v for k, v in chain_ledger(venue).items() if k[0] != ATTACKER} == {
        k: v for k, v in ledger.items() if k[0] != ATTACKER}


def test_a_request_is_served_only_by_the_batch_that_reaches_its_freeze(venue, exchange, tmp_path):
    user = venue.client(ATTACKER)
    exchange.trade(ATTACKER, COUNTERPARTY, 1_000)
    exchange.trade(COUNTERPARTY, ATTACKER, 400)
    user.transact(venue.vault.contract.functions.requestExit())
    assert exchange.freeze_account(ATTACKER) is None
    exchange.trade(COUNTERPARTY, OTHER, 300)
    job = exit_job(venue, exchange, tmp_path)
    job.max_records = 1
    assert job.step() == 1
    assert job.store.batch(1).served == []       # the attacker's second fill is still to come
    assert job.step() == 2
    assert job.store.batch(2).served == [user.address]
    assert job.step() == 3 and job.store.batch(3).served == []
    assert chain_ledger(venue) == engine_ledger(exchange.engine)


def test_a_request_without_records_or_account_is_served_by_an_empty_batch(venue, exchange, tmp_path):
    stranger = ChainClient(venue.w3, b"\x42" * 32)
    fund_dev_account(venue.w3, stranger.address, 10**20)
    stranger.transact(venue.vault.contract.functions.requestExit())
    job = exit_job(venue, exchange, tmp_path)
    assert settle_all(job) == [1]
    record = job.store.batch(1)
    assert (record.record_count, record.served, record.last_id) == (0, [stranger.address], 0)
    stranger.transact(venue.vault.contract.functions.escape([USDC]))
    assert settle_all(job) == []


def test_crash_after_sending_a_serving_batch_resumes_the_same_batch(venue, exchange, tmp_path):
    user = venue.client(OTHER)
    exchange.trade(OTHER, COUNTERPARTY, 1_000)
    user.transact(venue.vault.contract.functions.requestExit())
    assert exchange.freeze_account(OTHER) is None

    def crash(name):
        if name == "after_send":
            raise RuntimeError(name)
    with pytest.raises(RuntimeError):
        exit_job(venue, exchange, tmp_path, step_hook=crash).step()
    job = exit_job(venue, exchange, tmp_path)
    assert settle_all(job) == [1]
    assert venue.vault.wallet_state(user.address)[1] is True
    assert chain_ledger(venue) == engine_ledger(exchange.engine)


def test_freeze_records_come_from_account_frozen_events():
    events = np.zeros(3, dtype=[("seq", "<i8"), ("kind", "u1"), ("account", "<i8")])
    events["seq"] = [4, 4, 5]
    events["kind"] = [EventKind.ACCOUNT_FROZEN, EventKind.CANCELLED, EventKind.ACCOUNT_FROZEN]
    events["account"] = [7, 7, 9]
    frozen = freeze_records(events)
    assert frozen.dtype == FREEZE_DTYPE
    assert frozen.tolist() == [(4 << 16, 7), (5 << 16, 9)]


def test_in_process_freezes_report_the_engine_outcome(venue, exchange):
    freezes = InProcessFreezes(exchange.engine)
    assert freezes.freeze_account(OTHER) is None
    assert freezes.freeze_account(OTHER) == "ACCOUNT_IS_FROZEN"
    assert freezes.freeze_account(0) == "FEE_ACCOUNT_NOT_FREEZABLE"


def test_gateway_freezes_name_the_gateways_reject():
    class Operator:
        def __init__(self, reply) -> None:
            self.reply = reply

        def freeze_account(self, account):
            return self.reply

    assert GatewayFreezes(Operator(AccountFrozen(5, 0, 1, 3, 2))).freeze_account(3) is None
    refused = RejectReply(seq=6, ts=0, code=int(Reject.ACCOUNT_IS_FROZEN), text="frozen", request_id=1)
    assert GatewayFreezes(Operator(refused)).freeze_account(3) == "ACCOUNT_IS_FROZEN"
