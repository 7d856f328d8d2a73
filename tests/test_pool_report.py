"""The main pool's P&L report (pools/report.py) over a journal written here: the
parts of each UTC day sum exactly to its change in equity, and premiums,
funding, fees, hedging and capital land where they belong."""

import json

import numpy as np
import pytest

from engine.config import VenueSpec, encode_venue
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, OrderType, SelfTrade, Side, TimeInForce
from engine.journal import FileJournal, settlement_events
from engine.pools_config import MainPoolTerms
from engine.venue import build_engine
from pools.__main__ import main
from pools.report import PARTS, ReportError, report
from test_pool import (ASSETS, CALL, DATED, MARGINS, POOL, REFERENCE, SHARE, SPECS, SPOT, TRADER, TSLA, USD, USDC,
                       WBTC)

DAY = 86_400 * 10**9
T0 = 1_780_000_000 * 10**9 // DAY * DAY          # a UTC midnight
TERMS = MainPoolTerms(account=POOL, asset=USDC, share_asset=SHARE, nav_window=2, cooldown_ns=0,
                      withdrawal_fee_bps=100, equity_multiplier_bps=0)
CONFIG = f"[pools]\nmain_account = {POOL}\ninsurance_account = 8\n"


def command(kind, **fields):
    return {"kind": kind, **fields}


def order(account, instrument, side, qty, price, tif=TimeInForce.GTC):
    return command(CommandKind.NEW_ORDER, account=account, instrument=instrument, side=side, qty=qty, price=price,
                   order_type=OrderType.LIMIT, tif=tif, stp=SelfTrade.CANCEL_NEWEST)


def trade(seller, buyer, instrument, qty, price):
    return [order(buyer, instrument, Side.BUY, qty, price),
            order(seller, instrument, Side.SELL, qty, price, TimeInForce.IOC),
            command(CommandKind.MASS_CANCEL, account=buyer, instrument=instrument)]


GENESIS = [
    command(CommandKind.SET_ASSET_PRICE, asset=USDC, price=USD),
    command(CommandKind.SET_ASSET_PRICE, asset=TSLA, price=250 * USD),
    command(CommandKind.SET_ASSET_PRICE, asset=WBTC, price=90_000 * USD),
    *[command(CommandKind.SET_REFERENCE, instrument=i, price=p) for i, p in REFERENCE.items()],
    *[command(CommandKind.SET_OPTION_RISK, instrument=i, qty=im, price=mm) for i, (im, mm) in MARGINS.items()],
    command(CommandKind.CREDIT, account=POOL, asset=SHARE, qty=10**15),
    command(CommandKind.CREDIT, account=1, asset=USDC, qty=10**12),
    command(CommandKind.CREDIT, account=TRADER, asset=USDC, qty=10**12),
    command(CommandKind.CREDIT, account=TRADER, asset=TSLA, qty=10**10),
]
DAY_ONE = [
    command(CommandKind.POOL_DEPOSIT_REQUEST, account=1, asset=SHARE, qty=100_000 * 10**6),   # request 1
    command(CommandKind.POOL_REDEEM, account=1, asset=SHARE, order_id=1),      # executed (no deposit cooldown)
    *trade(POOL, TRADER, DATED, 100, REFERENCE[DATED]),                # premium in: $2,000
    *trade(TRADER, POOL, SPOT, 100, REFERENCE[SPOT]),                  # hedge: 10 TSLA.M at the reference
    command(CommandKind.SET_REFERENCE, instrument=DATED, price=REFERENCE[DATED] * 2),   # the call doubles
]
DAY_TWO = [
    command(CommandKind.SET_ASSET_PRICE, asset=TSLA, price=260 * USD),
    *trade(TRADER, POOL, CALL, 100, REFERENCE[CALL]),                  # a perpetual long: premium out $2,000
    command(CommandKind.FUND, instrument=CALL, price=REFERENCE[CALL], qty=0),
    command(CommandKind.POOL_MARK, asset=SHARE),
    command(CommandKind.POOL_REDEEM, account=1, asset=SHARE, qty=10_000 * 10**6),                # request 2
    command(CommandKind.POOL_REDEEM, account=1, asset=SHARE, order_id=2),
]
DAY_THREE = [command(CommandKind.FUND, instrument=CALL, price=REFERENCE[CALL], qty=0)]


def write_journal(path, days):
    spec = VenueSpec(max_accounts=64, max_orders=1024, fee_account=0, risk=True, assets=list(ASSETS),
                     instruments=list(SPECS), accounts=[1, TRADER], main_pool=TERMS)
    journal = FileJournal.create_or_open(path, encode_venue(spec), fsync="none")
    engine = build_engine(spec)
    seq = 0
    for day, rows in enumerate(days):
        commands = np.zeros(len(rows), dtype=COMMAND_DTYPE)
        for i, row in enumerate(rows):
            for name, value in row.items():
                commands[name][i] = value
            seq += 1
            commands["seq"][i] = seq
            commands["ts"][i] = T0 + day * DAY + (i + 1) * 10**9
        events = engine.process(commands)
        journal.append(commands, settlement_events(events))
    journal.close()
    return engine


@pytest.fixture
def journal(tmp_path):
    engine = write_journal(tmp_path / "journal", [GENESIS + DAY_ONE, DAY_TWO, DAY_THREE])
    (tmp_path / "venue.toml").write_text(CONFIG)
    return tmp_path / "journal", tmp_path / "venue.toml", engine


def test_each_days_parts_sum_to_its_change_in_equity(journal):
    path, config, engine = journal
    days = report(path, config)
    assert [d.date for d in days] == ["2026-05-28", "2026-05-29", "2026-05-30"]
    for before, after in zip(days, days[1:]):
        assert after.equity_start == before.equity_end
    assert days[-1].equity_end == engine.pool_nav()[0]
    for d in days:
        assert d.equity_end - d.equity_start == sum(getattr(d, p) for p in PARTS) + d.mark_to_market


def test_premiums_hedging_funding_fees_and_capital_are_attributed(journal):
    path, config, _engine = journal
    one, two, three = report(path, config)
    assert one.capital == 100_000 * USD
    assert one.premiums == 2_000 * USD                 # the call written
    assert one.fees == -60_000_000                     # $0.60 of taker fee on it (the hedge was a maker)
    assert one.hedging == 0                            # bought at the asset's reference price
    assert one.mark_to_market == -4_000 * USD          # the written call is now marked at $4,000
    assert two.premiums == -2_000 * USD                # the perpetual call bought
    assert two.capital < 0 and two.fees * 100 == -two.capital   # a redemption; its 1% fee stays in the pool
    assert three.funding < 0                           # the perpetual long paid a day of funding ...
    assert three.mark_to_market == 0                   # ... and nothing else moved
    assert three.premiums == three.hedging == three.capital == three.fees == 0


def test_the_command_line_prints_json_and_refuses_a_journal_without_a_pool(journal, tmp_path, capsys):
    path, config, _engine = journal
    assert main(["report", "--journal", str(path), "--config", str(config), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["usd_scale"] == USD and len(out["days"]) == 3
    assert main(["report", "--journal", str(path), "--config", str(config)]) == 0
    assert "mark_to_market" in capsys.readouterr().out
    spec = VenueSpec(max_accounts=8, max_orders=8, fee_account=0, risk=True, assets=list(ASSETS), instruments=[],
                     accounts=[1])
    FileJournal.create_or_open(tmp_path / "plain", encode_venue(spec), fsync="none").close()
    with pytest.raises(ReportError, match="no main pool"):
        report(tmp_path / "plain", config)
    assert main(["report", "--journal", str(tmp_path / "plain"), "--config", str(config)]) == 1
    assert "no main pool" in capsys.readouterr().err
