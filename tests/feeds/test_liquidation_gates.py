"""The liquidator's decisions without a gateway: which assets an account rests on,
each asset's gate in the feed process (fixed, unfed, fresh, stale, refused, split,
home-market halt, open grace), and per account: held back with its reasons and
counted by cause, or liquidated (tests/feeds/test_liquidator_in_process.py runs it
end to end)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

from feeds_harness import RecordingClient

from engine.core.order_info import PositionInfo
from engine.core.types import TradingState
from engine.schemas import (
    AssetBalance,
    AssetInfo,
    Balances,
    InstrumentInfo,
    Liquidated,
    Margin,
    MarginCall,
    MarginCalls,
    Reject,
)
from feeds.clock import ManualClock
from feeds.liquidator import LiquidationSettings, Liquidator, account_assets, account_holds
from feeds.multipliers import StagedMultiplier, TokenMultiplier
from feeds.process import FeedProcess
from feeds.replay import Replay, Tick
from feeds.rules import FeedRule
from feeds.session_policy import HoldBack, LiquidationGate
from feeds.sessions import SessionCalendar
from feeds.update import NS_PER_SECOND, MarketStatus, usd_units

SECOND = NS_PER_SECOND
TSLA_USDC, BTC_CALL, NVDA_USDC = 0, 1, 2
USDC, TSLA, WBTC, NVDA = 0, 1, 2, 3
OPENS = datetime(2026, 6, 2, 13, 30, tzinfo=UTC)     # Tuesday, 09:30 in New York
GRACE = timedelta(seconds=60)


def _spot(iid: int, symbol: str, base: str) -> InstrumentInfo:
    return InstrumentInfo(iid, symbol, base, "USDC", 100, 1, 1, 10**9, 10**9, 10_000, 1_000, 1_000, 500, 0, 5,
                          TradingState.OPEN, 0, 0)


INSTRUMENTS = [_spot(TSLA_USDC, "TSLA.M/USDC", "TSLA.M"),
               InstrumentInfo(BTC_CALL, "BTC-20261231-100000-C", "WBTC", "USDC", 100, 1, 1, 10**6, 10**10, 10_000,
                              100, 2_000, 1_000, 0, 3, TradingState.OPEN, 0, 0, "2026-12-31", "100000", "C", "1"),
               _spot(NVDA_USDC, "NVDA.M/USDC", "NVDA.M")]
ASSETS = [AssetInfo(USDC, "USDC", 6, 6, 0), AssetInfo(TSLA, "TSLA.M", 18, 6, 3000),
          AssetInfo(WBTC, "WBTC", 8, 8, 1000), AssetInfo(NVDA, "NVDA.M", 18, 6, 3000)]


def _ns(instant: datetime) -> int:
    return int(instant.timestamp()) * SECOND


def _replay(name: str, asset: str, start: int, ticks: list[tuple[int, str, MarketStatus]]) -> Replay:
    return Replay(name, asset, [Tick(start + s * SECOND, usd_units(p), 0, m) for s, p, m in ticks], start=start)


def _feed(client, sources, start: int, **kw) -> tuple[FeedProcess, ManualClock]:
    clock = ManualClock(start)
    rules = {s.name: FeedRule(heartbeat_ns=60 * SECOND) for s in sources}
    return FeedProcess(client, sources, rules, clock, fixed_prices={"USDC": usd_units("1")}, **kw), clock


def test_an_account_rests_on_its_balances_and_its_option_series_assets():
    instruments = {i.instrument: i for i in INSTRUMENTS}
    symbols = {a.asset: a.symbol for a in ASSETS}
    balances = Balances(1, 7, [AssetBalance(USDC, 5, 0), AssetBalance(TSLA, 0, 0), AssetBalance(NVDA, 3, 3)])
    margin = Margin(1, 7, 0, 0, 0, 0, [PositionInfo(BTC_CALL, -2, 0, 0)])
    assert account_assets(margin, balances, instruments, symbols) == {"USDC", "NVDA.M", "WBTC"}
    flat = Margin(1, 7, 0, 0, 0, 0, [])
    assert account_assets(flat, Balances(1, 7, [AssetBalance(TSLA, 1, 0)]), instruments, symbols) == {"TSLA.M"}


def test_account_holds_names_each_asset_that_holds_it_back():
    gates = {"USDC": LiquidationGate(True, ""), "WBTC": LiquidationGate(False, "stale price", HoldBack.STALE)}
    assert account_holds({"USDC"}, gates) == []
    assert account_holds({"WBTC", "USDC", "XYZ"}, gates) == [
        ("WBTC", gates["WBTC"]),
        ("XYZ", LiquidationGate(False, "the feed process has no price for it", HoldBack.NO_FEED))]


def test_asset_gates_fixed_unfed_fresh_stale_and_refused():
    start = _ns(OPENS + timedelta(hours=2))
    client = RecordingClient(INSTRUMENTS, ASSETS, refuse_prices_above=usd_units("1000"))
    tsla = _replay("tsla", "TSLA.M", start, [(0, "250", MarketStatus.UNKNOWN)])
    btc = _replay("btc", "WBTC", start, [(0, "95000", MarketStatus.UNKNOWN)])
    feed, clock = _feed(client, [tsla, btc], start)
    feed.step()
    gates = feed.liquidation_gates(clock.now(), GRACE)
    assert gates["USDC"] == gates["TSLA.M"] == LiquidationGate(True, "")
    assert gates["NVDA.M"].cause is HoldBack.NO_FEED
    assert gates["WBTC"] == LiquidationGate(False, "the engine refused its current price", HoldBack.NOT_HELD)
    clock.advance(61 * SECOND)
    feed.step()
    assert feed.liquidation_gates(clock.now(), GRACE)["TSLA.M"] == LiquidationGate(False, "stale price", HoldBack.STALE)


def test_asset_gates_split_and_home_market_halts():
    start = _ns(OPENS + timedelta(hours=2))
    client = RecordingClient(INSTRUMENTS, ASSETS)
    split = TokenMultiplier(asset="TSLA.M", current=Fraction(1),
                            staged=StagedMultiplier(Fraction(2), OPENS + timedelta(hours=3)))
    tsla = _replay("tsla", "TSLA.M", start, [(0, "250", MarketStatus.OPEN), (56 * 60, "251", MarketStatus.OPEN)])
    nvda = _replay("nvda", "NVDA.M", start, [(0, "180", MarketStatus.HALTED)])
    feed, clock = _feed(client, [tsla, nvda], start, tokens=[split, TokenMultiplier(asset="NVDA.M",
                                                                                    current=Fraction(1))])
    feed.step()
    gates = feed.liquidation_gates(clock.now(), GRACE)
    assert gates["TSLA.M"].allowed
    assert gates["NVDA.M"] == LiquidationGate(False, "the home market halts NVDA.M (source nvda)", HoldBack.HALTED)
    clock.advance(56 * 60 * SECOND)                  # 4 minutes before the split: its halt has begun
    feed.step()
    gate = feed.liquidation_gates(clock.now(), GRACE)["TSLA.M"]
    assert gate.cause is HoldBack.HALTED and "split of 2" in gate.reason


def test_asset_gates_open_grace_applies_to_stock_tokens_only():
    start = _ns(OPENS - timedelta(seconds=30))
    client = RecordingClient(INSTRUMENTS, ASSETS)
    tsla = _replay("tsla", "TSLA.M", start, [(0, "250", MarketStatus.UNKNOWN), (60, "251", MarketStatus.OPEN)])
    btc = _replay("btc", "WBTC", start, [(0, "95000", MarketStatus.UNKNOWN), (60, "95100", MarketStatus.OPEN)])
    feed, clock = _feed(client, [tsla, btc], start, tokens=[TokenMultiplier(asset="TSLA.M", current=Fraction(1))],
                        calendar=SessionCalendar("XNYS", date(2026, 6, 1), date(2026, 6, 5)))
    feed.step()                                      # pre-market: no grace
    assert feed.liquidation_gates(clock.now(), GRACE)["TSLA.M"].allowed
    clock.advance(40 * SECOND)                       # 10 s after the open
    feed.step()
    gates = feed.liquidation_gates(clock.now(), GRACE)
    assert gates["TSLA.M"].cause is HoldBack.OPEN_GRACE and gates["WBTC"].allowed
    clock.advance(50 * SECOND)                       # 60 s after: the grace is over
    feed.step()
    assert feed.liquidation_gates(clock.now(), GRACE)["TSLA.M"].allowed


class MarginCallClient:
    """The operator queries the liquidator uses, over fixed accounts: account id ->
    (balances, positions); every one is under maintenance."""

    def __init__(self, accounts: dict[int, tuple[list[AssetBalance], list[PositionInfo]]], refuse: set[int]) -> None:
        self.accounts = accounts
        self.refuse = refuse
        self.sent: list[int] = []

    def margin_calls(self):
        return MarginCalls(1, [MarginCall(a, 10, 20) for a in sorted(self.accounts)])

    def margin(self, account: int):
        return Margin(1, account, 10, 10, 20, 20, self.accounts[account][1])

    def balances(self, account: int):
        return Balances(1, account, self.accounts[account][0])

    def liquidate(self, account: int):
        self.sent.append(account)
        if account in self.refuse:
            return Reject(0, 0, 40, "not under maintenance")
        return Liquidated(5, 0, 1, account, 10, 20, 1)


def test_the_liquidator_holds_back_only_the_accounts_on_a_held_asset(caplog):
    client = MarginCallClient({
        1: ([AssetBalance(TSLA, 100, 0)], []),                                    # on TSLA.M: stale
        2: ([AssetBalance(USDC, 100, 0)], [PositionInfo(BTC_CALL, -1, 0, 0)]),    # on USDC and WBTC: fine
        3: ([AssetBalance(USDC, 100, 0), AssetBalance(NVDA, 5, 0)], []),          # on NVDA.M: no feed
        4: ([AssetBalance(USDC, 1, 0)], []),                                      # refused by the engine
    }, refuse={4})
    gates = {"USDC": LiquidationGate(True, ""), "WBTC": LiquidationGate(True, ""),
             "TSLA.M": LiquidationGate(False, "stale price", HoldBack.STALE)}
    liquidator = Liquidator(client, LiquidationSettings(interval_ns=5 * SECOND), INSTRUMENTS, ASSETS)
    assert liquidator.due(0)
    liquidator.run(0, gates)
    assert client.sent == [2, 4]
    assert liquidator.liquidated == {2: 1}
    assert liquidator.held_back == {HoldBack.STALE: 1, HoldBack.NO_FEED: 1}
    assert liquidator.last_held == {1: "TSLA.M: stale price", 3: "NVDA.M: the feed process has no price for it"}
    assert "liquidation of account 4 refused: code 40" in caplog.text
    assert not liquidator.due(5 * SECOND - 1) and liquidator.due(5 * SECOND)
    gates["TSLA.M"] = LiquidationGate(True, "")
    del client.accounts[3]                           # NVDA.M's holder is no longer under maintenance
    liquidator.run(5 * SECOND, gates)                # TSLA.M fresh again: account 1 goes
    assert liquidator.liquidated == {1: 1, 2: 2} and liquidator.last_held == {}
