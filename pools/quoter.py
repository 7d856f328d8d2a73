"""The main pool's quoting process: a client of the gateway (the SDK, the pool
account's own key, no operator rights) that keeps two-sided quotes on the option
series of its underlyings around their marks and hedges the pool's delta on
their spot books (docs/quoter.md).

One refresh reads the venue (GetInstruments, GetMargin, GetBalances, one
GetChain per underlying), prices every fresh series with pools/quote_model.py,
moves its resting quotes with Amend (or cancel and place), cancels the quotes of
series whose feed is stale, halted or closed, and sends an IOC hedge where an
underlying's net delta passes its threshold. Requests go in batches, one message
per ``max_requests_per_message``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from engine.client import Client
from engine.core.types import OrderType, SelfTrade, Side, TimeInForce, TradingState
from engine.core.types import Reject as RejectCode
from engine.schemas import (
    Ack,
    Amend,
    Amended,
    Cancel,
    Cancelled,
    Fill,
    InstrumentInfo,
    LoggedOn,
    MassCancel,
    MassCancelled,
    NewOrder,
    Reject,
)
from engine.units import USD_PRICE_SCALE
from pools.quote_model import Quote, execution_band, hedge_price, hedge_size, quote
from pools.quoter_config import PoolsConfig, UnderlyingConfig

log = logging.getLogger("pools.quoter")

LIVE = 0
"""SeriesInfo.status of a series that has not settled or been delisted."""


class QuoterError(RuntimeError):
    """The venue does not match the config (unknown asset or book, wrong
    account); the message says what."""


@dataclass
class Resting:
    """One of the pool's quotes as the gateway last confirmed it."""

    order_id: int
    price: int
    qty: int


@dataclass
class RefreshReport:
    """What one refresh did."""

    quoted: int = 0          # series with at least one side wanted
    stale: list[int] = field(default_factory=list)   # series not quoted: stale, halted, closed
    placed: int = 0
    amended: int = 0
    cancelled: int = 0
    rejected: list[Reject] = field(default_factory=list)
    hedges: list[tuple[int, int, int, int]] = field(default_factory=list)   # (instrument, side, qty, price)


@dataclass
class _Underlying:
    config: UnderlyingConfig
    asset: int
    decimals: int            # ledger decimals of the asset
    spot: int                # its spot book


def _answer(reply):
    """A query's answer; RuntimeError (the refresh starts over) if the gateway refused it."""
    if isinstance(reply, Reject):
        raise RuntimeError(f"query refused: {reply.text}")
    return reply


class Quoter:
    """The quoting loop over one connected client (the pool's key)."""

    def __init__(self, client: Client, config: PoolsConfig, clock=time.time_ns) -> None:
        self.client = client
        self.config = config
        self.params = config.quotes.params()
        self.clock = clock
        self.quotes: dict[tuple[int, int], Resting] = {}    # (instrument, side) -> resting quote
        self.underlyings: list[_Underlying] = []
        self._stale: set[int] = set()

    # -- set-up and shutdown --

    def start(self) -> None:
        """Log on, check the account and the underlyings against the venue, and
        cancel whatever the pool left resting (a restart starts clean)."""
        logged = self.client.logon()
        if not isinstance(logged, LoggedOn):
            raise QuoterError(f"logon refused: {logged.text}")
        if logged.account != self.config.quoter.account:
            raise QuoterError(f"the key in gateway.key_file is bound to account {logged.account}, "
                              f"not to the pool account {self.config.quoter.account}")
        listing = _answer(self.client.instruments())
        assets = {a.symbol: a for a in listing.assets}
        books = {i.symbol: i for i in listing.instruments}
        for u in self.config.underlyings:
            if u.asset not in assets:
                raise QuoterError(f"underlyings: {u.asset} is not an asset of the venue")
            spot = books.get(u.spot)
            if spot is None or spot.expiry or spot.contract_size or spot.base != u.asset:
                raise QuoterError(f"underlyings {u.asset}: {u.spot} is not a spot book of {u.asset}")
            self.underlyings.append(_Underlying(u, assets[u.asset].asset, assets[u.asset].ledger_decimals,
                                                spot.instrument))
        self.cancel_all()

    def cancel_all(self) -> int:
        """Mass-cancel every order of the pool; the number cancelled."""
        reply = self.client.mass_cancel()
        if not isinstance(reply, MassCancelled):
            raise QuoterError(f"mass cancel refused: {reply.text}")
        self.quotes.clear()
        return reply.count

    def run(self, stop: threading.Event) -> None:
        """Refresh every interval until ``stop`` is set, then cancel every quote.
        A refresh that fails on the gateway (a timeout, a refused message) is
        logged and the next one starts over."""
        interval = self.config.quoter.interval_ms / 1000
        try:
            while not stop.is_set():
                try:
                    self.refresh()
                except (TimeoutError, RuntimeError) as err:
                    log.warning("refresh failed: %s", err)
                stop.wait(interval)
        finally:
            self.cancel_all()

    # -- one refresh --

    def refresh(self) -> RefreshReport:
        """Read the venue, move the quotes, hedge; what it did."""
        report = RefreshReport()
        self._apply_events(self.client.poll_events())
        listing = {i.instrument: i for i in _answer(self.client.instruments()).instruments}
        margin = _answer(self.client.margin())
        positions = {p.instrument: p.position for p in margin.positions}
        free_usd = margin.free_collateral / USD_PRICE_SCALE
        now = self.clock()
        wanted: dict[tuple[int, int], tuple[int, int]] = {}
        deltas: dict[int, float] = {}
        for u in self.underlyings:
            spot = listing[u.spot]
            spot_price = spot.reference / spot.price_scale       # quote tokens per underlying token
            spot_open = spot.state == TradingState.OPEN and spot.reference > 0
            net_delta = 0.0
            for s in _answer(self.client.chain(u.asset)).series:
                info = listing[s.instrument]
                contracts = positions.get(s.instrument, 0) / info.qty_scale
                contract_size = float(s.contract_size)          # underlying tokens per contract
                if s.greeks is not None:
                    net_delta += contracts * contract_size * s.greeks.delta
                if not self._selected(u.config, s.expiry, s.status):
                    continue
                fresh = (spot_open and s.state == TradingState.OPEN and s.mark > 0 and s.greeks is not None
                         and now - s.greeks_ts <= self.config.quoter.stale_after_ms * 1_000_000)
                self._note_freshness(s.instrument, info.symbol, fresh)
                if not fresh:
                    report.stale.append(s.instrument)
                    continue
                q = self._price(info, s.mark, s.last_trade, spot_price, s.greeks.delta, contracts, contract_size,
                                free_usd)
                size = self._size(info)
                for side, price in ((Side.BUY, q.bid), (Side.SELL, q.ask)):
                    if price is not None:
                        wanted[(s.instrument, side)] = (price, size)
                report.quoted += q.bid is not None or q.ask is not None
            deltas[u.asset] = net_delta
        self._move(wanted, set(report.stale), report)
        self._hedge(listing, deltas, report)
        return report

    def _selected(self, u: UnderlyingConfig, expiry: str, status: int) -> bool:
        perpetual = expiry == ""
        return status == LIVE and (u.series == "all" or (u.series == "perpetual") == perpetual)

    def _note_freshness(self, instrument: int, symbol: str, fresh: bool) -> None:
        if fresh and instrument in self._stale:
            self._stale.discard(instrument)
            log.info("%s: feed fresh again, quoting", symbol)
        elif not fresh and instrument not in self._stale:
            self._stale.add(instrument)
            log.info("%s: feed stale, halted or closed: quotes cancelled", symbol)

    def _price(self, info: InstrumentInfo, mark: int, last_trade: int, spot_price: float, delta: float,
               contracts: float, contract_size: float, free_usd: float) -> Quote:
        """The model's quote for one series, in per-contract units: the spot is
        the value of one contract's underlying in the series' price units, the
        liquidity the contracts the pool's free collateral (USD, the premium
        asset taken at 1) buys at that value."""
        spot = spot_price * contract_size * info.price_scale
        contract_value = spot_price * contract_size
        liquidity = free_usd / contract_value if contract_value > 0 else 0.0
        band = execution_band(mark, last_trade, info.static_band_bps, info.dynamic_band_bps, info.tick_size)
        return quote(mark, spot, delta, contracts, self.config.quotes.size, liquidity, self.params,
                     info.tick_size, band, info.max_price)

    def _size(self, info: InstrumentInfo) -> int:
        """The configured contracts per side in quantity units, on the lot grid and inside the limits."""
        qty = round(self.config.quotes.size * info.qty_scale)
        qty = -(-qty // info.lot_size) * info.lot_size
        return min(max(qty, -(-info.min_qty // info.lot_size) * info.lot_size), info.max_qty)

    # -- orders --

    def _apply_events(self, events: list) -> None:
        """Forget quotes that filled completely or were cancelled by the venue."""
        by_order = {r.order_id: key for key, r in self.quotes.items()}
        for event in events:
            key = by_order.get(getattr(event, "order_id", None))
            if key is None:
                continue
            if isinstance(event, Fill):
                if event.leaves == 0:
                    del self.quotes[key]
                else:
                    self.quotes[key].qty = event.leaves
            elif isinstance(event, Cancelled):
                del self.quotes[key]

    def _move(self, wanted: dict[tuple[int, int], tuple[int, int]], stale: set[int],
              report: RefreshReport) -> None:
        """Bring the resting quotes to ``wanted``: mass-cancel the pool's orders
        in each ``stale`` series it quotes, amend the quotes that moved (or cancel
        and place them again), place the missing ones, cancel the rest; then
        place again the quotes whose amend was refused because the order had gone
        meanwhile (filled or cancelled before its event arrived)."""
        amend = self.config.quoter.amend
        requests: list[tuple[tuple[int, int], object]] = []
        for instrument in sorted({iid for iid, _ in self.quotes if iid in stale}):
            requests.append(((instrument, 0), MassCancel(self.client.next_id(), instrument)))
        for key in list(self.quotes):
            if key not in wanted and key[0] not in stale:
                requests.append((key, Cancel(self.client.next_id(), self.quotes[key].order_id)))
        for key, (price, qty) in wanted.items():
            resting = self.quotes.get(key)
            if resting is not None and (resting.price, resting.qty) == (price, qty):
                continue
            if resting is not None and amend:
                requests.append((key, Amend(self.client.next_id(), resting.order_id,
                                            qty if qty != resting.qty else 0,
                                            price if price != resting.price else 0)))
                continue
            if resting is not None:
                requests.append((key, Cancel(self.client.next_id(), resting.order_id)))
            requests.append((key, self._new_order(key, price, qty)))
        self._send(requests, report)
        gone = [key for key, message in requests if isinstance(message, Amend) and key not in self.quotes]
        self._send([(key, self._new_order(key, *wanted[key])) for key in gone], report)

    def _new_order(self, key: tuple[int, int], price: int, qty: int) -> NewOrder:
        instrument, side = key
        return NewOrder(self.client.next_id(), instrument, side, qty, price, OrderType.LIMIT, TimeInForce.GTC,
                        SelfTrade.CANCEL_NEWEST)

    def _send(self, requests: list[tuple[tuple[int, int], object]], report: RefreshReport) -> None:
        """Send requests in messages of at most max_requests_per_message and record each answer."""
        chunk = self.config.gateway.max_requests_per_message
        for start in range(0, len(requests), chunk):
            part = requests[start:start + chunk]
            answers = self.client.exchange([message for _, message in part])
            for (key, message), answer in zip(part, answers):
                self._record(key, message, answer, report)

    def _record(self, key: tuple[int, int], message, answer, report: RefreshReport) -> None:
        """Keep the quote book in step with one answer."""
        match answer:
            case Ack():
                self.quotes[key] = Resting(answer.order_id, answer.price, answer.qty)
                report.placed += 1
            case Amended():
                self.quotes[key] = Resting(answer.order_id, answer.price, answer.qty)
                report.amended += 1
            case Cancelled():
                if self.quotes.get(key) is not None and self.quotes[key].order_id == answer.order_id:
                    del self.quotes[key]
                report.cancelled += 1
            case MassCancelled():
                for side in (Side.BUY, Side.SELL):
                    self.quotes.pop((answer.instrument, side), None)
                report.cancelled += answer.count
            case Reject():
                report.rejected.append(answer)
                # An amend or cancel of an order that is gone (filled, or cancelled by
                # the venue); any other refusal leaves the order resting as it was.
                if answer.code == RejectCode.UNKNOWN_ORDER:
                    self.quotes.pop(key, None)
                log.debug("%s refused: %s", type(message).__name__, answer.text)

    # -- hedging --

    def _hedge(self, listing: dict[int, InstrumentInfo], deltas: dict[int, float], report: RefreshReport) -> None:
        """One IOC order per underlying whose net delta (option positions plus
        holdings above the neutral inventory) passes its threshold."""
        hedged = [u for u in self.underlyings if u.config.hedge]
        if not hedged:
            return
        held = {b.asset: b.total for b in _answer(self.client.balances()).balances}
        for u in hedged:
            spot = listing[u.spot]
            if spot.state != TradingState.OPEN:
                continue
            net = deltas[u.asset] + held.get(u.asset, 0) / 10**u.decimals - u.config.inventory
            tokens = hedge_size(net, u.config.hedge_threshold, u.config.hedge_max_order)
            qty = int(abs(tokens) * spot.qty_scale) // spot.lot_size * spot.lot_size
            qty = min(qty, spot.max_qty)
            if qty == 0 or qty < spot.min_qty:
                continue
            side = Side.BUY if tokens > 0 else Side.SELL
            band = execution_band(spot.reference, spot.last_trade, spot.static_band_bps, spot.dynamic_band_bps,
                                  spot.tick_size)
            price = hedge_price(side == Side.BUY, spot.reference, u.config.hedge_slippage_bps, spot.tick_size, band,
                                spot.max_price)
            if price is None:
                continue
            answer = self.client.place(u.spot, side, qty, price, tif=TimeInForce.IOC)
            if isinstance(answer, Reject):
                report.rejected.append(answer)
                log.info("%s hedge refused: %s", spot.symbol, answer.text)
                continue
            report.hedges.append((u.spot, side, qty, price))
            log.info("%s hedge: %s %d at %d (net delta %.4f)", spot.symbol, Side(side).name, qty, price, net)
