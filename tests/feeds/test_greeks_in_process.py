"""Greeks from the feed process to a trader's GetChain through a real gateway:
after one step, a dated series shows the Black-Scholes greeks of
feeds/options.py and a perpetual one the everlasting greeks of
feeds/everlasting.py (theta: minus the funding rate), each with the vol it was
marked at; a restarted gateway knows none until the feed's next step. Through
a recording client: a closed series' greeks and non-finite ones are left out
(the gateway would refuse the whole publication) and a chain goes in requests
of at most MAX_GREEKS_ENTRIES.

Tolerance: the greeks travel as MessagePack float64, exactly; the feed computes
them with the same numpy functions on the same inputs, but over arrays, where
numpy's vectorised exp / log may round an ulp apart from the scalar path the
test takes. A relative 1e-12 (thousands of ulps, a dozen operations deep) holds
that and nothing a wrong input could produce: a second of time or a 1e-12 vol
move changes them by far more."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pytest
from feeds_harness import BTC_CALL, WBTC, RecordingClient, operator, write_feed_venue

from engine.config import load_config
from engine.core.types import TradingState
from engine.gateway.process import GatewayProcess
from engine.schemas import AssetInfo, InstrumentInfo
from engine.schemas_greeks import SeriesGreeks
from engine.schemas_options import Chain
from feeds.clock import ManualClock
from feeds.everlasting import everlasting
from feeds.options import black_scholes, instrument_option_risk, years_to_expiry
from feeds.perpetual import SECONDS_PER_YEAR
from feeds.process import FeedProcess
from feeds.remark import VolSurface
from feeds.replay import Replay, Tick
from feeds.rules import FeedRule
from feeds.update import NS_PER_SECOND, usd_units

SECOND = NS_PER_SECOND
BTC_PERP = 3                        # listed after the harness's three instruments
PERIOD_S = 3 * 86_400
PERP = {"symbol": "BTC-PERP-100000-C", "base": "WBTC", "quote": "USDC",
        "option": {"strike": "100000", "right": "C", "contract_size": "1", "funding_period_s": PERIOD_S},
        "tick_size": 100, "lot_size": 1, "min_qty": 1, "max_qty": 1_000_000, "max_price": 10_000_000_000,
        "static_band_bps": 2_000, "dynamic_band_bps": 1_000, "price_scale": 10_000, "qty_scale": 100,
        "maker_fee_bps": 0, "taker_fee_bps": 3, "reference_price": "9000",
        "initial_margin": "20000", "maintenance_margin": "15000"}
NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
SURFACE = VolSurface(underlying="WBTC", vol=0.6, expiries={"2026-12-31": 0.65})   # perpetuals take the base vol


def _feed(client) -> FeedProcess:
    start = int(NOW.timestamp()) * SECOND
    btc = Replay("btc", "WBTC", [Tick(start, usd_units("95000"))], start=start)
    return FeedProcess(client, [btc], {"btc": FeedRule(heartbeat_ns=60 * SECOND)}, ManualClock(start),
                       fixed_prices={"USDC": usd_units("1")}, surfaces=[SURFACE])


def _numbers(greeks) -> tuple[float, ...]:
    return greeks.delta, greeks.gamma, greeks.vega, greeks.theta, greeks.vol


def test_greeks_reach_get_chain_after_a_step_and_equal_the_pricing_modules(tmp_path):
    config, keys = write_feed_venue(tmp_path, {"trader": {"USDC": "1000"}}, more_instruments=[PERP])
    dated = black_scholes(95_000.0, 100_000.0, years_to_expiry(date(2026, 12, 31), NOW), 0.65, 0.0, True)
    perpetual = everlasting(95_000.0, 100_000.0, 0.6, PERIOD_S / SECONDS_PER_YEAR, True)
    expected = {BTC_CALL: (dated.delta, dated.gamma, dated.vega, dated.theta, 0.65),
                BTC_PERP: (perpetual.delta, perpetual.gamma, perpetual.vega, -perpetual.funding_rate, 0.6)}
    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        with operator(gw.orders, keys) as ops, operator(gw.orders, keys, "trader") as trader:
            assert all(s.greeks is None for s in trader.chain(WBTC).series)
            _feed(ops).step()
            chain = trader.chain(WBTC)
        assert isinstance(chain, Chain)
        series = {s.instrument: s for s in chain.series}
        assert set(series) == {BTC_CALL, BTC_PERP}
        for iid, numbers in expected.items():
            assert series[iid].greeks.instrument == iid and series[iid].greeks_ts > 0
            assert _numbers(series[iid].greeks) == pytest.approx(numbers, rel=1e-12, abs=0.0)
        assert series[BTC_PERP].greeks.theta < 0 and series[BTC_CALL].greeks.theta < 0
        spec = load_config(config).venue.instruments[BTC_CALL]
        assert series[BTC_CALL].mark == int(instrument_option_risk(spec, 95_000.0, 0.65, 0.0, NOW).mark_price)

    with GatewayProcess(config, tmp_path / "gateway2.log") as gw:
        with operator(gw.orders, keys) as ops, operator(gw.orders, keys, "trader") as trader:
            restarted = trader.chain(WBTC).series
            assert [s.greeks for s in restarted] == [None, None]      # not journaled: unknown until the next step
            assert {s.instrument: s.mark for s in restarted} == {iid: s.mark for iid, s in series.items()}
            _feed(ops).step()
            again = {s.instrument: s.greeks for s in trader.chain(WBTC).series}
    assert again == {iid: s.greeks for iid, s in series.items()}


def _dated(iid: int, strike: str, state: int = TradingState.OPEN) -> InstrumentInfo:
    return InstrumentInfo(iid, f"BTC-20261231-{strike}-C", "WBTC", "USDC", 100, 1, 1, 10**6, 10**10, 10_000, 100,
                          2_000, 1_000, 0, 3, state, 0, 0, "2026-12-31", strike, "C", "1")


def test_closed_series_are_left_out_and_a_chain_is_published_in_bounded_requests(monkeypatch):
    listing = [_dated(0, "90000"), _dated(1, "100000", TradingState.CLOSED), _dated(2, "110000")]
    client = RecordingClient(listing, [AssetInfo(0, "USDC", 6, 6, 0), AssetInfo(1, "WBTC", 8, 8, 1000)])
    monkeypatch.setattr("feeds.process.MAX_GREEKS_ENTRIES", 1)
    feed = _feed(client)
    feed.step()
    published = client.of_kind("greeks")
    assert [[g.instrument for g in request] for request in published] == [[0], [2]]
    assert all(g.vol == 0.65 for request in published for g in request)
    client.sent.clear()
    feed._publish_greeks([SeriesGreeks(0, 0.5, math.nan, 1.0, -1.0, 0.6), SeriesGreeks(2, 0.4, 1e-5, 1.0, -1.0, 0.6)])
    assert [[g.instrument for g in request] for request in client.of_kind("greeks")] == [[2]]   # NaN left out
