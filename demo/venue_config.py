"""What the venue demo runs with: its accounts and their vault deposits, the venue
config (the sample ``configs/venue.toml`` plus WETH, a TSLA.M/WBTC pair, a perpetual
BTC call and the main pool with its share asset, every balance from a vault deposit),
the feed config (``configs/feeds.toml`` pointed at the running gateway) and the pool's
quoting config, written into the run folder with fresh keys."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.config import to_toml
from engine.keys import generate
from demo.processes import ROOT

FEE_ACCOUNT = 0


@dataclass(frozen=True)
class DemoAccount:
    """An engine account, its role in the demo and what its wallet deposits (decimal tokens)."""

    id: int
    name: str
    deposits: dict[str, str]


ACCOUNTS = (
    DemoAccount(0, "fees", {"USDC": "10000"}),   # fronts funding pools and maker rebates
    DemoAccount(1, "mm-stocks", {"USDC": "2000000", "AMZNX": "2000", "AAPLX": "2000", "TSLA.M": "2000",
                                 "NVDA.M": "2000"}),
    DemoAccount(2, "mm-btc", {"USDC": "1000000", "TSLA.M": "1000", "WBTC": "10", "WETH": "20"}),
    DemoAccount(3, "taker-a", {"USDC": "200000", "AAPLX": "200", "NVDA.M": "200"}),
    DemoAccount(4, "taker-b", {"USDC": "200000", "TSLA.M": "200", "WBTC": "1"}),
    DemoAccount(5, "tsla-writer", {"TSLA.M": "400"}),   # holds only TSLA.M, writes a perpetual BTC call
    DemoAccount(6, "thin-buyer", {"USDC": "1000"}),
    DemoAccount(7, "exiter", {"USDC": "5000", "AMZNX": "10"}),
    DemoAccount(8, "lp-a", {"USDC": "100000"}),
    DemoAccount(9, "lp-b", {"USDC": "50000"}),
    # the main pool: its wallet deposits the pre-minted share supply, the treasury (docs/pools.md)
    DemoAccount(10, "pool", {"MPS": "10000000"}),
    DemoAccount(11, "opt-taker", {"USDC": "100000"}),   # crosses the pool's quotes on the TSLA.M put
)
BY_NAME = {account.name: account for account in ACCOUNTS}
OPERATOR_KEYS = ("ops", "feeds")   # the demo's own operator client, the feed process's
REBASING = ("AMZNX",)              # listed in shares, a MockRebasingToken on chain
CHALLENGE_WINDOW_S = 60            # a withdrawal is claimable one to two windows after its batch
PERPETUAL = "BTC-PERP-100000-C"
TSLA_BTC = "TSLA.M/WBTC"
EXPIRES_AFTER_S = 45               # the expiring series: this long after the config is written (setup takes ~25 s)
SETTLEMENT_WINDOW_S = 5            # its TWAP window (the feed's default 30 minutes outlasts a run)
POOL, SHARE = "pool", "MPS"
POOL_COOLDOWN_S = 10               # short, so a provider's redemption executes within the run
POOL_DEPOSIT_COOLDOWN_S = 2        # short, so the demo's set-up does not wait long for its deposits
POOL_FEE_BPS = 10

# the main pool (docs/pools.md): LPs deposit USDC for MPS shares; samples every 2 s over a
# window of 5, so the time-weighted NAV follows the run
_POOLS = {"main_account": 10, "main": {"asset": "USDC", "share_asset": SHARE, "nav_window": 5,
                                       "cooldown_s": POOL_COOLDOWN_S, "withdrawal_fee_bps": POOL_FEE_BPS,
                                       "nav_sample_s": 2, "deposit_cooldown_s": POOL_DEPOSIT_COOLDOWN_S}}

# WETH, priced by the feed process's synthetic ETH source; held by the BTC market maker as collateral
_EXTRA_ASSETS = [{"symbol": "WETH", "decimals": 18, "ledger_decimals": 9, "haircut_bps": 1_500, "usd_price": "3000"},
                 # the pool share: USDC's ledger decimals; no price, so it is no collateral
                 {"symbol": SHARE, "decimals": 6, "ledger_decimals": 6, "haircut_bps": 10_000}]
_EXTRA_INSTRUMENTS = [
    # TSLA.M priced in WBTC: price unit 1e-8 WBTC (a satoshi), quantity unit 0.01 TSLA.M, so a
    # tick (100 sat per token) times a quantity unit is one satoshi, an exact ledger unit
    {"symbol": TSLA_BTC, "base": "TSLA.M", "quote": "WBTC", "tick_size": 100, "lot_size": 1, "min_qty": 1,
     "max_qty": 1_000_000_000, "max_price": 10_000_000_000, "static_band_bps": 1_000, "dynamic_band_bps": 500,
     "price_scale": 100_000_000, "qty_scale": 100, "maker_fee_bps": -1, "taker_fee_bps": 5,
     "reference_price": "0.00277777"},
    # a perpetual BTC call: longs pay shorts funding every feed step (docs/funding.md)
    {"symbol": PERPETUAL, "base": "WBTC", "quote": "USDC",
     "option": {"strike": "100000", "right": "C", "contract_size": "1", "funding_period_s": 3_600},
     "tick_size": 100, "lot_size": 1, "min_qty": 1, "max_qty": 1_000_000, "max_price": 10_000_000_000,
     "static_band_bps": 2_000, "dynamic_band_bps": 1_000, "price_scale": 10_000, "qty_scale": 100,
     "maker_fee_bps": 0, "taker_fee_bps": 3, "reference_price": "3000",
     "initial_margin": "20000", "maintenance_margin": "15000"},
]


def expiring_series(after_s: float, strike: str = "240") -> dict:
    """A TSLA.M call ``[[instruments]]`` entry expiring ``after_s`` seconds from now:
    today's date (of that instant) and its time of day to the second, UTC."""
    at = datetime.now(UTC) + timedelta(seconds=after_s)
    return {"symbol": f"TSLA.M-{at:%Y%m%d}-{strike}-C", "base": "TSLA.M", "quote": "USDC",
            "option": {"expiry": at.date().isoformat(), "expiry_time": f"{at:%H:%M:%S}", "strike": strike,
                       "right": "C", "contract_size": "1"},
            "tick_size": 100, "lot_size": 1, "min_qty": 1, "max_qty": 1_000_000, "max_price": 10_000_000_000,
            "static_band_bps": 2_000, "dynamic_band_bps": 1_000, "price_scale": 10_000, "qty_scale": 100,
            "maker_fee_bps": 0, "taker_fee_bps": 3, "reference_price": "10", "initial_margin": "52.13",
            "maintenance_margin": "39.63"}


def write_keys(run: Path) -> Path:
    """Fresh CURVE keys for the server, the operators and every account in ``run/keys``."""
    keys = run / "keys"
    for name in ("server", *OPERATOR_KEYS, *(account.name for account in ACCOUNTS)):
        generate(keys, name)
    return keys


def write_venue_config(run: Path, keys: Path) -> Path:
    """The demo's venue config: the sample's assets and instruments plus the demo's (among
    them a TSLA.M call expiring EXPIRES_AFTER_S from now), loopback endpoints on free ports,
    the journal in the run folder, no opening credits."""
    with open(ROOT / "configs" / "venue.toml", "rb") as file:
        doc = tomllib.load(file)
    doc["endpoints"] = {"orders": "tcp://127.0.0.1:*", "market_data": "tcp://127.0.0.1:*"}
    doc["server"] = {"secret_key_file": str(keys / "server.key_secret")}
    doc["journal"] = {**doc["journal"], "path": str(run / "journal"), "snapshot_every": 0}
    doc["assets"] = [*doc["assets"], *_EXTRA_ASSETS]
    doc["instruments"] = [*doc["instruments"], *_EXTRA_INSTRUMENTS, expiring_series(EXPIRES_AFTER_S)]
    doc["accounts"] = [{"id": account.id, "name": account.name, "key_files": [str(keys / f"{account.name}.key")]}
                       for account in ACCOUNTS if account.id != FEE_ACCOUNT]
    doc["operators"] = [{"name": name, "key_files": [str(keys / f"{name}.key")]} for name in OPERATOR_KEYS]
    doc["pools"] = _POOLS
    path = run / "venue.toml"
    path.write_text(to_toml(doc))
    return path


def write_feeds_config(run: Path, keys: Path, orders: str) -> Path:
    """The demo's feed config: ``configs/feeds.toml`` against the gateway at ``orders``, its
    replays at recorded speed (the AAPL test file holds 49 s, so its heartbeat outlasts the
    run rather than halting AAPLX when the file ends), synthetic TSLA.M, NVDA.M and ETH besides BTC,
    the calendar around today."""
    with open(ROOT / "configs" / "feeds.toml", "rb") as file:
        doc = tomllib.load(file)
    doc["gateway"] = {"endpoint": orders, "key_file": str(keys / "feeds.key_secret"),
                      "server_key_file": str(keys / "server.key"), "timeout_ms": 5_000}
    doc["feeds"] = {**doc["feeds"], "poll_interval_ms": 500, "state_file": str(run / "feeds-state.json")}
    sources = []
    for source in doc["sources"]:
        if source["kind"] == "lobster":
            source = {**source, "speed": 1, "heartbeat_s": 600,
                      "messages": str((ROOT / "configs" / source["messages"]).resolve()),
                      "orderbook": str((ROOT / "configs" / source["orderbook"]).resolve())}
        sources.append(source)
    for asset, initial, seed in (("TSLA.M", "250", 2), ("NVDA.M", "120", 3), ("WETH", "3000", 4)):
        sources.append({"kind": "gbm", "name": f"{asset.lower()}-gbm", "asset": asset, "initial": initial,
                        "sigma": 0.4, "seed": seed, "step_ms": 1_000, "heartbeat_s": 10})
    doc["sources"] = sources
    # TSLA.M's series re-marked (and their greeks published) too: the pool quotes them
    doc["options"] = {**doc["options"], "surfaces": [*doc["options"]["surfaces"], {"underlying": "TSLA.M", "vol": 0.5}],
                      "settlement_window_s": SETTLEMENT_WINDOW_S}
    doc["stock_tokens"] = [*doc["stock_tokens"], {"asset": "TSLA.M", "multiplier": "1"},
                           {"asset": "NVDA.M", "multiplier": "1"}]
    # the calendar around today, so no run falls outside it (stock tokens would halt); as ISO strings,
    # since to_toml writes no TOML dates and the feed config reads them as dates
    today = datetime.now(UTC).date()
    doc["sessions"] = {**doc["sessions"], "start": (today - timedelta(days=7)).isoformat(),
                       "end": (today + timedelta(days=30)).isoformat()}
    path = run / "feeds.toml"
    path.write_text(to_toml(doc))
    return path


def write_pools_config(run: Path, keys: Path, orders: str) -> Path:
    """The pool's quoting config (``python -m pools quote``): the pool account's key
    against the gateway at ``orders``, quoting the TSLA.M series the feed re-marks
    and hedging on TSLA.M/USDC."""
    doc = {
        "gateway": {"endpoint": orders, "key_file": str(keys / f"{POOL}.key_secret"),
                    "server_key_file": str(keys / "server.key"), "timeout_ms": 5_000},
        "quoter": {"account": BY_NAME[POOL].id, "interval_ms": 500, "stale_after_ms": 10_000},
        "quotes": {"size": 1.0, "half_spread_bps": 200, "min_half_ticks": 1, "impact": 0.02, "max_position": 20.0},
        "underlyings": [{"asset": "TSLA.M", "spot": "TSLA.M/USDC", "series": "all", "hedge": True,
                         "hedge_threshold": 1.0, "hedge_max_order": 5.0, "hedge_slippage_bps": 50}],
    }
    path = run / "pools.toml"
    path.write_text(to_toml(doc))
    return path
