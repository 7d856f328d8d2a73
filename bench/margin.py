"""What the initial-margin check costs the spot hot path.

Two risk engines run the same stream of spot limit orders and cancels (bids
below and asks above the reference price, so nothing trades: every command
reserves or releases). They differ in one thing: in the *margined* engine
every trading account also has an open option sell, so each reservation goes
through the margin check (collateral over every asset against the initial
margin over every series, docs/matching.md "Options"); in the *plain* engine
the same option asks belong to one extra account, so the trading accounts skip
the check and the order ids stay aligned. Passes alternate and the ratio is
the median of the paired runs.
"""

from __future__ import annotations

import time
from statistics import median

import numpy as np

from engine.assets import USD_PRICE_SCALE, AssetSpec
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, EventKind, OrderType, SelfTrade, Side, TimeInForce
from engine.defaults import option_series, stock_pair

REFERENCE = 2_000_000     # $200.00 in the stock pair's price units
TICK = 100
FUNDING = 10**15          # ledger units of each asset per account


def build(engine_cls: type, accounts: int, margined: bool):
    """A risk engine: USD and one stock (both priced), a stock pair, one option
    series, funded accounts 0..accounts (the last one holds no trading orders),
    and one one-unit option ask per trading account, placed by that account
    (``margined``) or by the last account."""
    engine = engine_cls(max_accounts=accounts + 2, risk=True, fee_account=accounts + 1)
    engine.add_asset(AssetSpec(symbol="USD", decimals=6, ledger_decimals=6))
    engine.add_asset(AssetSpec(symbol="STOCK", decimals=18, ledger_decimals=6, haircut_bps=2_000))
    spot = engine.add_instrument(stock_pair("STOCK", quote="USD"))
    series = option_series("STOCK", "STOCK", "2026-12-31", "200", "C", quote="USD")
    option = engine.add_instrument(series)
    for asset in (0, 1):
        engine.set_asset_price(asset, 100 * USD_PRICE_SCALE)
    engine.set_reference_price(spot, REFERENCE)
    engine.set_reference_price(option, 10 * series.price_scale)
    engine.set_option_risk(option, 30 * USD_PRICE_SCALE // series.qty_scale, 20 * USD_PRICE_SCALE // series.qty_scale)
    for account in range(accounts + 1):
        engine.open_account(account)
        for asset in (0, 1):
            engine.credit(account, asset, FUNDING)
    for account in range(accounts):
        owner = account if margined else accounts
        events = engine.new_order(option, owner, Side.SELL, 1, 10 * series.price_scale)
        if events[0].kind != EventKind.ACCEPTED:
            raise RuntimeError(f"option ask of account {owner} failed: {events[0]}")
    return engine, spot


def stream(accounts: int, rounds: int, first_order_id: int) -> np.ndarray:
    """Per round: one resting limit order per account (buys and sells in turn,
    1..20 ticks from the reference), then a cancel of each."""
    n = accounts * rounds
    news = np.zeros(n, COMMAND_DTYPE)
    index = np.arange(n)
    account = index % accounts
    buy = (index // accounts + account) % 2 == 0
    offset = (1 + index % 20) * TICK
    news["kind"] = CommandKind.NEW_ORDER
    news["account"] = account
    news["side"] = np.where(buy, Side.BUY, Side.SELL)
    news["price"] = np.where(buy, REFERENCE - offset, REFERENCE + offset)
    news["qty"] = 1 + index % 50
    news["order_type"] = OrderType.LIMIT
    news["tif"] = TimeInForce.GTC
    news["stp"] = SelfTrade.CANCEL_NEWEST
    cancels = np.zeros(n, COMMAND_DTYPE)
    cancels["kind"] = CommandKind.CANCEL
    cancels["account"] = account
    cancels["order_id"] = first_order_id + index
    # round r: its news, then its cancels
    parts = []
    for r in range(rounds):
        part = slice(r * accounts, (r + 1) * accounts)
        parts += [news[part], cancels[part]]
    return np.concatenate(parts)


def _timed_pass(engine_cls: type, accounts: int, commands: np.ndarray, chunk: int, margined: bool) -> float:
    engine, _spot = build(engine_cls, accounts, margined)
    batches = [commands[i:i + chunk] for i in range(0, len(commands), chunk)]
    kinds = np.zeros(256, dtype=np.int64)
    start = time.perf_counter_ns()
    for batch in batches:
        events = engine.process(batch)
        kinds += np.bincount(events["kind"], minlength=256)
    elapsed = time.perf_counter_ns() - start
    if kinds[EventKind.REJECTED] or kinds[EventKind.FILL]:
        raise RuntimeError(f"margin stream: {kinds[EventKind.REJECTED]} rejects, {kinds[EventKind.FILL]} fills")
    return len(commands) / elapsed * 1e9


def margin_check_cost(engine_cls: type, accounts: int = 1_000, rounds: int = 100, chunk: int = 4096,
                      reps: int = 3) -> dict:
    """Commands per second of the stream on the plain and the margined engine."""
    if not hasattr(engine_cls, "set_option_risk"):
        return {}
    commands = stream(accounts, rounds, first_order_id=accounts + 1)   # the option asks took 1..accounts
    plain, margined = [], []
    for _ in range(reps):
        plain.append(_timed_pass(engine_cls, accounts, commands, chunk, False))
        margined.append(_timed_pass(engine_cls, accounts, commands, chunk, True))
    return {
        "margin_stream_commands": len(commands),
        "margin_plain_cmds_per_s": median(plain),
        "margin_plain_cmds_per_s_runs": [round(r) for r in plain],
        "margin_checked_cmds_per_s": median(margined),
        "margin_checked_cmds_per_s_runs": [round(r) for r in margined],
        "margin_ratio": median(m / p for m, p in zip(margined, plain)),
    }
