"""Shared set-up of the quoting process's tests: a venue with a TSLA.M spot book,
a dated TSLA.M put and a perpetual TSLA.M call, the pool (account 1) and a trader
(account 2); the operator key stands in for the feed process (marks, greeks).
"""

from __future__ import annotations

from pathlib import Path

from engine.client import Client, ClientKeys
from engine.config import to_toml
from engine.keys import generate
from engine.schemas_greeks import SeriesGreeks

SPOT, PUT, CALL = 0, 1, 2           # instrument ids
USDC, TSLA = 0, 1                   # asset ids
POOL, TRADER = 1, 2                 # account ids
SPOT_PX = 2_500_000                 # $250.00 in the spot book's price units
PUT_MARK, CALL_MARK = 146_200, 300_000
DELTAS = {PUT: -0.3, CALL: 0.5}

_OPTION = {"base": "TSLA.M", "quote": "USDC", "tick_size": 100, "lot_size": 1, "min_qty": 1, "max_qty": 1_000_000,
           "max_price": 10_000_000_000, "static_band_bps": 2_000, "dynamic_band_bps": 1_000, "price_scale": 10_000,
           "qty_scale": 100, "maker_fee_bps": 0, "taker_fee_bps": 3, "initial_margin": "52.13",
           "maintenance_margin": "39.63"}


def write_venue(directory: Path, pool_credit: dict[str, str] | None = None) -> tuple[Path, Path]:
    """Keys (server, ops, pool, trader) and the venue config; (config, keys dir)."""
    keys = directory / "keys"
    keys.mkdir(parents=True)
    for name in ("server", "ops", "pool", "trader"):
        generate(keys, name)
    doc = {
        "venue": {"name": "pools-test", "max_accounts": 8, "max_orders": 10_000, "fee_account": 0},
        "endpoints": {"orders": "tcp://127.0.0.1:*", "market_data": "tcp://127.0.0.1:*"},
        "server": {"secret_key_file": str(keys / "server.key_secret")},
        "journal": {"path": str(directory / "journal"), "fsync": "batch", "snapshot_every": 0},
        "gateway": {"max_messages_per_s": 10**9, "max_requests_per_s": 10**9, "max_query_items_per_s": 10**9},
        "assets": [
            {"symbol": "USDC", "decimals": 6, "ledger_decimals": 6, "usd_price": "1"},
            {"symbol": "TSLA.M", "decimals": 18, "ledger_decimals": 6, "haircut_bps": 3_000, "usd_price": "250"},
        ],
        "instruments": [
            {"symbol": "TSLA.M/USDC", "base": "TSLA.M", "quote": "USDC", "tick_size": 100, "lot_size": 10,
             "min_qty": 10, "max_qty": 1_000_000_000, "max_price": 1_000_000_000, "static_band_bps": 1_000,
             "dynamic_band_bps": 500, "price_scale": 10_000, "qty_scale": 1_000, "maker_fee_bps": 0,
             "taker_fee_bps": 5, "reference_price": "250.00"},
            {**_OPTION, "symbol": "TSLA.M-20261218-250-P", "reference_price": "14.62",
             "option": {"expiry": "2026-12-18", "strike": "250", "right": "P"}},
            {**_OPTION, "symbol": "TSLA.M-PERP-250-C", "reference_price": "30.00",
             "option": {"strike": "250", "right": "C", "funding_period_s": 86_400}},
        ],
        "accounts": [
            {"id": POOL, "name": "pool", "key_files": [str(keys / "pool.key")],
             "credit": pool_credit or {"USDC": "1000000", "TSLA.M": "100"}},
            {"id": TRADER, "name": "trader", "key_files": [str(keys / "trader.key")],
             "credit": {"USDC": "1000000", "TSLA.M": "1000"}},
        ],
        "operators": [{"name": "ops", "key_files": [str(keys / "ops.key")]}],
    }
    path = directory / "venue.toml"
    path.write_text(to_toml(doc))
    return path, keys


def pools_doc(endpoint: str, keys: Path, **sections) -> dict:
    """The quoting process's config for the test venue; keyword arguments
    update sections (``underlying`` updates the one underlying)."""
    underlying = {"asset": "TSLA.M", "spot": "TSLA.M/USDC", "hedge_threshold": 1.0, "hedge_max_order": 10.0,
                  "hedge_slippage_bps": 50, "inventory": 100.0, **sections.pop("underlying", {})}
    doc = {
        "gateway": {"endpoint": endpoint, "key_file": str(keys / "pool.key_secret"),
                    "server_key_file": str(keys / "server.key"), "timeout_ms": 10_000},
        "quoter": {"account": POOL, "interval_ms": 100, "stale_after_ms": 60_000},
        "quotes": {"size": 1.0, "half_spread_bps": 200, "min_half_ticks": 1, "impact": 1.0, "max_position": 50.0},
        "underlyings": [underlying],
    }
    for name, value in sections.items():
        doc[name] = {**doc[name], **value}
    return doc


def write_pools(directory: Path, endpoint: str, keys: Path, **sections) -> Path:
    """Write the quoting process's config; its path."""
    path = directory / "pools.toml"
    path.write_text(to_toml(pools_doc(endpoint, keys, **sections)))
    return path


def client(endpoint: str, keys: Path, name: str) -> Client:
    """A client with the named key pair."""
    return Client(endpoint, ClientKeys.from_files(keys / f"{name}.key_secret", keys / "server.key"), timeout=10)


def publish(ops: Client, deltas: dict[int, float] | None = None) -> None:
    """Publish the series' greeks now, as the feed process does after a re-mark."""
    greeks = [SeriesGreeks(iid, delta, 0.01, 0.5, -1.0, 0.6) for iid, delta in (deltas or DELTAS).items()]
    ops.publish_greeks(greeks)
