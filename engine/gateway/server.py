"""The gateway's loop: one process, one thread, one engine (the single writer).

* a ROUTER socket (CURVE) for order entry, queries and operator requests;
* a PUB socket (CURVE) for market data (engine/gateway/marketdata.py);
* a ZAP handler (inproc, in the same loop; engine/gateway/zap.py).

The loop: wait for input, drain waiting messages into a batch (bounded by
``max_batch_messages`` and ``max_batch_commands``), read and authorise each at
the boundary (engine/gateway/reading.py, dispatch.py), stamp seq and ts on the
accepted commands, run them through the core's batch API, append the batch to
the journal, and prepare its replies, market data and query answers
(queries.py). They leave once the journal has committed the batch
(outbound.py): under the default ``fsync = "batch"`` the journal's thread
fdatasyncs while this loop goes on with the next batch (group commit), so no
acknowledgement precedes durability.

Per order the work is in C (engine/core/wire.pyx, configured by
engine/gateway/wire_layouts.py): the common request message is read from its
MessagePack bytes into command records, and events become each session's reply
bytes. Replies of a command go to the session that sent it; events that concern
an account without being its own request's answer (a maker fill, a cancel caused
by an operator or by cancel-on-disconnect, a credit) go to every live session
of that account. A session that asked for cancel-on-disconnect and sends
nothing for ``timeout_ms`` has its account's orders mass-cancelled.

Fairness: sessions are rate-limited (reading.py, limits.py, queries.py); no
reply message exceeds ``max_reply_bytes``; replies ZeroMQ will not queue (its
queue per session holds ``reply_hwm`` messages) wait in the session's own
queue, and a session whose queue passes ``max_session_buffer_bytes`` is cut off
as a slow reader. Silence is measured on the observed clock: it advances by at
most ``_OBSERVED_STEP_S`` per loop iteration, so a stall of this loop (a long
batch, a paused process) never makes a client that kept heartbeating look
silent. A Logon ends its principal's earlier cancel-on-disconnect sessions that
have gone silent, cancelling their orders in the Logon's batch, before anything
the new session sends, so their late expiry cannot cancel the new orders.

The accounts with a cancel-on-disconnect session are kept in a durable registry
beside the journal (cod_registry.py); a gateway that takes over (a standby
becoming leader, a restart on the journal) reads it and cancels the orders of
the accounts that do not log on again with cancel-on-disconnect within
``timeout_ms`` (cod_recovery.py).
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable, Collection

import numpy as np
import zmq

from engine.config import Config
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind
from engine.core.wire import Outbox, select_kinds
from engine.gateway.batch import Batch
from engine.gateway.cod_recovery import CodRecovery
from engine.gateway.cod_registry import open_cod_registry
from engine.gateway.dispatch import dispatch
from engine.gateway.marketdata import MarketDataPublisher
from engine.gateway.outbound import Outbound, Output, split_message
from engine.gateway.pool_clock import PoolClock
from engine.gateway.queries import Queries
from engine.gateway.reading import MessageReader
from engine.gateway.recent_orders import RecentOrders
from engine.gateway.sessions import Session, Sessions
from engine.gateway.throttle import Throttle
from engine.gateway.wire_layouts import REPLIES
from engine.gateway.zap import ZapHandler
from engine.journal import JOURNALED_EVENT_KINDS, JournalFailure
from engine.journals import open_journal
from engine.replay import rebuild
from engine.schemas import GatewayReject, Logon
from engine.venue import genesis_commands

log = logging.getLogger("engine.gateway")

# pyzmq's send_multipart combines IntFlag enums per frame; plain ints are much cheaper.
_MORE = int(zmq.SNDMORE | zmq.NOBLOCK)
_LAST = int(zmq.NOBLOCK)
_POLL_MS = 100
_OBSERVED_STEP_S = 0.15  # a loop iteration adds at most this to the observed clock (a poll, plus a batch)


class Gateway:
    """The gateway process state: sockets, sessions, engine, journal."""

    def __init__(self, config: Config, context: zmq.Context | None = None,
                 on_standby: Callable[[int], None] | None = None) -> None:
        self.config = config
        self.limits = config.gateway
        self.throttle = Throttle(log)
        self.running = True
        self.sessions = Sessions(list(config.principals.values()), self.limits)
        self.reader = MessageReader(self.limits, self.throttle)
        self.observed = 0.0  # seconds of loop time in which input was read (see the module docstring)
        self.lost_sessions: list[Session] = []  # disconnected with cancel-on-disconnect pending
        self.backlogged: set[Session] = set()  # sessions with replies waiting in their own queue
        self.journal = open_journal(config)
        started = time.perf_counter()
        self.recent_orders = RecentOrders()
        rebuilt = rebuild(self.journal, on_batch=self.recent_orders.add)
        if config.journal.kind == "jetstream":
            # A standby until the lease is free (engine/gateway/standby.py).
            from engine.gateway.standby import follow_until_leader

            rebuilt = follow_until_leader(self.journal, rebuilt, self.recent_orders.add, on_standby)
        self.engine = rebuilt.engine
        self.last_ts = rebuilt.last_ts
        self.snapshot_seq = self.engine.last_seq
        self.snapshot_at = time.monotonic()
        log.info("recovered seq %d in %.3f s (snapshot at %d, %d batches / %d commands replayed)",
                 self.engine.last_seq, time.perf_counter() - started, rebuilt.snapshot_seq,
                 rebuilt.batches, rebuilt.commands)
        self.cod_registry = open_cod_registry(config, self.journal)
        self.cod = CodRecovery(self.cod_registry, self.cod_registry.take_over(), config.session.timeout_ms / 1000)
        self.context = context or zmq.Context()
        self._bind_sockets()
        self.outbound = Outbound(self._send, self._publish)
        self.publisher = MarketDataPublisher(self.engine, config.market_data.depth)
        self.queries = Queries(self.engine, self.publisher, config, self.sessions, self.recent_orders)
        self.pool_clock = PoolClock(config)
        if self.engine.last_seq == 0:
            self._run_internal(genesis_commands(config), "genesis")

    # -- sockets -------------------------------------------------------------------------

    def _bind_sockets(self) -> None:
        public, secret = self.config.server_keys()
        self.zap = ZapHandler(self.context, self.config.principals, self.throttle)
        self.orders = self._curve_server(zmq.ROUTER, public, secret, b"orders")
        self.orders.router_mandatory = 1
        self.orders.sndhwm = self.limits.reply_hwm  # then bytes, counted in the session's queue
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

    def _send(self, out: Outbox) -> None:
        """Send each session its messages (split to ``max_reply_bytes``), behind
        whatever already waits in its queue."""
        by_id = self.sessions.by_id
        for sid, _count, message in out.messages():
            session = by_id.get(sid)
            if session is None:
                continue
            for part in split_message(message, self.limits.max_reply_bytes):
                if by_id.get(sid) is not session:
                    break  # disconnected or cut off meanwhile
                if session.pending or not self._deliver(session, part):
                    self._hold(session, part)

    def _deliver(self, session: Session, message: bytes) -> bool:
        """Hand one message to ZeroMQ; False when its queue for the session is full."""
        try:
            self.orders.send(session.identity, _MORE)
            self.orders.send(message, _LAST)
        except zmq.Again:
            return False
        except zmq.ZMQError as err:
            if err.errno != errno.EHOSTUNREACH:
                raise
            log.info("session %d (%s) disconnected", session.id, session.user_id)
            self._disconnected(session)
        return True

    def _hold(self, session: Session, message: bytes) -> None:
        """Queue a message ZeroMQ refused; cut the session off past its byte bound."""
        session.pending.append(message)
        session.pending_bytes += len(message)
        self.backlogged.add(session)
        if session.pending_bytes > self.limits.max_session_buffer_bytes:
            self.throttle.warn("slow readers", "session %d (%s) does not read its replies: %d bytes waiting, "
                               "cut off", session.id, session.user_id, session.pending_bytes)
            self._disconnected(session)

    def _flush_backlog(self) -> None:
        """Hand ZeroMQ what sessions' queues hold, as far as it takes it."""
        for session in list(self.backlogged):
            pending = session.pending
            while pending:
                message = pending.popleft()
                session.pending_bytes -= len(message)  # first: a disconnect in _deliver clears the queue
                if not self._deliver(session, message):
                    pending.appendleft(message)
                    session.pending_bytes += len(message)
                    break
            if not pending:
                self.backlogged.discard(session)

    # -- main loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until stop() (or SIGTERM / SIGINT). A failed journal write or sync
        stops the gateway at once: the output it holds (not durable) is dropped,
        nothing is synced or snapshotted again, and JournalFailure leaves run()."""
        try:
            self._serve()
        except JournalFailure:
            log.critical("journal failure: stopping at seq %d with %d batch(es) of output unsent",
                         self.engine.last_seq, len(self.outbound.waiting))
            self.journal.close()  # after a failure it only releases its files
            for sock in (self.orders, self.md):
                sock.close(linger=0)
            self.zap.close()
            raise

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.zap.socket, zmq.POLLIN)
        poller.register(self.orders, zmq.POLLIN)
        poller.register(self.journal.notify_fd, zmq.POLLIN)
        last_timers = 0.0
        last_iteration = time.monotonic()
        while self.running:
            ready = dict(poller.poll(_POLL_MS))
            now = time.monotonic()
            self.observed += min(now - last_iteration, _OBSERVED_STEP_S)
            last_iteration = now
            if self.zap.socket in ready:
                self.zap.handle()
            if self.journal.notify_fd in ready:
                self.journal.clear_notifications()
                self.outbound.release(self.journal.committed_seq)
                if self.cod.cancelling and self.cod.committed(self.journal.committed_seq):
                    self.sessions.cod_changed = True
            if self.orders in ready:
                self._drain()
            if self.backlogged:
                self._flush_backlog()
            if now - last_timers >= 0.05:
                last_timers = now
                self._expire_sessions()
                self._run_internal(self.pool_clock.commands(now, self.engine, time.time_ns()), "pool clock")
            if self.sessions.cod_changed:
                self._record_cod()
        self.close()

    def stop(self, *_args) -> None:
        """Ask the loop to finish after the current batch."""
        self.running = False

    def close(self) -> None:
        """Send what is committed, snapshot, close the journal and sockets."""
        self.journal.sync()
        self.outbound.release(self.journal.committed_seq)
        if self.engine.last_seq > self.snapshot_seq:
            self._snapshot()
        if self.cod.committed(self.journal.committed_seq):
            self._record_cod()
        self.cod_registry.close()
        self.journal.close()
        for sock in (self.orders, self.md):
            sock.close(linger=1_000)  # let the last replies and updates go out
        self.zap.close()
        self.throttle.flush()

    def _drain(self) -> None:
        """Read waiting messages into one batch (up to the configured bounds) and run it."""
        batch = Batch()
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
                session = self.sessions.by_identity.get(frames[0].bytes)
                if session is not None:
                    batch.reject(session, GatewayReject.MALFORMED, "internal error reading this message")
            if len(batch.commands) + len(batch.queries) >= self.limits.max_batch_commands:
                break  # queries count too: they are answered in this batch, and a batch is a client's wait
        self._execute(batch)

    def _read_message(self, batch: Batch, frames: list, now: float) -> None:
        user_id = frames[-1].get("User-Id")
        session = self.sessions.attribute(frames[0].bytes, user_id, self.observed)
        if session is None:
            self.throttle.warn("unattributed messages", "message without a known User-Id (%r) dropped", user_id)
            return
        for request in self.reader.read(batch, session, frames, now):
            if type(request) is Logon:
                self._replace_silent_peers(batch, session)
            dispatch(batch, session, request, now)

    # -- running a batch ---------------------------------------------------------------------

    def _run_internal(self, commands: np.ndarray, why: str) -> None:
        """Run gateway-originated commands (genesis, cancel-on-disconnect) as a batch."""
        if len(commands) == 0:
            return
        batch = Batch()
        batch.commands.add_records(commands)
        log.info("%s: running %d commands", why, len(commands))
        self._execute(batch)

    def _execute(self, batch: Batch) -> None:
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
            self.recent_orders.add(commands)
            self.journal.append(commands, select_kinds(events, JOURNALED_EVENT_KINDS))
            batch.replies.route(REPLIES, events, batch.commands, first, self.sessions.by_account)
            market_data = self.publisher.on_batch(events, ts)
        batch.out = batch.answers
        for session, query in batch.queries:
            self.queries.answer(batch, session, query, ts)
        self.outbound.hold(Output(self.engine.last_seq, batch.replies, market_data, batch.answers))
        self.outbound.release(self.journal.committed_seq)
        jc = self.config.journal
        if (n and jc.snapshot_every and self.engine.last_seq - self.snapshot_seq >= jc.snapshot_every
                and time.monotonic() - self.snapshot_at >= jc.snapshot_min_interval_s):
            self._snapshot()

    def _snapshot(self) -> None:
        started = time.perf_counter()
        self.journal.write_snapshot(self.engine.last_seq, self.engine.snapshot())
        self.snapshot_seq = self.engine.last_seq
        self.snapshot_at = time.monotonic()
        log.info("snapshot at seq %d written in %.3f s", self.snapshot_seq, time.perf_counter() - started)

    # -- sessions ----------------------------------------------------------------------------

    def _forget(self, session: Session) -> bool:
        """Forget a session and the replies waiting for it; False if it was already gone."""
        if self.sessions.by_id.get(session.id) is not session:
            return False
        self.sessions.drop(session)
        session.pending.clear()
        session.pending_bytes = 0
        self.backlogged.discard(session)
        return True

    def _disconnected(self, session: Session) -> None:
        """Forget a session; its cancel-on-disconnect runs from the loop, between batches."""
        if self._forget(session) and session.cancel_on_disconnect and session.principal.account is not None:
            self.lost_sessions.append(session)

    def _replace_silent_peers(self, batch: Batch, session: Session) -> None:
        """On a Logon: end the principal's other cancel-on-disconnect sessions that
        sent nothing for a heartbeat interval (the connection this one replaces),
        their mass cancels sequenced here, before the new session's orders."""
        silent = self.sessions.silent_peers(session, self.observed, self.config.session.heartbeat_ms / 1000)
        for peer in silent:
            self._forget(peer)
            log.info("session %d (%s) replaced by session %d: cancelling orders of account %s",
                     peer.id, peer.user_id, session.id, peer.principal.account)
        accounts = {p.principal.account for p in silent if p.principal.account is not None}
        if accounts:
            batch.commands.add_records(_mass_cancels(accounts))

    def _expire_sessions(self) -> None:
        s = self.config.session
        for session in self.sessions.expired(self.observed, s.timeout_ms / 1000, s.idle_expiry_s):
            self._disconnected(session)
        if self.lost_sessions:
            lost, self.lost_sessions = self.lost_sessions, []
            for session in lost:
                log.info("session %d (%s) missed its heartbeats: cancelling orders of account %s",
                         session.id, session.user_id, session.principal.account)
            self._cancel_on_disconnect({s.principal.account for s in lost}, "cancel-on-disconnect")
        overdue = self.cod.overdue(self.observed)
        if overdue:
            self._cancel_on_disconnect(overdue, "cancel-on-disconnect of the previous gateway's sessions")

    def _cancel_on_disconnect(self, accounts: Collection[int], why: str) -> None:
        """Mass-cancel the accounts' orders; they stay in the registry until the
        journal has committed the cancels."""
        self._run_internal(_mass_cancels(accounts), why)
        self.cod.cancelled(accounts, self.engine.last_seq)
        self._record_cod()

    def _record_cod(self) -> None:
        """Keep the registry up to date: accounts with a live cancel-on-disconnect
        session, or one lost whose mass cancel is not sequenced yet."""
        self.sessions.cod_changed = False
        self.cod.sessions_changed(self.sessions.cod_accounts(),
                                  frozenset(s.principal.account for s in self.lost_sessions))


def _mass_cancels(accounts: Collection[int]) -> np.ndarray:
    """MASS_CANCEL commands (every instrument) of the accounts, in account order."""
    commands = np.zeros(len(accounts), dtype=COMMAND_DTYPE)
    commands["kind"] = CommandKind.MASS_CANCEL
    commands["instrument"] = -1
    commands["account"] = sorted(accounts)
    return commands
