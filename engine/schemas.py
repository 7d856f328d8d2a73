"""The wire protocol of the gateway: msgspec Structs, MessagePack, one union per direction.

Three directions, each a tagged union of frozen, ``array_like`` Structs with small
integer tags (the first array element):

* requests, client -> gateway (ROUTER): one ZeroMQ message is a MessagePack
  *array* of requests, so a client can batch many orders into one message;
* replies, gateway -> client: one message is an array of replies;
* market data, gateway -> subscribers (PUB): frames ``[topic, seq, payload]``,
  ``topic = symbol + "|"``, ``seq`` an 8-byte big-endian per-instrument sequence
  number, ``payload`` one market-data Struct.

Replies that come from engine events use the event kind as their tag
(``Ack`` = ACCEPTED = 1, ``Reject`` = REJECTED = 2, ...). Reply fields named like
an ``EVENT_DTYPE`` column carry that column (see ``EVENT_COLUMN``), which lets the
gateway encode replies straight from the event array (engine/gateway/wire_layouts.py) with
bytes identical to encoding these Structs. New fields go at the end, with defaults.

Prices are integer price units, quantities integer quantity units, balances
ledger units (docs/matching.md). Reject codes below 100 are the core's
(``engine.core.types.Reject``), codes from 100 up are the gateway's (``GatewayReject``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Union

import msgspec

from engine import schemas_insurance, schemas_perpetual
from engine.core.order_info import PositionInfo
from engine.core.types import CANCEL_TEXT, REJECT_TEXT, CancelReason, OrderType, SelfTrade, TimeInForce
from engine.schema_types import I32, I64, U8
from engine.schema_types import reply_config as _reply
from engine.schema_types import request_config as _request
from engine.schemas_greeks import GreeksPublished, PublishGreeks
from engine.schemas_insurance import INSURANCE_REPLIES, INSURANCE_REQUESTS
from engine.schemas_options import OPTION_EVENT_COLUMN, OPTION_REPLIES, OPTION_REQUESTS
from engine.schemas_perpetual import Fund, Funded, FundingSettled
from engine.schemas_pools import POOL_REPLIES, POOL_REQUESTS
from engine.schemas_pools import EVENT_COLUMN as POOL_EVENT_COLUMN
from engine.schemas_replication import FindOrder, OrderFound
from engine.schemas_shards import SHARD_REPLIES, SHARD_REQUESTS
from engine.schemas_shards import EVENT_COLUMN as SHARD_EVENT_COLUMN

OWN_ACCOUNT = -1
"""``account`` value meaning "the account bound to my key"."""

ALL_INSTRUMENTS = -1
"""``instrument`` value of a mass cancel meaning every instrument."""


class GatewayReject(IntEnum):
    """Reject codes of the gateway (the core's codes stay below 100)."""

    MALFORMED = 100
    UNKNOWN_REQUEST = 101
    NOT_AUTHORIZED = 102
    MESSAGE_TOO_LARGE = 103
    TOO_MANY_REQUESTS = 104
    NOT_SUPPORTED = 105
    RATE_LIMITED = 106
    QUERY_TOO_LARGE = 107
    UNKNOWN_CURSOR = 108
    CHAIN_TOO_LARGE = 110
    NO_POOL = 111
    NO_POOLS = 112
    SHARD_UNAVAILABLE = 116   # the shard router's (docs/sharding.md)
    NOT_ROUTABLE = 117


GATEWAY_REJECT_TEXT = {
    GatewayReject.MALFORMED: "malformed message",
    GatewayReject.UNKNOWN_REQUEST: "unknown request type",
    GatewayReject.NOT_AUTHORIZED: "not authorized",
    GatewayReject.MESSAGE_TOO_LARGE: "message too large",
    GatewayReject.TOO_MANY_REQUESTS: "too many requests in one message",
    GatewayReject.NOT_SUPPORTED: "not supported by this engine",
    GatewayReject.RATE_LIMITED: "rate limit exceeded; slow down",
    GatewayReject.QUERY_TOO_LARGE: "query answer too large",
    GatewayReject.UNKNOWN_CURSOR: "paging cursor names no order id the venue issued",
    GatewayReject.CHAIN_TOO_LARGE: "chain lists too many series for one request",
    GatewayReject.NO_POOL: "this venue has no main pool",
    GatewayReject.SHARD_UNAVAILABLE: "the shard of this request is not answering; its instruments are unavailable",
    GatewayReject.NOT_ROUTABLE: "the router cannot route this request",
    GatewayReject.NO_POOLS: "this venue has no insurance pool ([pools] in its config)",
}


def reject_text(code: int) -> str:
    """Readable text of any reject code, core or gateway."""
    if code in GATEWAY_REJECT_TEXT:
        return GATEWAY_REJECT_TEXT[GatewayReject(code)]
    return REJECT_TEXT.get(code, f"reject code {code}")


class Liquidity(IntEnum):
    """Which side of a fill an order was on."""

    MAKER = 1
    TAKER = 2


# -- requests: trading --------------------------------------------------------


class NewOrder(msgspec.Struct, **_request(1)):
    """Place an order. ``price`` is ignored for market orders."""

    client_order_id: I64
    instrument: I32
    side: U8
    qty: I64
    price: I64 = 0
    order_type: U8 = OrderType.LIMIT
    tif: U8 = TimeInForce.GTC
    stp: U8 = SelfTrade.CANCEL_NEWEST
    account: I64 = OWN_ACCOUNT


class Cancel(msgspec.Struct, **_request(2)):
    """Cancel a resting order."""

    client_order_id: I64
    order_id: I64
    account: I64 = OWN_ACCOUNT


class Amend(msgspec.Struct, **_request(3)):
    """Change a resting order's open quantity and/or price (0 keeps the value)."""

    client_order_id: I64
    order_id: I64
    qty: I64 = 0
    price: I64 = 0
    account: I64 = OWN_ACCOUNT


class MassCancel(msgspec.Struct, **_request(4)):
    """Cancel every resting order of the account, in one instrument or all (-1)."""

    request_id: I64
    instrument: I32 = ALL_INSTRUMENTS
    account: I64 = OWN_ACCOUNT


# -- requests: session and queries -----------------------------------------------


class Logon(msgspec.Struct, **_request(10)):
    """Start a session; with cancel_on_disconnect the gateway cancels the account's
    orders when this session stops heartbeating for the configured timeout. An
    operator key may name an ``account``: the session then hears that account's
    fills and events and its cancel-on-disconnect cancels that account's orders
    (the shard router's sessions, docs/sharding.md)."""

    request_id: I64
    cancel_on_disconnect: bool = False
    account: I64 = OWN_ACCOUNT


class Heartbeat(msgspec.Struct, **_request(11)):
    """Keep the session alive; answered with Pong."""

    request_id: I64 = 0


class GetBalances(msgspec.Struct, **_request(12)):
    """Balances of the account (operators: any account)."""

    request_id: I64
    account: I64 = OWN_ACCOUNT


class GetOpenOrders(msgspec.Struct, **_request(13)):
    """Resting orders of the account (operators: any account), by order id.
    ``limit = 0`` answers them all; ``limit > 0`` a page: at most ``limit``
    orders with an id above ``after_order_id`` (0, or an id the venue issued).
    A page shorter than ``limit`` is the last; the next page starts after the
    last id of this one (docs/gateway.md, "Paging open orders")."""

    request_id: I64
    account: I64 = OWN_ACCOUNT
    after_order_id: I64 = 0
    limit: I32 = 0


class GetBook(msgspec.Struct, **_request(14)):
    """Book snapshot of one instrument, consistent with a market-data seq.
    ``levels = 0`` gives the market-data depth."""

    request_id: I64
    instrument: I32
    levels: I32 = 0


class GetInstruments(msgspec.Struct, **_request(15)):
    """Instruments and assets with their ids, sizes and current states."""

    request_id: I64


class GetMargin(msgspec.Struct, **_request(16)):
    """Collateral value, margin requirements and option positions of the
    account (operators: any account)."""

    request_id: I64
    account: I64 = OWN_ACCOUNT


# -- requests: operator only -------------------------------------------------------


class SetState(msgspec.Struct, **_request(20)):
    """Halt, resume or close an instrument (TradingState)."""

    request_id: I64
    instrument: I32
    state: U8


class SetReference(msgspec.Struct, **_request(21)):
    """Set an instrument's reference price (centre of the static band)."""

    request_id: I64
    instrument: I32
    price: I64


class Credit(msgspec.Struct, **_request(22)):
    """Credit a confirmed deposit to an account (ledger units). A non-zero
    ``deposit_id`` is the vault's deposit id: the engine takes it only as its
    last_deposit_id + 1, so each deposit is credited exactly once."""

    request_id: I64
    account: I64
    asset: I32
    amount: I64
    deposit_id: I64 = 0


class Debit(msgspec.Struct, **_request(23)):
    """Request a withdrawal: debit an account's free balance (ledger units). It
    is settled in the next batch and then claimable on chain. A client may
    withdraw from its own account only (OWN_ACCOUNT or its id), an operator
    from any."""

    request_id: I64
    account: I64
    asset: I32
    amount: I64


class SetAssetPrice(msgspec.Struct, **_request(24)):
    """Set an asset's reference price, USD x 1e8 per whole token."""

    request_id: I64
    asset: I32
    price: I64


class GetStatus(msgspec.Struct, **_request(25)):
    """Engine status: last seq, state hash, last deposit id."""

    request_id: I64


class SkipDeposit(msgspec.Struct, **_request(26)):
    """Use up a vault deposit id without a credit (its wallet has no account)."""

    request_id: I64
    deposit_id: I64


class SetOptionRisk(msgspec.Struct, **_request(27)):
    """Set an option series' margin of a short, USD x 1e8 per quantity unit
    (from the option-mark feed): 0 < maintenance <= initial <= 1e15."""

    request_id: I64
    instrument: I32
    initial: I64
    maintenance: I64


class Liquidate(msgspec.Struct, **_request(28)):
    """Liquidate an account under its maintenance margin: cancel its orders,
    sell collateral for the premium asset as needed and buy back its short
    options, each closing order IOC at the band edge."""

    request_id: I64
    account: I64


class GetMarginCalls(msgspec.Struct, **_request(29)):
    """Every account whose collateral value is below its maintenance margin."""

    request_id: I64


class FreezeAccount(msgspec.Struct, **_request(30)):
    """Freeze an account whose wallet requested an exit on chain (the exit
    watcher sends it once the request is final): its orders are cancelled, its
    new orders and withdrawals refused; the vault then pays out its balance."""

    request_id: I64
    account: I64


class SetBands(msgspec.Struct, **_request(31)):
    """Set an instrument's band widths in bps, 0 <= width < 10000 (0: no such
    band), e.g. per US market session. The static band re-centres on the
    current reference and resting orders left outside it are cancelled (BAND)."""

    request_id: I64
    instrument: I32
    static_bps: I64
    dynamic_bps: I64


class SetHaircut(msgspec.Struct, **_request(32)):
    """Set an asset's collateral haircut in bps, 0..10000, e.g. per US market session."""

    request_id: I64
    asset: I32
    haircut_bps: I64



Request = Union[(
    NewOrder, Cancel, Amend, MassCancel,
    Logon, Heartbeat, GetBalances, GetOpenOrders, GetBook, GetInstruments, GetMargin,
    SetState, SetReference, Credit, Debit, SetAssetPrice, GetStatus, SkipDeposit,
    SetOptionRisk, Liquidate, GetMarginCalls, FreezeAccount, SetBands, SetHaircut,
    Fund, PublishGreeks, FindOrder,
    *OPTION_REQUESTS, *POOL_REQUESTS, *SHARD_REQUESTS,
    *INSURANCE_REQUESTS,
)]
REQUEST_TYPES: tuple[type, ...] = Request.__args__
REQUEST_TAGS = frozenset(t.__struct_config__.tag for t in REQUEST_TYPES)

REQUEST_ENCODER = msgspec.msgpack.Encoder()
REQUEST_DECODER = msgspec.msgpack.Decoder(list[Request])
REQUEST_ITEM_DECODER = msgspec.msgpack.Decoder(Request)
RAW_LIST_DECODER = msgspec.msgpack.Decoder(list[msgspec.Raw])


# -- replies: from engine events (tag = EventKind) -----------------------------------


class Ack(msgspec.Struct, **_reply(1)):
    """A new order was accepted; ``price`` is the limit (or a market order's collar)."""

    seq: int
    ts: int
    client_order_id: int
    order_id: int
    instrument: int
    side: int
    price: int
    qty: int
    tif: int


class Reject(msgspec.Struct, **_reply(2)):
    """A request was refused. ``seq`` is 0 when the gateway refused it before
    sequencing (malformed, not authorized, ...); ``code`` below 100 is the core's."""

    seq: int
    ts: int
    code: int
    text: str
    client_order_id: int = 0
    order_id: int = 0
    request_id: int = 0


class Fill(msgspec.Struct, **_reply(3)):
    """One execution of one of your orders, from your order's side."""

    seq: int
    ts: int
    client_order_id: int
    order_id: int
    instrument: int
    side: int
    price: int
    qty: int
    leaves: int
    fee: int
    liquidity: int


class Cancelled(msgspec.Struct, **_reply(4)):
    """An order (or its remainder) was cancelled; ``reason`` is a CancelReason."""

    seq: int
    ts: int
    client_order_id: int
    order_id: int
    instrument: int
    side: int
    price: int
    qty: int
    reason: int

    @property
    def reason_text(self) -> str:
        """Readable cancel reason."""
        return CANCEL_TEXT.get(CancelReason(self.reason), str(self.reason))


class Amended(msgspec.Struct, **_reply(5)):
    """An amend was applied; ``qty`` is the new open quantity."""

    seq: int
    ts: int
    client_order_id: int
    order_id: int
    instrument: int
    side: int
    price: int
    qty: int
    priority_lost: int


class MassCancelled(msgspec.Struct, **_reply(6)):
    """A mass cancel finished; ``count`` orders were cancelled."""

    seq: int
    ts: int
    request_id: int
    account: int
    instrument: int
    count: int


class StateChanged(msgspec.Struct, **_reply(7)):
    """An instrument's trading state changed (operator)."""

    seq: int
    ts: int
    request_id: int
    instrument: int
    state: int


class ReferenceSet(msgspec.Struct, **_reply(8)):
    """An instrument's reference price was set (operator)."""

    seq: int
    ts: int
    request_id: int
    instrument: int
    price: int


class Credited(msgspec.Struct, **_reply(9)):
    """A credit was booked; ``total`` is the account's new total of the asset."""

    seq: int
    ts: int
    request_id: int
    account: int
    asset: int
    amount: int
    total: int
    deposit_id: int = 0


class Debited(msgspec.Struct, **_reply(10)):
    """A debit was booked; ``total`` is the account's new total of the asset."""

    seq: int
    ts: int
    request_id: int
    account: int
    asset: int
    amount: int
    total: int


class AssetPriceSet(msgspec.Struct, **_reply(11)):
    """An asset's USD reference price was set (operator)."""

    seq: int
    ts: int
    request_id: int
    asset: int
    price: int


class DepositSkipped(msgspec.Struct, **_reply(12)):
    """A vault deposit id was used up without a credit (operator)."""

    seq: int
    ts: int
    request_id: int
    deposit_id: int


class OptionRiskSet(msgspec.Struct, **_reply(13)):
    """An option series' margins were set (operator), USD x 1e8 per quantity unit."""

    seq: int
    ts: int
    request_id: int
    instrument: int
    initial: int
    maintenance: int


class Liquidated(msgspec.Struct, **_reply(14)):
    """An account was liquidated: its figures when the liquidation started
    (USD x 1e8) and the number of closing orders the engine accepted. The
    cancels, closing orders and fills follow as their own replies."""

    seq: int
    ts: int
    request_id: int
    account: int
    collateral: int
    maintenance: int
    orders: int


class AccountFrozen(msgspec.Struct, **_reply(15)):
    """An account was frozen by its wallet's exit request, with the number of
    its orders cancelled (their cancels follow as their own replies)."""

    seq: int
    ts: int
    request_id: int
    account: int
    orders: int


class BandsSet(msgspec.Struct, **_reply(16)):
    """An instrument's band widths were set (operator), bps; the cancels of
    orders left outside the static band follow as their own replies."""

    seq: int
    ts: int
    request_id: int
    instrument: int
    static_bps: int
    dynamic_bps: int


class HaircutSet(msgspec.Struct, **_reply(17)):
    """An asset's collateral haircut was set (operator), bps."""

    seq: int
    ts: int
    request_id: int
    asset: int
    haircut_bps: int


class EngineEvent(msgspec.Struct, **_reply(31)):
    """An engine event of a kind this protocol version has no reply for (forward
    compatibility): the raw EVENT_DTYPE fields."""

    seq: int
    ts: int
    kind: int
    reason: int
    side: int
    aux: int
    instrument: int
    order_id: int
    client_order_id: int
    account: int
    price: int
    qty: int
    leaves: int
    asset: int


EVENT_COLUMN = {"tif": "aux", "code": "reason", "count": "qty", "state": "aux",
                "amount": "qty", "total": "leaves", "priority_lost": "aux", "deposit_id": "order_id",
                "initial": "qty", "maintenance": "price", "collateral": "leaves", "orders": "qty",
                "static_bps": "price", "dynamic_bps": "qty", "haircut_bps": "price",
                **schemas_perpetual.EVENT_COLUMN, **OPTION_EVENT_COLUMN,
                **POOL_EVENT_COLUMN, **SHARD_EVENT_COLUMN,
                **schemas_insurance.EVENT_COLUMN}
"""Reply field -> EVENT_DTYPE column, where the names differ."""


# -- replies: session and queries ----------------------------------------------


class LoggedOn(msgspec.Struct, **_reply(32)):
    """Session started; ``account`` is -1 for an operator key without an account."""

    request_id: int
    account: int
    operator: bool
    heartbeat_ms: int
    timeout_ms: int
    cancel_on_disconnect: bool


class Pong(msgspec.Struct, **_reply(33)):
    """Answer to Heartbeat; ``last_seq`` is the engine's last sequence number."""

    request_id: int
    ts: int
    last_seq: int


class AssetBalance(msgspec.Struct, array_like=True, frozen=True):
    """One asset's balance: free = total - reserved."""

    asset: int
    total: int
    reserved: int


class Balances(msgspec.Struct, **_reply(34)):
    """Balances of an account, one entry per asset id."""

    request_id: int
    account: int
    balances: list[AssetBalance]


class OpenOrder(msgspec.Struct, array_like=True, frozen=True):
    """One resting order."""

    order_id: int
    client_order_id: int
    instrument: int
    side: int
    price: int
    leaves: int
    tif: int
    stp: int


class OpenOrders(msgspec.Struct, **_reply(35)):
    """Resting orders of an account, by order id."""

    request_id: int
    account: int
    orders: list[OpenOrder]


class Level(msgspec.Struct, array_like=True, frozen=True):
    """One price level: total quantity and number of orders (qty 0 in a delta removes it)."""

    price: int
    qty: int
    count: int


class BookSnapshot(msgspec.Struct, **_reply(36)):
    """Depth of one instrument, consistent with market-data sequence number ``md_seq``."""

    request_id: int
    instrument: int
    md_seq: int
    ts: int
    state: int
    reference: int
    last_trade: int
    bids: list[Level]
    asks: list[Level]


class InstrumentInfo(msgspec.Struct, array_like=True, frozen=True):
    """An instrument's id, specification and current trading state."""

    instrument: int
    symbol: str
    base: str
    quote: str
    tick_size: int
    lot_size: int
    min_qty: int
    max_qty: int
    max_price: int
    price_scale: int
    qty_scale: int
    static_band_bps: int
    dynamic_band_bps: int
    maker_fee_bps: int
    taker_fee_bps: int
    state: int
    reference: int
    last_trade: int
    # option series only (OptionTerms); "" for a spot pair
    expiry: str = ""              # "" for a perpetual series too
    strike: str = ""
    right: str = ""
    contract_size: str = ""
    funding_period_s: int = 0     # perpetual series: funding period T (docs/funding.md)
    expiry_time: str = ""         # dated series: "HH:MM[:SS]" UTC of the expiry date; "": 08:00


class AssetInfo(msgspec.Struct, array_like=True, frozen=True):
    """An asset's id and precision."""

    asset: int
    symbol: str
    decimals: int
    ledger_decimals: int
    haircut_bps: int


class Instruments(msgspec.Struct, **_reply(37)):
    """Every instrument and asset, by id."""

    request_id: int
    instruments: list[InstrumentInfo]
    assets: list[AssetInfo]
    md_depth: int


class Status(msgspec.Struct, **_reply(38)):
    """Engine status (operator): last sequence number, state hash, sessions, and
    the last vault deposit id credited or skipped (where deposit watchers resume)."""

    request_id: int
    last_seq: int
    state_hash: str
    sessions: int
    last_deposit_id: int = 0


class Margin(msgspec.Struct, **_reply(39)):
    """An account's margin, USD x 1e8: collateral value (every balance at its
    reference price less its haircut), the same over free balances, the initial
    margin its open sells and shorts need and the maintenance margin of its
    shorts; under maintenance when collateral < maintenance."""

    request_id: int
    account: int
    collateral: int
    free_collateral: int
    initial: int
    maintenance: int
    positions: list[PositionInfo]


class MarginCall(msgspec.Struct, array_like=True, frozen=True):
    """An account under its maintenance margin (USD x 1e8)."""

    account: int
    collateral: int
    maintenance: int


class MarginCalls(msgspec.Struct, **_reply(40)):
    """Every account under its maintenance margin, by account id (operator)."""

    request_id: int
    accounts: list[MarginCall]


def from_core(reply: type[msgspec.Struct], result, **given):
    """A ``reply`` Struct (or reply element) from a core query result: ``given``
    fields, and every other field from ``result``'s attribute of the same name
    (OrderInfo -> OpenOrder, MarginState -> Margin and MarginCall, InstrumentSpec
    -> InstrumentInfo, AssetSpec -> AssetInfo). The one conversion between the
    core's query structs and the wire; a position travels as the core's
    ``PositionInfo`` itself."""
    return reply(**given, **{name: getattr(result, name) for name in reply.__struct_fields__ if name not in given})


Reply = Union[(
    Ack, Reject, Fill, Cancelled, Amended, MassCancelled, StateChanged, ReferenceSet,
    Credited, Debited, AssetPriceSet, DepositSkipped, OptionRiskSet, Liquidated, AccountFrozen, EngineEvent,
    LoggedOn, Pong, Balances, OpenOrders, BookSnapshot, Instruments, Status, Margin, MarginCalls, BandsSet, HaircutSet,
    FundingSettled, Funded, GreeksPublished, OrderFound,
    *OPTION_REPLIES, *POOL_REPLIES, *SHARD_REPLIES,
    *INSURANCE_REPLIES,
)]
REPLY_TYPES: tuple[type, ...] = Reply.__args__
REPLY_BY_TAG = {t.__struct_config__.tag: t for t in REPLY_TYPES}

REPLY_ENCODER = msgspec.msgpack.Encoder()
REPLY_DECODER = msgspec.msgpack.Decoder(list[Reply])


# -- market data (PUB) ---------------------------------------------------------------


class Trade(msgspec.Struct, array_like=True, frozen=True):
    """One trade: the engine seq of the command that caused it, price, quantity,
    and the aggressor's side."""

    seq: int
    price: int
    qty: int
    side: int


class Trades(msgspec.Struct, **_reply(1)):
    """Trades of one batch on one instrument."""

    ts: int
    trades: list[Trade]


class BookDelta(msgspec.Struct, **_reply(2)):
    """Changed levels of the published depth; qty 0 removes a level."""

    ts: int
    bids: list[Level]
    asks: list[Level]


class TopOfBook(msgspec.Struct, **_reply(3)):
    """Best bid and ask (0, 0 when a side is empty)."""

    ts: int
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


class InstrumentStatus(msgspec.Struct, **_reply(4)):
    """Trading state, reference price and last trade price of an instrument."""

    ts: int
    state: int
    reference: int
    last_trade: int


MarketData = Union[Trades, BookDelta, TopOfBook, InstrumentStatus]

MD_ENCODER = msgspec.msgpack.Encoder()
MD_DECODER = msgspec.msgpack.Decoder(MarketData)


def md_topic(symbol: str) -> bytes:
    """The PUB topic of an instrument (symbols never contain '|')."""
    return symbol.encode() + b"|"


def md_seq_bytes(seq: int) -> bytes:
    """A market-data sequence number as its frame."""
    return seq.to_bytes(8, "big")


def md_seq_from(frame: bytes) -> int:
    """The market-data sequence number of a frame (-1 if the frame is not 8 bytes)."""
    return int.from_bytes(frame, "big") if len(frame) == 8 else -1
