"""Main pool NAV (engine/core/pool.pyx) over a pool holding 1,000 option
positions: NAV computations per second, median of repeats; baseline, in the same
run: the reference model (engine/reference/pool.py) valuing the same balances and
positions in Python. ``python -m bench options`` runs it (bench/README.md)."""

from __future__ import annotations

import time
from statistics import median

import numpy as np

from engine.assets import USD_PRICE_SCALE, AssetSpec
from engine.core.matcher import MatchingEngine
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, OrderType, SelfTrade, Side, TimeInForce
from engine.defaults import perpetual_series
from engine.reference import pool as ref

POOL, TRADER, FEE = 1, 2, 0
USD, STOCK, SHARE = 0, 1, 2


def _pool_engine(positions: int) -> MatchingEngine:
    """A pool short one quantity unit of each of ``positions`` perpetual calls on STOCK."""
    eng = MatchingEngine(max_accounts=4, risk=True, fee_account=FEE)
    eng.add_asset(AssetSpec(symbol="USD", decimals=6, ledger_decimals=6))
    eng.add_asset(AssetSpec(symbol="STOCK", decimals=18, ledger_decimals=6))
    eng.add_asset(AssetSpec(symbol="MPS", decimals=6, ledger_decimals=6))
    eng.set_main_pool(POOL, USD, SHARE, 12, 0, 10, 20_000)
    eng.open_account(TRADER)
    eng.set_asset_price(USD, USD_PRICE_SCALE)
    eng.set_asset_price(STOCK, 200 * USD_PRICE_SCALE)
    for acct in (POOL, TRADER):
        eng.credit(acct, USD, 10**13)
        eng.credit(acct, STOCK, 10**12)
    rows = []
    for i in range(positions):
        spec = perpetual_series("STOCK", "STOCK", str(150 + i), "C", 3 * 86_400, quote="USD")
        iid = eng.add_instrument(spec)
        eng.set_reference_price(iid, 10 * spec.price_scale)
        eng.set_option_risk(iid, 30 * USD_PRICE_SCALE // spec.qty_scale, 20 * USD_PRICE_SCALE // spec.qty_scale)
        price = 10 * spec.price_scale
        rows += [(iid, TRADER, Side.BUY, TimeInForce.GTC, price), (iid, POOL, Side.SELL, TimeInForce.IOC, price)]
    commands = np.zeros(len(rows), dtype=COMMAND_DTYPE)
    commands["kind"] = CommandKind.NEW_ORDER
    commands["instrument"], commands["account"], commands["side"], commands["tif"], commands["price"] = zip(*rows)
    commands["order_type"] = OrderType.LIMIT
    commands["stp"] = SelfTrade.CANCEL_NEWEST
    commands["qty"] = 1
    eng.process(commands)
    if len(eng.positions(POOL)) != positions:
        raise RuntimeError("pool NAV set-up: the pool does not hold every position")
    return eng


def _model_inputs(eng: MatchingEngine) -> tuple[list[ref.Holding], list[ref.Position]]:
    holdings = [ref.Holding(total, eng.asset_price(a), 10**spec.ledger_decimals)
                for a, ((total, _r), spec) in enumerate(zip(eng.balances(POOL), eng.assets)) if a != SHARE]
    positions = []
    for p in eng.positions(POOL):
        _base, quote, _bpq, qpt, tick = eng.instrument_units(p.instrument)
        positions.append(ref.Position(p.position, eng.instrument_state(p.instrument)[1], tick, qpt,
                                      eng.asset_price(quote), 10**eng.assets[quote].ledger_decimals))
    return holdings, positions


def measure(sizes) -> dict:
    """NAVs per second of a 1,000-position pool in the core and in the reference model."""
    positions, reps, calls = 1_000, sizes.reps + 2, 20 if sizes.positions < 100_000 else 2_000
    eng = _pool_engine(positions)
    holdings, model_positions = _model_inputs(eng)
    if ref.nav_usd(holdings, model_positions) != eng.pool_nav()[0]:
        raise RuntimeError("pool NAV: the core and the reference model disagree")
    core, baseline = [], []
    for _ in range(reps):
        start = time.perf_counter_ns()
        for _ in range(calls):
            eng.pool_nav()
        core.append(calls / (time.perf_counter_ns() - start) * 1e9)
        start = time.perf_counter_ns()
        for _ in range(max(calls // 20, 1)):
            ref.nav_usd(holdings, model_positions)
        baseline.append(max(calls // 20, 1) / (time.perf_counter_ns() - start) * 1e9)
    return {"pool_nav_per_s": median(core), "pool_nav_baseline_per_s": median(baseline),
            "pool_nav_positions": positions}
