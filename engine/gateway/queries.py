"""Answers to queries, read from the engine after the batch that carried them
ran: heartbeats and logons, balances, open orders, book snapshots, instruments,
margin, margin calls, status, option chains, the main pool; and the greeks an operator
publishes, kept here as derived data (engine/gateway/greeks.py). Query
replies are built from the core's query results with
``engine.schemas.from_core``, never copied field by field.

A query costs its session one item of ``max_query_items_per_s`` per entry
it answers (book level, order, balance ...): its least cost is charged when it
is read (engine/gateway/dispatch.py), the rest here; a session in debt is
refused until its bucket refills. An answer larger than ``max_reply_bytes`` is
refused, not split: one answer in pieces would need a continuation protocol
every client must learn, while a refusal is explicit and the bound holds a
venue's normal answers (about 25,000 open orders in the default 1 MiB). A
client with more open orders asks for them in pages (``GetOpenOrders.limit``,
at most ``max_page_orders``, after an order id cursor)."""

from __future__ import annotations

import time

from engine.config import Config
from engine.core.types import Reject as CoreReject
from engine.gateway.batch import Batch
from engine.gateway.dispatch import ROUTES, Rule, act_for
from engine.gateway.greeks import GreeksBoard
from engine.gateway.limits import UNMETERED_QUERIES
from engine.gateway.marketdata import MarketDataPublisher
from engine.gateway.recent_orders import RecentOrders
from engine.gateway.sessions import Session, Sessions
from engine.schemas_greeks import GreeksPublished, PublishGreeks
from engine.schemas_insurance import GetInsurance, insurance_reply
from engine.schemas_options import Chain, GetChain, SeriesInfo
from engine.schemas_pools import GetPoolInfo, pool_info_reply
from engine.schemas_replication import FindOrder, OrderFound
from engine.schemas_shards import GetTransfers, SentTransfer, Transfers
from engine.schemas import (
    OWN_ACCOUNT,
    REPLY_ENCODER,
    AssetBalance,
    AssetInfo,
    Balances,
    GatewayReject,
    GetBalances,
    GetBook,
    GetInstruments,
    GetMargin,
    GetMarginCalls,
    GetOpenOrders,
    GetStatus,
    Heartbeat,
    InstrumentInfo,
    Instruments,
    LoggedOn,
    Logon,
    Margin,
    MarginCall,
    MarginCalls,
    OpenOrder,
    OpenOrders,
    Pong,
    Status,
    from_core,
)

_OPTION_TERMS = ("expiry", "strike", "right", "contract_size", "expiry_time")  # InstrumentInfo's; "" for a spot pair


class Queries:
    """Answers queries from the engine's state (and the gateway's, for status and greeks)."""

    def __init__(self, engine, publisher: MarketDataPublisher, config: Config, sessions: Sessions,
                 recent_orders: RecentOrders) -> None:
        self.engine = engine
        self.recent_orders = recent_orders
        self.publisher = publisher
        self.config = config
        self.sessions = sessions
        self.greeks = GreeksBoard()

    def answer(self, batch: Batch, session: Session, req, ts: int) -> None:
        """Add the answer to ``req`` (or its reject) to the batch's output for ``session``."""
        engine = self.engine
        limits = self.config.gateway
        account = None
        if ROUTES[type(req)].rule is Rule.ACCOUNT:
            account = act_for(batch, session, req)
            if account is None:
                return
        match req:
            case GetBalances() | GetOpenOrders() if not 0 <= account < engine.max_accounts:
                batch.reject(session, CoreReject.UNKNOWN_ACCOUNT, request_id=req.request_id)
                return
            case Heartbeat():
                reply = Pong(req.request_id, ts, engine.last_seq)
            case Logon() if req.account != OWN_ACCOUNT and (not session.principal.operator
                                                            or not _known(engine, req.account)):
                batch.reject(session, GatewayReject.NOT_AUTHORIZED if not session.principal.operator
                             else CoreReject.UNKNOWN_ACCOUNT, "only an operator key's session may act as an "
                             "account, a known one", request_id=req.request_id)
                return
            case Logon():
                if req.account != OWN_ACCOUNT:
                    self.sessions.act_as(session, req.account)
                self.sessions.set_cancel_on_disconnect(session, req.cancel_on_disconnect)
                s = self.config.session
                reply = LoggedOn(req.request_id, session.account if session.principal.account is not None else -1,
                                 session.principal.operator, s.heartbeat_ms, s.timeout_ms, req.cancel_on_disconnect)
            case GetOpenOrders():
                refusal = self._page_refusal(req)
                if refusal:
                    batch.reject(session, *refusal, request_id=req.request_id)
                    return
                orders = engine.open_orders(account, req.after_order_id, req.limit or -1)
                reply = OpenOrders(req.request_id, account, [from_core(OpenOrder, o) for o in orders])
            case GetBalances():
                try:
                    balances = engine.balances(account)
                except ValueError:
                    batch.reject(session, CoreReject.UNKNOWN_ACCOUNT, f"no balances kept for account {account}",
                                 request_id=req.request_id)
                    return
                reply = Balances(req.request_id, account, [AssetBalance(asset, total, reserved)
                                                           for asset, (total, reserved) in enumerate(balances)])
            case GetBook():
                if not 0 <= req.instrument < len(engine.instruments):
                    batch.reject(session, CoreReject.UNKNOWN_INSTRUMENT, request_id=req.request_id)
                    return
                if not 0 <= req.levels <= limits.max_book_levels:
                    batch.reject(session, GatewayReject.MALFORMED,
                                 f"levels must be in [0, {limits.max_book_levels}] (gateway.max_book_levels)",
                                 request_id=req.request_id)
                    return
                reply = self.publisher.snapshot(req.request_id, req.instrument, req.levels, ts)
            case GetInstruments():
                reply = self._instruments(req.request_id)
            case GetMargin():
                try:
                    margin, positions = engine.margin(account), engine.positions(account)
                except ValueError:
                    batch.reject(session, CoreReject.UNKNOWN_ACCOUNT, f"no balances kept for account {account}",
                                 request_id=req.request_id)
                    return
                reply = from_core(Margin, margin, request_id=req.request_id, account=account, positions=positions)
            case GetMarginCalls():
                reply = MarginCalls(req.request_id, [from_core(MarginCall, m, account=acct)
                                                     for acct, m in engine.under_maintenance()])
            case GetChain():
                reply = self._chain(req.request_id, req.underlying)
            case GetInsurance():
                state = engine.insurance_state() if engine.risk else None
                if state is None:
                    batch.reject(session, GatewayReject.NO_POOLS, request_id=req.request_id)
                    return
                reply = insurance_reply(req.request_id, state)
            case GetPoolInfo():
                try:
                    info = engine.pool_info()
                except ValueError as err:
                    batch.reject(session, GatewayReject.NO_POOL, str(err), request_id=req.request_id)
                    return
                reply = pool_info_reply(req.request_id, info)
            case PublishGreeks():
                refusal = self.greeks.publish(engine, req, ts)
                if refusal:
                    batch.reject(session, *refusal, request_id=req.request_id)
                    return
                reply = GreeksPublished(req.request_id, ts, len(req.series))
            case FindOrder():
                recent = self.recent_orders
                reply = OrderFound(req.request_id, account, req.client_order_id,
                                   recent.find(account, req.client_order_id), recent.from_seq)
            case GetTransfers():
                out_last, in_last, sent = engine.transfers()
                reply = Transfers(req.request_id, out_last, in_last, [SentTransfer(*row) for row in sent])
            case GetStatus():
                reply = Status(req.request_id, engine.last_seq, engine.state_hash(), len(self.sessions),
                               engine.last_deposit_id)
        encoded = REPLY_ENCODER.encode(reply)
        if not session.principal.operator and not isinstance(req, UNMETERED_QUERIES):
            session.limits.query_items.charge(_items(reply) - session.limits.query_cost(req), time.monotonic())
        if len(encoded) > limits.max_reply_bytes:
            hint = "; ask for pages (GetOpenOrders.limit)" if type(req) is GetOpenOrders else ""
            batch.reject(session, GatewayReject.QUERY_TOO_LARGE,
                         f"answer of {len(encoded)} bytes exceeds {limits.max_reply_bytes}{hint}",
                         request_id=req.request_id)
            return
        batch.out.add(session.id, encoded)

    def _page_refusal(self, req: GetOpenOrders) -> tuple[int, str] | None:
        """(code, text) refusing a GetOpenOrders' page bounds, or None. A cursor
        may name an order that no longer rests (pages go on from it), but not one
        never issued."""
        cap = self.config.gateway.max_page_orders
        if req.limit < 0:
            return GatewayReject.MALFORMED, f"limit must be >= 0 (0: every order, 1 to {cap}: a page)"
        if req.limit > cap:
            return GatewayReject.QUERY_TOO_LARGE, f"limit {req.limit} exceeds {cap} (gateway.max_page_orders)"
        if req.after_order_id < 0:
            return GatewayReject.MALFORMED, "after_order_id must be >= 0 (0: from the first order)"
        if req.after_order_id >= self.engine.next_order_id:
            return GatewayReject.UNKNOWN_CURSOR, f"after_order_id {req.after_order_id} was never issued"
        return None

    def _chain(self, request_id: int, underlying: int) -> Chain:
        """The option series on an asset: marks are the references the feed process
        re-marks, margins its last SetOptionRisk, greeks its last PublishGreeks
        while the series is live (engine/schemas_options.py)."""
        engine = self.engine
        series = []
        if engine.risk and 0 <= underlying < len(engine.assets):
            symbol = engine.assets[underlying].symbol
            for iid, spec in enumerate(engine.instruments):
                if spec.option is None or spec.base != symbol:
                    continue
                state, mark, last_trade = engine.instrument_state(iid)
                status, price = engine.series_status(iid)
                terms = spec.option
                greeks = self.greeks.of(iid) if status == 0 else (None, 0)
                series.append(SeriesInfo(iid, spec.symbol, terms.expiry, terms.strike, terms.right,
                                         terms.contract_size, state, status, mark, last_trade,
                                         *engine.option_risk(iid), engine.open_interest(iid), price, *greeks))
        return Chain(request_id, underlying, series)

    def _instruments(self, request_id: int) -> Instruments:
        engine = self.engine
        infos = []
        for iid, spec in enumerate(engine.instruments):
            state, reference, last_trade = engine.instrument_state(iid)
            static_bps, dynamic_bps = engine.band_widths(iid)    # SET_BANDS's, not the spec's
            terms = {name: getattr(spec.option, name) if spec.option else "" for name in _OPTION_TERMS}
            terms["funding_period_s"] = spec.option.funding_period_s if spec.option else 0
            infos.append(from_core(InstrumentInfo, spec, instrument=iid, state=state, reference=reference,
                                   last_trade=last_trade, static_band_bps=static_bps,
                                   dynamic_band_bps=dynamic_bps, **terms))
        assets = [from_core(AssetInfo, asset, asset=aid) for aid, asset in enumerate(engine.assets)]
        return Instruments(request_id, infos, assets, self.config.market_data.depth)


def _known(engine, account: int) -> bool:
    """Whether the engine keeps balances for ``account``."""
    try:
        engine.balances(account)
    except (ValueError, OverflowError):
        return False
    return True


def _items(reply) -> int:
    """What an answer costs: one, plus one per entry of each of its lists."""
    return 1 + sum(len(value) for value in (getattr(reply, f) for f in reply.__struct_fields__)
                   if isinstance(value, list))
