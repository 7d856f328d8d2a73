"""Writes tests/data/old_pool_journal/: a journal of a venue with a main pool,
written by an OLD build, before deposit requests existed (its POOL_DEPOSIT
commands minted at once), kept so that later builds prove they replay it to the
same state (tests/test_old_pool_journal.py).

Written by commit 6dce055 (the integration tree the deposit requests branched
from), with its Cython core built in place::

    cd /path/to/old/checkout && python setup.py -q build_ext --inplace
    PYTHONPATH=. python /path/to/repo/tests/data/make_old_pool_journal.py /path/to/repo/tests/data/old_pool_journal

It builds the venue of tests/test_pool.py (a main pool on account 7, its share
asset MPS, a one-hour redemption cooldown), writes the journal's commands
through the engine batch by batch: immediate deposits (POOL_DEPOSIT), the pool
writing a call, buying a put and hedging on the spot book, marks and NAV samples,
a redemption request and its execution after the cooldown, a second request left
pending, a refused deposit; and a snapshot after the third batch (a version-5
snapshot, with the pool's section). The old build's offline replay
(``python -m engine replay``, from genesis and from the snapshot) writes the
state hash to ``expected.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.assets import AssetSpec
from engine.config import VenueSpec, encode_venue
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, OrderType, SelfTrade, Side, TimeInForce
from engine.defaults import DEFAULT_ASSETS, DEFAULT_OPTIONS, perpetual_series, stock_pair
from engine.journal import FileJournal, settlement_events
from engine.pools_config import MainPoolTerms
from engine.venue import build_engine

ASSETS = (*DEFAULT_ASSETS, AssetSpec(symbol="MPS", decimals=6, ledger_decimals=6))
ASSET = {spec.symbol: i for i, spec in enumerate(ASSETS)}
USDC, TSLA, WBTC, SHARE = ASSET["USDC"], ASSET["TSLA.M"], ASSET["WBTC"], ASSET["MPS"]
USD = 10**8
SPECS = (stock_pair("TSLA.M"), perpetual_series("WBTC", "BTC", "100000", "C", 3 * 86_400),
         perpetual_series("TSLA.M", "TSLA.M", "250", "P", 86_400), DEFAULT_OPTIONS[0])
SPOT, CALL, PUT, DATED = range(4)
REFERENCE = {SPOT: 2_500_000, CALL: 20_000_000, PUT: 1_600_000, DATED: 20_000_000}
MARGINS = {CALL: (200 * USD, 150 * USD), PUT: (40 * USD, 30 * USD), DATED: (150 * USD, 100 * USD)}
POOL, TRADER = 7, 4
HOUR = 3_600 * 10**9
T0 = 1_780_000_000 * 10**9
TERMS = MainPoolTerms(account=POOL, asset=USDC, share_asset=SHARE, nav_window=3, cooldown_ns=HOUR,
                      withdrawal_fee_bps=10, equity_multiplier_bps=20_000)


def command(kind, **fields):
    return {"kind": kind, **fields}


def trade(seller, buyer, instrument, qty, price):
    return [command(CommandKind.NEW_ORDER, account=buyer, instrument=instrument, side=Side.BUY, qty=qty, price=price,
                    order_type=OrderType.LIMIT, tif=TimeInForce.GTC, stp=SelfTrade.CANCEL_NEWEST),
            command(CommandKind.NEW_ORDER, account=seller, instrument=instrument, side=Side.SELL, qty=qty,
                    price=price, order_type=OrderType.LIMIT, tif=TimeInForce.IOC, stp=SelfTrade.CANCEL_NEWEST),
            command(CommandKind.MASS_CANCEL, account=buyer, instrument=instrument)]


BATCHES = [
    [command(CommandKind.SET_ASSET_PRICE, asset=USDC, price=USD),
     command(CommandKind.SET_ASSET_PRICE, asset=TSLA, price=250 * USD),
     command(CommandKind.SET_ASSET_PRICE, asset=WBTC, price=90_000 * USD),
     *[command(CommandKind.SET_REFERENCE, instrument=i, price=p) for i, p in REFERENCE.items()],
     *[command(CommandKind.SET_OPTION_RISK, instrument=i, qty=im, price=mm) for i, (im, mm) in MARGINS.items()],
     command(CommandKind.CREDIT, account=POOL, asset=SHARE, qty=10**15),
     *[command(CommandKind.CREDIT, account=a, asset=USDC, qty=10**12) for a in (1, 2, 3, TRADER)],
     command(CommandKind.CREDIT, account=TRADER, asset=TSLA, qty=10**10)],
    [command(CommandKind.POOL_DEPOSIT, account=1, asset=SHARE, qty=100_000 * 10**6),
     command(CommandKind.POOL_DEPOSIT, account=2, asset=SHARE, qty=40_000 * 10**6),
     command(CommandKind.POOL_DEPOSIT, account=3, asset=SHARE, qty=10**13)],         # refused: over its balance
    [*trade(POOL, TRADER, DATED, 100, REFERENCE[DATED]),
     *trade(TRADER, POOL, PUT, 300, REFERENCE[PUT]),
     *trade(TRADER, POOL, SPOT, 1_000, REFERENCE[SPOT]),
     command(CommandKind.POOL_MARK, asset=SHARE)],
    [command(CommandKind.SET_REFERENCE, instrument=DATED, price=23_000_000),
     command(CommandKind.POOL_MARK, asset=SHARE),
     command(CommandKind.POOL_DEPOSIT, account=3, asset=SHARE, qty=25_000 * 10**6),
     command(CommandKind.POOL_REDEEM, account=2, asset=SHARE, qty=10_000 * 10**6)],   # request 1
    [command(CommandKind.POOL_MARK, asset=SHARE),
     command(CommandKind.POOL_REDEEM, account=2, asset=SHARE, order_id=1),             # after the cooldown
     command(CommandKind.POOL_REDEEM, account=1, asset=SHARE, qty=5_000 * 10**6)],     # request 2, left pending
]
SNAPSHOT_AFTER = 3
"""The journal keeps a snapshot after this many batches."""


def write(path: Path) -> None:
    """The journal directory at ``path``."""
    spec = VenueSpec(max_accounts=64, max_orders=1024, fee_account=0, risk=True, assets=list(ASSETS),
                     instruments=list(SPECS), accounts=[1, 2, 3, TRADER], main_pool=TERMS)
    journal = FileJournal.create_or_open(path, encode_venue(spec), fsync="none")
    engine = build_engine(spec)
    seq = 0
    for number, rows in enumerate(BATCHES):
        commands = np.zeros(len(rows), dtype=COMMAND_DTYPE)
        for i, row in enumerate(rows):
            for name, value in row.items():
                commands[name][i] = value
            seq += 1
            commands["seq"][i] = seq
            commands["ts"][i] = T0 + number * 2 * HOUR + i     # batches two hours apart: past the cooldown
        journal.append(commands, settlement_events(engine.process(commands)))
        if number + 1 == SNAPSHOT_AFTER:
            journal.write_snapshot(engine.last_seq, engine.snapshot())
    journal.close()
    (path / "lock").unlink(missing_ok=True)    # the writer's lock file: not part of the data


def replay(path: Path, *options: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "engine", "replay", str(path), "--json", *options],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    out = parser.parse_args().out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    write(out / "journal")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    expected = {"written_by_commit": commit, "replay": replay(out / "journal"),
                "replay_from_snapshot": replay(out / "journal", "--use-snapshot")}
    (out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main()
