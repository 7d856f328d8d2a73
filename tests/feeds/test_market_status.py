"""The sources' market status (feeds/market_status.py): a source reporting the stock
halted at home halts the token's instruments (through a real gateway process too)
and they reopen when it no longer does; ``closed`` in the calendar's regular
session gives the token the closed session's policy; ``open`` outside it is
logged and counted, and the calendar's session stands."""

from __future__ import annotations

from datetime import UTC, date, datetime
from fractions import Fraction

import pytest
from feeds_harness import AAPL, AMZN, RecordingClient, operator, write_feed_venue

from engine.core.types import TradingState
from engine.gateway.process import GatewayProcess
from engine.schemas import AssetInfo, InstrumentInfo, Instruments
from feeds.clock import ManualClock
from feeds.market_status import MarketView, market_view
from feeds.multipliers import TokenMultiplier
from feeds.process import FeedProcess
from feeds.replay import Replay, Tick, csv_ticks
from feeds.rules import FeedRule
from feeds.sessions import Session, SessionCalendar
from feeds.update import NS_PER_SECOND, MarketStatus, PriceUpdate, usd_units

SECOND = NS_PER_SECOND
TSLA_USDC, TSLA_PUT, BTC_CALL = 0, 1, 2
REGULAR = datetime(2026, 6, 2, 15, 0, tzinfo=UTC)    # Tuesday, 11:00 in New York
NIGHT = datetime(2026, 6, 2, 3, 0, tzinfo=UTC)       # 23:00 on Monday in New York: overnight


def _update(source: str, market: MarketStatus) -> PriceUpdate:
    return PriceUpdate(asset="TSLA.M", price=usd_units("250"), confidence=0, timestamp=0, source=source,
                       market=market)


def test_market_view_against_the_calendar():
    open_, closed, halted = MarketStatus.OPEN, MarketStatus.CLOSED, MarketStatus.HALTED
    assert market_view("TSLA.M", Session.REGULAR, [_update("a", open_)]) == MarketView(Session.REGULAR, None, None)
    view = market_view("TSLA.M", Session.REGULAR, [_update("a", open_), _update("b", halted), _update("c", halted)])
    assert view == MarketView(Session.REGULAR, "the home market halts TSLA.M (source b, c)", None)
    view = market_view("TSLA.M", Session.REGULAR, [_update("a", closed), _update("b", MarketStatus.UNKNOWN)])
    assert view.session is Session.CLOSED and view.halt is None and view.disagreement.startswith("a report")
    view = market_view("TSLA.M", Session.OVERNIGHT, [_update("a", open_)])
    assert view.session is Session.OVERNIGHT and "the calendar's stands" in view.disagreement
    assert market_view("TSLA.M", Session.CLOSED, [_update("a", closed)]) == MarketView(Session.CLOSED, None, None)
    assert market_view("TSLA.M", None, [_update("a", halted), _update("b", open_)]) == MarketView(
        None, "the home market halts TSLA.M (source a)", None)


def test_a_csv_source_reports_a_halt(tmp_path):
    path = tmp_path / "tsla.csv"
    path.write_text("timestamp,price,market\n1780412400,250.10,halted\n1780412700,251,open\n")
    assert [t.market for t in csv_ticks(path)] == [MarketStatus.HALTED, MarketStatus.OPEN]


def _option(iid: int, symbol: str, base: str, strike: str) -> InstrumentInfo:
    return InstrumentInfo(iid, symbol, base, "USDC", 100, 1, 1, 10**6, 10**10, 10_000, 100, 2_000, 1_000, 0, 3,
                          TradingState.OPEN, 0, 0, "2026-12-18", strike, "P", "1")


INSTRUMENTS = [InstrumentInfo(TSLA_USDC, "TSLA.M/USDC", "TSLA.M", "USDC", 100, 1, 1, 10**9, 10**9, 10_000, 1_000,
                              1_000, 500, 0, 5, TradingState.OPEN, 0, 0),
               _option(TSLA_PUT, "TSLA.M-20261218-200-P", "TSLA.M", "200"),
               _option(BTC_CALL, "BTC-20261218-100000-P", "WBTC", "100000")]
ASSETS = [AssetInfo(0, "USDC", 6, 6, 0), AssetInfo(1, "TSLA.M", 18, 6, 3000), AssetInfo(2, "WBTC", 8, 8, 1000)]


def _feed(client, start: datetime, tsla: list[tuple[int, str, MarketStatus]]) -> tuple[FeedProcess, ManualClock]:
    begin = int(start.timestamp()) * SECOND
    clock = ManualClock(begin)
    sources = [Replay("tsla", "TSLA.M", [Tick(begin + s * SECOND, usd_units(p), 0, m) for s, p, m in tsla],
                      start=begin),
               Replay("btc", "WBTC", [Tick(begin, usd_units("95000"), 0, MarketStatus.OPEN)], start=begin)]
    rules = {s.name: FeedRule(heartbeat_ns=86_400 * SECOND) for s in sources}
    return FeedProcess(client, sources, rules, clock, fixed_prices={"USDC": usd_units("1")},
                       tokens=[TokenMultiplier(asset="TSLA.M", current=Fraction(1))],
                       calendar=SessionCalendar("XNYS", date(2026, 6, 1), date(2026, 6, 5))), clock


def test_a_home_market_halt_halts_the_token_and_its_end_reopens_it():
    client = RecordingClient(INSTRUMENTS, ASSETS)
    feed, clock = _feed(client, REGULAR, [(0, "250", MarketStatus.HALTED), (300, "251", MarketStatus.OPEN)])
    feed.step()
    assert client.states == {TSLA_USDC: TradingState.HALTED, TSLA_PUT: TradingState.HALTED,
                             BTC_CALL: TradingState.OPEN}
    assert (TSLA_USDC, 2_500_000) in client.of_kind("reference")   # the price still flows while halted
    assert feed.halts == {"TSLA.M": "the home market halts TSLA.M (source tsla)"}
    clock.advance(300 * SECOND)
    feed.step()
    assert set(client.states.values()) == {TradingState.OPEN} and feed.halted == set()


def test_closed_in_the_regular_session_takes_the_closed_policy(caplog):
    client = RecordingClient(INSTRUMENTS, ASSETS)
    feed, clock = _feed(client, REGULAR, [(0, "250", MarketStatus.OPEN), (60, "250", MarketStatus.CLOSED),
                                          (120, "250", MarketStatus.CLOSED), (180, "250.5", MarketStatus.OPEN)])
    feed.step()                                        # regular: 5% / 30%
    for _ in range(3):
        clock.advance(60 * SECOND)
        feed.step()
    assert client.of_kind("haircut") == [(1, 3000), (1, 4000), (1, 3000)]
    assert [b[1] for b in client.of_kind("bands")] == [500, 1000, 500]
    assert feed.disagreement_count == {"TSLA.M": 1}
    assert caplog.text.count("report the market closed in the calendar's regular session") == 1


def test_open_outside_regular_hours_is_counted_and_the_calendar_stands():
    client = RecordingClient(INSTRUMENTS, ASSETS)
    feed, clock = _feed(client, NIGHT, [(0, "250", MarketStatus.OPEN), (60, "250", MarketStatus.OPEN)])
    feed.step()
    clock.advance(60 * SECOND)
    feed.step()
    assert feed.sessions == {"TSLA.M": Session.OVERNIGHT}
    assert client.of_kind("haircut") == [(1, 4000)]
    assert feed.disagreement_count == {"TSLA.M": 1}


@pytest.fixture
def venue(tmp_path):
    config, keys = write_feed_venue(tmp_path)
    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        yield gw, keys


def test_a_home_market_halt_through_the_gateway(venue):
    gw, keys = venue
    start = int(REGULAR.timestamp()) * SECOND
    clock = ManualClock(start)
    ticks = [Tick(start, usd_units("185"), 0, MarketStatus.OPEN),
             Tick(start + 60 * SECOND, usd_units("185.1"), 0, MarketStatus.HALTED),
             Tick(start + 600 * SECOND, usd_units("186"), 0, MarketStatus.OPEN)]
    with operator(gw.orders, keys) as ops:
        feed = FeedProcess(ops, [Replay("amzn", "AMZNX", ticks, start=start)],
                           {"amzn": FeedRule(heartbeat_ns=3600 * SECOND)}, clock,
                           fixed_prices={"USDC": usd_units("1")},
                           tokens=[TokenMultiplier(asset="AMZNX", current=Fraction(1))])
        seen = []
        for _ in range(3):
            feed.step()
            listing = ops.instruments()
            assert isinstance(listing, Instruments)
            seen.append((listing.instruments[AMZN].state, listing.instruments[AMZN].reference,
                         listing.instruments[AAPL].state))
            clock.advance(300 * SECOND)
        assert seen == [(TradingState.OPEN, 1_850_000, TradingState.OPEN),
                        (TradingState.HALTED, 1_851_000, TradingState.OPEN),
                        (TradingState.OPEN, 1_860_000, TradingState.OPEN)]
