"""The feed process end to end through a real gateway process: prices become
journaled SET_ASSET_PRICE / SET_REFERENCE commands; a feed older than its heartbeat
halts the instruments on its asset (spot pair and option series) and a fresh price
reopens them; an outlier source is left out; the CLI runs from a config file."""

from __future__ import annotations

import subprocess
import sys

import pytest
from feeds_harness import AAPL, AMZN, BTC_CALL, operator, write_feed_venue

from engine.core.types import TradingState
from engine.gateway.process import GatewayProcess
from engine.schemas import Instruments
from feeds.clock import ManualClock
from feeds.process import FeedProcess
from feeds.replay import Replay, Tick
from feeds.rules import FeedRule
from feeds.update import NS_PER_SECOND, usd_units

SECOND = NS_PER_SECOND
START = 1_800_000_000 * SECOND


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    directory = tmp_path_factory.mktemp("feeds-venue")
    config, keys = write_feed_venue(directory)
    with GatewayProcess(config, directory / "gateway.log") as gw:
        yield gw, keys, directory


def _listing(client) -> Instruments:
    listing = client.instruments()
    assert isinstance(listing, Instruments)
    return listing


def _states(client) -> dict[int, tuple[int, int]]:
    return {i.instrument: (i.state, i.reference) for i in _listing(client).instruments}


def _replay(name: str, asset: str, prices: list[tuple[int, str]]) -> Replay:
    return Replay(name, asset, [Tick(START + s * SECOND, usd_units(p)) for s, p in prices], start=START)


def test_stale_feed_halts_and_fresh_price_reopens(gateway):
    gw, keys, _ = gateway
    clock = ManualClock(START)
    amzn = _replay("amzn-replay", "AMZNX", [(0, "200.00"), (120, "201.50")])
    btc = _replay("btc-replay", "WBTC", [(0, "95000"), (30, "95100"), (60, "95200"), (90, "95300"), (120, "95400")])
    rules = {"amzn-replay": FeedRule(heartbeat_ns=60 * SECOND), "btc-replay": FeedRule(heartbeat_ns=60 * SECOND)}
    with operator(gw.orders, keys) as client, operator(gw.orders, keys) as feed_client:
        seq_before = client.status().last_seq
        feed = FeedProcess(feed_client, [amzn, btc], rules, clock, fixed_prices={"USDC": usd_units("1")})
        feed.step()
        assert _states(client)[AMZN] == (TradingState.OPEN, 2_000_000)
        assert _states(client)[AAPL] == (TradingState.OPEN, 1_900_000)   # no feed: untouched
        assert client.status().last_seq > seq_before                    # sequenced and journaled

        clock.advance(61 * SECOND)     # AMZNX's only update is now older than its heartbeat
        feed.step()
        states = _states(client)
        assert states[AMZN] == (TradingState.HALTED, 2_000_000)
        assert states[AAPL][0] == states[BTC_CALL][0] == TradingState.OPEN

        clock.advance(59 * SECOND)     # t = 120: a fresh AMZNX price arrives
        feed.step()
        assert _states(client)[AMZN] == (TradingState.OPEN, 2_015_000)
        assert feed.prices == {"AMZNX": usd_units("201.50"), "WBTC": usd_units("95400")}

        clock.advance(61 * SECOND)     # both feeds stale: the option series on WBTC halts too
        feed.step()
        states = _states(client)
        assert states[AMZN][0] == states[BTC_CALL][0] == TradingState.HALTED
        assert states[AAPL][0] == TradingState.OPEN


def test_outlier_is_left_out_and_asset_price_is_the_median(gateway):
    gw, keys, _ = gateway
    clock = ManualClock(START)
    sources = [_replay("a", "AAPLX", [(0, "190.00")]), _replay("b", "AAPLX", [(0, "190.10")]),
               _replay("c", "AAPLX", [(0, "250.00")])]
    rules = {name: FeedRule(heartbeat_ns=3600 * SECOND) for name in "abc"}
    with operator(gw.orders, keys) as client:
        feed = FeedProcess(client, sources, rules, clock, outlier_bps=100, fixed_prices={"USDC": usd_units("1")})
        feed.step()
        assert feed.combined["AAPLX"].flagged == ("c",)
        assert feed.prices["AAPLX"] == usd_units("190.05")
        assert _states(client)[AAPL] == (TradingState.OPEN, 1_900_500)


def test_feeds_run_cli_sets_references_from_a_csv(gateway, tmp_path):
    gw, keys, _ = gateway
    (tmp_path / "aapl.csv").write_text("timestamp,price,confidence\n1700000000,187.25,0.05\n")
    (tmp_path / "feeds.toml").write_text(f"""
[gateway]
endpoint = "{gw.orders}"
key_file = "{keys / 'ops.key_secret'}"
server_key_file = "{keys / 'server.key'}"

[feeds]
poll_interval_ms = 20
fixed_prices = {{ USDC = "1" }}

[[sources]]
kind = "csv"
name = "aapl-csv"
asset = "AAPLX"
path = "aapl.csv"
heartbeat_s = 3600
max_confidence_bps = 10
""")
    run = subprocess.run([sys.executable, "-m", "feeds", "run", "--config", str(tmp_path / "feeds.toml"),
                          "--steps", "2"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with operator(gw.orders, keys) as client:
        assert _states(client)[AAPL] == (TradingState.OPEN, 1_872_500)
