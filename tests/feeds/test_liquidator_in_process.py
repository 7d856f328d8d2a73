"""The feed process as the venue's liquidator, end to end through a real gateway
process: an account short a BTC call against AMZNX and USDC falls under its
maintenance margin; it is not liquidated while AMZNX's price is stale, nor in the
first seconds after the regular open, and it is liquidated (LIQUIDATE journaled,
its short bought back inside the band) once a fresh price arrives or the grace
period is over."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from feeds_harness import AMZN, BTC_CALL, operator, write_feed_venue

from engine.core.types import CommandKind, Side, TradingState
from engine.gateway.process import GatewayProcess
from engine.journal import FileJournal
from engine.schemas import Ack, Fill, Instruments, MarginCalls
from feeds.clock import ManualClock
from feeds.liquidator import LiquidationSettings
from feeds.multipliers import TokenMultiplier
from feeds.process import FeedProcess
from feeds.replay import Replay, Tick
from feeds.rules import FeedRule
from feeds.session_policy import HoldBack
from feeds.sessions import SessionCalendar
from feeds.update import NS_PER_SECOND, usd_units

SECOND = NS_PER_SECOND
HOLDER, MM = 1, 2                        # account ids
CALL_PRICE = 50_000_000                  # $5,000 per contract, the series' listed reference
SHORT = 60                               # 0.6 contract
MAINTENANCE = 100_000_000_000            # $1,000 per 0.01 contract: far above the holder's collateral


@pytest.fixture
def venue(tmp_path):
    config, keys = write_feed_venue(tmp_path, {"holder": {"AMZNX": "100", "USDC": "10000"},
                                               "mm": {"USDC": "1000000"}})
    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        yield gw, keys, tmp_path


def _ns(instant: datetime) -> int:
    return int(instant.timestamp()) * SECOND


def _replay(name: str, asset: str, start: int, prices: list[tuple[int, str]]) -> Replay:
    return Replay(name, asset, [Tick(start + s * SECOND, usd_units(p)) for s, p in prices], start=start)


def _short_the_call(holder, mm) -> None:
    """The holder sells 0.6 BTC call to the market maker at the listed reference."""
    assert isinstance(mm.place(BTC_CALL, Side.BUY, SHORT, CALL_PRICE), Ack)
    assert isinstance(holder.place(BTC_CALL, Side.SELL, SHORT, CALL_PRICE), Ack)
    holder.poll_events(0.5)
    assert holder.margin().positions[0].position == -SHORT


def _margin_call(ops) -> list[int]:
    calls = ops.margin_calls()
    assert isinstance(calls, MarginCalls)
    return [c.account for c in calls.accounts]


def _liquidations(directory, after_seq: int) -> list[int]:
    journal = FileJournal(directory / "journal", writer=False)
    return [int(row["account"]) for batch in journal.read(after_seq + 1) for row in batch.commands
            if row["kind"] == CommandKind.LIQUIDATE]


def _state(ops, instrument: int) -> int:
    listing = ops.instruments()
    assert isinstance(listing, Instruments)
    return listing.instruments[instrument].state


def test_no_liquidation_on_a_stale_price_then_one_on_the_fresh_price(venue):
    gw, keys, directory = venue
    start = 1_800_000_000 * SECOND
    clock = ManualClock(start)
    amzn = _replay("amzn", "AMZNX", start, [(0, "185"), (70, "184")])
    btc = _replay("btc", "WBTC", start, [(0, "95000")])
    rules = {"amzn": FeedRule(heartbeat_ns=60 * SECOND), "btc": FeedRule(heartbeat_ns=3600 * SECOND)}
    with operator(gw.orders, keys) as ops, operator(gw.orders, keys) as feed_client, \
            operator(gw.orders, keys, "holder") as holder, operator(gw.orders, keys, "mm") as mm:
        feed = FeedProcess(feed_client, [amzn, btc], rules, clock, fixed_prices={"USDC": usd_units("1")},
                           liquidation=LiquidationSettings(interval_ns=SECOND))
        feed.step()
        _short_the_call(holder, mm)

        clock.advance(61 * SECOND)                  # AMZNX's price is older than its heartbeat
        assert ops.set_option_risk(BTC_CALL, MAINTENANCE, MAINTENANCE).maintenance == MAINTENANCE
        feed.step()
        assert _state(ops, AMZN) == TradingState.HALTED
        assert _margin_call(ops) == [HOLDER]
        assert feed.liquidator.liquidated == {}
        assert feed.liquidator.held_back == {HoldBack.STALE: 1}
        assert feed.liquidator.last_held[HOLDER] == "AMZNX: stale price"

        clock.advance(SECOND)                       # still stale: held back again, nothing sent
        feed.step()
        assert feed.liquidator.held_back == {HoldBack.STALE: 2} and _liquidations(directory, gw.last_seq) == []

        assert isinstance(mm.place(BTC_CALL, Side.SELL, SHORT, CALL_PRICE), Ack)
        clock.advance(8 * SECOND)                   # t = 70: a fresh AMZNX price
        feed.step()
        assert _state(ops, AMZN) == TradingState.OPEN
        assert feed.liquidator.liquidated == {HOLDER: 1} and HOLDER not in feed.liquidator.last_held
        heard = holder.poll_events(1.0)
        assert [(f.instrument, f.qty, f.price) for f in heard if isinstance(f, Fill)] == [
            (BTC_CALL, SHORT, CALL_PRICE)]
        assert holder.margin().positions == [] and _margin_call(ops) == []
        clock.advance(SECOND)                       # nobody under maintenance: nothing more
        feed.step()
    assert _liquidations(directory, gw.last_seq) == [HOLDER]


def test_no_liquidation_in_the_open_grace_period(venue):
    gw, keys, directory = venue
    opens = datetime(2026, 7, 1, 13, 30, tzinfo=UTC)     # Wednesday, 09:30 in New York
    start = _ns(opens - timedelta(minutes=1))
    clock = ManualClock(start)
    amzn = _replay("amzn", "AMZNX", start, [(0, "185"), (60, "185.5"), (70, "185.25"), (121, "185.75")])
    btc = _replay("btc", "WBTC", start, [(0, "95000")])
    rules = {"amzn": FeedRule(heartbeat_ns=3600 * SECOND), "btc": FeedRule(heartbeat_ns=3600 * SECOND)}
    with operator(gw.orders, keys) as ops, operator(gw.orders, keys) as feed_client, \
            operator(gw.orders, keys, "holder") as holder, operator(gw.orders, keys, "mm") as mm:
        feed = FeedProcess(feed_client, [amzn, btc], rules, clock, fixed_prices={"USDC": usd_units("1")},
                           tokens=[TokenMultiplier(asset="AMZNX", current=Fraction(1))],
                           calendar=SessionCalendar("XNYS", date(2026, 6, 29), date(2026, 7, 3)),
                           liquidation=LiquidationSettings(interval_ns=SECOND, open_grace=timedelta(seconds=60)))
        feed.step()                                 # pre-market
        _short_the_call(holder, mm)
        assert ops.set_option_risk(BTC_CALL, MAINTENANCE, MAINTENANCE).maintenance == MAINTENANCE
        assert isinstance(mm.place(BTC_CALL, Side.SELL, SHORT, CALL_PRICE), Ack)

        clock.advance(70 * SECOND)                  # 10 s after the open: prices still lag the auction
        feed.step()
        assert _margin_call(ops) == [HOLDER] and feed.liquidator.liquidated == {}
        assert feed.liquidator.held_back == {HoldBack.OPEN_GRACE: 1}
        assert "grace" in feed.liquidator.last_held[HOLDER]

        clock.advance(50 * SECOND)                  # 09:31:00: the grace is over
        feed.step()
        assert feed.liquidator.liquidated == {HOLDER: 1}
        holder.poll_events(1.0)
        assert holder.margin().positions == [] and _margin_call(ops) == []
    assert _liquidations(directory, gw.last_seq) == [HOLDER]
