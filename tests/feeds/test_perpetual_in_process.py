"""Perpetual series in the feed process, through a recording operator client:
each step re-marks them with the everlasting closed form, sends their margins
when they change and FUND with the mark and payoff; a perpetual series is not
mistaken for a spot pair (it has no expiry), and a stale underlying stops it."""

from __future__ import annotations

from datetime import UTC, datetime

from feeds_harness import RecordingClient

from engine.core.types import TradingState
from engine.schemas import AssetInfo, InstrumentInfo
from feeds.clock import ManualClock
from feeds.perpetual import perpetual_risk
from feeds.process import FeedProcess
from feeds.remark import VolSurface
from feeds.replay import Replay, Tick
from feeds.rules import FeedRule
from feeds.update import NS_PER_SECOND, usd_units

SECOND = NS_PER_SECOND
NOW = datetime(2026, 6, 2, 14, 0, tzinfo=UTC)
BTC_PERP = 0
PERIOD_S = 3 * 86_400
INSTRUMENTS = [InstrumentInfo(BTC_PERP, "BTC-PERP-100000-C", "WBTC", "USDC", 100, 1, 1, 10**6, 10**10, 10_000, 100,
                              2_000, 1_000, 0, 3, TradingState.OPEN, 0, 0, "", "100000", "C", "1", PERIOD_S)]
ASSETS = [AssetInfo(0, "USDC", 6, 6, 0), AssetInfo(1, "WBTC", 8, 8, 1000)]


def _expected(spot: float) -> tuple[int, int, int, int]:
    r = perpetual_risk(spot, 100_000.0, 0.6, PERIOD_S, True, contract_size=1, price_scale=10_000, tick_size=100,
                       qty_scale=100, max_price=10**10)
    return int(r.mark_price), int(r.payoff_price), int(r.initial_per_qty), int(r.maintenance_per_qty)


def test_each_step_remarks_and_funds_the_perpetual_series():
    start = int(NOW.timestamp()) * SECOND
    ticks = [Tick(start, usd_units("95000")), Tick(start + 30 * SECOND, usd_units("105000"))]
    btc = Replay("btc", "WBTC", ticks, start=start)
    client = RecordingClient(INSTRUMENTS, ASSETS)
    clock = ManualClock(start)
    feed = FeedProcess(client, [btc], {"btc": FeedRule(heartbeat_ns=60 * SECOND)}, clock,
                       fixed_prices={"USDC": usd_units("1")}, surfaces=[VolSurface(underlying="WBTC", vol=0.6)])
    feed.step()
    mark, payoff, initial, maintenance = _expected(95_000.0)
    assert client.of_kind("reference") == [(BTC_PERP, mark)]          # its mark, not a spot reference
    assert client.of_kind("option_risk") == [(BTC_PERP, initial, maintenance)]
    assert client.of_kind("fund") == [(BTC_PERP, mark, payoff)] and payoff == 0
    clock.advance(SECOND)
    feed.step()                                                        # same price: FUND again, nothing else
    assert client.of_kind("fund") == [(BTC_PERP, mark, payoff)] * 2
    assert len(client.of_kind("reference")) == 1
    clock.advance(30 * SECOND)
    feed.step()                                                        # in the money: a payoff
    mark, payoff, initial, maintenance = _expected(105_000.0)
    assert client.of_kind("fund")[-1] == (BTC_PERP, mark, payoff) and payoff == 5_000 * 10_000
    clock.advance(120 * SECOND)
    feed.step()                                                        # stale: no FUND, the series halts
    assert len(client.of_kind("fund")) == 3
    assert client.states[BTC_PERP] == TradingState.HALTED
