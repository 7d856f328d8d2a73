"""The router's translation of shard replies to venue ids, and the merge of the
answers of a request sent to several shards (docs/sharding.md, "Router").

A merged answer is not a consistent cut: each shard answers at its own
sequence number, so an order that fills on one shard while another shard
answers is seen before or after the fill shard by shard."""

from __future__ import annotations

import msgspec

from engine.schemas import (
    AssetBalance,
    Balances,
    Credit,
    GetBalances,
    GetInstruments,
    GetMargin,
    GetOpenOrders,
    Heartbeat,
    Instruments,
    Logon,
    Margin,
    MassCancel,
    MassCancelled,
    OpenOrders,
    Reject,
)
from engine.schemas_replication import FindOrder, OrderFound
from engine.shards import MAX_SHARDS

FANOUT = (GetBalances, GetOpenOrders, GetMargin, GetInstruments, MassCancel, Logon, Heartbeat, FindOrder)
"""Requests every shard answers (MassCancel of every instrument; Logon and
Heartbeat keep each shard's session, and its cancel-on-disconnect, alive;
FindOrder: a client order id names no shard, so every shard is asked)."""

_LIST_FIELDS = ("orders", "positions", "instruments")


def globalize(reply, shard: int, to_global: list[int]):
    """``reply`` of shard ``shard`` with venue ids: order ids ``local * MAX_SHARDS
    + shard``, instrument ids through ``to_global`` (the shard's local -> venue
    instrument ids), in the reply and in its
    lists of orders, positions and instruments. A reject's order id is
    translated when it names an order (it carries a client order id); other
    rejects echo deposit or transfer ids."""
    changes = {}
    fields = type(reply).__struct_fields__
    if "instrument" in fields and 0 <= reply.instrument < len(to_global):
        changes["instrument"] = to_global[reply.instrument]
    if "order_id" in fields and reply.order_id > 0 and (not isinstance(reply, Reject) or reply.client_order_id):
        changes["order_id"] = reply.order_id * MAX_SHARDS + shard
    for name in _LIST_FIELDS:
        if name in fields:
            changes[name] = [globalize(item, shard, to_global) for item in getattr(reply, name)]
    return msgspec.structs.replace(reply, **changes) if changes else reply


def merge(request, replies: list):
    """One answer to ``request`` from its shards' answers: the first reject if
    any shard refused; else balances and margin figures summed, open orders,
    positions and instruments put together in id order, mass-cancel counts
    summed, for a logon, heartbeat or deposit the first answer, and for
    FindOrder the shard that found the order (else not found)."""
    rejects = [r for r in replies if isinstance(r, Reject)]
    if rejects or isinstance(request, Logon | Heartbeat | Credit):
        return rejects[0] if rejects else replies[0]
    first = replies[0]
    match first:
        case Balances():
            totals: dict[int, list[int]] = {}
            for reply in replies:
                for b in reply.balances:
                    row = totals.setdefault(b.asset, [0, 0])
                    row[0] += b.total
                    row[1] += b.reserved
            return Balances(first.request_id, first.account,
                            [AssetBalance(a, t, r) for a, (t, r) in sorted(totals.items())])
        case OpenOrders():
            orders = sorted((o for r in replies for o in r.orders), key=lambda o: o.order_id)
            return OpenOrders(first.request_id, first.account, orders)
        case Margin():
            sums = {name: sum(getattr(r, name) for r in replies)
                    for name in ("collateral", "free_collateral", "initial", "maintenance")}
            positions = sorted((p for r in replies for p in r.positions), key=lambda p: p.instrument)
            return Margin(first.request_id, first.account, positions=positions, **sums)
        case Instruments():
            instruments = sorted((i for r in replies for i in r.instruments), key=lambda i: i.instrument)
            return msgspec.structs.replace(first, instruments=instruments)
        case MassCancelled():
            return msgspec.structs.replace(first, count=sum(r.count for r in replies))
        case OrderFound():
            return next((r for r in replies if r.seq), first)
    return first
