"""Writes tests/data/old_journal/: a gateway journal written by an OLD build,
kept so that later builds prove they still replay it to the same state.

Written by commit 2ff7132 ("README: suite timings from the last fresh-clone
run"), the build before the package restructure of issue 10, with its Cython
core built in place. To rerun it, from a checkout of that commit::

    git worktree add /tmp/old 2ff7132 && cd /tmp/old
    python setup.py -q build_ext --inplace
    PYTHONPATH=. python /path/to/repo/tests/data/make_old_journal.py /path/to/repo/tests/data/old_journal

It runs the real gateway (``python -m engine.gateway``) on a small venue (four
assets, two stock pairs, a BTC call and a TSLA.M put, risk on) and drives it
through the client SDK the way traders and the operator would: deposits with
deposit ids (and a skipped one), asset and reference prices, limit GTC / IOC /
FOK / post-only / market orders that fill, rest, are killed or rejected,
self-trade prevention, amends, cancels, a halt and mass cancels, option risk,
short calls backed by TSLA.M, withdrawals, a price move, a liquidation and a
cancel-on-disconnect. The gateway is stopped cleanly once (snapshot at
shutdown) and restarted (recovery from that snapshot); it snapshots every few
commands and its segments are small, so the directory holds two snapshots, a
journal tail after the newest one and several segments. The second run ends
in SIGKILL, as a crash would, after every reply has arrived (so everything is
committed). Finally the old build's offline replay (``python -m engine replay``,
from genesis and from the newest snapshot) writes the state hash to
``expected.json``.

Output: ``OUT/journal/`` (the journal directory, about 20 KB: kept as is), ``OUT/venue.toml`` (the
config it was written under; its key files are not kept, replay does not need
them) and ``OUT/expected.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import engine
from engine.client import Client, ClientKeys
from engine.config import to_toml
from engine.core.types import OrderType, SelfTrade, Side, TimeInForce, TradingState
from engine.gateway import GatewayProcess
from engine.keys import generate
from engine.schemas import (
    Ack,
    Amended,
    AssetPriceSet,
    Cancelled,
    Credited,
    Debited,
    DepositSkipped,
    Liquidated,
    LoggedOn,
    MassCancelled,
    OptionRiskSet,
    ReferenceSet,
    Reject,
    StateChanged,
)

USDC, AMZNX, TSLAM, WBTC = 0, 1, 2, 3                   # asset ids
AMZN, TSLA, CALL, PUT = 0, 1, 2, 3                      # instrument ids
MM, RETAIL, FUND, HOLDER = 1, 2, 3, 4                   # accounts
E8 = 10**8                                              # USD price scale of assets


def _stock(symbol: str, reference: str) -> dict:
    return {"symbol": f"{symbol}/USDC", "base": symbol, "quote": "USDC", "tick_size": 100, "lot_size": 1,
            "min_qty": 1, "max_qty": 1_000_000_000, "max_price": 1_000_000_000, "static_band_bps": 1_000,
            "dynamic_band_bps": 500, "price_scale": 10_000, "qty_scale": 1_000, "maker_fee_bps": -1,
            "taker_fee_bps": 5, "reference_price": reference}


def _option(symbol: str, base: str, option: dict, reference: str, initial: str, maintenance: str) -> dict:
    return {"symbol": symbol, "base": base, "quote": "USDC", "option": option, "tick_size": 100, "lot_size": 1,
            "min_qty": 1, "max_qty": 1_000_000, "max_price": 10_000_000_000, "static_band_bps": 2_000,
            "dynamic_band_bps": 1_000, "price_scale": 10_000, "qty_scale": 100, "maker_fee_bps": 0,
            "taker_fee_bps": 3, "reference_price": reference, "initial_margin": initial,
            "maintenance_margin": maintenance}


def venue_doc() -> dict:
    """The venue: paths relative to the config file (keys/, journal/)."""
    names = {MM: "market-maker", RETAIL: "retail", FUND: "fund", HOLDER: "tsla-holder"}
    credits = {MM: {"USDC": "10000000", "AMZNX": "10000", "TSLA.M": "10000"},
               RETAIL: {"USDC": "100000"}, FUND: {"USDC": "5000000", "AMZNX": "2000"}, HOLDER: {}}
    return {
        "venue": {"name": "old-journal", "max_accounts": 64, "max_orders": 4096, "fee_account": 0, "risk": True},
        "endpoints": {"orders": "tcp://127.0.0.1:*", "market_data": "tcp://127.0.0.1:*"},
        "server": {"secret_key_file": "keys/server.key_secret"},
        "journal": {"path": "journal", "fsync": "batch", "segment_bytes": 4_096, "snapshot_every": 40,
                    "snapshot_min_interval_s": 0, "snapshots_kept": 2},
        "session": {"heartbeat_ms": 200, "timeout_ms": 600},
        "market_data": {"depth": 5},
        "assets": [
            {"symbol": "USDC", "decimals": 6, "ledger_decimals": 6, "usd_price": "1"},
            {"symbol": "AMZNX", "decimals": 18, "ledger_decimals": 6, "haircut_bps": 2_000, "usd_price": "185.00"},
            {"symbol": "TSLA.M", "decimals": 18, "ledger_decimals": 6, "haircut_bps": 3_000, "usd_price": "250.00"},
            {"symbol": "WBTC", "decimals": 8, "ledger_decimals": 8, "haircut_bps": 1_000, "usd_price": "90000.00"},
        ],
        "instruments": [
            _stock("AMZNX", "185.00"), _stock("TSLA.M", "250.00"),
            _option("BTC-20261231-100000-C", "WBTC",
                    {"expiry": "2026-12-31", "strike": "100000", "right": "C", "contract_size": "1"},
                    "2797.95", "11797.96", "9547.96"),
            _option("TSLA.M-20261218-250-P", "TSLA.M",
                    {"expiry": "2026-12-18", "strike": "250", "right": "P", "contract_size": "1"},
                    "14.62", "52.13", "39.63"),
        ],
        "accounts": [{"id": account, "name": name, "key_files": [f"keys/{name}.key"], "credit": credits[account]}
                     for account, name in names.items()],
        "operators": [{"name": "ops", "key_files": ["keys/ops.key"]}],
    }


class Venue:
    """Clients of one gateway process, by name."""

    def __init__(self, gateway: GatewayProcess, keys: Path) -> None:
        self.gateway = gateway
        self.keys = keys
        self.clients: dict[str, Client] = {}

    def __getitem__(self, name: str) -> Client:
        if name not in self.clients:
            self.clients[name] = self.connect(name)
        return self.clients[name]

    def connect(self, name: str) -> Client:
        """A new client with the named key pair (a session of its own)."""
        return Client(self.gateway.orders, ClientKeys.from_files(self.keys / f"{name}.key_secret",
                                                                 self.keys / "server.key"), timeout=10.0)

    def close(self) -> None:
        """Close every client opened through __getitem__."""
        for client in self.clients.values():
            client.close()


def ok(reply, *expected):
    """The reply, which must be of an expected type (the scenario did what it says)."""
    if not isinstance(reply, expected or (Ack,)):
        raise RuntimeError(f"unexpected reply {reply!r}")
    return reply


def first_run(v: Venue) -> int:
    """Deposits, prices, every order type on the stock pairs, a halt, option risk and short calls."""
    ops, mm, retail, fund, holder = (v[n] for n in ("ops", "market-maker", "retail", "fund", "tsla-holder"))
    # Deposits seen on chain: ids are the vault's, credited once; id 3 was a deposit of an unlisted token.
    ok(ops.credit(HOLDER, TSLAM, 200 * 10**6, deposit_id=1), Credited)
    ok(ops.credit(RETAIL, USDC, 25_000 * 10**6, deposit_id=2), Credited)
    ok(ops.skip_deposit(3), DepositSkipped)
    ok(ops.credit(MM, WBTC, 2 * 10**8, deposit_id=4), Credited)
    ok(ops.credit(RETAIL, USDC, 1, deposit_id=2), Reject)          # the same deposit id again
    for asset, price in ((AMZNX, 186 * E8), (TSLAM, 250 * E8), (WBTC, 90_000 * E8)):
        ok(ops.set_asset_price(asset, price), AssetPriceSet)
    ok(ops.set_reference(AMZN, 1_860_000), ReferenceSet)

    # The market maker quotes both stock pairs a few levels deep.
    for price in (1_861_000, 1_863_000, 1_866_000):
        ok(mm.place(AMZN, Side.SELL, 5_000, price))
    for price in (1_859_000, 1_856_000, 1_852_000):
        ok(mm.place(AMZN, Side.BUY, 5_000, price))
    for price in (2_502_000, 2_510_000):
        ok(mm.place(TSLA, Side.SELL, 20_000, price))
    for price in (2_498_000, 2_490_000):
        ok(mm.place(TSLA, Side.BUY, 20_000, price))

    ok(retail.place(AMZN, Side.BUY, 7_000, order_type=OrderType.MARKET, tif=TimeInForce.IOC))  # collared
    ok(retail.place(AMZN, Side.BUY, 2_000, 1_863_000, tif=TimeInForce.IOC))
    ok(retail.place(AMZN, Side.BUY, 50_000, 1_866_000, tif=TimeInForce.FOK))   # killed: not enough
    ok(retail.place(AMZN, Side.BUY, 3_000, 1_866_000, tif=TimeInForce.FOK))
    ok(retail.place(AMZN, Side.BUY, 1_000, 1_870_000, tif=TimeInForce.POST_ONLY), Reject)  # would take
    posted = ok(retail.place(AMZN, Side.BUY, 4_000, 1_857_000, tif=TimeInForce.POST_ONLY))
    ok(retail.place(AMZN, Side.BUY, 1_000, 50_000_000), Reject)                # outside the static band
    resting = ok(retail.place(AMZN, Side.BUY, 6_000, 1_858_000, client_order_id=77))
    ok(retail.amend(resting.order_id, qty=4_000), Amended)                       # down: keeps priority
    ok(retail.amend(resting.order_id, price=1_859_000), Amended)                 # new price: loses it
    ok(retail.cancel(posted.order_id), Cancelled)
    ok(retail.cancel(posted.order_id), Reject)                                  # already gone
    ok(fund.place(AMZN, Side.SELL, 12_000, 1_856_000, tif=TimeInForce.IOC))     # sweeps the bids
    ok(mm.place(AMZN, Side.SELL, 1_000, 1_862_000))
    ok(mm.place(AMZN, Side.BUY, 1_000, 1_862_000, stp=SelfTrade.CANCEL_OLDEST))  # meets its own ask
    ok(retail.place(TSLA, Side.BUY, 10_000, 2_502_000))
    fund_bid = ok(fund.place(TSLA, Side.BUY, 5_000, 2_495_000))

    ok(ops.set_state(AMZN, TradingState.HALTED), StateChanged)
    ok(retail.place(AMZN, Side.BUY, 1_000, 1_860_000), Reject)
    ok(mm.mass_cancel(AMZN), MassCancelled)
    ok(ops.set_state(AMZN, TradingState.OPEN), StateChanged)
    for price in (1_861_000, 1_864_000):
        ok(mm.place(AMZN, Side.SELL, 4_000, price))
    ok(mm.place(AMZN, Side.BUY, 4_000, 1_858_000))

    # Option marks and margins from the feed; the holder sells calls against its TSLA.M.
    ok(ops.set_reference(CALL, 27_000_000), ReferenceSet)
    ok(ops.set_option_risk(CALL, 11_700_000_000, 9_500_000_000), OptionRiskSet)  # $11,700 / $9,500 a contract
    ok(mm.place(CALL, Side.BUY, 400, 27_000_000))
    ok(holder.place(CALL, Side.SELL, 200, 27_000_000))
    ok(holder.place(CALL, Side.SELL, 2_000, 27_000_000), Reject)               # beyond its margin
    ok(mm.place(PUT, Side.SELL, 500, 150_000))
    ok(retail.place(PUT, Side.BUY, 300, 150_000))
    ok(fund.debit(FUND, USDC, 10_000 * 10**6), Debited)                          # a withdrawal
    ok(holder.debit(HOLDER, TSLAM, 190 * 10**6), Reject)                        # pledged: refused
    return fund_bid.order_id


def second_run(v: Venue, fund_bid: int) -> None:
    """After recovery: a price move, a liquidation, more trading, cancel-on-disconnect."""
    ops, mm, retail, fund = (v[n] for n in ("ops", "market-maker", "retail", "fund"))
    ok(mm.mass_cancel(TSLA), MassCancelled)                                     # quotes pulled before the move
    ok(fund.cancel(fund_bid), Cancelled)
    ok(ops.set_asset_price(TSLAM, 150 * E8), AssetPriceSet)
    ok(ops.set_asset_price(WBTC, 98_000 * E8), AssetPriceSet)
    ok(ops.set_reference(TSLA, 1_500_000), ReferenceSet)
    ok(ops.set_reference(CALL, 55_000_000), ReferenceSet)
    ok(ops.set_option_risk(CALL, 20_000_000_000, 16_000_000_000), OptionRiskSet)
    if not ops.margin_calls().accounts:
        raise RuntimeError("the holder should be under its maintenance margin")
    ok(mm.place(TSLA, Side.BUY, 100_000, 1_490_000))
    ok(mm.place(CALL, Side.SELL, 400, 56_000_000))
    ok(ops.liquidate(HOLDER), Liquidated)
    ok(ops.liquidate(MM), Reject)                                               # not under maintenance

    ok(retail.place(AMZN, Side.BUY, 3_000, 1_864_000))
    ok(fund.place(AMZN, Side.SELL, 2_000, 1_858_000, tif=TimeInForce.IOC))
    ok(retail.place(TSLA, Side.SELL, 2_000, 1_520_000))
    ok(retail.place(AMZN, Side.BUY, 1_000, 1_855_000))
    ok(retail.mass_cancel(), MassCancelled)                                            # every instrument
    ok(retail.debit(RETAIL, USDC, 1_000 * 10**6), Debited)

    # A session with cancel-on-disconnect leaves: the gateway cancels its orders itself.
    leaving = v.connect("fund")
    ok(leaving.logon(cancel_on_disconnect=True), LoggedOn)
    ok(leaving.place(AMZN, Side.SELL, 1_000, 1_869_000))
    ok(leaving.place(TSLA, Side.BUY, 1_000, 1_450_000))
    leaving.close()
    deadline = time.monotonic() + 10
    while ops.open_orders(FUND).orders:
        if time.monotonic() > deadline:
            raise RuntimeError("cancel-on-disconnect did not fire")
        time.sleep(0.2)
    ok(mm.place(AMZN, Side.BUY, 2_000, 1_859_000))


def replay(journal: Path, *extra: str) -> dict:
    """The old build's offline replay of the journal (state hash and counts)."""
    out = subprocess.run([sys.executable, "-m", "engine", "replay", str(journal), "--json", *extra],
                         capture_output=True, text=True, check=True, cwd=Path(engine.__file__).parent.parent)
    return json.loads(out.stdout)


def main(argv: list[str] | None = None) -> int:
    """Write the journal, its config and the old build's replay result to OUT."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    root = Path(engine.__file__).resolve().parent.parent
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="old-journal-") as tmp:
        work = Path(tmp)
        keys = work / "keys"
        for name in ("server", "market-maker", "retail", "fund", "tsla-holder", "ops"):
            generate(keys, name)
        config = work / "venue.toml"
        config.write_text(to_toml(venue_doc()))
        with GatewayProcess(config, work / "first.log") as gateway:      # stops cleanly: snapshot
            venue = Venue(gateway, keys)
            fund_bid = first_run(venue)
            venue.close()
        gateway = GatewayProcess(config, work / "second.log")           # recovers from that snapshot
        venue = Venue(gateway, keys)
        try:
            second_run(venue, fund_bid)
        finally:
            venue.close()
            gateway.kill()                                               # a crash, everything committed
        journal = work / "journal"
        (journal / "lock").unlink()
        full, from_snapshot = replay(journal), replay(journal, "--use-snapshot")
        if (full["state_hash"] != from_snapshot["state_hash"]
                or not 0 < from_snapshot["snapshot_seq"] < full["last_seq"]):
            raise RuntimeError(f"unexpected replay results: {full} / {from_snapshot}")
        args.out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(args.out / "journal", ignore_errors=True)
        shutil.copytree(journal, args.out / "journal")
        shutil.copy(config, args.out / "venue.toml")
    expected = {"written_by_commit": commit, "replay": full, "replay_from_snapshot": from_snapshot}
    (args.out / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(json.dumps(expected, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
