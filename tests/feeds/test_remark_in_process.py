"""Option re-marking, stock-token multipliers and session halts in the feed process,
through a recording operator client (the end-to-end re-marking path is in
tests/feeds/test_feed_process.py): a spot move re-marks the chain and its margins,
a stale underlying stops it, a 2:1 split halts and resumes without a jump, a halted
session halts the stock tokens' instruments only."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from feeds_harness import RecordingClient

from engine.core.types import TradingState
from engine.schemas import AssetInfo, InstrumentInfo
from feeds.clock import ManualClock
from feeds.multipliers import StagedMultiplier, TokenMultiplier
from feeds.options import MarginRates, SeriesName, option_risk
from feeds.process import FeedProcess
from feeds.remark import VolSurface
from feeds.replay import Replay, Tick
from feeds.rules import FeedRule
from feeds.session_policy import SessionPolicies, SessionPolicy
from feeds.sessions import SessionCalendar
from feeds.update import NS_PER_SECOND, usd_units

SECOND = NS_PER_SECOND
TSLA_USDC, BTC_CALL, BTC_PUT, TSLA_PUT = 0, 1, 2, 3
NOW = datetime(2026, 6, 2, 14, 0, tzinfo=UTC)     # a Tuesday, 10:00 in New York


def _ns(instant: datetime) -> int:
    return int(instant.timestamp()) * SECOND


def _option(iid: int, symbol: str, base: str, expiry: str, strike: str, right: str) -> InstrumentInfo:
    return InstrumentInfo(iid, symbol, base, "USDC", 100, 1, 1, 10**6, 10**10, 10_000, 100, 2_000, 1_000, 0, 3,
                          TradingState.OPEN, 0, 0, expiry, strike, right, "1")


INSTRUMENTS = [
    InstrumentInfo(TSLA_USDC, "TSLA.M/USDC", "TSLA.M", "USDC", 100, 1, 1, 10**9, 10**9, 10_000, 1_000, 1_000, 500,
                   0, 5, TradingState.OPEN, 0, 0),
    _option(BTC_CALL, "BTC-20261231-100000-C", "WBTC", "2026-12-31", "100000", "C"),
    _option(BTC_PUT, "BTC-20270326-80000-P", "WBTC", "2027-03-26", "80000", "P"),
    _option(TSLA_PUT, "TSLA.M-20261218-200-P", "TSLA.M", "2026-12-18", "200", "P"),
]
ASSETS = [AssetInfo(0, "USDC", 6, 6, 0), AssetInfo(1, "TSLA.M", 18, 6, 3000), AssetInfo(2, "WBTC", 8, 8, 1000)]
BTC_SURFACE = VolSurface(underlying="WBTC", vol=0.6, expiries={"2027-03-26": 0.7})


def _replay(name: str, asset: str, start: datetime, prices: list[tuple[float, str]]) -> Replay:
    ticks = [Tick(_ns(start) + int(s * SECOND), usd_units(p)) for s, p in prices]
    return Replay(name, asset, ticks, start=ticks[0].timestamp)


def _expected(inst: InstrumentInfo, spot: str, vol: float, now: datetime) -> tuple[int, int, int]:
    series = SeriesName(inst.base, date.fromisoformat(inst.expiry), Decimal(inst.strike), inst.right == "C")
    units = option_risk(series, float(spot), vol, 0.0, now, MarginRates(), contract_size=Decimal(1),
                        price_scale=inst.price_scale, tick_size=inst.tick_size, qty_scale=inst.qty_scale,
                        max_price=inst.max_price)
    return int(units.mark_price), int(units.initial_per_qty), int(units.maintenance_per_qty)


def _process(client, sources, start: datetime, heartbeat_s: int = 60, **kw) -> tuple[FeedProcess, ManualClock]:
    clock = ManualClock(_ns(start))
    rules = {s.name: FeedRule(heartbeat_ns=heartbeat_s * SECOND) for s in sources}
    return FeedProcess(client, sources, rules, clock, fixed_prices={"USDC": usd_units("1")}, **kw), clock


def test_a_spot_move_remarks_the_chain_and_a_stale_underlying_stops_it():
    client = RecordingClient(INSTRUMENTS, ASSETS)
    btc = _replay("btc", "WBTC", NOW, [(0, "95000"), (30, "105000"), (120, "104000")])
    feed, clock = _process(client, [btc], NOW, surfaces=[BTC_SURFACE])
    feed.step()
    call, put = _expected(INSTRUMENTS[BTC_CALL], "95000", 0.6, NOW), _expected(INSTRUMENTS[BTC_PUT], "95000", 0.7, NOW)
    assert client.of_kind("reference") == [(BTC_CALL, call[0]), (BTC_PUT, put[0])]   # per-expiry vol for the put
    assert client.of_kind("option_risk") == [(BTC_CALL, *call[1:]), (BTC_PUT, *put[1:])]
    assert TSLA_PUT not in feed.references          # no surface for TSLA.M: not re-marked

    client.sent.clear()
    clock.advance(SECOND)                             # same spot, one second of time decay
    feed.step()
    moved = _expected(INSTRUMENTS[BTC_CALL], "95000", 0.6, NOW + timedelta(seconds=1))
    assert [r for r in client.of_kind("reference") if r[0] == BTC_CALL] == (
        [] if moved[0] == call[0] else [(BTC_CALL, moved[0])])              # sent only when it changed
    assert [r for r in client.of_kind("option_risk") if r[0] == BTC_CALL] == (
        [] if moved[1:] == call[1:] else [(BTC_CALL, *moved[1:])])
    client.sent.clear()
    feed.step()                                       # nothing changed at all: no command sent,
    assert [c[0] for c in client.sent] == ["greeks"]  # only the greeks, published every step

    client.sent.clear()
    clock.advance(29 * SECOND)                        # t = 30: BTC jumps to 105000
    feed.step()
    later = NOW + timedelta(seconds=30)
    call = _expected(INSTRUMENTS[BTC_CALL], "105000", 0.6, later)
    assert (BTC_CALL, call[0]) in client.of_kind("reference")
    assert (BTC_CALL, *call[1:]) in client.of_kind("option_risk")
    assert call[0] > feed.references[BTC_PUT]         # the call is now worth more than the put

    client.sent.clear()
    clock.advance(61 * SECOND)                        # t = 91: BTC's last price is older than its heartbeat
    feed.step()
    assert client.of_kind("reference") == client.of_kind("option_risk") == []
    assert client.of_kind("state") == [(BTC_CALL, TradingState.HALTED), (BTC_PUT, TradingState.HALTED)]

    client.sent.clear()
    clock.advance(29 * SECOND)                        # t = 120: fresh again: re-marked, then reopened
    feed.step()
    call = _expected(INSTRUMENTS[BTC_CALL], "104000", 0.6, NOW + timedelta(seconds=120))
    assert client.sent.index(("reference", BTC_CALL, call[0])) < client.sent.index(
        ("state", BTC_CALL, TradingState.OPEN))
    assert client.states[BTC_CALL] == client.states[BTC_PUT] == TradingState.OPEN


def test_a_two_for_one_split_halts_around_activation_and_resumes_without_a_jump():
    client = RecordingClient(INSTRUMENTS, ASSETS)
    activation = datetime(2026, 6, 8, 13, 30, tzinfo=UTC)
    start = activation - timedelta(minutes=10)
    tsla = _replay("tsla", "TSLA.M", start, [(0, "250"), (620, "250"), (630, "125.10"), (700, "125.20")])
    token = TokenMultiplier(asset="TSLA.M", current=Fraction(1), staged=StagedMultiplier(Fraction(2), activation))
    feed, clock = _process(client, [tsla], start, heartbeat_s=3600, tokens=[token])
    feed.step()                                       # ten minutes before: the share price times 1
    assert client.of_kind("asset") == [(1, usd_units("250"))]
    assert client.of_kind("reference") == [(TSLA_USDC, 2_500_000)]

    clock.advance(6 * 60 * SECOND)                    # four minutes before: inside the halt window
    feed.step()
    assert client.states[TSLA_USDC] == client.states[TSLA_PUT] == TradingState.HALTED
    clock.advance(4 * 60 * SECOND + 10 * SECOND)      # activation + 10 s: the last price is from before it
    feed.step()
    clock.advance(10 * SECOND)                        # + 20 s: a price after it, but not adjusted for the split
    feed.step()
    assert client.states[TSLA_USDC] == TradingState.HALTED
    assert len(client.of_kind("asset")) == 1 and len(client.of_kind("reference")) == 1

    clock.advance(10 * SECOND)                        # + 30 s: the adjusted price: 125.10 x 2
    feed.step()
    assert client.states[TSLA_USDC] == client.states[TSLA_PUT] == TradingState.OPEN
    assert feed.tokens["TSLA.M"].current == 2 and feed.tokens["TSLA.M"].staged is None
    clock.advance(70 * SECOND)                        # + 100 s: trading on at 125.20 x 2
    feed.step()
    assert client.of_kind("asset") == [(1, usd_units("250")), (1, usd_units("250.20")), (1, usd_units("250.40"))]
    assert client.of_kind("reference") == [(TSLA_USDC, 2_500_000), (TSLA_USDC, 2_502_000), (TSLA_USDC, 2_504_000)]
    assert client.of_kind("state") == [(TSLA_USDC, TradingState.HALTED), (TSLA_PUT, TradingState.HALTED),
                                       (TSLA_USDC, TradingState.OPEN), (TSLA_PUT, TradingState.OPEN)]


def test_a_halted_session_halts_the_stock_tokens_and_reopens_after():
    client = RecordingClient(INSTRUMENTS, ASSETS)
    night = datetime(2026, 6, 2, 3, 0, tzinfo=UTC)    # 23:00 on Monday in New York: overnight
    tsla = _replay("tsla", "TSLA.M", night, [(0, "250")])
    btc = _replay("btc", "WBTC", night, [(0, "95000")])
    policies = SessionPolicies(overnight=SessionPolicy(band_bps=1000, haircut_bps=4000, halt=True))
    calendar = SessionCalendar("XNYS", date(2026, 6, 1), date(2026, 6, 5))
    feed, clock = _process(client, [tsla, btc], night, heartbeat_s=86_400,
                           tokens=[TokenMultiplier(asset="TSLA.M", current=Fraction(1))],
                           calendar=calendar, policies=policies)
    feed.step()
    assert client.states[TSLA_USDC] == client.states[TSLA_PUT] == TradingState.HALTED
    assert client.states[BTC_CALL] == TradingState.OPEN     # not a stock token
    assert (TSLA_USDC, 2_500_000) in client.of_kind("reference")   # the price still flows while halted

    clock.advance(5 * 3600 * SECOND)                  # 04:00 in New York: pre-market trades
    feed.step()
    assert client.states[TSLA_USDC] == client.states[TSLA_PUT] == TradingState.OPEN
    assert feed.halted == set()


def test_outside_the_calendar_range_the_stock_tokens_halt():
    client = RecordingClient(INSTRUMENTS, ASSETS)
    later = datetime(2026, 9, 1, 15, 0, tzinfo=UTC)
    feed, _ = _process(client, [_replay("tsla", "TSLA.M", later, [(0, "250")])], later,
                       tokens=[TokenMultiplier(asset="TSLA.M", current=Fraction(1))],
                       calendar=SessionCalendar("XNYS", date(2026, 6, 1), date(2026, 6, 5)))
    feed.step()
    assert client.states[TSLA_USDC] == TradingState.HALTED


def test_the_session_policy_sets_stock_token_bands_and_haircuts_once_per_change():
    client = RecordingClient(INSTRUMENTS, ASSETS)
    tsla = _replay("tsla", "TSLA.M", NOW, [(0, "250")])
    calendar = SessionCalendar("XNYS", date(2026, 6, 1), date(2026, 6, 5))
    feed, clock = _process(client, [tsla], NOW, heartbeat_s=86_400,
                           tokens=[TokenMultiplier(asset="TSLA.M", current=Fraction(1))],
                           calendar=calendar, policies=SessionPolicies())
    feed.step()                                       # 10:00 in New York: regular, 5% / 30%
    dynamic = INSTRUMENTS[TSLA_USDC].dynamic_band_bps
    assert client.of_kind("haircut") == [(1, 3000)]
    assert client.of_kind("bands") == [(TSLA_USDC, 500, dynamic)]   # spot pairs only, dynamic width kept
    clock.advance(60 * SECOND)
    feed.step()                                       # same session: nothing sent again
    assert len(client.of_kind("haircut")) == len(client.of_kind("bands")) == 1

    clock.advance(11 * 3600 * SECOND)                 # 21:01 in New York: overnight, 10% / 40%
    feed.step()
    assert client.of_kind("haircut") == [(1, 3000), (1, 4000)]
    assert client.of_kind("bands") == [(TSLA_USDC, 500, dynamic), (TSLA_USDC, 1000, dynamic)]
    assert client.states[TSLA_USDC] == TradingState.OPEN
