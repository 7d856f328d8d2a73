"""Replay (the LOBSTER test data, a CSV) on an injected clock, and the seeded GBM."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.clock import ManualClock
from feeds.replay import Replay, Tick, csv_ticks, lobster_mids
from feeds.synthetic import GbmSource
from feeds.update import NS_PER_SECOND, MarketStatus, usd_units

DATA = Path(__file__).resolve().parents[1] / "data"
AMZN_MESSAGES = DATA / "AMZN_2012-06-21_34200000_57600000_message_5.first20000rows.csv.gz"
AMZN_BOOK = DATA / "AMZN_2012-06-21_34200000_57600000_orderbook_5.first20000rows.csv.gz"
AAPL_MESSAGES = DATA / "AAPL_2012-06-21_34200000_57600000_message_10.first999rows.csv.gz"
AAPL_BOOK = DATA / "AAPL_2012-06-21_34200000_57600000_orderbook_10.first999rows.csv.gz"
SECOND = NS_PER_SECOND


def test_lobster_mids_of_amzn():
    ticks = lobster_mids(AMZN_MESSAGES, AMZN_BOOK)
    # first book row: ask 223.95, bid 223.18 -> mid 223.565, half spread 0.385, at 09:30 New York (EDT)
    assert ticks[0].price == usd_units("223.565") and ticks[0].confidence == usd_units("0.385")
    assert datetime.fromtimestamp(ticks[0].timestamp // SECOND, UTC) == datetime(2012, 6, 21, 13, 30, tzinfo=UTC)
    assert ticks[0].timestamp % SECOND == 17_459_617                 # the message's nanoseconds, exactly
    assert all(a.price != b.price for a, b in zip(ticks, ticks[1:]))   # only changes of the mid
    assert all(a.timestamp <= b.timestamp for a, b in zip(ticks, ticks[1:]))
    assert all(t.market is MarketStatus.OPEN and t.confidence > 0 for t in ticks)
    assert all(usd_units("200") < t.price < usd_units("250") for t in ticks)


def test_lobster_mids_of_aapl_replayed_sixty_times_faster():
    ticks = lobster_mids(AAPL_MESSAGES, AAPL_BOOK)
    clock = ManualClock(10**18)
    replay = Replay("aapl-lobster", "AAPLX", ticks, start=clock.now(), speed=60)
    span = ticks[-1].timestamp - ticks[0].timestamp
    first = replay.poll(clock.now())
    assert first[0].price == ticks[0].price and first[0].timestamp == clock.now()
    clock.advance(span // 120)                 # half the recorded span, at 60x, is a quarter of... wall time
    middle = replay.poll(clock.now())
    assert all(u.timestamp <= clock.now() for u in middle)
    clock.advance(span)                        # well past the end
    rest = replay.poll(clock.now())
    assert len(first) + len(middle) + len(rest) == len(ticks) and replay.exhausted
    assert replay.poll(clock.now()) == []
    assert [u.price for u in first + middle + rest] == [t.price for t in ticks]


def test_replay_pacing_is_exact():
    ticks = [Tick(0, 100), Tick(10 * SECOND, 101), Tick(20 * SECOND, 102)]
    replay = Replay("r", "X", ticks, start=1_000 * SECOND, speed=2)
    assert [replay.due(i) for i in range(3)] == [1_000 * SECOND, 1_005 * SECOND, 1_010 * SECOND]
    assert [u.price for u in replay.poll(1_005 * SECOND - 1)] == [100]
    assert [u.price for u in replay.poll(1_005 * SECOND)] == [101]
    with pytest.raises(ValueError, match="time order"):
        Replay("r", "X", list(reversed(ticks)), start=0)
    with pytest.raises(ValueError, match="positive"):
        Replay("r", "X", ticks, start=0, speed=0)


def test_csv_ticks(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("timestamp,price,confidence,market\n"
                    "2026-11-30T14:30:00+00:00,187.25,0.05,open\n"
                    "1796135400.5,187.3,,closed\n")
    ticks = csv_ticks(path)
    assert ticks[0] == Tick(datetime(2026, 11, 30, 14, 30, tzinfo=UTC).timestamp() * SECOND,
                            usd_units("187.25"), usd_units("0.05"), MarketStatus.OPEN)
    assert ticks[1] == Tick(1_796_135_400_500_000_000, usd_units("187.3"), 0, MarketStatus.CLOSED)
    path.write_text("timestamp,price\n2026-11-30T14:30:00,1.123456789\n")
    with pytest.raises(ValueError, match="prices.csv:2"):
        csv_ticks(path)


def _gbm(**kw):
    options = {"initial": 90_000.0, "sigma": 0.6, "start": 0, "step_ns": SECOND, "seed": 7} | kw
    return GbmSource("gbm", "WBTC", **options)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=8))
def test_gbm_path_does_not_depend_on_polling_times(gaps):
    whole = _gbm().poll(sum(gaps) * SECOND)
    pieces, source, now = [], _gbm(), 0
    for gap in gaps:
        now += gap * SECOND
        pieces += source.poll(now)
    assert pieces == whole


def test_gbm_seed_start_and_statistics():
    first = _gbm().poll(0)
    assert [u.price for u in first] == [usd_units("90000")]
    assert _gbm(seed=8).poll(100 * SECOND) != _gbm().poll(100 * SECOND)
    # one-year horizon, daily steps, many seeds: log-returns have mean -sigma^2/2 and sd sigma
    finals = [_gbm(seed=s, step_ns=86_400 * SECOND, sigma=0.5).poll(365 * 86_400 * SECOND)[-1].price
              for s in range(400)]
    returns = np.log(np.array(finals) / usd_units("90000"))
    assert abs(returns.mean() + 0.125) < 0.1 and abs(returns.std() - 0.5) < 0.06
