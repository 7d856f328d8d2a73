"""The order gateway: ``python -m engine serve --config venue.toml``.

One process, one thread, one engine (the single writer):

* a ROUTER socket (CURVE) for order entry, queries and operator requests;
* a PUB socket (CURVE) for market data (engine/marketdata.py);
* a ZAP handler (inproc, in the same loop) that admits only configured client
  keys and stamps each connection with its principal's User-Id, so every
  message is attributed to an account by the transport, never by the client.

The loop: wait for input, drain waiting messages into a batch (bounded by
``max_batch_messages`` and ``max_batch_commands``), decode and validate each
at the boundary, refuse what is malformed or not allowed (``Reject`` with a
code and a reason; the gateway never crashes on input), stamp seq and ts on the
accepted commands, run them through the core's batch API, append the batch to
the journal, and prepare its replies, market data and query results.

Per order the work is in C (engine/core/wire.pyx, configured from the schemas
by engine/wire_layouts.py): the common request message (orders, cancels,
amends, mass cancels for the sender's own account) is read from its MessagePack
bytes into command records, and events become each session's reply bytes. Any
other message takes the general path: msgspec decodes it into Structs, and
``_dispatch`` authorises and rejects with reasons.
They leave once the journal has committed the batch: under the default
``fsync = "batch"`` the journal's thread fdatasyncs while this loop goes on
with the next batch (group commit), so no acknowledgement precedes durability.

Replies of a command go to the session that sent it; events that concern an
account without being its own request's answer (a maker fill, a cancel caused
by an operator or by cancel-on-disconnect, a credit) go to every live session
of that account. A session that asked for cancel-on-disconnect and sends
nothing for ``timeout_ms`` has its account's orders mass-cancelled.
"""

from __future__ import annotations

import argparse
import errno
import gc
import itertools
import logging
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import defaultdict, deque
from pathlib import Path
from typing import NamedTuple

import msgspec
import numpy as np
import zmq

from engine.config import Config, ConfigError, Principal, encode_venue, genesis_commands, load_config
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind
from engine.core.types import Reject as CoreReject
from engine.core.wire import NO_ACCOUNT, NO_SESSION, CommandBatch, Outbox, select_kinds
from engine.journal import JOURNALED_EVENT_KINDS, FileJournal, JournalError
from engine.marketdata import MarketDataPublisher
from engine.replay import ReplayError, rebuild, snapshots_supported
from engine.schemas import (
    OPERATOR_REQUESTS,
    OWN_ACCOUNT,
    RAW_LIST_DECODER,
    REPLY_ENCODER,
    REQUEST_DECODER,
    REQUEST_ITEM_DECODER,
    REQUEST_TAGS,
    Amend,
    AssetBalance,
    AssetInfo,
    Balances,
    Cancel,
    Credit,
    Debit,
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
    Liquidate,
    LoggedOn,
    Logon,
    Margin,
    MarginCall,
    MarginCalls,
    MassCancel,
    NewOrder,
    OpenOrder,
    OpenOrders,
    OptionPosition,
    Pong,
    Reject,
    SetAssetPrice,
    SetOptionRisk,
    SetReference,
    SetState,
    SkipDeposit,
    Status,
    reject_text,
)
from engine.wire_layouts import REPLIES, REQUEST_LAYOUTS

log = logging.getLogger("engine.gateway")

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
ZAP_DOMAINS = (b"orders", b"md")
MAX_BOOK_LEVELS = 1_000
BALANCES_SUPPORTED = hasattr(CommandKind, "CREDIT") and hasattr(CommandKind, "DEBIT")

# pyzmq's send_multipart combines IntFlag enums per frame; plain ints are much cheaper.
_MORE = int(zmq.SNDMORE | zmq.NOBLOCK)
_LAST = int(zmq.NOBLOCK)
# msgspec's errors are ValueErrors; input nested too deeply raises RecursionError,
# invalid UTF-8 in an untyped string a UnicodeDecodeError (also a ValueError).
_DECODE_ERRORS = (ValueError, RecursionError)
_TAG_DECODER = msgspec.msgpack.Decoder(int)
# Operator requests whose command a core may not have yet (None: NOT_SUPPORTED).
_OPTIONAL_COMMANDS = {SetAssetPrice: getattr(CommandKind, "SET_ASSET_PRICE", None),
                      SkipDeposit: getattr(CommandKind, "SKIP_DEPOSIT", None),
                      SetOptionRisk: getattr(CommandKind, "SET_OPTION_RISK", None),
                      Liquidate: getattr(CommandKind, "LIQUIDATE", None)}


class _Throttle:
    """Log lines of one kind at most `per_second` a second, then one summary line."""

    def __init__(self, per_second: int = 20) -> None:
        self.per_second = per_second
        self.window = 0.0
        self.count: dict[str, int] = defaultdict(int)

    def warn(self, kind: str, message: str, *args) -> None:
        now = time.monotonic()
        if now - self.window >= 1.0:
            self.flush()
            self.window = now
        self.count[kind] += 1
        if self.count[kind] <= self.per_second:
            log.warning(message, *args)

    def flush(self) -> None:
        for kind, n in self.count.items():
            if n > self.per_second:
                log.warning("%d more %s in the last second (not logged one by one)", n - self.per_second, kind)
        self.count.clear()


class Session:
    """One client connection (ROUTER identity) and what it is allowed to do."""

    __slots__ = ("id", "identity", "user_id", "principal", "last_seen", "cancel_on_disconnect")

    def __init__(self, sid: int, identity: bytes, user_id: str, principal: Principal, now: float) -> None:
        self.id = sid
        self.identity = identity
        self.user_id = user_id
        self.principal = principal
        self.last_seen = now
        self.cancel_on_disconnect = False

    @property
    def account(self) -> int:
        """The session's trading account, or NO_ACCOUNT."""
        return self.principal.account if self.principal.account is not None else NO_ACCOUNT


class _Batch:
    """What one drain of the socket collects before the engine runs."""

    __slots__ = ("commands", "queries", "replies", "answers", "out")

    def __init__(self) -> None:
        self.commands = CommandBatch()  # command records, with sender session, its account, request id
        self.queries: list[tuple[Session, object]] = []
        self.replies = Outbox()  # replies to requests and commands (session id -> encoded items)
        self.answers = Outbox()  # query results, sent after the batch's market data
        self.out = self.replies  # where replies made now go

    def command(self, session: Session | None, request_id: int, kind: int, **fields: int) -> None:
        """Add one command for the engine (values are in range: the schemas checked them)."""
        if session is None:
            self.commands.add(NO_SESSION, NO_ACCOUNT, request_id, kind, **fields)
        else:
            self.commands.add(session.id, session.account, request_id, kind, **fields)


class _Outbound(NamedTuple):
    """What one batch sends once the journal has committed it (seq)."""

    seq: int
    replies: Outbox
    market_data: list[list[bytes]]
    answers: Outbox


class Gateway:
    """The gateway process state: sockets, sessions, engine, journal."""

    def __init__(self, config: Config, context: zmq.Context | None = None) -> None:
        self.config = config
        self.limits = config.gateway
        self.throttle = _Throttle()
        self.running = True
        self.sessions: dict[bytes, Session] = {}
        self.sessions_by_id: dict[int, Session] = {}
        self.account_sessions: dict[int, list[Session]] = defaultdict(list)
        self.session_ids = itertools.count(1)
        self.principals = {p.user_id: p for p in config.principals.values()}
        self.dropped_replies = 0
        self.lost_sessions: list[Session] = []  # disconnected with cancel-on-disconnect pending
        self.outbound: deque[_Outbound] = deque()  # output of batches not yet committed
        jc = config.journal
        self.journal = FileJournal.create_or_open(
            config.journal_path, encode_venue(config.venue), fsync=jc.fsync,
            fsync_interval_ms=jc.fsync_interval_ms, segment_bytes=jc.segment_bytes,
            snapshots_kept=jc.snapshots_kept)
        started = time.perf_counter()
        rebuilt = rebuild(self.journal)
        self.engine = rebuilt.engine
        self.last_ts = rebuilt.last_ts
        self.snapshot_seq = self.engine.last_seq
        self.snapshot_at = time.monotonic()
        log.info("recovered seq %d in %.3f s (snapshot at %d, %d batches / %d commands replayed)",
                 self.engine.last_seq, time.perf_counter() - started, rebuilt.snapshot_seq,
                 rebuilt.batches, rebuilt.commands)
        self.context = context or zmq.Context()
        self._bind_sockets()
        self.publisher = MarketDataPublisher(self.engine, config.market_data.depth)
        if self.engine.last_seq == 0:
            self._run_internal(genesis_commands(config), "genesis")

    # -- sockets -------------------------------------------------------------------------

    def _bind_sockets(self) -> None:
        public, secret = self.config.server_keys()
        self.zap = self.context.socket(zmq.REP)
        self.zap.linger = 0
        self.zap.bind(ZAP_ENDPOINT)
        self.orders = self._curve_server(zmq.ROUTER, public, secret, b"orders")
        self.orders.router_mandatory = 1
        self.orders.maxmsgsize = 16 * self.limits.max_message_bytes
        self.orders.rcvhwm = self.limits.send_hwm
        self.orders.heartbeat_ivl = self.config.session.heartbeat_ms
        self.orders.heartbeat_timeout = self.config.session.timeout_ms
        self.orders.bind(self.config.endpoints.orders)
        self.md = self._curve_server(zmq.PUB, public, secret, b"md")
        self.md.bind(self.config.endpoints.market_data)

    def _curve_server(self, kind: int, public: bytes, secret: bytes, domain: bytes) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        sock.curve_server = True
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.zap_domain = domain
        sock.sndhwm = self.limits.send_hwm
        return sock

    @property
    def endpoints(self) -> tuple[str, str]:
        """The bound (orders, market data) endpoints, with real ports."""
        return (self.orders.getsockopt_string(zmq.LAST_ENDPOINT),
                self.md.getsockopt_string(zmq.LAST_ENDPOINT))

    def _publish(self, frames: list[bytes]) -> None:
        topic, seq, payload = frames
        self.md.send(topic, _MORE)
        self.md.send(seq, _MORE)
        self.md.send(payload, _LAST)

    # -- ZAP -------------------------------------------------------------------------------

    def _handle_zap(self) -> None:
        """Answer pending ZAP requests (RFC 27): CURVE with a configured key only."""
        while True:
            try:
                msg = self.zap.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(msg) < 6:
                log.warning("ZAP request with %d frames ignored", len(msg))
                self.zap.send_multipart([b"1.0", msg[1] if len(msg) > 1 else b"", b"400", b"bad request", b"", b""])
                continue
            version, request_id, domain, address, _identity, mechanism = msg[:6]
            principal = None
            if version == b"1.0" and domain in ZAP_DOMAINS and mechanism == b"CURVE" and len(msg) == 7:
                principal = self.config.principals.get(zmq.utils.z85.encode(msg[6]))
            if principal is None:
                self.throttle.warn("refused connections", "refused %s connection from %s (mechanism %s): "
                                   "key not configured", domain.decode(errors="replace"),
                                   address.decode(errors="replace"), mechanism.decode(errors="replace"))
                self.zap.send_multipart([b"1.0", request_id, b"400", b"key not allowed", b"", b""])
            else:
                self.zap.send_multipart([b"1.0", request_id, b"200", b"OK", principal.user_id.encode(), b""])

    # -- main loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until stop() (or SIGTERM / SIGINT)."""
        poller = zmq.Poller()
        poller.register(self.zap, zmq.POLLIN)
        poller.register(self.orders, zmq.POLLIN)
        poller.register(self.journal.notify_fd, zmq.POLLIN)
        last_timers = 0.0
        while self.running:
            ready = dict(poller.poll(100))
            if self.zap in ready:
                self._handle_zap()
            if self.journal.notify_fd in ready:
                self.journal.clear_notifications()
                self._release()
            if self.orders in ready:
                self._drain()
            now = time.monotonic()
            if now - last_timers >= 0.05:
                last_timers = now
                self._expire_sessions(now)
        self.close()

    def stop(self, *_args) -> None:
        """Ask the loop to finish after the current batch."""
        self.running = False

    def close(self) -> None:
        """Send what is committed, snapshot (if the core supports it), close the
        journal and sockets."""
        self.journal.sync()
        self._release()
        if self.engine.last_seq > self.snapshot_seq and snapshots_supported():
            self._snapshot()
        self.journal.close()
        for sock in (self.orders, self.md):
            sock.close(linger=1_000)  # let the last replies and updates go out
        self.zap.close(linger=0)
        self.throttle.flush()

    def _drain(self) -> None:
        """Read waiting messages into one batch (up to the configured bounds) and run it."""
        batch = _Batch()
        now = time.monotonic()
        recv = self.orders.recv
        for _ in range(self.limits.max_batch_messages):
            try:
                frames = [recv(_LAST, copy=False)]
            except zmq.Again:
                break
            while frames[-1].more:  # the rest of a multipart message is already there
                frames.append(recv(_LAST, copy=False))
            try:
                self._read_message(batch, frames, now)
            except Exception:  # noqa: BLE001 - input must never take the gateway down
                log.exception("internal error reading a message; rejected")
                session = self.sessions.get(frames[0].bytes)
                if session is not None:
                    self._reject(batch, session, GatewayReject.MALFORMED, "internal error reading this message")
            if len(batch.commands) >= self.limits.max_batch_commands:
                break
        self._execute(batch)

    # -- reading requests --------------------------------------------------------------------

    def _session(self, frames: list, now: float) -> Session | None:
        identity = frames[0].bytes
        user_id = frames[-1].get("User-Id")
        session = self.sessions.get(identity)
        if session is not None and session.user_id == user_id:
            session.last_seen = now
            return session
        principal = self.principals.get(user_id)
        if principal is None:
            self.throttle.warn("unattributed messages", "message without a known User-Id (%r) dropped", user_id)
            return None
        if session is not None:
            self._drop_session(session)
        session = Session(next(self.session_ids), identity, user_id, principal, now)
        self.sessions[identity] = session
        self.sessions_by_id[session.id] = session
        if principal.account is not None:
            self.account_sessions[principal.account].append(session)
        return session

    def _drop_session(self, session: Session) -> None:
        self.sessions.pop(session.identity, None)
        self.sessions_by_id.pop(session.id, None)
        if session.principal.account is not None:
            peers = self.account_sessions[session.principal.account]
            if session in peers:
                peers.remove(session)

    def _reject(self, batch: _Batch, session: Session, code: int, detail: str = "", client_order_id: int = 0,
                order_id: int = 0, request_id: int = 0) -> None:
        """Refuse a request before it is sequenced (seq 0); the text is the code's
        standard text, then the detail."""
        text = f"{reject_text(code)}: {detail}"[:240] if detail else reject_text(code)
        batch.out.add(session.id, REPLY_ENCODER.encode(Reject(0, 0, int(code), text, client_order_id, order_id,
                                                              request_id)))

    def _read_message(self, batch: _Batch, frames: list, now: float) -> None:
        session = self._session(frames, now)
        if session is None:
            return
        if len(frames) != 2:
            self.throttle.warn("malformed messages", "session %d: message with %d frames rejected",
                               session.id, len(frames) - 1)
            self._reject(batch, session, GatewayReject.MALFORMED,
                         f"expected one frame per message, got {len(frames) - 1}")
            return
        payload = frames[1].buffer
        if len(payload) > self.limits.max_message_bytes:
            self.throttle.warn("malformed messages", "session %d: %d-byte message rejected", session.id, len(payload))
            self._reject(batch, session, GatewayReject.MESSAGE_TOO_LARGE,
                         f"message of {len(payload)} bytes exceeds {self.limits.max_message_bytes}")
            return
        if batch.commands.pack_requests(payload, session.id, session.account, session.principal.operator,
                                        self.limits.max_requests_per_message, REQUEST_LAYOUTS) > 0:
            return  # the common case, read in C; anything else takes the general path below
        try:
            requests = REQUEST_DECODER.decode(payload)
        except _DECODE_ERRORS:
            requests = self._decode_items(batch, session, payload)
        else:
            if not self._count_ok(batch, session, len(requests)):
                return
        for request in requests:
            self._dispatch(batch, session, request)

    def _count_ok(self, batch: _Batch, session: Session, count: int) -> bool:
        if count == 0:
            self._reject(batch, session, GatewayReject.MALFORMED, "empty request list")
            return False
        if count > self.limits.max_requests_per_message:
            self._reject(batch, session, GatewayReject.TOO_MANY_REQUESTS,
                         f"{count} requests in one message, at most {self.limits.max_requests_per_message}")
            return False
        return True

    def _decode_items(self, batch: _Batch, session: Session, payload) -> list:
        """Slow path after the whole message failed to decode: reject each bad
        request with its reason and return the good ones."""
        try:
            items = RAW_LIST_DECODER.decode(payload)
        except _DECODE_ERRORS as err:
            self.throttle.warn("malformed messages", "session %d: undecodable message: %s", session.id, err)
            self._reject(batch, session, GatewayReject.MALFORMED,
                         f"not a MessagePack array of requests: {err}")
            return []
        if not self._count_ok(batch, session, len(items)):
            return []
        good = []
        for index, item in enumerate(items):
            try:
                good.append(REQUEST_ITEM_DECODER.decode(item))
            except _DECODE_ERRORS as err:
                code = GatewayReject.MALFORMED
                try:
                    fields = RAW_LIST_DECODER.decode(item)
                    if fields and _TAG_DECODER.decode(fields[0]) not in REQUEST_TAGS:
                        code = GatewayReject.UNKNOWN_REQUEST
                except _DECODE_ERRORS:
                    pass
                self.throttle.warn("malformed messages", "session %d: request #%d rejected: %s",
                                   session.id, index, err)
                self._reject(batch, session, code, f"request #{index}: {err}")
        return good

    def _account(self, batch: _Batch, session: Session, requested: int, ref: dict) -> int | None:
        """The account a request acts for, or None after rejecting it."""
        principal = session.principal
        if requested == OWN_ACCOUNT:
            if principal.account is None:
                self._reject(batch, session, GatewayReject.NOT_AUTHORIZED,
                             "this key has no trading account; name the account", **ref)
                return None
            return principal.account
        if requested != principal.account and not principal.operator:
            self._reject(batch, session, GatewayReject.NOT_AUTHORIZED,
                         f"this key acts for account {principal.account} only, not {requested}", **ref)
            return None
        return requested

    def _dispatch(self, batch: _Batch, session: Session, req) -> None:
        kind = type(req)
        if kind is NewOrder:
            account = self._account(batch, session, req.account, {"client_order_id": req.client_order_id})
            if account is not None:
                batch.command(session, 0, CommandKind.NEW_ORDER, side=req.side, order_type=req.order_type,
                              tif=req.tif, stp=req.stp, instrument=req.instrument, account=account,
                              client_order_id=req.client_order_id, price=req.price, qty=req.qty)
        elif kind is Cancel:
            account = self._account(batch, session, req.account,
                                    {"client_order_id": req.client_order_id, "order_id": req.order_id})
            if account is not None:
                batch.command(session, 0, CommandKind.CANCEL, account=account, order_id=req.order_id,
                              client_order_id=req.client_order_id)
        elif kind is Amend:
            account = self._account(batch, session, req.account,
                                    {"client_order_id": req.client_order_id, "order_id": req.order_id})
            if account is not None:
                batch.command(session, 0, CommandKind.AMEND, account=account, order_id=req.order_id,
                              client_order_id=req.client_order_id, price=req.price, qty=req.qty)
        elif kind is MassCancel:
            account = self._account(batch, session, req.account, {"request_id": req.request_id})
            if account is not None:
                batch.command(session, req.request_id, CommandKind.MASS_CANCEL, instrument=req.instrument,
                              account=account)
        elif kind in OPERATOR_REQUESTS and not session.principal.operator:
            self._reject(batch, session, GatewayReject.NOT_AUTHORIZED,
                         f"{kind.__name__} needs an operator key", request_id=req.request_id)
        elif kind is SetState:
            batch.command(session, req.request_id, CommandKind.SET_STATE, state=req.state,
                          instrument=req.instrument)
        elif kind is SetReference:
            batch.command(session, req.request_id, CommandKind.SET_REFERENCE, instrument=req.instrument,
                          price=req.price)
        elif kind is Credit or kind is Debit:
            if not BALANCES_SUPPORTED:
                self._reject(batch, session, GatewayReject.NOT_SUPPORTED,
                             f"{kind.__name__} is not supported yet by this engine core", request_id=req.request_id)
                return
            if kind is Credit:
                batch.command(session, req.request_id, CommandKind.CREDIT, asset=req.asset, account=req.account,
                              qty=req.amount, order_id=req.deposit_id)
            else:
                account = self._account(batch, session, req.account, {"request_id": req.request_id})
                if account is not None:
                    batch.command(session, req.request_id, CommandKind.DEBIT, asset=req.asset, account=account,
                                  qty=req.amount)
        elif kind in _OPTIONAL_COMMANDS:
            command = _OPTIONAL_COMMANDS[kind]
            if command is None:
                self._reject(batch, session, GatewayReject.NOT_SUPPORTED,
                             f"{kind.__name__} is not supported yet by this engine core", request_id=req.request_id)
            elif kind is SetAssetPrice:
                batch.command(session, req.request_id, command, asset=req.asset, price=req.price)
            elif kind is SetOptionRisk:
                batch.command(session, req.request_id, command, instrument=req.instrument, qty=req.initial,
                              price=req.maintenance)
            elif kind is Liquidate:
                batch.command(session, req.request_id, command, account=req.account)
            else:
                batch.command(session, req.request_id, command, order_id=req.deposit_id)
        else:
            batch.queries.append((session, req))

    # -- running a batch ---------------------------------------------------------------------

    def _run_internal(self, commands: np.ndarray, why: str) -> None:
        """Run gateway-originated commands (genesis, cancel-on-disconnect) as a batch."""
        if len(commands) == 0:
            return
        batch = _Batch()
        batch.commands.add_records(commands)
        log.info("%s: running %d commands", why, len(commands))
        self._execute(batch)

    def _execute(self, batch: _Batch) -> None:
        """Sequence, run and journal the batch's commands and prepare everything
        it sends: replies, market data, then the answers to its queries (after the
        market data, so a book snapshot carries the seq of the updates it already
        contains). Nothing leaves before the batch is committed in the journal."""
        ts = max(time.time_ns(), self.last_ts)
        self.last_ts = ts
        market_data: list[list[bytes]] = []
        n = len(batch.commands)
        if n:
            first = self.engine.last_seq + 1
            commands = batch.commands.commands(first, ts)
            events = self.engine.process(commands)
            self.journal.append(commands, select_kinds(events, JOURNALED_EVENT_KINDS))
            batch.replies.route(REPLIES, events, batch.commands, first, self.account_sessions)
            market_data = self.publisher.on_batch(events, ts)
        batch.out = batch.answers
        for session, query in batch.queries:
            self._answer(batch, session, query, ts)
        self.outbound.append(_Outbound(self.engine.last_seq, batch.replies, market_data, batch.answers))
        self._release()
        jc = self.config.journal
        if (n and jc.snapshot_every and self.engine.last_seq - self.snapshot_seq >= jc.snapshot_every
                and time.monotonic() - self.snapshot_at >= jc.snapshot_min_interval_s and snapshots_supported()):
            self._snapshot()

    def _release(self) -> None:
        """Send, in batch order, the output of every batch the journal has committed."""
        committed = self.journal.committed_seq
        while self.outbound and self.outbound[0].seq <= committed:
            out = self.outbound.popleft()
            self._send(out.replies)
            for frames in out.market_data:
                self._publish(frames)
            self._send(out.answers)

    def _snapshot(self) -> None:
        started = time.perf_counter()
        self.journal.write_snapshot(self.engine.last_seq, self.engine.snapshot())
        self.snapshot_seq = self.engine.last_seq
        self.snapshot_at = time.monotonic()
        log.info("snapshot at seq %d written in %.3f s", self.snapshot_seq, time.perf_counter() - started)

    # -- queries -----------------------------------------------------------------------------

    def _answer(self, batch: _Batch, session: Session, req, ts: int) -> None:
        engine = self.engine

        def out(reply) -> None:
            batch.out.add(session.id, REPLY_ENCODER.encode(reply))

        match req:
            case Heartbeat():
                out(Pong(req.request_id, ts, engine.last_seq))
            case Logon():
                session.cancel_on_disconnect = req.cancel_on_disconnect
                out(LoggedOn(req.request_id, session.account if session.principal.account is not None else -1,
                                    session.principal.operator, self.config.session.heartbeat_ms,
                                    self.config.session.timeout_ms, req.cancel_on_disconnect))
            case GetBalances() | GetOpenOrders():
                account = self._account(batch, session, req.account, {"request_id": req.request_id})
                if account is None:
                    return
                if not 0 <= account < engine.max_accounts:
                    self._reject(batch, session, CoreReject.UNKNOWN_ACCOUNT, request_id=req.request_id)
                elif isinstance(req, GetOpenOrders):
                    out(OpenOrders(req.request_id, account, [
                        OpenOrder(o.order_id, o.client_order_id, o.instrument, o.side, o.price, o.leaves,
                                  o.tif, o.stp) for o in engine.open_orders(account)]))
                elif not hasattr(engine, "balances"):
                    self._reject(batch, session, GatewayReject.NOT_SUPPORTED,
                                 "balances are not supported yet by this engine core", request_id=req.request_id)
                else:
                    try:
                        balances = engine.balances(account)
                    except ValueError:
                        self._reject(batch, session, CoreReject.UNKNOWN_ACCOUNT,
                                     f"no balances kept for account {account}", request_id=req.request_id)
                        return
                    out(Balances(req.request_id, account, [
                        AssetBalance(asset, total, reserved) for asset, (total, reserved) in enumerate(balances)]))
            case GetBook():
                if not 0 <= req.instrument < len(engine.instruments):
                    self._reject(batch, session, CoreReject.UNKNOWN_INSTRUMENT, request_id=req.request_id)
                elif not 0 <= req.levels <= MAX_BOOK_LEVELS:
                    self._reject(batch, session, GatewayReject.MALFORMED,
                                 f"levels must be in [0, {MAX_BOOK_LEVELS}]", request_id=req.request_id)
                else:
                    out(self.publisher.snapshot(req.request_id, req.instrument, req.levels, ts))
            case GetInstruments():
                out(self._instruments(req.request_id))
            case GetMargin():
                account = self._account(batch, session, req.account, {"request_id": req.request_id})
                if account is None:
                    return
                if not hasattr(engine, "margin"):
                    self._reject(batch, session, GatewayReject.NOT_SUPPORTED,
                                 "margin is not supported yet by this engine core", request_id=req.request_id)
                    return
                try:
                    m = engine.margin(account)
                    positions = engine.positions(account)
                except ValueError:
                    self._reject(batch, session, CoreReject.UNKNOWN_ACCOUNT,
                                 f"no balances kept for account {account}", request_id=req.request_id)
                    return
                out(Margin(req.request_id, account, m.collateral, m.free_collateral, m.initial, m.maintenance,
                           [OptionPosition(p.instrument, p.position, p.open_sells, p.open_buys) for p in positions]))
            case GetMarginCalls():
                if not hasattr(engine, "under_maintenance"):
                    self._reject(batch, session, GatewayReject.NOT_SUPPORTED,
                                 "margin is not supported yet by this engine core", request_id=req.request_id)
                    return
                out(MarginCalls(req.request_id, [MarginCall(acct, m.collateral, m.maintenance)
                                                 for acct, m in engine.under_maintenance()]))
            case GetStatus():
                out(Status(req.request_id, engine.last_seq, engine.state_hash(), len(self.sessions),
                                  getattr(engine, "last_deposit_id", 0)))

    def _instruments(self, request_id: int) -> Instruments:
        engine = self.engine
        infos = []
        for iid, s in enumerate(engine.instruments):
            state, reference, last_trade = engine.instrument_state(iid)
            option = getattr(s, "option", None)
            terms = (option.expiry, option.strike, option.right, option.contract_size) if option else ("",) * 4
            infos.append(InstrumentInfo(iid, s.symbol, s.base, s.quote, s.tick_size, s.lot_size, s.min_qty,
                                        s.max_qty, s.max_price, s.price_scale, s.qty_scale, s.static_band_bps,
                                        s.dynamic_band_bps, getattr(s, "maker_fee_bps", 0),
                                        getattr(s, "taker_fee_bps", 0), state, reference, last_trade, *terms))
        assets = [AssetInfo(aid, a.symbol, a.decimals, a.ledger_decimals, a.haircut_bps)
                  for aid, a in enumerate(getattr(engine, "assets", ()))]
        return Instruments(request_id, infos, assets, self.config.market_data.depth)

    # -- sending -----------------------------------------------------------------------------

    def _send(self, out: Outbox) -> None:
        send = self.orders.send
        for sid, count, message in out.messages():
            session = self.sessions_by_id.get(sid)
            if session is None:
                continue
            try:
                send(session.identity, _MORE)
                send(message, _LAST)
            except zmq.Again:
                self.dropped_replies += count
                self.throttle.warn("dropped replies", "session %d is not reading: %d replies dropped "
                                   "(%d in total)", sid, count, self.dropped_replies)
            except zmq.ZMQError as err:
                if err.errno != errno.EHOSTUNREACH:
                    raise
                log.info("session %d (%s) disconnected", sid, session.user_id)
                self._disconnected(session)

    # -- sessions ----------------------------------------------------------------------------

    def _disconnected(self, session: Session) -> None:
        """Forget a session; its cancel-on-disconnect runs from the loop, between batches."""
        self._drop_session(session)
        if session.cancel_on_disconnect and session.principal.account is not None:
            self.lost_sessions.append(session)

    def _expire_sessions(self, now: float) -> None:
        timeout = self.config.session.timeout_ms / 1000
        idle = self.config.session.idle_expiry_s
        for session in list(self.sessions.values()):
            silent = now - session.last_seen
            if (session.cancel_on_disconnect and silent > timeout) or silent > idle:
                self._disconnected(session)
        if self.lost_sessions:
            lost, self.lost_sessions = self.lost_sessions, []
            self._cancel_on_disconnect(lost)

    def _cancel_on_disconnect(self, sessions: list[Session]) -> None:
        accounts = sorted({s.principal.account for s in sessions})
        for s in sessions:
            log.info("session %d (%s) missed its heartbeats: cancelling orders of account %s",
                     s.id, s.user_id, s.principal.account)
        commands = np.zeros(len(accounts), dtype=COMMAND_DTYPE)
        commands["kind"] = CommandKind.MASS_CANCEL
        commands["instrument"] = -1
        commands["account"] = accounts
        self._run_internal(commands, "cancel-on-disconnect")


class GatewayProcess:
    """A gateway running as a child process (tests, benchmarks, demos): starts
    ``python -m engine.gateway`` and waits for its ready line."""

    def __init__(self, config_path: str | Path, log_file: str | Path | None = None, *,
                 timeout: float = 60.0, python: str = sys.executable) -> None:
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        command = [python, "-m", "engine.gateway", "--config", str(config_path)]
        self.log_file = Path(log_file) if log_file else None
        stderr = None
        if self.log_file is not None:
            command += ["--log-file", str(self.log_file)]
            stderr = open(self.log_file, "a")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        if stderr is not None:
            stderr.close()
        self.orders, self.market_data, self.last_seq = self._wait_ready(timeout)

    @property
    def pid(self) -> int:
        """Process id of the gateway."""
        return self.process.pid

    def _wait_ready(self, timeout: float) -> tuple[str, str, int]:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(max(0.0, deadline - time.monotonic())):
                    line = self.process.stdout.readline()
                    if line.startswith("ready "):
                        fields = dict(part.split("=", 1) for part in line.split()[1:])
                        return fields["orders"], fields["market_data"], int(fields["last_seq"])
                    if not line:
                        break
        self.process.kill()
        self.process.wait()
        tail = self.log_file.read_text()[-2000:] if self.log_file and self.log_file.exists() else ""
        raise RuntimeError(f"gateway did not become ready (exit code {self.process.returncode}):\n{tail}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (clean shutdown: snapshot, journal closed); returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self.process.stdout.close()
        return code

    def kill(self) -> None:
        """SIGKILL: a crash at whatever point the gateway is."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:
            self.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m engine serve --config venue.toml``: run the gateway until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m engine serve", description="Run the order gateway.")
    parser.add_argument("--config", type=Path, required=True, help="venue TOML file")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-file", type=Path, help="log here instead of stderr")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), filename=args.log_file,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        gateway = Gateway(config)
    except (ConfigError, JournalError, ReplayError, zmq.ZMQError, OSError) as err:
        log.error("cannot start: %s", err)
        print(f"error: {err}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, gateway.stop)
    signal.signal(signal.SIGINT, gateway.stop)
    # The loop's garbage is acyclic and freed by reference counting; full
    # collections over the start-up heap (modules, recovery) only add pauses.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    orders, md = gateway.endpoints
    print(f"ready orders={orders} market_data={md} last_seq={gateway.engine.last_seq}", flush=True)
    log.info("serving orders on %s, market data on %s", orders, md)
    gateway.run()
    log.info("stopped at seq %d", gateway.engine.last_seq)
    return 0


if __name__ == "__main__":
    sys.exit(main())
