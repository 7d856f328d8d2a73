"""The wire protocol of option greeks: the operator's PublishGreeks (the feed
process sends it after each re-mark) and its answer. Greeks are derived market
data the gateway keeps in memory (engine/gateway/greeks.py), never journaled
engine state; GetChain carries them per series (engine/schemas_options.py).

Request tag 38, reply tag 43. engine/schemas.py registers these in its unions.
"""

from __future__ import annotations

import msgspec

from engine.schema_types import I32, I64, reply_config, request_config

MAX_GREEKS_ENTRIES = 1_000
"""The most series one PublishGreeks may carry: a chain's worth (ListChain's
MAX_CHAIN_SERIES), about 51 KB encoded, inside the default max_message_bytes."""


class SeriesGreeks(msgspec.Struct, array_like=True, frozen=True):
    """One option series' greeks, per 1 unit of the underlying, in the series'
    quote asset (multiply by the contract size for a contract): ``delta``,
    ``gamma`` (per quote unit of spot), ``vega`` (per 1.00 of volatility),
    ``theta`` (per year of calendar time; for a perpetual series minus its
    funding rate, the time value over the funding period, which is what a long
    pays per year at an unchanged spot) and ``vol``, the volatility they were
    computed with (the surface's, annualised). A PublishGreeks entry and a
    SeriesInfo field alike; it has no forbid_unknown_fields so that it may grow
    at the end and old clients still decode GetChain."""

    instrument: I32
    delta: float
    gamma: float
    vega: float
    theta: float
    vol: float


class PublishGreeks(msgspec.Struct, **request_config(38)):
    """Publish option series' greeks (operator, from the option-mark feed): every
    entry must name a live option series once, with finite numbers and a vol not
    below 0, or the whole request is refused. They replace what the gateway held
    for those series; GetChain shows them until the next publication."""

    request_id: I64
    series: list[SeriesGreeks]


class GreeksPublished(msgspec.Struct, **reply_config(43)):
    """A PublishGreeks was taken: ``count`` series, stamped with the gateway's
    time ``ts`` (ns since the epoch), which GetChain shows beside them."""

    request_id: int
    ts: int
    count: int
