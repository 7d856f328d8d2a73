"""Shared set-up of the gateway tests: keys, a small venue config, clients."""

from __future__ import annotations

from pathlib import Path

from engine.client import Client, ClientKeys
from engine.config import to_toml
from engine.keys import generate

KEY_NAMES = ("server", "mm", "retail", "fund", "poor", "ops", "stranger")
ACCOUNTS = {"mm": 1, "retail": 2, "fund": 3, "poor": 4}
AMZN, TSLA, NVDA = 0, 1, 2          # instrument ids; NVDA: no reference price, no bands, min_qty 20
USDC, AMZNX_ASSET = 0, 1            # asset ids
PX = 1_850_000                      # $185.00 in price units, AMZN's reference price
TICK = 100


PUT_SPEC = {"symbol": "TSLA.M-20261218-250-P", "base": "TSLA.M", "quote": "USDC",
            "option": {"expiry": "2026-12-18", "strike": "250", "right": "P"},
            "tick_size": 100, "lot_size": 1, "min_qty": 1, "max_qty": 1_000_000, "max_price": 10_000_000_000,
            "static_band_bps": 2_000, "dynamic_band_bps": 1_000, "price_scale": 10_000, "qty_scale": 100,
            "maker_fee_bps": 0, "taker_fee_bps": 3, "reference_price": "14.62",
            "initial_margin": "52.13", "maintenance_margin": "39.63"}
"""A TSLA.M put (mark $14.62, margins $52.13 / $39.63 per contract) a test may add to the venue."""


UNLIMITED_RATES = {"max_messages_per_s": 10**9, "max_requests_per_s": 10**9, "max_query_items_per_s": 10**9}
"""[gateway] rates no test client reaches, for tests about something else than fairness."""


def make_keys(directory: Path) -> Path:
    """Key pairs for every name in KEY_NAMES ('stranger' is never configured)."""
    for name in KEY_NAMES:
        generate(directory, name)
    return directory


def _stock(symbol: str, reference: str | None, bands: bool = True, min_qty: int = 10) -> dict:
    entry = {"symbol": f"{symbol}/USDC", "base": symbol, "quote": "USDC", "tick_size": TICK, "lot_size": 10,
             "min_qty": min_qty, "max_qty": 1_000_000_000, "max_price": 1_000_000_000,
             "static_band_bps": 1_000 if bands else 0, "dynamic_band_bps": 500 if bands else 0,
             "price_scale": 10_000, "qty_scale": 1_000, "maker_fee_bps": -1, "taker_fee_bps": 5}
    if reference is not None:
        entry["reference_price"] = reference
    return entry


def venue_doc(keys: Path, journal_dir: Path, **sections) -> dict:
    """The test venue as a config document; keyword arguments replace or extend sections."""
    doc = {
        "venue": {"name": "test", "max_accounts": 64, "max_orders": 100_000, "fee_account": 0},
        "endpoints": {"orders": "tcp://127.0.0.1:*", "market_data": "tcp://127.0.0.1:*"},
        "server": {"secret_key_file": str(keys / "server.key_secret")},
        "journal": {"path": str(journal_dir), "fsync": "batch", "snapshot_every": 0},
        "session": {"heartbeat_ms": 200, "timeout_ms": 600},
        "gateway": {"max_message_bytes": 65_536, "max_requests_per_message": 256},
        "market_data": {"depth": 5},
        "assets": [
            {"symbol": "USDC", "decimals": 6, "ledger_decimals": 6, "usd_price": "1"},
            {"symbol": "AMZNX", "decimals": 18, "ledger_decimals": 6, "haircut_bps": 2_000, "usd_price": "185"},
            {"symbol": "TSLA.M", "decimals": 18, "ledger_decimals": 6},
            {"symbol": "NVDA.M", "decimals": 18, "ledger_decimals": 6},
        ],
        "instruments": [_stock("AMZNX", "185.00"), _stock("TSLA.M", "250.00"), _stock("NVDA.M", None, bands=False, min_qty=20)],
        "accounts": [
            {"id": 1, "name": "mm", "key_files": [str(keys / "mm.key")],
             "credit": {"USDC": "100000000", "AMZNX": "100000", "TSLA.M": "100000", "NVDA.M": "100000"}},
            {"id": 2, "name": "retail", "key_files": [str(keys / "retail.key")],
             "credit": {"USDC": "10000000", "AMZNX": "10000", "TSLA.M": "10000", "NVDA.M": "10000"}},
            {"id": 3, "name": "fund", "key_files": [str(keys / "fund.key")],
             "credit": {"USDC": "10000000", "AMZNX": "10000"}},
            {"id": 4, "name": "poor", "key_files": [str(keys / "poor.key")], "credit": {"USDC": "1"}},
        ],
        "operators": [{"name": "ops", "key_files": [str(keys / "ops.key")]}],
    }
    for name, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(name), dict):
            doc[name] = {**doc[name], **value}
        else:
            doc[name] = value
    return doc


def write_venue(directory: Path, keys: Path, **sections) -> Path:
    """Write the test venue config (journal in directory/journal); return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "venue.toml"
    path.write_text(to_toml(venue_doc(keys, directory / "journal", **sections)))
    return path


def connect(endpoint: str, keys: Path, name: str, timeout: float = 5.0) -> Client:
    """A client with the named key pair."""
    return Client(endpoint, ClientKeys.from_files(keys / f"{name}.key_secret", keys / "server.key"), timeout=timeout)


def client_keys(keys: Path, name: str) -> ClientKeys:
    """The named client's keys."""
    return ClientKeys.from_files(keys / f"{name}.key_secret", keys / "server.key")
