"""An expired option series settles on chain like any fill: the engine's cash
settlement payments (and the collateral sales that fund them) go from the
journal through the batch job to the vault, series listed at run time
included, and the watchtower recomputes every batch from its published fills."""

from __future__ import annotations

import datetime

import numpy as np
from settlement_helpers import INITIAL, USDC, make_job, settle_all

from engine.assets import AssetSpec
from engine.chains import RIGHT_CALL
from engine.core.matcher import MatchingEngine
from engine.core.records import JOURNALED_EVENT_KINDS, empty_commands
from engine.core.types import CommandKind, EventKind, Side
from engine.defaults import option_series, stock_pair
from engine.journal import FileJournal
from settlement.audit import Watchtower
from settlement.records import UnitTable
from settlement.source import JournalFillSource
from settlement.vault import TEST_ASSETS

TSLA = 3
ASSETS = [AssetSpec(symbol="UNLISTED", decimals=6, ledger_decimals=6),
          *(TEST_ASSETS[i] for i in range(1, 8))]          # engine asset ids = the vault's
SPECS = [stock_pair("TSLA.M"), option_series("TSLA.M", "TSLA.M", "2026-12-18", "250", "P")]
SPOT, TEMPLATE = 0, 1
EXPIRY_NS = int(datetime.datetime(2026, 12, 18, 8, tzinfo=datetime.UTC).timestamp()) * 10**9
SHARE = 10**6


def test_cash_settlement_reaches_the_vault_and_the_watchtower_agrees(venue, tmp_path):
    eng = MatchingEngine(risk=True, fee_account=0)
    for spec in ASSETS:
        eng.add_asset(spec)
    for spec in SPECS:
        eng.add_instrument(spec)
    units = UnitTable.of_specs(SPECS, ASSETS)               # what the job knows from the config
    journal = FileJournal.create_or_open(tmp_path / "journal", b"expiry venue")
    seq = 0

    def run(*rows):
        nonlocal seq
        commands = empty_commands(len(rows))
        for i, fields in enumerate(rows):
            seq += 1
            commands[i]["seq"] = seq
            commands[i]["ts"] = fields.pop("ts", EXPIRY_NS - 3_600 * 10**9)
            for name, value in fields.items():
                commands[i][name] = value
        events = eng.process(commands)
        journal.append(commands, events[np.isin(events["kind"], list(JOURNALED_EVENT_KINDS))])
        return events

    for account in range(7):
        eng.open_account(account)
    deposits = {(a, USDC): 50_000 * 10**6 for a in (2, 3, 4, 5)} | {(1, TSLA): 2 * SHARE}
    run(*[dict(kind=CommandKind.CREDIT, account=a, asset=x, qty=q) for (a, x), q in deposits.items()])
    for (account, asset), amount in deposits.items():
        if asset == TSLA:
            venue.deposit(account, asset, amount)           # INITIAL already holds the USDC
    events = run(dict(kind=CommandKind.SET_ASSET_PRICE, asset=USDC, price=10**8),
                 dict(kind=CommandKind.SET_ASSET_PRICE, asset=TSLA, price=250 * 10**8),
                 dict(kind=CommandKind.SET_REFERENCE, instrument=SPOT, price=2_700_000),
                 dict(kind=CommandKind.LIST_SERIES, instrument=TEMPLATE, side=RIGHT_CALL, order_id=20261218,
                      price=2_500_000, qty=SHARE))
    call = int(events[events["kind"] == EventKind.SERIES_LISTED]["instrument"][0])
    assert call == 2 and eng.instruments[call].symbol == "TSLA.M-20261218-250-C"
    run(dict(kind=CommandKind.SET_OPTION_RISK, instrument=call, qty=6 * 10**8, price=5 * 10**8),
        dict(kind=CommandKind.COVER_CALLS, account=1, state=1),
        dict(kind=CommandKind.NEW_ORDER, instrument=call, account=1, side=Side.SELL, order_type=1, tif=1, stp=1,
             qty=200, price=100_000),
        dict(kind=CommandKind.NEW_ORDER, instrument=call, account=2, side=Side.BUY, order_type=1, tif=1, stp=1,
             qty=200, price=100_000),
        dict(kind=CommandKind.NEW_ORDER, instrument=call, account=3, side=Side.SELL, order_type=1, tif=1, stp=1,
             qty=100, price=105_000),
        dict(kind=CommandKind.NEW_ORDER, instrument=call, account=4, side=Side.BUY, order_type=1, tif=1, stp=1,
             qty=100, price=105_000),
        dict(kind=CommandKind.NEW_ORDER, instrument=SPOT, account=5, side=Side.BUY, order_type=1, tif=1, stp=1,
             qty=2_000, price=2_600_000))
    settled = run(dict(kind=CommandKind.SETTLE_SERIES, instrument=call, price=2_800_000, ts=EXPIRY_NS))
    payments = settled[settled["kind"] == EventKind.POSITION_SETTLED]
    assert sorted(payments["account"].tolist()) == [1, 2, 3, 4]
    assert (settled["kind"] == EventKind.FILL).any()         # account 1 sold TSLA.M to pay its $60
    assert settled[0]["leaves"] == 0
    journal.sync()

    job = make_job(venue, JournalFillSource(journal, units), tmp_path / "job")
    assert settle_all(job)
    for account in range(7):
        wallet = venue.book.wallet(account)
        for asset in (USDC, TSLA):
            total = eng.balances(account)[asset][0]
            on_chain = INITIAL.get(asset, 0) + total - (0 if asset == TSLA else deposits.get((account, asset), 0))
            assert venue.vault.balance(wallet, asset) == (on_chain, 0), (account, asset)
    audits = Watchtower(venue.vault, venue.deployment.block).poll()
    assert audits and all(audit.ok for audit in audits)
    assert sum(audit.fills for audit in audits) == 2 + 1 + len(payments[payments["qty"] > 0])
    journal.close()
