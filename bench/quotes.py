"""Quote refresh of the main pool over a 200-series chain, end to end through a
real gateway process (``python -m bench options`` runs it; bench/README.md).

The venue lists TSLA.M/USDC and 200 TSLA.M series (50 strikes, calls and puts,
dated and perpetual); the pool's quoter (pools/quoter.py, the client SDK over
CURVE) quotes both sides of all 200. Each repeat, an operator client re-marks
every series (SetReference, marks 2% up or back down, and PublishGreeks, as the feed
process does); once the venue has acknowledged the new marks the clock starts,
and it stops when one quoter refresh has read the chain, the margin and the
listing and every one of the 400 quotes has been moved and acknowledged. In
production the refresh starts at the quoter's next interval tick: add up to
``interval_ms``.

Figures: p50 / p99 ms of that time with quotes amended in place, batched (the
quoter's default); baselines in the same run on the same gateway: cancel and
place again, batched; and amend with one request per message (at most 20
repeats: each takes seconds).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np

from engine.client import Client, ClientKeys
from engine.config import to_toml
from engine.gateway.process import GatewayProcess
from engine.keys import generate
from engine.schemas import Reject, SetReference
from engine.schemas_greeks import SeriesGreeks
from feeds.options import black_scholes
from pools.quoter import Quoter
from pools.quoter_config import PoolsConfig

SERIES = 200
STRIKES = [200 + 2 * i for i in range(SERIES // 4)]      # x (call, put) x (dated, perpetual)
SPOT_USD = 250.0
POOL = 1
MODES = {"quote_refresh": {"amend": True, "batch": 256, "most": None},
         "quote_cancel_replace": {"amend": False, "batch": 256, "most": None},
         "quote_one_per_message": {"amend": True, "batch": 1, "most": 20}}
"""result key prefix -> how the quoter moves its quotes, and at most how many
repeats (one request per message takes seconds a refresh)."""


def _series() -> list[dict]:
    option = {"base": "TSLA.M", "quote": "USDC", "tick_size": 100, "lot_size": 1, "min_qty": 1,
              "max_qty": 1_000_000, "max_price": 10_000_000_000, "static_band_bps": 2_000, "dynamic_band_bps": 1_000,
              "price_scale": 10_000, "qty_scale": 100, "maker_fee_bps": 0, "taker_fee_bps": 3,
              "initial_margin": "60", "maintenance_margin": "45"}
    out = []
    for perpetual in (False, True):
        for strike in STRIKES:
            for right in ("C", "P"):
                terms = ({"strike": str(strike), "right": right, "funding_period_s": 86_400} if perpetual else
                         {"expiry": "2027-06-18", "strike": str(strike), "right": right})
                name = f"TSLA.M-PERP-{strike}-{right}" if perpetual else f"TSLA.M-20270618-{strike}-{right}"
                out.append({**option, "symbol": name, "option": terms})
    return out


def _marks(series: list[dict], factor: float) -> tuple[list[int], list[float]]:
    """Black-Scholes marks at $250 (half a year, vol 60%) times ``factor``, in
    price units on the tick grid, and the deltas: every mark is several dollars,
    so a 2% re-mark moves every quote."""
    strikes = np.array([float(s["option"]["strike"]) for s in series])
    calls = np.array([s["option"]["right"] == "C" for s in series])
    greeks = black_scholes(SPOT_USD, strikes, 0.5, 0.6, 0.0, calls)
    marks = np.round(greeks.mark * factor * 100).astype(np.int64) * 100
    return [int(m) for m in marks], [float(d) for d in greeks.delta]


def _write_venue(directory: Path, series: list[dict]) -> Path:
    keys = directory / "keys"
    keys.mkdir()
    for name in ("server", "ops", "pool"):
        generate(keys, name)
    marks, _ = _marks(series, 1.0)
    instruments = [{"symbol": "TSLA.M/USDC", "base": "TSLA.M", "quote": "USDC", "tick_size": 100, "lot_size": 10,
                    "min_qty": 10, "max_qty": 1_000_000_000, "max_price": 1_000_000_000, "static_band_bps": 1_000,
                    "dynamic_band_bps": 500, "price_scale": 10_000, "qty_scale": 1_000, "maker_fee_bps": 0,
                    "taker_fee_bps": 5, "reference_price": "250.00"}]
    instruments += [{**s, "reference_price": f"{m / 10_000:.2f}"} for s, m in zip(series, marks)]
    doc = {
        "venue": {"name": "bench-quotes", "max_accounts": 4, "max_orders": 100_000, "fee_account": 0},
        "endpoints": {"orders": "tcp://127.0.0.1:*", "market_data": "tcp://127.0.0.1:*"},
        "server": {"secret_key_file": str(keys / "server.key_secret")},
        "journal": {"path": str(directory / "journal"), "fsync": "batch", "snapshot_every": 0},
        "gateway": {"max_messages_per_s": 10**9, "max_requests_per_s": 10**9, "max_query_items_per_s": 10**9},
        "assets": [{"symbol": "USDC", "decimals": 6, "ledger_decimals": 6, "usd_price": "1"},
                   {"symbol": "TSLA.M", "decimals": 18, "ledger_decimals": 6, "haircut_bps": 3_000,
                    "usd_price": "250"}],
        "instruments": instruments,
        "accounts": [{"id": POOL, "name": "pool", "key_files": [str(keys / "pool.key")],
                      "credit": {"USDC": "100000000"}}],
        "operators": [{"name": "ops", "key_files": [str(keys / "ops.key")]}],
    }
    path = directory / "venue.toml"
    path.write_text(to_toml(doc))
    return path


def _client(endpoint: str, keys: Path, name: str) -> Client:
    return Client(endpoint, ClientKeys.from_files(keys / f"{name}.key_secret", keys / "server.key"), timeout=30)


def _remark(ops: Client, first: int, series: list[dict], factor: float) -> None:
    """Re-mark every series (one message of SetReference) and publish their greeks."""
    marks, deltas = _marks(series, factor)
    answers = ops.exchange([SetReference(ops.next_id(), first + i, m) for i, m in enumerate(marks)])
    refused = [a for a in answers if isinstance(a, Reject)]
    if refused:
        raise RuntimeError(f"re-mark refused: {refused[0].text}")
    ops.publish_greeks([SeriesGreeks(first + i, d, 0.0, 0.0, 0.0, 0.6) for i, d in enumerate(deltas)])


def _config(endpoint: str, keys: Path, amend: bool, batch: int) -> PoolsConfig:
    return msgspec.convert({
        "gateway": {"endpoint": endpoint, "key_file": str(keys / "pool.key_secret"),
                    "server_key_file": str(keys / "server.key"), "max_requests_per_message": batch},
        "quoter": {"account": POOL, "amend": amend},
        "quotes": {"size": 1.0, "half_spread_bps": 200, "impact": 0.1, "max_position": 50.0},
        "underlyings": [{"asset": "TSLA.M", "spot": "TSLA.M/USDC", "hedge": False}],
    }, PoolsConfig)


def _refreshes(gw: GatewayProcess, keys: Path, series: list[dict], amend: bool, batch: int,
               repeats: int) -> list[int]:
    """ns from an acknowledged re-mark to every quote moved and acknowledged, per repeat."""
    samples = []
    with _client(gw.orders, keys, "ops") as ops, _client(gw.orders, keys, "pool") as pool:
        quoter = Quoter(pool, _config(gw.orders, keys, amend, batch))
        quoter.start()
        _remark(ops, 1, series, 1.0)
        first = quoter.refresh()
        if first.placed != 2 * SERIES or first.rejected:
            raise RuntimeError(f"quote set-up: {first.placed} quotes placed, {len(first.rejected)} refused")
        for rep in range(repeats):
            _remark(ops, 1, series, 1.02 if rep % 2 == 0 else 1.0)
            start = time.perf_counter_ns()
            report = quoter.refresh()
            samples.append(time.perf_counter_ns() - start)
            moved = report.amended if amend else report.placed
            if moved != 2 * SERIES or report.rejected:
                raise RuntimeError(f"refresh moved {moved} quotes, {len(report.rejected)} refused")
        quoter.cancel_all()
    return samples


def measure_quotes(repeats: int) -> dict:
    """p50 / p99 ms of a 200-series quote refresh per mode (MODES), one gateway."""
    series = _series()
    out = {"quote_series": SERIES, "quote_repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="bench-quotes-") as tmp:
        directory = Path(tmp)
        config = _write_venue(directory, series)
        with GatewayProcess(config, directory / "gateway.log") as gw:
            for prefix, mode in MODES.items():
                reps = min(repeats, mode["most"] or repeats)
                samples = np.array(_refreshes(gw, directory / "keys", series, mode["amend"], mode["batch"],
                                              reps)) / 1e6
                out[f"{prefix}_p50_ms"] = float(np.percentile(samples, 50))
                out[f"{prefix}_p99_ms"] = float(np.percentile(samples, 99))
    return out
