"""The asyncio client of the venue: the synchronous client's typed methods as
coroutines (engine/client.py), over one DEALER socket read by a task; with
several endpoints it fails over as the synchronous client does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence

import zmq.asyncio

from engine.client import (UNKNOWN_RETRY_S, ClientKeys, OrderNotKnown, _dealer, _Handshakes, _keys, _Requests,
                           sequenced)
from engine.core.types import OrderType, SelfTrade, TimeInForce
from engine.schemas import (
    ALL_INSTRUMENTS,
    OWN_ACCOUNT,
    REPLY_DECODER,
    REQUEST_ENCODER,
    Ack,
    Amended,
    Balances,
    BookSnapshot,
    Cancelled,
    GetBalances,
    GetBook,
    GetInstruments,
    GetMargin,
    GetOpenOrders,
    Heartbeat,
    Instruments,
    LoggedOn,
    Logon,
    Margin,
    MassCancel,
    MassCancelled,
    NewOrder,
    OpenOrders,
    Pong,
    Reject,
)
from engine.schemas_replication import FindOrder, OrderFound


class AsyncClient:
    """asyncio client: the same typed methods as coroutines; a reader task
    resolves each request's future and queues everything else in ``events``.

    Given several endpoints (a leader gateway and its standbys, or routers), a
    request with no answer within ``timeout`` fails over as ``Client``'s does,
    for up to ``failover_s``: reconnect through the next endpoint, log on again,
    and look a NewOrder up with FindOrder before sending it again (``place``
    then returns the OrderFound of an order the lost gateway had sequenced).
    Requests that time out together switch endpoints once (``failovers``
    counts the switches). A request that finds the connection made again (the
    gateway restarted) is preceded by the last Logon, as ``Client``'s is."""

    def __init__(self, endpoint: str | Sequence[str], keys: ClientKeys, *, timeout: float = 5.0,
                 context: zmq.asyncio.Context | None = None, failover_s: float = 30.0) -> None:
        self.context = context or zmq.asyncio.Context.instance()
        self.keys = keys
        self.endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        self.endpoint = self.endpoints[0]
        self.socket = _dealer(self.context, self.endpoint, keys)
        self._handshakes = _Handshakes(self.socket)
        self.timeout = timeout
        self.failover_s = failover_s
        self.failovers = 0
        self.events: asyncio.Queue = asyncio.Queue()
        self._pending: dict[tuple, asyncio.Future] = {}
        self._requests = _Requests()
        self._logon: Logon | None = None  # the last Logon sent, repeated after a failover
        self._reader = asyncio.get_running_loop().create_task(self._read(self.socket))
        self._heartbeat: asyncio.Task | None = None

    async def close(self) -> None:
        """Stop the reader and heartbeat tasks and close the socket."""
        for task in (self._reader, self._heartbeat):
            if task is not None:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._handshakes.close()
        self.socket.close(linger=0)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _read(self, socket) -> None:
        while True:
            data = await socket.recv()
            for reply in REPLY_DECODER.decode(data):
                future = None
                for key in _keys(reply):
                    future = self._pending.pop(key, None)
                    if future is not None and not future.done():
                        break
                    future = None
                if future is None:
                    self.events.put_nowait(reply)
                else:
                    future.set_result(reply)

    def start_heartbeats(self, interval: float) -> None:
        """Send a heartbeat every `interval` seconds in the background."""
        async def beat() -> None:
            while True:
                await asyncio.sleep(interval)
                await self.send([Heartbeat(0)])
        self._heartbeat = asyncio.get_running_loop().create_task(beat())

    async def send(self, requests: Iterable) -> None:
        """Send requests as one message, without waiting for answers."""
        await self.socket.send(REQUEST_ENCODER.encode(list(requests)))

    async def request(self, message, keys: tuple, timeout: float | None = None):
        """Send one request and return the reply answering it; with several
        endpoints, fail over on a timeout (see the class docstring)."""
        if type(message) is Logon:
            self._logon = message
        deadline = None
        switched = False
        while True:
            failovers = self.failovers
            try:
                if switched or self._handshakes.reconnected():
                    if self._logon is not None and message is not self._logon:
                        await self._request_once(self._logon, (("rid", self._logon.request_id),), timeout)
                    if switched and type(message) is NewOrder:
                        found = sequenced(await self._request_once(*self._requests.by_request_id(
                            FindOrder, message.client_order_id, message.account), timeout))
                        if found is not None:
                            return found
                return await self._request_once(message, keys, timeout)
            except TimeoutError as err:
                if len(self.endpoints) == 1:
                    raise
                deadline = deadline or time.monotonic() + self.failover_s
                if time.monotonic() >= deadline:
                    raise
                if isinstance(err, OrderNotKnown):
                    await asyncio.sleep(UNKNOWN_RETRY_S)
                if self.failovers == failovers:  # not switched meanwhile by another request that timed out
                    await self._next_endpoint()
                switched = True

    async def _next_endpoint(self) -> None:
        """Reconnect through the next endpoint (what the old socket held is dropped)."""
        self._reader.cancel()
        try:
            await self._reader
        except asyncio.CancelledError:
            pass
        self._handshakes.close()
        self.socket.close(linger=0)
        self.endpoint = self.endpoints[(self.endpoints.index(self.endpoint) + 1) % len(self.endpoints)]
        self.socket = _dealer(self.context, self.endpoint, self.keys)
        self._handshakes = _Handshakes(self.socket)
        self._reader = asyncio.get_running_loop().create_task(self._read(self.socket))
        self.failovers += 1

    async def _request_once(self, message, keys: tuple, timeout: float | None):
        """request through the current endpoint only."""
        future = asyncio.get_running_loop().create_future()
        for key in keys:
            self._pending[key] = future
        try:
            await self.send([message])
            return await asyncio.wait_for(future, self.timeout if timeout is None else timeout)
        except asyncio.TimeoutError as err:
            raise TimeoutError(f"no answer to {type(message).__name__} within the timeout") from err
        finally:
            for key in keys:
                if self._pending.get(key) is future:
                    del self._pending[key]

    async def place(self, instrument: int, side: int, qty: int, price: int = 0, *,
                    order_type: int = OrderType.LIMIT, tif: int = TimeInForce.GTC,
                    stp: int = SelfTrade.CANCEL_NEWEST, client_order_id: int = 0,
                    account: int = OWN_ACCOUNT) -> Ack | Reject | OrderFound:
        """Place an order; returns its Ack or Reject (fills arrive as events), or
        after a failover the OrderFound of the order the lost gateway had sequenced."""
        return await self.request(*self._requests.place(instrument, side, qty, price, order_type, tif, stp,
                                                         client_order_id, account))

    async def cancel(self, order_id: int, *, account: int = OWN_ACCOUNT) -> Cancelled | Reject:
        """Cancel a resting order."""
        return await self.request(*self._requests.cancel(order_id, account))

    async def amend(self, order_id: int, qty: int = 0, price: int = 0, *,
                    account: int = OWN_ACCOUNT) -> Amended | Reject:
        """Amend a resting order (0 keeps a value)."""
        return await self.request(*self._requests.amend(order_id, qty, price, account))

    async def mass_cancel(self, instrument: int = ALL_INSTRUMENTS, *,
                          account: int = OWN_ACCOUNT) -> MassCancelled | Reject:
        """Cancel every resting order of the account (one instrument or all)."""
        return await self.request(*self._requests.by_request_id(MassCancel, instrument, account))

    async def logon(self, cancel_on_disconnect: bool = False) -> LoggedOn | Reject:
        """Start the session (and ask for cancel-on-disconnect)."""
        return await self.request(*self._requests.by_request_id(Logon, cancel_on_disconnect))

    async def heartbeat(self) -> Pong | Reject:
        """Tell the gateway this session is alive."""
        return await self.request(*self._requests.by_request_id(Heartbeat))

    async def balances(self, account: int = OWN_ACCOUNT) -> Balances | Reject:
        """Balances per asset."""
        return await self.request(*self._requests.by_request_id(GetBalances, account))

    async def open_orders(self, account: int = OWN_ACCOUNT, *, after_order_id: int = 0,
                          limit: int = 0) -> OpenOrders | Reject:
        """Resting orders by order id: all (``limit = 0``), or a page of at most
        ``limit`` with ids above ``after_order_id``."""
        return await self.request(*self._requests.by_request_id(GetOpenOrders, account, after_order_id, limit))

    async def snapshot(self, instrument: int, levels: int = 0) -> BookSnapshot | Reject:
        """Book snapshot with the market-data seq it is consistent with."""
        return await self.request(*self._requests.by_request_id(GetBook, instrument, levels))

    async def instruments(self) -> Instruments | Reject:
        """Instruments and assets."""
        return await self.request(*self._requests.by_request_id(GetInstruments))

    async def margin(self, account: int = OWN_ACCOUNT) -> Margin | Reject:
        """Collateral value, margin requirements and option positions."""
        return await self.request(*self._requests.by_request_id(GetMargin, account))
