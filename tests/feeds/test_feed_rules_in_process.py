"""The feed process's decisions without a gateway: a recording operator client stands
in for it (the end-to-end path is tests/feeds/test_feed_process.py). Cross pairs
priced from two feeds, the confidence rule, a quote asset going stale, refused
commands."""

from __future__ import annotations

from feeds_harness import RecordingClient

from engine.core.types import TradingState
from engine.schemas import AssetInfo, InstrumentInfo
from feeds.clock import ManualClock
from feeds.process import FeedProcess
from feeds.replay import Replay, Tick
from feeds.rules import FeedRule
from feeds.update import NS_PER_SECOND, usd_units

SECOND = NS_PER_SECOND
TSLA_USDC, TSLA_BTC, BTC_PUT = 0, 1, 2


def _instrument(iid: int, symbol: str, base: str, quote: str, expiry: str = "") -> InstrumentInfo:
    return InstrumentInfo(iid, symbol, base, quote, 100, 1, 1, 10**9, 10**12, 10_000 if quote == "USDC" else 10**8,
                          1_000, 1_000, 500, 0, 5, TradingState.OPEN, 0, 0, expiry)


INSTRUMENTS = [_instrument(TSLA_USDC, "TSLA.M/USDC", "TSLA.M", "USDC"),
               _instrument(TSLA_BTC, "TSLA.M/WBTC", "TSLA.M", "WBTC"),
               _instrument(BTC_PUT, "BTC-20261231-80000-P", "WBTC", "USDC", expiry="2026-12-31")]
ASSETS = [AssetInfo(0, "USDC", 6, 6, 0), AssetInfo(1, "TSLA.M", 18, 6, 3000), AssetInfo(2, "WBTC", 8, 8, 1000)]


def _source(name: str, asset: str, ticks: list[tuple[int, str, str]]) -> Replay:
    return Replay(name, asset, [Tick(s * SECOND, usd_units(p), usd_units(c) if c != "0" else 0)
                                for s, p, c in ticks], start=0)


def _process(client, sources, max_confidence_bps: int = 0) -> tuple[FeedProcess, ManualClock]:
    clock = ManualClock(0)
    rules = {s.name: FeedRule(heartbeat_ns=60 * SECOND, max_confidence_bps=max_confidence_bps) for s in sources}
    return FeedProcess(client, sources, rules, clock, fixed_prices={"USDC": usd_units("1")}), clock


def test_cross_pair_reference_from_two_feeds():
    client = RecordingClient(INSTRUMENTS, ASSETS)
    feed, _ = _process(client, [_source("tsla", "TSLA.M", [(0, "250", "0")]),
                                _source("btc", "WBTC", [(0, "100000", "0")])])
    feed.step()
    # TSLA.M/WBTC: 250 / 100000 = 0.0025 WBTC, price_scale 1e8 -> 250000 price units (tick 100)
    assert ("reference", TSLA_BTC, 250_000) in client.sent
    assert ("reference", TSLA_USDC, 2_500_000) in client.sent
    assert not any(kind == "reference" and iid == BTC_PUT for kind, iid, _ in client.sent)   # options: not a spot mark


def test_a_stale_quote_asset_halts_the_cross_pair_and_the_option_only():
    client = RecordingClient(INSTRUMENTS, ASSETS)
    feed, clock = _process(client, [_source("tsla", "TSLA.M", [(0, "250", "0"), (60, "251", "0")]),
                                    _source("btc", "WBTC", [(0, "100000", "0")])])
    feed.step()
    clock.advance(61 * SECOND)
    client.sent.clear()
    feed.step()
    halts = [(iid, state) for kind, iid, state in client.sent if kind == "state"]
    assert halts == [(TSLA_BTC, TradingState.HALTED), (BTC_PUT, TradingState.HALTED)]
    assert ("reference", TSLA_USDC, 2_510_000) in client.sent
    assert feed.halted == {TSLA_BTC, BTC_PUT}


def test_too_wide_confidence_is_not_a_price():
    client = RecordingClient(INSTRUMENTS, ASSETS)
    feed, clock = _process(client, [_source("tsla", "TSLA.M", [(0, "250", "5"), (10, "252", "0.10")])],
                           max_confidence_bps=50)
    feed.step()                     # $250 +- $5 is 200 bps: unused, so TSLA.M has no price
    assert [c for c in client.sent if c[0] == "state"] == [("state", TSLA_USDC, TradingState.HALTED),
                                                           ("state", TSLA_BTC, TradingState.HALTED)]
    assert feed.prices == {}
    clock.advance(10 * SECOND)      # $252 +- $0.10: 4 bps
    feed.step()
    assert feed.prices == {"TSLA.M": usd_units("252")}
    assert client.states[TSLA_USDC] == TradingState.OPEN
    assert client.states[TSLA_BTC] == TradingState.HALTED   # WBTC has no feed nor fixed price: no reference


def test_a_refused_price_is_logged_and_retried(caplog):
    client = RecordingClient(INSTRUMENTS, ASSETS, refuse_prices_above=usd_units("1000"))
    feed, clock = _process(client, [_source("tsla", "TSLA.M", [(0, "2500", "0"), (5, "250", "0")])])
    feed.step()
    assert feed.prices == {} and "refused: code 7 price above the limit" in caplog.text
    clock.advance(5 * SECOND)
    feed.step()
    assert feed.prices == {"TSLA.M": usd_units("250")}
