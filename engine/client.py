"""Client SDK of the venue: a synchronous client and a market-data subscriber
that keeps a local book (the asyncio client is engine/client_async.py).

Both clients speak engine/schemas.py over a CURVE-secured DEALER socket. Typed
methods send one request and wait for its answer (an ``Ack`` or ``Reject`` for
``place``, ``Cancelled`` / ``Amended`` / ``MassCancelled`` or a ``Reject``, the
query's result); everything else that arrives (fills, cancels of resting orders,
unsolicited rejects) is kept in ``events``. ``send`` / ``recv`` give raw batch
access (many requests per message), for load generators.

Keys: ``ClientKeys.from_files(key_secret_file, server_key_file)`` reads pyzmq
certificate files as written by ``python -m engine keys``.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

import zmq
import zmq.auth

from engine.core.types import CancelReason, OrderType, SelfTrade, TimeInForce
from engine.gateway.marketdata import LocalBook
from engine.schemas_shards import (SHARD_REPLIES, GetTransfers, Transfer, TransferredIn, TransferredOut,
                                   Transfers)
from engine.schemas import (
    ALL_INSTRUMENTS,
    MD_DECODER,
    OWN_ACCOUNT,
    REPLY_DECODER,
    REQUEST_ENCODER,
    AccountFrozen,
    Ack,
    Amend,
    Amended,
    AssetPriceSet,
    Balances,
    BandsSet,
    BookSnapshot,
    Cancel,
    Cancelled,
    Credit,
    Credited,
    Debit,
    Debited,
    DepositSkipped,
    FreezeAccount,
    GetBalances,
    GetBook,
    GetInstruments,
    GetMargin,
    GetMarginCalls,
    GetOpenOrders,
    GetStatus,
    HaircutSet,
    Heartbeat,
    Instruments,
    Liquidate,
    Liquidated,
    LoggedOn,
    Logon,
    Margin,
    MarginCalls,
    MassCancel,
    MassCancelled,
    NewOrder,
    OpenOrder,
    OpenOrders,
    OptionRiskSet,
    Pong,
    ReferenceSet,
    Reject,
    SetAssetPrice,
    SetBands,
    SetHaircut,
    SetOptionRisk,
    SetReference,
    SetState,
    SkipDeposit,
    StateChanged,
    Status,
    md_seq_from,
    md_topic,
)
from engine.schemas_greeks import GreeksPublished, PublishGreeks, SeriesGreeks
from engine.schemas_options import (
    Chain,
    CloseSeries,
    CoverCalls,
    CoveringSet,
    GetChain,
    ListChain,
    SeriesClosed,
    SeriesListed,
)
from engine.schemas_insurance import FeesSwept, GetInsurance, Insurance, SweepFees
from engine.schemas_perpetual import Fund, Funded
from engine.schemas_pools import (DepositRequested, GetPoolInfo, PoolCancel, PoolDeposit, PoolInfo, PoolMarked,
                                  PoolPaid, PoolRedeem, RedemptionRequested, RequestCancelled)
from engine.schemas_replication import FindOrder, OrderFound

_BY_REQUEST_ID = (MassCancelled, StateChanged, ReferenceSet, Credited, Debited, AssetPriceSet, DepositSkipped,
                  OptionRiskSet, Liquidated, AccountFrozen, LoggedOn, Pong, Balances, OpenOrders, BookSnapshot, Instruments,
                  Status, Margin, MarginCalls, BandsSet, HaircutSet, Funded,
                  SeriesListed, SeriesClosed, CoveringSet, Chain, GreeksPublished, PoolPaid, RedemptionRequested,
                  PoolMarked, OrderFound, Insurance, FeesSwept, PoolInfo, DepositRequested, RequestCancelled,
                  *SHARD_REPLIES)


class ClientKeys(NamedTuple):
    """A client's CURVE key pair and the gateway's public key (Z85 bytes)."""

    public: bytes
    secret: bytes
    server: bytes

    @classmethod
    def from_files(cls, key_file: str | Path, server_key_file: str | Path) -> ClientKeys:
        """Load the client's ``.key_secret`` file and the server's ``.key`` file."""
        public, secret = zmq.auth.load_certificate(key_file)
        if secret is None:
            raise ValueError(f"{key_file} holds no secret key (use the .key_secret file)")
        server, _ = zmq.auth.load_certificate(server_key_file)
        return cls(public, secret, server)

    def apply(self, sock: zmq.Socket) -> None:
        """Make a socket a CURVE client with these keys."""
        sock.curve_publickey = self.public
        sock.curve_secretkey = self.secret
        sock.curve_serverkey = self.server


def _keys(reply) -> tuple:
    """The correlation keys a reply answers (see _Correlator)."""
    match reply:
        case Ack():
            return (("cid", reply.client_order_id),)
        case Reject():
            keys = []
            if reply.client_order_id:
                keys.append(("cid", reply.client_order_id))
            if reply.request_id:
                keys.append(("rid", reply.request_id))
            return tuple(keys)
        case Cancelled() if reply.reason == CancelReason.USER:
            return (("cancel", reply.order_id),)
        case Amended():
            return (("amend", reply.order_id),)
        case _ if isinstance(reply, _BY_REQUEST_ID):
            return (("rid", reply.request_id),)
    return ()


def request_keys(message) -> tuple:
    """The correlation keys of the answer to a trading request or a query
    (the keys ``_keys`` finds in that answer): a NewOrder by its client order
    id, a Cancel or Amend by its order id (or its client order id when
    rejected), every other request by its request id."""
    match message:
        case NewOrder():
            return (("cid", message.client_order_id),)
        case Cancel():
            return (("cancel", message.order_id), ("cid", message.client_order_id))
        case Amend():
            return (("amend", message.order_id), ("cid", message.client_order_id))
    return (("rid", message.request_id),)


class _Requests:
    """Builds requests with fresh client order ids / request ids and their keys."""

    def __init__(self) -> None:
        # Time-seeded so ids of a restarted client do not repeat earlier ones.
        self._ids = itertools.count(time.time_ns() // 1000)

    def next_id(self) -> int:
        """A fresh client order id / request id."""
        return next(self._ids)

    def place(self, instrument, side, qty, price, order_type, tif, stp, client_order_id, account):
        cid = client_order_id or self.next_id()
        return NewOrder(cid, instrument, side, qty, price, order_type, tif, stp, account), (("cid", cid),)

    def cancel(self, order_id, account):
        cid = self.next_id()
        return Cancel(cid, order_id, account), (("cancel", order_id), ("cid", cid))

    def amend(self, order_id, qty, price, account):
        cid = self.next_id()
        return Amend(cid, order_id, qty, price, account), (("amend", order_id), ("cid", cid))

    def by_request_id(self, cls, *args):
        rid = self.next_id()
        return cls(rid, *args), (("rid", rid),)


def _dealer(context, endpoint: str, keys: "ClientKeys"):
    """A CURVE DEALER socket connected to the gateway (sync or asyncio context):
    no linger, no high-water marks (the gateway bounds what it accepts)."""
    socket = context.socket(zmq.DEALER)
    socket.linger = 0
    socket.rcvhwm = 0
    socket.sndhwm = 0
    keys.apply(socket)
    socket.connect(endpoint)
    return socket


class _Handshakes:
    """The CURVE handshakes of a DEALER socket: one after the first means the
    connection was made again, to a gateway that restarted and knows no session
    of this client."""

    def __init__(self, socket: zmq.Socket) -> None:
        self.socket = socket
        self.owned = socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.monitor = zmq.Socket.shadow(self.owned.underlying)  # read without awaiting, for AsyncClient too
        self.seen = 0

    def reconnected(self) -> bool:
        """Whether a handshake after the first came since the last call."""
        before = self.seen
        while self.monitor.get(zmq.EVENTS) & zmq.POLLIN:
            self.monitor.recv_multipart()
            self.seen += 1
        return self.seen > max(before, 1)

    def close(self) -> None:
        """Stop watching (before the socket closes)."""
        self.socket.disable_monitor()
        self.owned.close(linger=0)


UNKNOWN_RETRY_S = 0.1
"""Pause before asking again when FindOrder was refused instead of answered."""


class OrderNotKnown(TimeoutError):
    """After a failover, FindOrder was refused (a router whose shard has no
    leader yet) instead of answered: whether the order was sequenced is not
    known, so it is not sent again; the client asks again (as on a timeout)."""


def sequenced(found) -> OrderFound | None:
    """The answer to the FindOrder a client sends before resending an order after
    a failover: the OrderFound if the order was sequenced (not to be sent
    again), None if it was not (send it); OrderNotKnown if FindOrder was refused."""
    if not isinstance(found, OrderFound):
        raise OrderNotKnown(f"FindOrder not answered: {found}")
    return found if found.seq else None


class Client:
    """Synchronous client (one DEALER socket; not thread-safe).

    Given several endpoints (a leader gateway and its standbys), a request that
    gets no answer within ``timeout`` is sent again through the next endpoint,
    for up to ``failover_s``: the client reconnects, logs on again as it did
    before, and a NewOrder is first looked up with FindOrder by its client order
    id, so an order the lost gateway had sequenced is never sent twice (``place``
    then returns the OrderFound). A FindOrder refused rather than answered (by
    a router whose shard has no leader yet) counts as no answer: the client asks
    again, it does not resend blindly. Replies that the lost gateway did not send
    (fills, cancels) are not replayed: query balances and open orders after a
    failover (``failovers`` counts them). With one endpoint too, a request that
    finds the connection made again (the gateway restarted) is preceded by the
    last Logon, so a cancel-on-disconnect session is taken up again."""

    def __init__(self, endpoint: str | Sequence[str], keys: ClientKeys, *, timeout: float = 5.0,
                 context: zmq.Context | None = None, failover_s: float = 30.0) -> None:
        self.context = context or zmq.Context.instance()
        self.endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        self.endpoint = self.endpoints[0]
        self.keys = keys
        self.socket = _dealer(self.context, self.endpoint, keys)
        self._handshakes = _Handshakes(self.socket)
        self.timeout = timeout
        self.failover_s = failover_s
        self.failovers = 0
        self.events: deque = deque()
        self._requests = _Requests()
        self._logon: Logon | None = None  # the last Logon sent, repeated after a failover

    def close(self) -> None:
        """Close the socket."""
        self._handshakes.close()
        self.socket.close(linger=0)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def next_id(self) -> int:
        """A fresh client order id / request id."""
        return self._requests.next_id()

    # -- raw access --------------------------------------------------------------------

    def send(self, requests: Iterable) -> None:
        """Send requests as one message, without waiting for answers."""
        self.socket.send(REQUEST_ENCODER.encode(list(requests)))

    def send_raw(self, *frames: bytes) -> None:
        """Send arbitrary frames (tests of the gateway's input handling)."""
        self.socket.send_multipart(list(frames))

    def recv(self, timeout: float | None = None) -> list:
        """The replies of the next message (raise TimeoutError if none arrives in time)."""
        wait = self.timeout if timeout is None else timeout
        if not self.socket.poll(int(wait * 1000)):
            raise TimeoutError(f"no reply from the gateway within {wait} s")
        return REPLY_DECODER.decode(self.socket.recv())

    def poll_events(self, timeout: float = 0.0) -> list:
        """Receive whatever is pending (waiting up to timeout for the first
        message) and return every unsolicited reply kept so far."""
        try:
            self.events.extend(self.recv(timeout))
            while self.socket.poll(0):
                self.events.extend(REPLY_DECODER.decode(self.socket.recv()))
        except TimeoutError:
            pass
        out = list(self.events)
        self.events.clear()
        return out

    def request(self, message, keys: tuple, timeout: float | None = None):
        """Send one request and return the reply answering it."""
        return self.request_many(message, keys, 1, timeout)[0]

    def request_many(self, message, keys: tuple, count: int, timeout: float | None = None) -> list:
        """Send one request that the gateway answers ``count`` times (ListChain: once
        per series) and return the answers in order; a reject of the gateway itself
        (before sequencing) is the only answer. With several endpoints, fail over
        on a timeout (see the class docstring)."""
        if type(message) is Logon:
            self._logon = message
        deadline = None
        switched = False
        while True:
            try:
                if switched or self._handshakes.reconnected():
                    if self._logon is not None and message is not self._logon:
                        self._request_once(self._logon, (("rid", self._logon.request_id),), 1, timeout)
                    if switched and type(message) is NewOrder:
                        found = sequenced(self._request_once(*self._requests.by_request_id(
                            FindOrder, message.client_order_id, message.account), 1, timeout)[0])
                        if found is not None:
                            return [found]
                return self._request_once(message, keys, count, timeout)
            except TimeoutError as err:
                if len(self.endpoints) == 1:
                    raise
                deadline = deadline or time.monotonic() + self.failover_s
                if time.monotonic() >= deadline:
                    raise
                if isinstance(err, OrderNotKnown):
                    time.sleep(UNKNOWN_RETRY_S)
                self._next_endpoint()
                switched = True

    def _next_endpoint(self) -> None:
        """Reconnect through the next endpoint (what the old socket held is dropped)."""
        self._handshakes.close()
        self.socket.close(linger=0)
        self.endpoint = self.endpoints[(self.endpoints.index(self.endpoint) + 1) % len(self.endpoints)]
        self.socket = _dealer(self.context, self.endpoint, self.keys)
        self._handshakes = _Handshakes(self.socket)
        self.failovers += 1

    def _request_once(self, message, keys: tuple, count: int, timeout: float | None) -> list:
        """request_many through the current endpoint only."""
        self.send([message])
        return self._answers(keys, count, timeout)

    def _answers(self, keys: tuple, count: int, timeout: float | None = None, reject_ends: bool = False) -> list:
        """The next ``count`` replies carrying one of ``keys``, fewer when a gateway's
        reject (or, with ``reject_ends``, any reject) comes; other replies go to ``events``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        wanted = set(keys)
        answers: list = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{count - len(answers)} of {count} answers ({keys}) not there within the timeout")
            for reply in self.recv(left):
                if len(answers) < count and wanted.intersection(_keys(reply)):
                    answers.append(reply)
                    if isinstance(reply, Reject) and (reply.seq == 0 or reject_ends):
                        return answers
                else:
                    self.events.append(reply)
            if len(answers) == count:
                return answers

    def exchange(self, messages: list, timeout: float | None = None) -> list:
        """Send requests (ids already set: ``next_id``) as one message and return
        the answer to each, in order; everything else that arrives meanwhile goes
        to ``events``. A refusal of the whole message by the gateway (no request
        of it named) raises ``RuntimeError`` with the gateway's text."""
        waiting: dict[tuple, int] = {}
        for position, message in enumerate(messages):
            for key in request_keys(message):
                waiting[key] = position
        answers: list = [None] * len(messages)
        left = len(messages)
        self.send(messages)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while left:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{left} of {len(messages)} requests unanswered within the timeout")
            for reply in self.recv(remaining):
                position = next((waiting[key] for key in _keys(reply) if key in waiting), None)
                if position is not None and answers[position] is None:
                    answers[position] = reply
                    left -= 1
                elif isinstance(reply, Reject) and reply.seq == 0 and not _keys(reply):
                    raise RuntimeError(f"the gateway refused the message: {reply.text}")
                else:
                    self.events.append(reply)
        return answers

    # -- trading ----------------------------------------------------------------------------

    def place(self, instrument: int, side: int, qty: int, price: int = 0, *, order_type: int = OrderType.LIMIT,
              tif: int = TimeInForce.GTC, stp: int = SelfTrade.CANCEL_NEWEST, client_order_id: int = 0,
              account: int = OWN_ACCOUNT) -> Ack | Reject | OrderFound:
        """Place an order; returns its Ack or Reject (fills arrive as events), or
        after a failover the OrderFound of the order the lost gateway had sequenced."""
        return self.request(*self._requests.place(instrument, side, qty, price, order_type, tif, stp,
                                                   client_order_id, account))

    def cancel(self, order_id: int, *, account: int = OWN_ACCOUNT) -> Cancelled | Reject:
        """Cancel a resting order."""
        return self.request(*self._requests.cancel(order_id, account))

    def amend(self, order_id: int, qty: int = 0, price: int = 0, *, account: int = OWN_ACCOUNT) -> Amended | Reject:
        """Amend a resting order's open quantity and/or price (0 keeps it)."""
        return self.request(*self._requests.amend(order_id, qty, price, account))

    def mass_cancel(self, instrument: int = ALL_INSTRUMENTS, *, account: int = OWN_ACCOUNT) -> MassCancelled | Reject:
        """Cancel every resting order of the account (one instrument or all)."""
        return self.request(*self._requests.by_request_id(MassCancel, instrument, account))

    # -- session and queries -------------------------------------------------------------------

    def logon(self, cancel_on_disconnect: bool = False) -> LoggedOn | Reject:
        """Start the session (and ask for cancel-on-disconnect)."""
        return self.request(*self._requests.by_request_id(Logon, cancel_on_disconnect))

    def find_order(self, client_order_id: int, *, account: int = OWN_ACCOUNT) -> OrderFound | Reject:
        """Whether an order with this client order id was sequenced (and at which seq)."""
        return self.request(*self._requests.by_request_id(FindOrder, client_order_id, account))

    def heartbeat(self) -> Pong | Reject:
        """Tell the gateway this session is alive."""
        return self.request(*self._requests.by_request_id(Heartbeat))

    def balances(self, account: int = OWN_ACCOUNT) -> Balances | Reject:
        """Balances per asset."""
        return self.request(*self._requests.by_request_id(GetBalances, account))

    def open_orders(self, account: int = OWN_ACCOUNT, *, after_order_id: int = 0,
                    limit: int = 0) -> OpenOrders | Reject:
        """Resting orders by order id: all (``limit = 0``), or a page of at most
        ``limit`` with ids above ``after_order_id``."""
        return self.request(*self._requests.by_request_id(GetOpenOrders, account, after_order_id, limit))

    def all_open_orders(self, account: int = OWN_ACCOUNT, *, page: int = 1_000) -> list[OpenOrder] | Reject:
        """Every resting order, fetched in pages of ``page``: each order resting
        throughout comes exactly once; one placed meanwhile comes if it still rests
        when its page is read; one gone meanwhile may come, as it was then."""
        orders: list[OpenOrder] = []
        while True:
            reply = self.open_orders(account, after_order_id=orders[-1].order_id if orders else 0, limit=page)
            if isinstance(reply, Reject):
                return reply
            orders += reply.orders
            if len(reply.orders) < page:
                return orders

    def snapshot(self, instrument: int, levels: int = 0) -> BookSnapshot | Reject:
        """Book snapshot with the market-data seq it is consistent with."""
        return self.request(*self._requests.by_request_id(GetBook, instrument, levels))

    def instruments(self) -> Instruments | Reject:
        """Instruments and assets."""
        return self.request(*self._requests.by_request_id(GetInstruments))

    def margin(self, account: int = OWN_ACCOUNT) -> Margin | Reject:
        """Collateral value, margin requirements and option positions."""
        return self.request(*self._requests.by_request_id(GetMargin, account))

    # -- operator -----------------------------------------------------------------------------

    def set_state(self, instrument: int, state: int) -> StateChanged | Reject:
        """Halt / resume / close an instrument (operator key)."""
        return self.request(*self._requests.by_request_id(SetState, instrument, state))

    def set_reference(self, instrument: int, price: int) -> ReferenceSet | Reject:
        """Set an instrument's reference price (operator key)."""
        return self.request(*self._requests.by_request_id(SetReference, instrument, price))

    def credit(self, account: int, asset: int, amount: int, deposit_id: int = 0) -> Credited | Reject:
        """Credit a deposit (operator key); deposit_id: the vault's id, credited exactly once."""
        return self.request(*self._requests.by_request_id(Credit, account, asset, amount, deposit_id))

    def transfer(self, leg: int, transfer_id: int, account: int, asset: int,
                 amount: int) -> TransferredOut | TransferredIn | Reject:
        """One leg of a transfer between shards (operator key; engine/rebalance.py runs both)."""
        return self.request(*self._requests.by_request_id(Transfer, leg, transfer_id, account, asset, amount))

    def transfers(self, shard: int = 0) -> Transfers | Reject:
        """A shard's transfer counters (operator key; through the router, of shard ``shard``)."""
        return self.request(*self._requests.by_request_id(GetTransfers, shard))

    def skip_deposit(self, deposit_id: int) -> DepositSkipped | Reject:
        """Use up a vault deposit id without a credit (operator key)."""
        return self.request(*self._requests.by_request_id(SkipDeposit, deposit_id))

    def debit(self, account: int, asset: int, amount: int) -> Debited | Reject:
        """Request a withdrawal from the free balance (own account, or any with an operator key)."""
        return self.request(*self._requests.by_request_id(Debit, account, asset, amount))

    def set_asset_price(self, asset: int, price: int) -> AssetPriceSet | Reject:
        """Set an asset's USD x 1e8 reference price (operator key)."""
        return self.request(*self._requests.by_request_id(SetAssetPrice, asset, price))

    def status(self) -> Status | Reject:
        """Last seq and state hash (operator key)."""
        return self.request(*self._requests.by_request_id(GetStatus))

    def set_option_risk(self, instrument: int, initial: int, maintenance: int) -> OptionRiskSet | Reject:
        """Set an option series' margins of a short, USD x 1e8 per quantity unit (operator key)."""
        return self.request(*self._requests.by_request_id(SetOptionRisk, instrument, initial, maintenance))

    def margin_calls(self) -> MarginCalls | Reject:
        """Accounts under their maintenance margin (operator key)."""
        return self.request(*self._requests.by_request_id(GetMarginCalls))

    def liquidate(self, account: int) -> Liquidated | Reject:
        """Liquidate an account under its maintenance margin (operator key)."""
        return self.request(*self._requests.by_request_id(Liquidate, account))

    def freeze_account(self, account: int) -> AccountFrozen | Reject:
        """Freeze an account whose wallet requested an exit on chain (operator key)."""
        return self.request(*self._requests.by_request_id(FreezeAccount, account))

    def set_bands(self, instrument: int, static_bps: int, dynamic_bps: int) -> BandsSet | Reject:
        """Set an instrument's static and dynamic band widths in bps (operator key); orders
        left outside the new static band are cancelled, their Cancelled replies go to their owners."""
        return self.request(*self._requests.by_request_id(SetBands, instrument, static_bps, dynamic_bps))

    def list_chain(self, template: int, expiries: list[int], strikes: list[int], rights: list[int],
                   contract: int) -> list[SeriesListed | Reject]:
        """List a chain like series ``template`` (operator key): one answer per
        (expiry YYYYMMDD, strike in price units per underlying token, right 1 call /
        2 put), contract size in underlying ledger units (engine/schemas_options.py)."""
        message, keys = self._requests.by_request_id(ListChain, template, list(expiries), list(strikes),
                                                    list(rights), contract)
        return self.request_many(message, keys, len(expiries) * len(strikes) * len(rights))

    def close_series(self, instrument: int, settlement_price: int = 0) -> SeriesClosed | Reject:
        """Settle an expired series at ``settlement_price`` (price units per underlying
        token), or delist one nobody holds with 0 (operator key)."""
        return self.request(*self._requests.by_request_id(CloseSeries, instrument, settlement_price))

    def cover_calls(self, covering: bool = True, *, account: int = OWN_ACCOUNT) -> CoveringSet | Reject:
        """Cover the account's call sells with the underlying it holds (or stop)."""
        return self.request(*self._requests.by_request_id(CoverCalls, covering, account))

    def pool_deposit(self, pool: int, amount: int, *, account: int = OWN_ACCOUNT) -> DepositRequested | Reject:
        """Request a deposit of ``amount`` ledger units of the pool asset into the pool
        whose share asset is ``pool`` (reserved now; the pool's clock executes it after
        the deposit cooldown: ``pool_deposit_paid``), or why not."""
        return self.request(*self._requests.by_request_id(PoolDeposit, pool, amount, account))

    def pool_deposit_paid(self, request: int, timeout: float | None = None) -> list[PoolPaid]:
        """Wait for the execution of deposit request ``request`` (by the pool's clock
        once due): [asset paid in, shares received]. Other replies stay in
        ``events``; TimeoutError if the execution does not come in time."""
        return self._request_paid(request, "deposit", timeout)

    def pool_redeem_paid(self, redemption: int, timeout: float | None = None) -> list[PoolPaid]:
        """Wait for the execution of redemption request ``redemption`` (by the pool's
        clock once due, or once the equity guard allows it): [shares paid back, pool
        asset received less the withdrawal fee]. Other replies stay in ``events``;
        TimeoutError if the execution does not come in time."""
        return self._request_paid(redemption, "redemption", timeout)

    def _request_paid(self, request: int, kind: str, timeout: float | None) -> list[PoolPaid]:
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        paid: list[PoolPaid] = []
        while True:
            keep = []
            for reply in self.events:
                (paid if isinstance(reply, PoolPaid) and reply.redemption == request else keep).append(reply)
            self.events.clear()
            self.events.extend(keep)
            if len(paid) >= 2:
                return paid
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{kind} request {request} was not executed within the timeout")
            try:
                self.events.extend(self.recv(left))
            except TimeoutError:
                pass

    def pool_cancel(self, pool: int, request: int, *, account: int = OWN_ACCOUNT) -> RequestCancelled | Reject:
        """Cancel pending request ``request`` (a deposit's reservation is released), or why not."""
        return self.request(*self._requests.by_request_id(PoolCancel, pool, request, account))

    def pool_redeem(self, pool: int, shares: int, *, account: int = OWN_ACCOUNT) -> RedemptionRequested | Reject:
        """Request the redemption of ``shares``; the pool's clock executes it once the
        cooldown is over (``pool_redeem_paid`` waits for it)."""
        return self.request(*self._requests.by_request_id(PoolRedeem, pool, shares, 0, account))

    def pool_execute(self, pool: int, redemption: int, *, account: int = OWN_ACCOUNT) -> list[PoolPaid] | Reject:
        """Execute due request ``redemption`` now rather than at the pool clock's next
        tick: [shares paid back, pool asset received less the withdrawal fee] for a
        redemption, [asset paid in, shares received] for a deposit request, or why not
        (e.g. the cooldown is not over, or the clock has executed it already)."""
        return self._pool_paid(*self._requests.by_request_id(PoolRedeem, pool, 0, redemption, account))

    def pool_info(self) -> PoolInfo | Reject:
        """The main pool's NAV, NAV per share, shares, pending requests and terms;
        a Reject NO_POOL (111) when the venue has none."""
        return self.request(*self._requests.by_request_id(GetPoolInfo))

    def _pool_paid(self, message, keys: tuple) -> list[PoolPaid] | Reject:
        # An accepted deposit or redemption moves two assets: two PoolPaid answers.
        self.send([message])
        answers = self._answers(keys, 2, reject_ends=True)
        return answers[0] if isinstance(answers[0], Reject) else answers

    def chain(self, underlying: int) -> Chain | Reject:
        """The option series on an asset with marks, margins and open interest."""
        return self.request(*self._requests.by_request_id(GetChain, underlying))

    def set_haircut(self, asset: int, haircut_bps: int) -> HaircutSet | Reject:
        """Set an asset's collateral haircut in bps, 0..10000 (operator key)."""
        return self.request(*self._requests.by_request_id(SetHaircut, asset, haircut_bps))

    def fund(self, instrument: int, mark: int, payoff: int) -> Funded | Reject:
        """Funding of a perpetual series at its mark and payoff, price units (operator
        key); the FundingSettled replies go to the accounts that paid or received."""
        return self.request(*self._requests.by_request_id(Fund, instrument, mark, payoff))

    def insurance(self) -> Insurance | Reject:
        """The insurance pool's balances and what each step of the loss waterfall
        has moved (docs/pools.md); Reject NO_POOLS on a venue without pools."""
        return self.request(*self._requests.by_request_id(GetInsurance))

    def sweep_fees(self, asset: int) -> FeesSwept | Reject:
        """Move the insurance pool's share of the fees earned in ``asset`` to it (operator key)."""
        return self.request(*self._requests.by_request_id(SweepFees, asset))

    def publish_greeks(self, series: list[SeriesGreeks]) -> GreeksPublished | Reject:
        """Publish option series' greeks, at most MAX_GREEKS_ENTRIES (operator key);
        GetChain shows them until the next publication (engine/schemas_greeks.py)."""
        return self.request(*self._requests.by_request_id(PublishGreeks, series))


class MarketDataSubscriber:
    """Keeps a LocalBook per instrument from the PUB feed plus snapshots.

    Follows zguide's Clone pattern: subscribe first, then take a snapshot
    (through ``client``); updates up to the snapshot's seq are dropped, later ones
    applied in order. A missing seq (a gap: a dropped message or a gateway
    restart) marks the book stale and takes a new snapshot. ``gaps`` counts the
    gaps seen, ``snapshots`` the snapshots taken.
    """

    def __init__(self, endpoint: str, keys: ClientKeys, client: Client, instruments: dict[int, str], *,
                 context: zmq.Context | None = None) -> None:
        self.client = client
        self.socket = (context or zmq.Context.instance()).socket(zmq.SUB)
        self.socket.linger = 0
        self.socket.rcvhwm = 0
        keys.apply(self.socket)
        self.by_topic = {md_topic(symbol): iid for iid, symbol in instruments.items()}
        for topic in self.by_topic:
            self.socket.subscribe(topic)
        self.socket.connect(endpoint)
        self.books = {iid: LocalBook(iid) for iid in instruments}
        self.pending: dict[int, list] = {iid: [] for iid in instruments}
        self.snapshots = 0
        self.gaps = 0
        self.messages = 0

    def close(self) -> None:
        """Close the SUB socket."""
        self.socket.close(linger=0)

    def poll(self, timeout: float = 0.0) -> int:
        """Handle every message waiting (waiting up to timeout for the first);
        resync stale books. Returns the number of messages handled."""
        handled = 0
        wait = int(timeout * 1000)
        while self.socket.poll(wait):
            wait = 0
            self.handle(self.socket.recv_multipart())
            handled += 1
        for iid, book in self.books.items():
            if not book.synced:
                self.resync(iid)
        return handled

    def handle(self, frames: list[bytes]) -> None:
        """Apply one [topic, seq, payload] message."""
        if len(frames) != 3 or frames[0] not in self.by_topic:
            return
        iid, seq, message = self.by_topic[frames[0]], md_seq_from(frames[1]), MD_DECODER.decode(frames[2])
        self.messages += 1
        book = self.books[iid]
        if not book.synced:
            self.pending[iid].append((seq, message))
        elif seq > book.seq and not book.apply(seq, message):
            self.gaps += 1
            book.seq = -1
            self.pending[iid] = [(seq, message)]

    def resync(self, instrument: int) -> None:
        """Take a snapshot and apply the buffered updates after it."""
        snap = self.client.snapshot(instrument)
        if isinstance(snap, Reject):
            raise RuntimeError(f"snapshot of instrument {instrument} refused: {snap.text}")
        self.snapshots += 1
        book = self.books[instrument]
        book.reset(snap)
        for seq, message in self.pending[instrument]:
            if seq > book.seq and not book.apply(seq, message):
                self.gaps += 1
                book.seq = -1  # still a gap: the next poll takes another snapshot
                break
        self.pending[instrument] = []
