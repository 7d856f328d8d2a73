"""The wire protocol of option chains and expiry (engine/core/chain.pyx): the
requests that list, close and cover, the replies of their events, and the
chain query. engine/schemas.py puts these Structs into its request and reply
unions; the helpers and conventions (tags, array_like, new fields only at the
end) are its.

Request tags 33-36, event reply tags 18-21 (= the core's EventKind), query
reply tag 41.
"""

from __future__ import annotations

import msgspec

from engine.schema_types import I32, I64, U8
from engine.schema_types import reply_config as _reply
from engine.schema_types import request_config as _request
from engine.schemas_greeks import SeriesGreeks

MAX_CHAIN_SERIES = 1_000
"""The most series one ListChain may list (expiries x strikes x rights)."""


# -- requests ----------------------------------------------------------------------------


class ListChain(msgspec.Struct, **_request(33)):
    """List a chain (operator): one series per (expiry, strike, right), each a
    copy of the ``template`` series' parameters (underlying, premium asset, tick,
    lot, bands, fees) with its own terms. Expiries are YYYYMMDD integers, strikes
    price units of the template per whole underlying token, rights 1 call / 2 put,
    the contract size underlying ledger units. One SeriesListed or Reject per
    series comes back, in expiry, strike, right order."""

    request_id: I64
    template: I32
    expiries: list[I64]
    strikes: list[I64]
    rights: list[U8]
    contract: I64


class CloseSeries(msgspec.Struct, **_request(34)):
    """Close an option series for good (operator): with a settlement price
    (price units per whole underlying token, the feed process's TWAP) an expired
    series settles in cash; without one (0) a series nobody holds is delisted."""

    request_id: I64
    instrument: I32
    settlement_price: I64 = 0


class CoverCalls(msgspec.Struct, **_request(35)):
    """Cover the account's call sells with the underlying it holds (locked until
    the exposure closes or expires; the covered part needs no margin), or stop."""

    request_id: I64
    covering: bool = True
    account: I64 = -1


class GetChain(msgspec.Struct, **_request(36)):
    """Every option series on an underlying asset, with marks, margins, open interest and greeks."""

    request_id: I64
    underlying: I32


# -- replies of events (tag = EventKind) --------------------------------------------------


class SeriesListed(msgspec.Struct, **_reply(18)):
    """A series was listed: its instrument id and terms (as ListChain gave them)."""

    seq: int
    ts: int
    request_id: int
    instrument: int
    right: int
    expiry: int
    strike: int
    contract: int


class SeriesClosed(msgspec.Struct, **_reply(19)):
    """A series closed: status 1 settled (at ``settlement_price``; ``collected``
    premium ledger units from its shorts, ``shortfall`` what they could not pay,
    taken pro rata from the longs) or 2 delisted (``collected`` is then the
    number of orders cancelled)."""

    seq: int
    ts: int
    request_id: int
    instrument: int
    status: int
    settlement_price: int
    collected: int
    shortfall: int


class PositionSettled(msgspec.Struct, **_reply(20)):
    """An account's position in an expired series was settled in cash: side 1
    received, 2 paid; ``amount`` premium ledger units of ``asset``."""

    seq: int
    ts: int
    request_id: int
    instrument: int
    account: int
    side: int
    asset: int
    amount: int
    position: int


class CoveringSet(msgspec.Struct, **_reply(21)):
    """The account's covered-call choice now."""

    seq: int
    ts: int
    request_id: int
    account: int
    covering: int


# -- the chain query ----------------------------------------------------------------------


class SeriesInfo(msgspec.Struct, array_like=True, frozen=True):
    """One series of a chain. ``mark`` is its reference price (the feed process's
    last re-mark, SET_REFERENCE), ``initial`` / ``maintenance`` the margins of a
    short from its last SetOptionRisk (USD x 1e8 per quantity unit), open interest
    the long quantity units held, status 0 live, 1 settled, 2 delisted. ``greeks``
    are the feed process's last published ones (engine/schemas_greeks.py), stamped
    ``greeks_ts`` (gateway ns); None (and 0) when unknown: never published since
    the gateway started, or the series is closed."""

    instrument: int
    symbol: str
    expiry: str
    strike: str
    right: str
    contract_size: str
    state: int
    status: int
    mark: int
    last_trade: int
    initial: int
    maintenance: int
    open_interest: int
    settlement_price: int
    greeks: SeriesGreeks | None = None
    greeks_ts: int = 0


class Chain(msgspec.Struct, **_reply(41)):
    """The series on one underlying, by instrument id."""

    request_id: int
    underlying: int
    series: list[SeriesInfo]


OPTION_REQUESTS = (ListChain, CloseSeries, CoverCalls, GetChain)
OPTION_REPLIES = (SeriesListed, SeriesClosed, PositionSettled, CoveringSet, Chain)
OPTION_EVENT_COLUMN = {"right": "side", "expiry": "order_id", "strike": "price", "contract": "qty",
                       "status": "aux", "settlement_price": "price", "collected": "qty", "shortfall": "leaves",
                       "position": "leaves", "covering": "aux"}
"""Reply field -> EVENT_DTYPE column of the replies above (engine.schemas.EVENT_COLUMN takes them)."""
