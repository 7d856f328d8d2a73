"""A restarted feed process against a real gateway process: it reopens the halts an
earlier run put on instruments once its rules allow (the run killed with SIGKILL
while an instrument was halted for a stale price), leaves an operator's halt alone,
still holds a split's halt until a price adjusted for the split arrives, and
ignores a state file that is not the venue's; a halt is on file before it is sent."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from feeds_harness import AAPL, AMZN, RecordingClient, operator, write_feed_venue
from test_feed_rules_in_process import ASSETS, INSTRUMENTS, TSLA_BTC, TSLA_USDC

from engine.core.types import TradingState
from engine.gateway.process import GatewayProcess
from engine.schemas import Instruments, Reject
from feeds.clock import ManualClock
from feeds.feed_state import FeedState, load_state, save_state
from feeds.multipliers import StagedMultiplier, TokenMultiplier
from feeds.process import FeedProcess
from feeds.replay import Replay, Tick
from feeds.rules import FeedRule
from feeds.update import NS_PER_SECOND, usd_units

SECOND = NS_PER_SECOND


@pytest.fixture
def venue(tmp_path):
    config, keys = write_feed_venue(tmp_path)
    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        yield gw, keys, tmp_path


def _states(client) -> dict[int, tuple[int, int]]:
    listing = client.instruments()
    assert isinstance(listing, Instruments)
    return {i.instrument: (i.state, i.reference) for i in listing.instruments}


def _feeds_config(directory, gw, keys) -> str:
    (directory / "aapl.csv").write_text("timestamp,price\n1700000000,187.25\n")
    (directory / "amzn.csv").write_text("timestamp,price\n1700000000,186.50\n")
    path = directory / "feeds.toml"
    path.write_text(f"""
[gateway]
endpoint = "{gw.orders}"
key_file = "{keys / 'ops.key_secret'}"
server_key_file = "{keys / 'server.key'}"

[feeds]
poll_interval_ms = 100
fixed_prices = {{ USDC = "1" }}
state_file = "feed-state.json"

[[sources]]
kind = "csv"
name = "aapl-csv"
asset = "AAPLX"
path = "aapl.csv"
heartbeat_s = 3

[[sources]]
kind = "csv"
name = "amzn-csv"
asset = "AMZNX"
path = "amzn.csv"
heartbeat_s = 3600
""")
    return str(path)


def test_a_killed_feed_process_reopens_its_stale_halt_after_a_restart(venue):
    gw, keys, directory = venue
    config = _feeds_config(directory, gw, keys)
    command = [sys.executable, "-m", "feeds", "run", "--config", config]
    with operator(gw.orders, keys) as ops:
        feed = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while _states(ops)[AAPL] != (TradingState.HALTED, 1_872_500):   # priced, then stale after 3 s
                assert time.monotonic() < deadline, "the feed process never halted AAPLX/USDC"
                time.sleep(0.05)
        finally:
            feed.kill()
            feed.wait(timeout=30)
        assert load_state(directory / "feed-state.json").halted == [AAPL]
        ops.set_state(AMZN, TradingState.HALTED)   # the operator's own halt, while the feed is down

        # The CSV replays from the start: AAPLX's price is fresh again.
        run = subprocess.run([*command, "--steps", "3"], capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        states = _states(ops)
        assert states[AAPL] == (TradingState.OPEN, 1_872_500)
        assert states[AMZN] == (TradingState.HALTED, 1_865_000)
    assert load_state(directory / "feed-state.json").halted == []


def test_a_split_halt_is_still_honoured_after_a_restart(venue):
    gw, keys, directory = venue
    activation = datetime(2026, 6, 8, 13, 30, tzinfo=UTC)
    start = int((activation - timedelta(minutes=10)).timestamp()) * SECOND
    token = TokenMultiplier(asset="AMZNX", current=Fraction(1), staged=StagedMultiplier(Fraction(2), activation))
    state_path = directory / "feed-state.json"
    clock = ManualClock(start)

    def feed_process(client, ticks: list[tuple[int, str]]) -> FeedProcess:
        replay = Replay("amzn", "AMZNX", [Tick(clock.now() + s * SECOND, usd_units(p)) for s, p in ticks],
                        start=clock.now())
        return FeedProcess(client, [replay], {"amzn": FeedRule(heartbeat_ns=3600 * SECOND)}, clock,
                           fixed_prices={"USDC": usd_units("1")}, tokens=[token], state_path=state_path)

    with operator(gw.orders, keys) as ops:
        with operator(gw.orders, keys) as first_client:
            first = feed_process(first_client, [(0, "185")])
            first.step()
            clock.advance(6 * 60 * SECOND)          # 4 minutes before the split: halted
            first.step()
            assert _states(ops)[AMZN] == (TradingState.HALTED, 1_850_000)
        assert load_state(state_path) == FeedState(seq=load_state(state_path).seq, halted=[AMZN],
                                                   last_references={"AMZNX": "185"})

        clock.advance(4 * 60 * SECOND + 10 * SECOND)   # activation + 10 s, in a new process
        with operator(gw.orders, keys) as second_client:
            # A heartbeat re-posts the unadjusted share price, then the adjusted one arrives.
            second = feed_process(second_client, [(0, "185"), (10, "92.60")])
            assert second.halted == {AMZN}
            second.step()
            assert _states(ops)[AMZN] == (TradingState.HALTED, 1_850_000)
            assert second.prices == {}
            clock.advance(10 * SECOND)
            second.step()
            assert _states(ops)[AMZN] == (TradingState.OPEN, 1_852_000)   # 92.60 x 2: no jump
            assert second.prices == {"AMZNX": usd_units("185.20")}
    assert load_state(state_path).halted == []


def test_a_state_file_ahead_of_the_venue_is_not_taken(venue):
    gw, keys, directory = venue
    state_path = directory / "feed-state.json"
    with operator(gw.orders, keys) as ops:
        ops.set_state(AAPL, TradingState.HALTED)
        save_state(state_path, FeedState(seq=ops.status().last_seq + 1, halted=[AAPL]))
        clock = ManualClock(1_800_000_000 * SECOND)
        replay = Replay("aapl", "AAPLX", [Tick(clock.now(), usd_units("190.5"))], start=clock.now())
        feed = FeedProcess(ops, [replay], {"aapl": FeedRule(heartbeat_ns=60 * SECOND)}, clock,
                           fixed_prices={"USDC": usd_units("1")}, state_path=state_path)
        assert feed.halted == set()
        feed.step()
        assert _states(ops)[AAPL] == (TradingState.HALTED, 1_905_000)   # not the feed's to reopen


def test_an_unreadable_state_file_is_logged_and_left_out(tmp_path, caplog):
    path = tmp_path / "feed-state.json"
    assert load_state(path) is None
    path.write_text('{"seq": 3, "halted": [1], "last_references": {"AMZNX": "1/0"}}')
    assert load_state(path) is None and "unreadable" in caplog.text
    save_state(path, FeedState(seq=4, halted=[1, 2], last_references={"AMZNX": "371/2"}))
    assert load_state(path).references() == {"AMZNX": Fraction(371, 2)}


class FileCheckingClient(RecordingClient):
    """A recording client that reads the feed state file as each SET_STATE arrives,
    and refuses the halts of ``refuse``."""

    def __init__(self, path, refuse: set[int]) -> None:
        super().__init__(INSTRUMENTS, ASSETS)
        self.path = path
        self.refuse = refuse
        self.on_file: list[list[int]] = []

    def set_state(self, instrument: int, state: int):
        self.on_file.append(load_state(self.path).halted)
        if instrument in self.refuse:
            return Reject(0, 0, 9, "refused")
        return super().set_state(instrument, state)


def test_a_halt_is_on_file_before_it_is_sent(tmp_path):
    path = tmp_path / "feed-state.json"
    client = FileCheckingClient(path, refuse={TSLA_BTC})
    clock = ManualClock(0)
    replay = Replay("tsla", "TSLA.M", [Tick(0, usd_units("250"))], start=0)
    feed = FeedProcess(client, [replay], {"tsla": FeedRule(heartbeat_ns=60 * SECOND)}, clock,
                       fixed_prices={"USDC": usd_units("1"), "WBTC": usd_units("95000")}, state_path=path)
    feed.step()
    clock.advance(61 * SECOND)
    feed.step()                                      # stale: both TSLA.M pairs halt, one is refused
    assert client.on_file == [[TSLA_USDC], [TSLA_USDC, TSLA_BTC]]
    assert feed.halted == {TSLA_USDC} and load_state(path).halted == [TSLA_USDC]
