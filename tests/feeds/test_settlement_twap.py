"""Settlement prices (feeds/twap.py) and the feed process settling expired
series: the exact time-weighted average of a step function over the window
before expiry, floored to a price unit; CloseSeries sent once, at expiry,
and never without a history covering the window."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import msgspec
import pytest
from feeds_harness import RecordingClient
from hypothesis import given
from hypothesis import strategies as st

from engine.core.types import TradingState
from engine.schemas import AssetInfo, InstrumentInfo
from feeds.clock import ManualClock
from feeds.process import FeedProcess
from feeds.replay import Replay, Tick
from feeds.rules import FeedRule
from feeds.twap import ReferenceHistory, settlement_units
from feeds.update import NS_PER_SECOND, usd_units

SECOND = NS_PER_SECOND
MINUTE = 60 * SECOND
EXPIRY = int(datetime(2026, 12, 18, 8, tzinfo=UTC).timestamp()) * SECOND
E8 = 10**8


def test_twap_integrates_the_step_function_exactly():
    history = ReferenceHistory(keep_ns=60 * MINUTE)
    for ts, price in ((0, 100), (10, 200), (40, 50)):
        history.add(ts, price)
    assert history.twap(0, 100) == Fraction(100 * 10 + 200 * 30 + 50 * 60, 100)
    assert history.twap(5, 15) == Fraction(100 * 5 + 200 * 5, 10)
    assert history.twap(50, 60) == 50
    assert history.twap(-1, 10) is None                  # the history does not reach back
    with pytest.raises(ValueError):
        history.add(39, 1)
    with pytest.raises(ValueError):
        history.twap(10, 10)


@given(st.lists(st.tuples(st.integers(1, 1_000), st.integers(1, 10**12)), min_size=1, max_size=30),
       st.integers(0, 5_000), st.integers(1, 5_000))
def test_twap_equals_a_unit_by_unit_average_and_pruning_keeps_the_window(steps, start, length):
    history = ReferenceHistory(keep_ns=length + 1)
    ts, points = 0, []
    for gap, price in steps:
        points.append((ts, price))
        history.add(ts, price)
        ts += gap
    # Pruning keeps what any window starting at or after newest - keep_ns needs.
    start = max(start, points[-1][0] - (length + 1), 0)
    end = start + length
    price_at = [next(p for t, p in reversed(points) if t <= moment) for moment in range(start, end)]
    assert history.twap(start, end) == Fraction(sum(price_at), length)


def test_settlement_units_floor_to_a_price_unit():
    assert settlement_units(Fraction(26_012_345_678, 1), 10**8, 10_000) == 2_601_234
    assert settlement_units(Fraction(250 * E8), 2 * E8, 10_000) == 1_250_000
    with pytest.raises(ValueError):
        settlement_units(Fraction(1), 0, 10_000)


CALL = 1
INSTRUMENTS = [
    InstrumentInfo(0, "TSLA.M/USDC", "TSLA.M", "USDC", 100, 1, 1, 10**9, 10**9, 10_000, 1_000, 1_000, 500,
                   0, 5, TradingState.OPEN, 0, 0),
    InstrumentInfo(CALL, "TSLA.M-20261218-250-C", "TSLA.M", "USDC", 100, 1, 1, 10**6, 10**10, 10_000, 100, 2_000,
                   1_000, 0, 3, TradingState.OPEN, 0, 0, "2026-12-18", "250", "C", "1"),
]
ASSETS = [AssetInfo(0, "USDC", 6, 6, 0), AssetInfo(1, "TSLA.M", 18, 6, 3000)]


def _feed(ticks: list[tuple[int, str]], start: int, instruments=INSTRUMENTS) -> tuple[FeedProcess, ManualClock,
                                                                                     RecordingClient]:
    client = RecordingClient(instruments, ASSETS)
    source = Replay("tsla", "TSLA.M", [Tick(t, usd_units(p)) for t, p in ticks], start=ticks[0][0])
    clock = ManualClock(start)
    feed = FeedProcess(client, [source], {"tsla": FeedRule(heartbeat_ns=3_600 * SECOND)}, clock,
                       fixed_prices={"USDC": usd_units("1")})
    return feed, clock, client


def test_the_feed_process_settles_at_the_twap_of_the_last_30_minutes():
    start = EXPIRY - 40 * MINUTE
    ticks = [(start, "240"), (EXPIRY - 20 * MINUTE, "260"), (EXPIRY - 5 * MINUTE, "280"), (EXPIRY + MINUTE, "999")]
    feed, clock, client = _feed(ticks, start)
    for moment in range(start, EXPIRY, MINUTE):
        clock.sleep_until(moment)
        feed.step()
    assert client.of_kind("close") == []                   # not before expiry
    clock.sleep_until(EXPIRY)
    feed.step()
    # $240 for 10 minutes, $260 for 15, $280 for 5 of the last 30: $256.666... -> 2,566,666 price units.
    assert client.of_kind("close") == [(CALL, 2_566_666)]
    clock.sleep_until(EXPIRY + 2 * MINUTE)
    feed.step()
    assert client.of_kind("close") == [(CALL, 2_566_666)]  # once


def test_a_step_after_the_expiry_instant_still_settles_at_the_window_before_it():
    start = EXPIRY - 40 * MINUTE
    ticks = [(start, "240"), (EXPIRY - 20 * MINUTE, "260"), (EXPIRY - 5 * MINUTE, "280"), (EXPIRY + MINUTE, "999")]
    feed, clock, client = _feed(ticks, start)
    for moment in range(start, EXPIRY, MINUTE):
        clock.sleep_until(moment)
        feed.step()
    clock.sleep_until(EXPIRY + 2 * MINUTE)                 # the first step after expiry comes late
    feed.step()
    assert client.of_kind("close") == [(CALL, 2_566_666)]  # the $999 after expiry does not count


def test_a_series_with_an_expiry_time_settles_at_that_time_of_its_date():
    at = EXPIRY - (5 * 3_600 + 29 * 60 + 55) * SECOND      # 02:30:05 UTC
    timed = [INSTRUMENTS[0], msgspec.structs.replace(INSTRUMENTS[1], expiry_time="02:30:05")]
    feed, clock, client = _feed([(at - 40 * MINUTE, "250")], at - 40 * MINUTE, timed)
    for moment in range(at - 40 * MINUTE, at, MINUTE):
        clock.sleep_until(moment)
        feed.step()
    assert client.of_kind("close") == []
    clock.sleep_until(at + SECOND)
    feed.step()
    assert client.of_kind("close") == [(CALL, 2_500_000)]


def test_no_settlement_without_a_history_over_the_window():
    start = EXPIRY - 10 * MINUTE                           # the process started 10 minutes before expiry
    feed, clock, client = _feed([(start, "250")], start)
    feed.step()
    clock.sleep_until(EXPIRY)
    feed.step()
    assert client.of_kind("close") == []
