"""The feed process end to end through a real gateway process: prices become
journaled SET_ASSET_PRICE / SET_REFERENCE commands; a feed older than its heartbeat
halts the instruments on its asset (spot pair and option series) and a fresh price
reopens them (an operator's own halt stands); an outlier source is left out; a
LOBSTER replay's references are in the journal, which replays to the live state
hash; the CLI runs from a config file; a spot move re-marks the BTC call and its
margins, and a stale underlying stops the re-marking."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import pytest
from feeds_harness import AAPL, AMZN, BTC_CALL, UPDATED, WBTC, deploy_aggregator, operator, write_feed_venue

from engine.core.types import CommandKind, TradingState
from engine.config import load_config
from engine.gateway.process import GatewayProcess
from engine.journal import FileJournal
from engine.replay import rebuild
from engine.schemas import Instruments
from feeds.chainlink import ChainlinkSource
from feeds.clock import ManualClock
from feeds.options import instrument_option_risk
from feeds.process import FeedProcess
from feeds.remark import VolSurface
from feeds.replay import Replay, Tick, lobster_mids
from feeds.rules import FeedRule
from feeds.update import NS_PER_SECOND, usd_units
from settlement.anvil import Anvil, anvil_command
from settlement.chain import connect

DATA = Path(__file__).resolve().parents[1] / "data"
AMZN_MESSAGES = DATA / "AMZN_2012-06-21_34200000_57600000_message_5.first20000rows.csv.gz"
AMZN_BOOK = DATA / "AMZN_2012-06-21_34200000_57600000_orderbook_5.first20000rows.csv.gz"
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

[[options.surfaces]]
underlying = "WBTC"
vol = 0.6

[[stock_tokens]]
asset = "AAPLX"
multiplier = "1"

[sessions]
start = 2026-01-01
end = 2035-12-31
""")
    run = subprocess.run([sys.executable, "-m", "feeds", "run", "--config", str(tmp_path / "feeds.toml"),
                          "--steps", "2"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with operator(gw.orders, keys) as client:
        assert _states(client)[AAPL] == (TradingState.OPEN, 1_872_500)


@pytest.fixture
def fresh_gateway(tmp_path):
    config, keys = write_feed_venue(tmp_path)
    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        yield gw, keys, tmp_path


def test_lobster_replay_references_are_journaled_and_replay(fresh_gateway):
    gw, keys, directory = fresh_gateway
    clock = ManualClock(START)
    ticks = lobster_mids(AMZN_MESSAGES, AMZN_BOOK)
    replay = Replay("amzn-lobster", "AMZNX", ticks, start=START, speed=600)
    with operator(gw.orders, keys) as client:
        feed = FeedProcess(client, [replay], {"amzn-lobster": FeedRule(heartbeat_ns=60 * SECOND)}, clock,
                           fixed_prices={"USDC": usd_units("1")})
        feed.run(steps=5, interval_ns=SECOND)       # five seconds at 600x: 40 minutes of the book
        status = client.status()
    expected, due = [], [t for i, t in enumerate(ticks) if replay.due(i) <= START + 4 * SECOND]
    for step in range(5):
        last = [t for i, t in enumerate(ticks) if replay.due(i) <= START + step * SECOND][-1]
        units = round(Fraction(last.price, 10**8) * 100) * 100   # nearest $0.01 tick, price units of $0.0001
        if not expected or expected[-1] != units:
            expected.append(units)
    assert len(due) > 1000 and len(expected) == 5
    journal = FileJournal(directory / "journal", writer=False)
    journaled = [int(row["price"]) for batch in journal.read(gw.last_seq + 1) for row in batch.commands
                 if row["kind"] == CommandKind.SET_REFERENCE and row["instrument"] == AMZN]
    assert journaled == expected
    assert rebuild(journal).engine.state_hash() == status.state_hash


def test_an_operator_halt_stands(fresh_gateway):
    gw, keys, _ = fresh_gateway
    clock = ManualClock(START)
    aapl = _replay("aapl-replay", "AAPLX", [(0, "191.00"), (100, "192.00")])
    with operator(gw.orders, keys) as client:
        feed = FeedProcess(client, [aapl], {"aapl-replay": FeedRule(heartbeat_ns=60 * SECOND)}, clock,
                           fixed_prices={"USDC": usd_units("1")})
        feed.step()
        client.set_state(AAPL, TradingState.HALTED)    # the operator's own halt
        clock.advance(61 * SECOND)
        feed.step()                                      # stale: already halted, not the feed's
        clock.advance(39 * SECOND)
        feed.step()                                      # fresh again: the operator's halt stands
        assert _states(client)[AAPL] == (TradingState.HALTED, 1_920_000)
        assert feed.halted == set()


def test_chainlink_feed_on_anvil_halts_and_reopens_the_option_series(fresh_gateway):
    if anvil_command() is None:
        pytest.skip("anvil not installed: run `npm ci` (package @foundry-rs/anvil)")
    gw, keys, directory = fresh_gateway
    with Anvil() as node, operator(gw.orders, keys) as client:
        w3 = connect(node.url)
        address, push = deploy_aggregator(w3, 8, "BTC / USD")
        push(95_000 * 10**8, UPDATED)
        clock = ManualClock((UPDATED + 10) * SECOND)
        feed = FeedProcess(client, [ChainlinkSource("btc-chainlink", "WBTC", w3, address)],
                           {"btc-chainlink": FeedRule(heartbeat_ns=3600 * SECOND)}, clock)
        feed.step()
        assert _states(client)[BTC_CALL][0] == TradingState.OPEN
        clock.advance(3600 * SECOND)       # the round is now 3610 s old: past the feed's one-hour heartbeat
        feed.step()
        states = _states(client)
        assert states[BTC_CALL][0] == TradingState.HALTED
        assert states[AMZN][0] == states[AAPL][0] == TradingState.OPEN
        push(96_000 * 10**8, UPDATED + 3605)
        feed.step()
        assert _states(client)[BTC_CALL][0] == TradingState.OPEN
    journal = FileJournal(directory / "journal", writer=False)
    journaled = [int(row["price"]) for batch in journal.read(gw.last_seq + 1) for row in batch.commands
                 if row["kind"] == CommandKind.SET_ASSET_PRICE and row["asset"] == WBTC]
    assert journaled == [95_000 * 10**8, 96_000 * 10**8]


def test_a_spot_move_remarks_the_btc_call_and_a_stale_underlying_stops_it(fresh_gateway):
    gw, keys, directory = fresh_gateway
    spec = next(i for i in load_config(directory / "venue.toml").venue.instruments if i.option is not None)
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    start = int(now.timestamp()) * SECOND
    clock = ManualClock(start)
    ticks = [Tick(start, usd_units("95000")), Tick(start + 30 * SECOND, usd_units("105000"))]
    btc = Replay("btc-replay", "WBTC", ticks, start=start)
    with operator(gw.orders, keys) as client:
        feed = FeedProcess(client, [btc], {"btc-replay": FeedRule(heartbeat_ns=60 * SECOND)}, clock,
                           fixed_prices={"USDC": usd_units("1")},
                           surfaces=[VolSurface(underlying="WBTC", vol=0.6)])
        feed.step()
        first = instrument_option_risk(spec, 95_000.0, 0.6, 0.0, now)
        assert _states(client)[BTC_CALL] == (TradingState.OPEN, int(first.mark_price))
        clock.advance(30 * SECOND)
        feed.step()
        second = instrument_option_risk(spec, 105_000.0, 0.6, 0.0, now + timedelta(seconds=30))
        assert _states(client)[BTC_CALL] == (TradingState.OPEN, int(second.mark_price))
        assert second.mark_price > first.mark_price
        clock.advance(61 * SECOND)          # the underlying is stale: halted, and its mark stays
        feed.step()
        assert _states(client)[BTC_CALL] == (TradingState.HALTED, int(second.mark_price))
    journal = FileJournal(directory / "journal", writer=False)
    kinds = (CommandKind.SET_REFERENCE, CommandKind.SET_OPTION_RISK)
    rows = [row for batch in journal.read(gw.last_seq + 1) for row in batch.commands
            if row["instrument"] == BTC_CALL and row["kind"] in kinds]
    assert [(int(r["kind"]), int(r["price"])) for r in rows if r["kind"] == CommandKind.SET_REFERENCE] == [
        (CommandKind.SET_REFERENCE, int(first.mark_price)), (CommandKind.SET_REFERENCE, int(second.mark_price))]
    assert [(int(r["qty"]), int(r["price"])) for r in rows if r["kind"] == CommandKind.SET_OPTION_RISK] == [
        (int(first.initial_per_qty), int(first.maintenance_per_qty)),
        (int(second.initial_per_qty), int(second.maintenance_per_qty))]
