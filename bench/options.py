"""``python -m bench options [--json PATH] [--quick]``: perpetual options, each
figure beside a baseline measured in the same run (bench/README.md, "Options").

* chain marks: marks, FUND payoffs and long/short margins of a 1,000-series
  perpetual chain in core integers (feeds/perpetual.py, one vectorised pass);
  baseline: Black-Scholes marks of the same strikes (feeds/options.py), also
  vectorised, without margins or integers.
* margin check: one option sell (then its cancel, untimed) per batch call from
  an account short in 50 perpetual series, so the initial-margin check runs over
  its 50 positions; p50 / p99 ns of each call; baseline: the same calls selling
  the spot book from an account without options (reservation only).
* option orders: a stream of option asks, crossing bids and cancels over many
  accounts in a perpetual series, risk and margin on (every fill settles the
  funding of both accounts); baseline: the same stream on a spot book.
* quote refresh: the main pool's quotes on a 200-series chain moved end to end
  through a gateway after a re-mark (bench/quotes.py); baselines: cancel and
  place again, and one request per message.
* funding: FUND commands (batch API, one record) over a series with 100,000
  open positions (each settled into its balance, one event each); baseline: the reference model
  (engine/reference/funding.py) settling the same positions in Python.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from statistics import median

import numpy as np

from bench import pool_nav
from bench.quotes import measure_quotes
from bench.report import write_json
from engine.assets import USD_PRICE_SCALE, AssetSpec
from engine.core.matcher import MatchingEngine
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, EventKind, OrderType, SelfTrade, Side, TimeInForce
from engine.defaults import perpetual_series, stock_pair
from engine.reference.funding import FundingModel
from engine.units import NS_PER_S
from feeds.options import black_scholes
from feeds.perpetual import perpetual_risk

try:
    from hdrh.histogram import HdrHistogram
except ImportError:  # numpy percentiles instead
    HdrHistogram = None

PERIOD_S = 3 * 86_400
HOUR = 3_600 * NS_PER_S


class Sizes:
    """How big each measurement is (``quick``: a test's tiny run)."""

    def __init__(self, quick: bool = False, tiny: bool = False):
        self.chain = 1_000
        self.chain_reps = 3 if tiny else 50 if quick else 500
        self.portfolio = 50
        self.margin_orders = 200 if tiny else 5_000 if quick else 50_000
        self.stream_rounds = 5 if tiny else 100 if quick else 400
        self.stream_accounts = 50 if tiny else 1_000
        self.positions = 1_000 if tiny else 100_000
        self.fund_reps = 2 if tiny else 5
        self.reps = 1 if tiny else 3
        self.quote_refreshes = 2 if tiny else 20 if quick else 100


# -- set-up --


def _engine(accounts: int, series: int) -> tuple[MatchingEngine, int, list[int]]:
    """A risk engine: USD (premium) and STOCK (underlying, priced, haircut 20%),
    a STOCK/USD spot book and ``series`` perpetual calls on STOCK with margins
    and references set, accounts 0..accounts-1 funded; account ``accounts`` is
    the fee account."""
    eng = MatchingEngine(max_accounts=accounts + 1, risk=True, fee_account=accounts)
    eng.add_asset(AssetSpec(symbol="USD", decimals=6, ledger_decimals=6))
    eng.add_asset(AssetSpec(symbol="STOCK", decimals=18, ledger_decimals=6, haircut_bps=2_000))
    spot = eng.add_instrument(stock_pair("STOCK", quote="USD"))
    eng.set_asset_price(0, USD_PRICE_SCALE)
    eng.set_asset_price(1, 200 * USD_PRICE_SCALE)
    eng.set_reference_price(spot, 2_000_000)
    options = []
    for i in range(series):
        spec = perpetual_series("STOCK", "STOCK", str(150 + i), "C", PERIOD_S, quote="USD")
        iid = eng.add_instrument(spec)
        eng.set_reference_price(iid, 10 * spec.price_scale)
        eng.set_option_risk(iid, 30 * USD_PRICE_SCALE // spec.qty_scale, 20 * USD_PRICE_SCALE // spec.qty_scale)
        options.append(iid)
    for acct in range(accounts):
        eng.open_account(acct)
        # $1M and 1M STOCK each: 100,000 accounts stay under the 2**62 supply limit.
        eng.credit(acct, 0, 10**12)
        eng.credit(acct, 1, 10**12)
    return eng, spot, options


def _orders(instrument, account, side, price, qty, tif=TimeInForce.GTC) -> np.ndarray:
    n = np.broadcast(instrument, account, side, price, qty).size
    out = np.zeros(n, COMMAND_DTYPE)
    out["kind"] = CommandKind.NEW_ORDER
    out["instrument"] = instrument
    out["account"] = account
    out["side"] = side
    out["price"] = price
    out["qty"] = qty
    out["order_type"] = OrderType.LIMIT
    out["tif"] = tif
    out["stp"] = SelfTrade.CANCEL_NEWEST
    return out


def _percentiles(samples: list[int]) -> tuple[int, int]:
    if HdrHistogram is not None:
        hist = HdrHistogram(1, 60 * 10**9, 3)
        for ns in samples:
            hist.record_value(max(ns, 1))
        return hist.get_value_at_percentile(50), hist.get_value_at_percentile(99)
    return int(np.percentile(samples, 50)), int(np.percentile(samples, 99))


# -- measurements --


def chain_marks(sizes: Sizes) -> dict:
    """Series per second: perpetual marks + payoffs + margins in integers, and
    the Black-Scholes baseline, over the same 1,000 strikes."""
    n = sizes.chain
    strikes = np.linspace(50_000.0, 150_000.0, n // 2).repeat(2)
    is_call = np.tile([True, False], n // 2)
    spec = perpetual_series("WBTC", "BTC", "100000", "C", PERIOD_S)

    def perpetual():
        perpetual_risk(90_000.0, strikes, 0.6, PERIOD_S, is_call, contract_size=1, price_scale=spec.price_scale,
                       tick_size=spec.tick_size, qty_scale=spec.qty_scale, max_price=spec.max_price)

    def dated():
        black_scholes(90_000.0, strikes, 30 / 365, 0.6, 0.0, is_call)

    out = {}
    for key, fn in (("chain_marks_per_s", perpetual), ("chain_bs_marks_per_s", dated)):
        runs = []
        for _ in range(sizes.reps):
            start = time.perf_counter_ns()
            for _ in range(sizes.chain_reps):
                fn()
            runs.append(n * sizes.chain_reps / (time.perf_counter_ns() - start) * 1e9)
        out[key] = median(runs)
    out["chain_series"] = n
    return out


def margin_check(sizes: Sizes) -> dict:
    """p50 / p99 ns of one option sell from a 50-position account (margin
    check over its portfolio) and of one spot sell from an account without
    options (baseline), each a one-record ``process`` call."""
    eng, spot, options = _engine(accounts=3, series=sizes.portfolio)
    for iid in options:   # account 0 short one contract in each series, account 1 long
        eng.process(_orders(iid, 1, Side.BUY, 10 * 10_000, 100))
        eng.process(_orders(iid, 0, Side.SELL, 10 * 10_000, 100))
    assert sum(1 for p in eng.positions(0) if p.position < 0) == sizes.portfolio
    samples = {"option": [], "spot": []}
    targets = {"option": (options[0], 0, 11 * 10_000), "spot": (spot, 2, 2_100_000)}
    cancel = np.zeros(1, COMMAND_DTYPE)
    cancel["kind"] = CommandKind.CANCEL
    for i in range(sizes.margin_orders):
        for name, (iid, acct, price) in targets.items():
            order = _orders(iid, acct, Side.SELL, price, 1)
            start = time.perf_counter_ns()
            events = eng.process(order)
            samples[name].append(time.perf_counter_ns() - start)
            if events["kind"][0] != EventKind.ACCEPTED:
                raise RuntimeError(f"margin check order rejected: reason {events['reason'][0]}")
            cancel["account"] = acct
            cancel["order_id"] = events["order_id"][0]
            eng.process(cancel)
    p50, p99 = _percentiles(samples["option"])
    b50, b99 = _percentiles(samples["spot"])
    return {"margin_check_p50_ns": p50, "margin_check_p99_ns": p99, "margin_portfolio_positions": sizes.portfolio,
            "margin_baseline_p50_ns": b50, "margin_baseline_p99_ns": b99}


def _stream(instrument: int, accounts: int, rounds: int, first_order_id: int, price: int) -> np.ndarray:
    """Per round and account pair: an ask, a bid that takes half of it, and the
    ask's cancel: 2 orders, 1 fill, 1 cancel."""
    pairs = accounts // 2
    n = pairs * rounds
    k = np.arange(n)
    seller, buyer = 2 * (k % pairs), 2 * (k % pairs) + 1
    asks = _orders(instrument, seller, Side.SELL, price, 2)
    bids = _orders(instrument, buyer, Side.BUY, price, 1, TimeInForce.IOC)
    cancels = np.zeros(n, COMMAND_DTYPE)
    cancels["kind"] = CommandKind.CANCEL
    cancels["account"] = seller
    cancels["order_id"] = first_order_id + 2 * k
    out = np.empty(3 * n, COMMAND_DTYPE)
    out[0::3], out[1::3], out[2::3] = asks, bids, cancels
    out["ts"] = np.arange(3 * n) * 1_000_000      # a millisecond apart: funding accrues between fills
    return out


def option_orders(sizes: Sizes) -> dict:
    """Orders per second (asks and bids; cancels and fills ride along) through
    the batch API in 4,096-command calls: perpetual series vs spot book."""
    out = {}
    for key, on_option in (("option_orders_per_s", True), ("spot_orders_per_s", False)):
        runs = []
        for _ in range(sizes.reps):
            eng, spot, options = _engine(accounts=sizes.stream_accounts, series=1)
            iid, price = (options[0], 10 * 10_000) if on_option else (spot, 2_000_000)
            if on_option:
                eng.fund(iid, price, 0, ts=0)
            commands = _stream(iid, sizes.stream_accounts, sizes.stream_rounds, 1, price)
            start = time.perf_counter_ns()
            fills = 0
            for i in range(0, len(commands), 4096):
                events = eng.process(commands[i:i + 4096])
                fills += int((events["kind"] == EventKind.FILL).sum())
            elapsed = time.perf_counter_ns() - start
            if fills != len(commands) // 3:
                raise RuntimeError(f"order stream: {fills} fills, expected {len(commands) // 3}")
            runs.append(len(commands) * 2 / 3 / elapsed * 1e9)
        out[key] = median(runs)
    return out


def funding(sizes: Sizes) -> dict:
    """Positions settled per second by FUND over ``positions`` open positions
    (half long, half short, one per account), and by the reference model."""
    n = sizes.positions
    eng, _spot, (iid,) = _engine(accounts=n, series=1)
    price = 10 * 10_000
    for i in range(0, n, 4096):
        k = np.arange(i, min(i + 4096, n), 2)
        eng.process(np.concatenate([_orders(iid, k, Side.SELL, price, 1),
                                    _orders(iid, k + 1, Side.BUY, price, 1, TimeInForce.IOC)]))
    state = eng.funding_state(iid)
    if state.open_interest != n // 2:
        raise RuntimeError(f"funding set-up: open interest {state.open_interest}, expected {n // 2}")
    eng.fund(iid, price, 0, ts=HOUR)
    fund = np.zeros(1, COMMAND_DTYPE)
    fund["kind"] = CommandKind.FUND
    fund["instrument"] = iid
    fund["price"] = price
    runs = []
    for rep in range(sizes.fund_reps):
        fund["ts"] = (rep + 2) * HOUR
        start = time.perf_counter_ns()
        events = eng.process(fund)
        runs.append(n / (time.perf_counter_ns() - start) * 1e9)
        if int((events["kind"] == EventKind.FUNDING_SETTLED).sum()) != n:
            raise RuntimeError("FUND did not settle every position")
    _, _, _, qpt, tick = eng.instrument_units(iid)
    model = FundingModel(period_ns=PERIOD_S * NS_PER_S, quote_per_tick_qty=qpt, tick=tick, max_price=price)
    for acct in range(0, n, 2):
        model.fill(acct + 1, acct, 1)
    model.fund(price, 0, HOUR)
    baseline = []
    for rep in range(sizes.fund_reps):
        start = time.perf_counter_ns()
        index = model.fund(price, 0, (rep + 2) * HOUR)
        for acct in model.due(index):
            model.settle(acct, index, 10**12, 10**12, 10**12)
        baseline.append(n / (time.perf_counter_ns() - start) * 1e9)
    return {"funding_positions_per_s": median(runs), "funding_baseline_positions_per_s": median(baseline),
            "funding_positions": n}


def run(sizes: Sizes, log=lambda line: None) -> dict:
    """Every measurement; the flat results object."""
    results = {}
    for name, measure in (("chain marks", chain_marks), ("margin check", margin_check),
                          ("option orders", option_orders), ("funding", funding), ("pool NAV", pool_nav.measure),
                          ("quote refresh", lambda sizes: measure_quotes(sizes.quote_refreshes))):
        log(f"options: {name}")
        results.update(measure(sizes))
    return results


# (label, key, baseline label, baseline key) of each figure: the table and `python -m bench all` read these.
FIGURES = (
    ("perpetual chain marks + margins (series/s)", "chain_marks_per_s", "Black-Scholes marks only",
     "chain_bs_marks_per_s"),
    ("margin check per order, p50 ns", "margin_check_p50_ns", "spot sell, no options", "margin_baseline_p50_ns"),
    ("margin check per order, p99 ns", "margin_check_p99_ns", "spot sell, no options", "margin_baseline_p99_ns"),
    ("option orders/s, margin and funding on", "option_orders_per_s", "same stream on a spot book",
     "spot_orders_per_s"),
    ("funding, positions settled/s", "funding_positions_per_s", "reference model (Python)",
     "funding_baseline_positions_per_s"),
    ("pool NAV, 1,000 positions (NAVs/s)", "pool_nav_per_s", "reference model (Python)", "pool_nav_baseline_per_s"),
    ("200-series quote refresh, p50 ms", "quote_refresh_p50_ms", "cancel/replace", "quote_cancel_replace_p50_ms"),
    ("200-series quote refresh, p99 ms", "quote_refresh_p99_ms", "cancel/replace", "quote_cancel_replace_p99_ms"),
    ("200-series quote refresh in batches, p50 ms", "quote_refresh_p50_ms", "one request a message",
     "quote_one_per_message_p50_ms"),
)


def table(r: dict) -> str:
    """The figures beside their baselines."""
    return "\n".join(f"{label:45} {_figure(r[key]):>14}   baseline ({base}): {_figure(r[base_key])}"
                     for label, key, base, base_key in FIGURES)


def _figure(x: float) -> str:
    """Large figures whole, small ones (milliseconds) to 0.1."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def main(argv: list[str]) -> int:
    """``python -m bench options``."""
    parser = argparse.ArgumentParser(prog="python -m bench options", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the flat results object to this file")
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--tiny", action="store_true", help="(tests) the smallest sizes; figures mean nothing")
    args = parser.parse_args(argv)
    results = run(Sizes(quick=args.quick, tiny=args.tiny), log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table(results))
    if args.json is not None:
        write_json(results, args.json)
        print(f"wrote {args.json}")
    return 0
