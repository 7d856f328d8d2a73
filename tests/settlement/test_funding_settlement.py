"""Funding of perpetual option series settles on chain like any fill: each FUNDING_SETTLED
goes from the journal through the batch job to the vault as a payment between the account
and the fee account (which holds the funding pools' money), so every wallet's on-chain
balance, the fee wallet's included, equals the engine's; the watchtower recomputes every
batch; a negative pool is fronted by the fee account only up to what it holds, so no
on-chain balance goes negative; and an account frozen by its exit request settles nothing
after its freeze."""

from __future__ import annotations

import numpy as np
from settlement_helpers import AAPLX, ACCOUNTS, INITIAL, USDC, make_job, settle_all
from test_deposit_watcher import chain_ledger, engine_for, engine_ledger

from engine.core.records import JOURNALED_EVENT_KINDS, empty_commands
from engine.core.types import CommandKind, EventKind, Side
from engine.defaults import perpetual_series
from engine.journal import FileJournal
from engine.units import NS_PER_S
from settlement.audit import Watchtower
from settlement.exits import ExitQueue
from settlement.records import FILLS_PER_SEQ, UnitTable, freeze_records
from settlement.source import JournalFillSource

WBTC = 6
HOUR = 3_600 * NS_PER_S
MARK = 20_000_000                                   # $2,000 a contract, all time value
USD = 10**8
FEE, LONG, SHORT, BUYER, WRITER, DEBTOR = range(6)   # account ids (0 is the fee account)


class Venue:
    """An engine over the vault's assets with a perpetual BTC call; every command is journaled."""

    def __init__(self, engine, directory) -> None:
        self.engine = eng = engine
        self.perp = eng.add_instrument(perpetual_series("WBTC", "BTC", "100000", "C", 3 * 86_400))
        self.units = UnitTable.of_engine(eng)
        self.journal = FileJournal.create_or_open(directory, b"funding venue")
        self.seq = 0
        self.events = []

    def run(self, ts: int, *rows: dict) -> np.ndarray:
        """Commands through the batch API at ``ts``, journaled with the events a journal keeps."""
        commands = empty_commands(len(rows))
        for i, fields in enumerate(rows):
            self.seq += 1
            commands[i]["seq"] = self.seq
            commands[i]["ts"] = ts
            for name, value in fields.items():
                commands[i][name] = value
        events = self.engine.process(commands)
        self.journal.append(commands, events[np.isin(events["kind"], list(JOURNALED_EVENT_KINDS))])
        self.events.append(events)
        return events

    def trade(self, ts: int, seller: int, buyer: int, qty: int) -> np.ndarray:
        order = dict(kind=CommandKind.NEW_ORDER, instrument=self.perp, order_type=1, tif=1, stp=1, price=MARK,
                     qty=qty)
        events = self.run(ts, order | dict(account=seller, side=Side.SELL), order | dict(account=buyer, side=Side.BUY))
        assert (events["kind"] == EventKind.FILL).sum() == 1
        return events

    def fund(self, ts: int) -> np.ndarray:
        events = self.run(ts, dict(kind=CommandKind.FUND, instrument=self.perp, price=MARK, qty=0))
        assert events[0]["kind"] == EventKind.FUNDED
        return events[events["kind"] == EventKind.FUNDING_SETTLED]

    def debit_free(self, ts: int, account: int, asset: int) -> None:
        """Withdraw all the account's free balance of ``asset``."""
        total, reserved = self.engine.balances(account)[asset]
        events = self.run(ts, dict(kind=CommandKind.DEBIT, account=account, asset=asset, qty=total - reserved))
        assert events[0]["kind"] == EventKind.DEBITED


def test_funding_reaches_the_vault_and_every_wallet_equals_the_engine(venue, tmp_path):
    ex = Venue(engine_for(venue), tmp_path / "journal")
    eng = ex.engine
    # The engine is credited exactly what setup_venue deposited, so on chain == engine per wallet.
    ex.run(0, *[dict(kind=CommandKind.CREDIT, account=a, asset=x, qty=q) for a in ACCOUNTS for x, q in INITIAL.items()])
    ex.run(0, dict(kind=CommandKind.SET_ASSET_PRICE, asset=USDC, price=USD),
           dict(kind=CommandKind.SET_ASSET_PRICE, asset=WBTC, price=90_000 * USD),
           dict(kind=CommandKind.SET_ASSET_PRICE, asset=AAPLX, price=200 * USD),
           dict(kind=CommandKind.SET_REFERENCE, instrument=ex.perp, price=MARK),
           dict(kind=CommandKind.SET_OPTION_RISK, instrument=ex.perp, qty=200 * USD, price=150 * USD))
    # The fee wallet withdraws everything: on chain it holds only what the engine gives it from now on.
    ex.debit_free(0, FEE, USDC)
    ex.trade(0, SHORT, LONG, 100)
    ex.trade(0, WRITER, BUYER, 50)
    ex.trade(0, SHORT, DEBTOR, 1)
    ex.debit_free(0, DEBTOR, USDC)          # its margin is its AAPLX: its funding goes unpaid
    assert ex.fund(0).size == 0             # sets the rate
    pools = []
    for hour in (1, 2, 3):
        ex.fund(hour * HOUR)
        pools.append(eng.funding_state(ex.perp).pool)
    ex.trade(3 * HOUR + HOUR // 4, LONG, BUYER, 50)       # a fill settles both at its own time
    assert min(pools) < 0                   # the debtor's carried debt: the fee account fronted it
    assert eng.funding_position(DEBTOR, ex.perp)[1] > 0

    # The writer's wallet requests an exit; the freeze settles its funding up to now, then nothing.
    venue.client(WRITER).transact(venue.vault.contract.functions.requestExit())
    frozen = ex.run(3 * HOUR + HOUR // 2, dict(kind=CommandKind.FREEZE_ACCOUNT, account=WRITER))
    kinds = frozen["kind"].tolist()
    assert kinds.index(EventKind.FUNDING_SETTLED) < kinds.index(EventKind.ACCOUNT_FROZEN)
    assert frozen[frozen["kind"] == EventKind.FUNDING_SETTLED]["account"].tolist() == [WRITER]
    writer_usdc = eng.balances(WRITER)[USDC]
    for hour in (4, 5, 6):
        if hour == 5:                       # the debtor deposits: it pays its debt, the pool is whole again
            venue.deposit(DEBTOR, USDC, 10 * 10**6)
            ex.run(hour * HOUR, dict(kind=CommandKind.CREDIT, account=DEBTOR, asset=USDC, qty=10 * 10**6))
        assert WRITER not in ex.fund(hour * HOUR)["account"].tolist()
    assert eng.funding_position(DEBTOR, ex.perp)[1] <= 0 <= eng.funding_state(ex.perp).pool
    assert eng.balances(WRITER)[USDC] == writer_usdc
    eng.check_integrity()
    ex.journal.sync()

    queue = ExitQueue(venue.vault, venue.book, venue.deployment.block)
    job = make_job(venue, JournalFillSource(ex.journal, ex.units), tmp_path / "job", exits=queue, max_records=9)
    assert settle_all(job)
    assert chain_ledger(venue) == engine_ledger(eng)      # every wallet, the fee wallet included
    assert venue.vault.wallet_state(venue.book.wallet(WRITER))[1] is True   # its exit was served

    events = np.concatenate(ex.events)
    funding = events[events["kind"] == EventKind.FUNDING_SETTLED]
    assert {LONG, SHORT, BUYER, WRITER, DEBTOR} == set(funding["account"].tolist())
    (freeze,) = freeze_records(events)
    assert events[events["account"] == WRITER]["seq"].max() == freeze["freeze_id"] // FILLS_PER_SEQ
    audits = Watchtower(venue.vault, venue.deployment.block).poll()
    assert audits and all(audit.ok for audit in audits)
    trade_fills = int((events["kind"] == EventKind.FILL).sum())
    assert sum(audit.fills for audit in audits) == trade_fills + len(funding)
    ex.journal.close()
