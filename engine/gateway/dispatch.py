"""The request table: for each request type of the wire protocol, who may send
it (its authorisation rule) and the engine command it becomes; queries are
answered after the batch runs (engine/gateway/queries.py), and so is
PublishGreeks, which changes gateway data, not engine state.

This is the general path; the C reader (engine/core/wire.pyx) applies the same
rules to the common order messages of a key acting for its own account.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import NamedTuple

from engine.core.types import CommandKind
from engine.gateway.batch import Batch
from engine.gateway.limits import UNMETERED_QUERIES
from engine.gateway.sessions import Session
from engine.schemas import (
    OWN_ACCOUNT,
    Amend,
    Cancel,
    Credit,
    Debit,
    GatewayReject,
    FreezeAccount,
    GetBalances,
    GetBook,
    GetInstruments,
    GetMargin,
    GetMarginCalls,
    GetOpenOrders,
    GetStatus,
    Heartbeat,
    Liquidate,
    Logon,
    MassCancel,
    NewOrder,
    SetAssetPrice,
    SetBands,
    SetHaircut,
    SetOptionRisk,
    SetReference,
    SetState,
    SkipDeposit,
)
from engine.schemas_greeks import PublishGreeks
from engine.schemas_insurance import GetInsurance, SweepFees
from engine.schemas_options import MAX_CHAIN_SERIES, CloseSeries, CoverCalls, GetChain, ListChain
from engine.schemas_perpetual import Fund
from engine.schemas_pools import GetPoolInfo, PoolCancel, PoolDeposit, PoolRedeem
from engine.schemas_replication import FindOrder
from engine.schemas_shards import GetTransfers, Transfer, TransferLeg


class Rule(Enum):
    """Who may send a request."""

    ANYONE = "any configured key"
    OPERATOR = "operator keys only"
    ACCOUNT = "acts for its account: the key's own (OWN_ACCOUNT names it), any account for an operator"


Command = Callable[[Batch, Session, object, int | None], None]
"""Adds a request's command to the batch, given the account it acts for (ACCOUNT rule)."""


class Route(NamedTuple):
    """What the gateway does with one request type: ``command`` None is a query."""

    rule: Rule
    command: Command | None = None


def _new_order(batch: Batch, session: Session, req: NewOrder, account: int) -> None:
    batch.command(session, 0, CommandKind.NEW_ORDER, side=req.side, order_type=req.order_type, tif=req.tif,
                  stp=req.stp, instrument=req.instrument, account=account, client_order_id=req.client_order_id,
                  price=req.price, qty=req.qty)


def _cancel(batch: Batch, session: Session, req: Cancel, account: int) -> None:
    batch.command(session, 0, CommandKind.CANCEL, account=account, order_id=req.order_id,
                  client_order_id=req.client_order_id)


def _amend(batch: Batch, session: Session, req: Amend, account: int) -> None:
    batch.command(session, 0, CommandKind.AMEND, account=account, order_id=req.order_id,
                  client_order_id=req.client_order_id, price=req.price, qty=req.qty)


def _mass_cancel(batch: Batch, session: Session, req: MassCancel, account: int) -> None:
    batch.command(session, req.request_id, CommandKind.MASS_CANCEL, instrument=req.instrument, account=account)


def _debit(batch: Batch, session: Session, req: Debit, account: int) -> None:
    batch.command(session, req.request_id, CommandKind.DEBIT, asset=req.asset, account=account, qty=req.amount)


def _set_state(batch: Batch, session: Session, req: SetState, _account: None) -> None:
    batch.command(session, req.request_id, CommandKind.SET_STATE, state=req.state, instrument=req.instrument)


def _set_reference(batch: Batch, session: Session, req: SetReference, _account: None) -> None:
    batch.command(session, req.request_id, CommandKind.SET_REFERENCE, instrument=req.instrument, price=req.price)


def _credit(batch: Batch, session: Session, req: Credit, _account: None) -> None:
    # Every credit through the wire is a vault deposit: one without its id would be
    # balance that nothing on chain backs. The core still takes id-less credits (a
    # config's genesis balances, and journals written before this rule replay as
    # they were), so the rule lives here, at the boundary.
    if req.deposit_id < 1:
        batch.reject(session, GatewayReject.NOT_AUTHORIZED,
                     "a Credit needs the vault deposit id that backs it (deposit id >= 1)", request_id=req.request_id)
        return
    batch.command(session, req.request_id, CommandKind.CREDIT, asset=req.asset, account=req.account,
                  qty=req.amount, order_id=req.deposit_id)


def _set_asset_price(batch: Batch, session: Session, req: SetAssetPrice, _account: None) -> None:
    batch.command(session, req.request_id, CommandKind.SET_ASSET_PRICE, asset=req.asset, price=req.price)


def _skip_deposit(batch: Batch, session: Session, req: SkipDeposit, _account: None) -> None:
    batch.command(session, req.request_id, CommandKind.SKIP_DEPOSIT, order_id=req.deposit_id)


def _set_option_risk(batch: Batch, session: Session, req: SetOptionRisk, _account: None) -> None:
    batch.command(session, req.request_id, CommandKind.SET_OPTION_RISK, instrument=req.instrument,
                  qty=req.initial, price=req.maintenance)


def _liquidate(batch: Batch, session: Session, req: Liquidate, _account: None) -> None:
    batch.command(session, req.request_id, CommandKind.LIQUIDATE, account=req.account)


def _freeze_account(batch: Batch, session: Session, req: FreezeAccount, _account: None) -> None:
    batch.command(session, req.request_id, CommandKind.FREEZE_ACCOUNT, account=req.account)


def _set_bands(batch: Batch, session: Session, req: SetBands, _account: None) -> None:
    # COMMAND_DTYPE has no bps column: the static width travels in price, the dynamic in qty.
    batch.command(session, req.request_id, CommandKind.SET_BANDS, instrument=req.instrument,
                  price=req.static_bps, qty=req.dynamic_bps)


def _set_haircut(batch: Batch, session: Session, req: SetHaircut, _account: None) -> None:
    batch.command(session, req.request_id, CommandKind.SET_HAIRCUT, asset=req.asset, price=req.haircut_bps)


def _fund(batch: Batch, session: Session, req: Fund, _account: None) -> None:
    batch.command(session, req.request_id, CommandKind.FUND, instrument=req.instrument, price=req.mark,
                  qty=req.payoff)


def _sweep_fees(batch: Batch, session: Session, req: SweepFees, _account: None) -> None:
    batch.command(session, req.request_id, CommandKind.SWEEP_FEES, asset=req.asset)


def _list_chain(batch: Batch, session: Session, req: ListChain, _account: None) -> None:
    # One LIST_SERIES per series (engine/chains.py), all answering the request id.
    count = len(req.expiries) * len(req.strikes) * len(req.rights)
    if count > MAX_CHAIN_SERIES:
        batch.reject(session, GatewayReject.CHAIN_TOO_LARGE, f"{count} series; at most {MAX_CHAIN_SERIES} a request",
                     request_id=req.request_id)
        return
    for expiry in req.expiries:
        for strike in req.strikes:
            for right in req.rights:
                batch.command(session, req.request_id, CommandKind.LIST_SERIES, instrument=req.template, side=right,
                              order_id=expiry, price=strike, qty=req.contract)


def _close_series(batch: Batch, session: Session, req: CloseSeries, _account: None) -> None:
    if req.settlement_price:
        batch.command(session, req.request_id, CommandKind.SETTLE_SERIES, instrument=req.instrument,
                      price=req.settlement_price)
    else:
        batch.command(session, req.request_id, CommandKind.DELIST_SERIES, instrument=req.instrument)


def _cover_calls(batch: Batch, session: Session, req: CoverCalls, account: int) -> None:
    batch.command(session, req.request_id, CommandKind.COVER_CALLS, account=account, state=int(req.covering))


def _pool_deposit(batch: Batch, session: Session, req: PoolDeposit, account: int) -> None:
    batch.command(session, req.request_id, CommandKind.POOL_DEPOSIT_REQUEST, account=account, asset=req.pool,
                  qty=req.amount)


def _pool_redeem(batch: Batch, session: Session, req: PoolRedeem, account: int) -> None:
    batch.command(session, req.request_id, CommandKind.POOL_REDEEM, account=account, asset=req.pool, qty=req.shares,
                  order_id=req.redemption)


def _pool_cancel(batch: Batch, session: Session, req: PoolCancel, account: int) -> None:
    batch.command(session, req.request_id, CommandKind.POOL_CANCEL, account=account, asset=req.pool,
                  order_id=req.request)


def _transfer(batch: Batch, session: Session, req: Transfer, _account: None) -> None:
    if req.leg not in (TransferLeg.OUT, TransferLeg.IN):
        batch.reject(session, GatewayReject.MALFORMED,
                     f"leg must be {TransferLeg.OUT:d} (out) or {TransferLeg.IN:d} (in)", request_id=req.request_id)
        return
    kind = CommandKind.TRANSFER_OUT if req.leg == TransferLeg.OUT else CommandKind.TRANSFER_IN
    batch.command(session, req.request_id, kind, order_id=req.transfer_id, account=req.account, asset=req.asset,
                  qty=req.amount)


ROUTES: dict[type, Route] = {
    NewOrder: Route(Rule.ACCOUNT, _new_order),
    Cancel: Route(Rule.ACCOUNT, _cancel),
    Amend: Route(Rule.ACCOUNT, _amend),
    MassCancel: Route(Rule.ACCOUNT, _mass_cancel),
    Debit: Route(Rule.ACCOUNT, _debit),
    SetState: Route(Rule.OPERATOR, _set_state),
    SetReference: Route(Rule.OPERATOR, _set_reference),
    Credit: Route(Rule.OPERATOR, _credit),
    SetAssetPrice: Route(Rule.OPERATOR, _set_asset_price),
    SkipDeposit: Route(Rule.OPERATOR, _skip_deposit),
    SetOptionRisk: Route(Rule.OPERATOR, _set_option_risk),
    Liquidate: Route(Rule.OPERATOR, _liquidate),
    FreezeAccount: Route(Rule.OPERATOR, _freeze_account),
    SetBands: Route(Rule.OPERATOR, _set_bands),
    SetHaircut: Route(Rule.OPERATOR, _set_haircut),
    Fund: Route(Rule.OPERATOR, _fund),
    ListChain: Route(Rule.OPERATOR, _list_chain),
    CloseSeries: Route(Rule.OPERATOR, _close_series),
    CoverCalls: Route(Rule.ACCOUNT, _cover_calls),
    PoolDeposit: Route(Rule.ACCOUNT, _pool_deposit),
    PoolRedeem: Route(Rule.ACCOUNT, _pool_redeem),
    PoolCancel: Route(Rule.ACCOUNT, _pool_cancel),
    GetChain: Route(Rule.ANYONE),
    GetInsurance: Route(Rule.ANYONE),
    SweepFees: Route(Rule.OPERATOR, _sweep_fees),
    GetPoolInfo: Route(Rule.ANYONE),
    PublishGreeks: Route(Rule.OPERATOR),
    Logon: Route(Rule.ANYONE),
    Heartbeat: Route(Rule.ANYONE),
    GetBook: Route(Rule.ANYONE),
    GetInstruments: Route(Rule.ANYONE),
    GetBalances: Route(Rule.ACCOUNT),
    GetOpenOrders: Route(Rule.ACCOUNT),
    GetMargin: Route(Rule.ACCOUNT),
    FindOrder: Route(Rule.ACCOUNT),
    GetStatus: Route(Rule.OPERATOR),
    GetMarginCalls: Route(Rule.OPERATOR),
    Transfer: Route(Rule.OPERATOR, _transfer),
    GetTransfers: Route(Rule.OPERATOR),
}

# A reject names the request by the fields it has of these (derived once per type).
_REFERENCE_FIELDS = ("client_order_id", "order_id", "request_id")
_REFERENCES = {kind: tuple(f for f in _REFERENCE_FIELDS if f in kind.__struct_fields__) for kind in ROUTES}


def reference(req) -> dict[str, int]:
    """The fields a reject of ``req`` carries to name it (client order id, order id, request id)."""
    return {name: getattr(req, name) for name in _REFERENCES[type(req)]}


def act_for(batch: Batch, session: Session, req) -> int | None:
    """The account an ACCOUNT-rule request acts for, or None after rejecting it."""
    principal = session.principal
    requested = req.account
    if requested == OWN_ACCOUNT:
        if principal.account is None:
            batch.reject(session, GatewayReject.NOT_AUTHORIZED, "this key has no trading account; name the account",
                         **reference(req))
            return None
        return principal.account
    if requested != principal.account and not principal.operator:
        batch.reject(session, GatewayReject.NOT_AUTHORIZED,
                     f"this key acts for account {principal.account} only, not {requested}", **reference(req))
        return None
    return requested


def dispatch(batch: Batch, session: Session, req, now: float) -> None:
    """Authorise one decoded request and add its command to the batch, or queue
    it as a query, charged to the session's query items now (``now`` is
    monotonic time) so that one batch cannot hold more queries than the budget.
    A query's account is checked when it is answered, after the batch's
    commands, so its reject leaves with the answers."""
    route = ROUTES[type(req)]
    if route.rule is Rule.OPERATOR and not session.principal.operator:
        batch.reject(session, GatewayReject.NOT_AUTHORIZED, f"{type(req).__name__} needs an operator key",
                     request_id=req.request_id)
    elif route.command is None:
        limits = session.limits
        if (session.principal.operator or isinstance(req, UNMETERED_QUERIES)
                or limits.query_items.spend(limits.query_cost(req), now)):
            batch.queries.append((session, req))
        else:
            batch.reject(session, GatewayReject.RATE_LIMITED, limits.query_refusal(), request_id=req.request_id)
    elif route.rule is Rule.ACCOUNT:
        account = act_for(batch, session, req)
        if account is not None:
            route.command(batch, session, req, account)
    else:
        route.command(batch, session, req, None)
