"""Shared set-up of the shard tests: keys, a venue of three stock pairs split
over two shards (a: AMZNX/USDC and NVDA.M/USDC, b: TSLA.M/USDC), the shard
gateways as real processes and the router in a thread."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from engine.client import Client, ClientKeys
from engine.config import to_toml
from engine.gateway.process import GatewayProcess
from engine.keys import generate
from engine.router import Router
from engine.shards import load_shards

KEY_NAMES = ("server", "mm", "retail", "ops", "router")
AMZN, TSLA, NVDA = 0, 1, 2      # venue instrument ids
USDC, AMZNX, TSLAX = 0, 1, 2    # asset ids
A, B = 0, 1                     # shard indexes
PX = 1_850_000                  # AMZN's reference, price units
TSLA_PX = 2_500_000


def _stock(symbol: str, reference: str) -> dict:
    return {"symbol": f"{symbol}/USDC", "base": symbol, "quote": "USDC", "tick_size": 100, "lot_size": 10,
            "min_qty": 10, "max_qty": 1_000_000_000, "max_price": 1_000_000_000, "static_band_bps": 1_000,
            "dynamic_band_bps": 500, "price_scale": 10_000, "qty_scale": 1_000, "maker_fee_bps": 0,
            "taker_fee_bps": 0, "reference_price": reference}


def venue_doc(keys: Path) -> dict:
    """The venue config document (its journal section is each shard's)."""
    return {
        "venue": {"name": "sharded", "max_accounts": 64, "max_orders": 100_000, "fee_account": 0},
        "server": {"secret_key_file": str(keys / "server.key_secret")},
        "journal": {"path": "unused", "fsync": "batch", "snapshot_every": 0},
        "session": {"heartbeat_ms": 200, "timeout_ms": 600},
        "assets": [
            {"symbol": "USDC", "decimals": 6, "ledger_decimals": 6, "usd_price": "1"},
            {"symbol": "AMZNX", "decimals": 18, "ledger_decimals": 6, "usd_price": "185"},
            {"symbol": "TSLA.M", "decimals": 18, "ledger_decimals": 6, "usd_price": "250"},
            {"symbol": "NVDA.M", "decimals": 18, "ledger_decimals": 6, "usd_price": "120"},
        ],
        "instruments": [_stock("AMZNX", "185.00"), _stock("TSLA.M", "250.00"), _stock("NVDA.M", "120.00")],
        "accounts": [
            {"id": 1, "name": "mm", "key_files": [str(keys / "mm.key")],
             "credit": {"USDC": "1000000", "AMZNX": "1000", "TSLA.M": "1000", "NVDA.M": "1000"}},
            {"id": 2, "name": "retail", "key_files": [str(keys / "retail.key")], "credit": {"USDC": "100000"}},
        ],
        "operators": [{"name": "ops", "key_files": [str(keys / "ops.key")]},
                      {"name": "router", "key_files": [str(keys / "router.key")]}],
    }


def free_port() -> int:
    """A loopback port free now (bound and released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _endpoint() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def shards_doc(journals: Path, **extra) -> dict:
    """The shards file document: a (AMZNX, NVDA.M) home of account 1, b (TSLA.M) home of account 2."""
    doc = {
        "venue": "venue.toml",
        "home_shard": "a",
        "home": {"2": "b"},
        "router": {"orders": _endpoint(), "market_data": _endpoint(), "key_file": "keys/router.key_secret",
                   "shard_timeout_ms": 1_000},
        "shards": [
            {"name": "a", "instruments": ["AMZNX/USDC", "NVDA.M/USDC"], "orders": _endpoint(),
             "market_data": _endpoint(), "journal": str(journals / "a")},
            {"name": "b", "instruments": ["TSLA.M/USDC"], "orders": _endpoint(), "market_data": _endpoint(),
             "journal": str(journals / "b")},
        ],
    }
    doc.update(extra)
    return doc


def write_venue(directory: Path, **shard_changes) -> Path:
    """Keys, venue.toml and shards.toml in ``directory``; the shards file's path."""
    keys = directory / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    for name in KEY_NAMES:
        if not (keys / f"{name}.key").exists():
            generate(keys, name)
    (directory / "venue.toml").write_text(to_toml(venue_doc(keys)))
    path = directory / "shards.toml"
    path.write_text(to_toml(shards_doc(directory / "journals", **shard_changes)))
    return path


def start_shard(path: Path, name: str) -> GatewayProcess:
    """The gateway of shard ``name``, a real process."""
    return GatewayProcess(path, path.parent / f"shard-{name}.log", shard=name)


class RouterThread:
    """The router of a shards file, run in a thread until stop()."""

    def __init__(self, path: Path) -> None:
        self.router = Router(load_shards(path))
        self.thread = threading.Thread(target=self.router.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Leave the loop and close the sockets."""
        self.router.stop()
        self.thread.join(10)


def connect(path: Path, name: str, timeout: float = 5.0) -> Client:
    """A client of the router with the named key pair."""
    keys = path.parent / "keys"
    return Client(load_shards(path).router.orders,
                  ClientKeys.from_files(keys / f"{name}.key_secret", keys / "server.key"), timeout=timeout)
