"""The stateless router in front of shard gateways (docs/sharding.md):
``python -m engine route --config shards.toml``.

Clients connect to it as to a gateway (same wire protocol, CURVE keys of the
venue config). It checks who may send what (engine/gateway/dispatch.py's rules),
then forwards each request to the shard of its instrument (or of its order id,
transfer id or account's home), over one DEALER per client and shard that acts
with the router's operator key and names the client's account explicitly.
Account-wide queries fan out to every shard and their answers are merged; a
shard's replies are translated to venue ids (instrument ids are the venue's,
order ids ``local * MAX_SHARDS + shard``). Market data of every shard is
republished as it comes (topics are symbols, sequence numbers per instrument).

Its only state is connections and the answers of fan-outs in flight: a router
restarted at any time loses nothing but those (their clients time out and ask
again). A shard that does not answer its heartbeats within
``router.shard_timeout_ms`` is down: requests for it are refused with
SHARD_UNAVAILABLE while the other shards keep trading.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import zmq

from engine.client import ClientKeys
from engine.config import ConfigError, Principal
from engine.core.transfers import transfer_route
from engine.core.types import Reject as CoreReject
from engine.gateway.dispatch import ROUTES, Rule
from engine.gateway.throttle import Throttle
from engine.gateway.zap import ZapHandler
from engine.router_merge import FANOUT, globalize, merge
from engine.schemas import (
    ALL_INSTRUMENTS,
    OWN_ACCOUNT,
    RAW_LIST_DECODER,
    REPLY_DECODER,
    REPLY_ENCODER,
    REQUEST_ENCODER,
    REQUEST_ITEM_DECODER,
    Amend,
    Cancel,
    Credit,
    Debit,
    GatewayReject,
    GetBook,
    GetOpenOrders,
    Heartbeat,
    Logon,
    MassCancel,
    NewOrder,
    Reject,
    SetBands,
    SetReference,
    SetState,
    SkipDeposit,
    reject_text,
)
from engine.schemas_shards import GetTransfers, Transfer, TransferLeg
from engine.shards import MAX_SHARDS, Shards, load_shards

log = logging.getLogger("engine.router")

_BY_INSTRUMENT = (NewOrder, GetBook, SetState, SetReference, SetBands)
"""Requests routed to the shard of their ``instrument``."""

_BEAT_S = 0.2

_CONNECT_MS = 100
"""How long a send waits for its shard's connection: a new DEALER's handshake
with the leader (a shard with no leader refuses after this, until the
heartbeats mark it down and requests are refused at once)."""

_OWN_LOGON = -1
"""Request id of the Logon with which each of the router's shard sessions acts as its client's account."""


@dataclass
class _Pending:
    """A fan-out in flight: the shards still to answer, the answers so far."""

    request: object
    waiting: set[int]
    replies: list = field(default_factory=list)
    deadline: float = 0.0


@dataclass
class _Link:
    """One client connection: its principal and its DEALER per shard."""

    principal: Principal
    dealers: dict[int, zmq.Socket] = field(default_factory=dict)
    pending: dict[int, _Pending] = field(default_factory=dict)
    seen: float = 0.0


class Router:
    """The router's sockets and loop."""

    def __init__(self, shards: Shards, context: zmq.Context | None = None) -> None:
        for shard in shards.shards:
            if any("*" in endpoint for endpoint in shard.orders + shard.market_data):
                raise ConfigError(f"{shards.path}: shard {shard.name}: the router needs concrete endpoints, "
                                  f"not {shard.orders} / {shard.market_data}")
        self.shards = shards
        self.config = shards.venue
        self.timeout_s = shards.router.shard_timeout_ms / 1000
        self.route = shards.shard_of_instrument()
        self.own_context = context is None
        self.context = context or zmq.Context()
        public, secret = self.config.server_keys()
        self.keys = ClientKeys.from_files(shards.router_key_file, self.config.server_key_file)
        self.zap = ZapHandler(self.context, self.config.principals, Throttle(log))
        self.principals = {p.user_id: p for p in self.config.principals.values()}
        self.front = self._server(zmq.ROUTER, public, secret, b"orders", shards.router.orders)
        self.front.router_mandatory = 1
        self.md = self._server(zmq.PUB, public, secret, b"md", shards.router.market_data)
        self.md_in = self.context.socket(zmq.SUB)
        self.keys.apply(self.md_in)
        self.md_in.linger = 0
        self.md_in.subscribe(b"")
        for shard in shards.shards:
            for endpoint in shard.market_data:
                self.md_in.connect(endpoint)
        self.monitors = [self._dealer(i) for i in range(len(shards.shards))]
        self.alive = [0.0] * len(shards.shards)
        self.links: dict[bytes, _Link] = {}
        self.owner: dict[zmq.Socket, tuple[bytes, int]] = {}
        self.poller = zmq.Poller()
        for sock in (self.zap.socket, self.front, self.md_in, *self.monitors):
            self.poller.register(sock, zmq.POLLIN)
        self.running = True

    def _server(self, kind: int, public: bytes, secret: bytes, domain: bytes, endpoint: str) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        sock.curve_server = True
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.zap_domain = domain
        sock.bind(endpoint)
        return sock

    def _dealer(self, shard: int) -> zmq.Socket:
        """A DEALER toward every gateway of ``shard``. Only its leader binds (a
        standby binds once it leads), and with ``immediate`` a message goes only
        to a connection that is up: to the leader, or nowhere (zmq.Again)."""
        sock = self.context.socket(zmq.DEALER)
        sock.linger = 0
        sock.immediate = 1
        sock.sndtimeo = _CONNECT_MS
        self.keys.apply(sock)
        for endpoint in self.shards.shards[shard].orders:
            sock.connect(endpoint)
        return sock

    @property
    def endpoints(self) -> tuple[str, str]:
        """The bound (orders, market data) endpoints."""
        return (self.front.getsockopt_string(zmq.LAST_ENDPOINT), self.md.getsockopt_string(zmq.LAST_ENDPOINT))

    def up(self, shard: int) -> bool:
        """Whether ``shard`` answered a heartbeat within the shard timeout."""
        return time.monotonic() - self.alive[shard] < self.timeout_s

    # -- loop ----------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until stop()."""
        next_beat = 0.0
        while self.running:
            now = time.monotonic()
            if now >= next_beat:
                for sock in self.monitors:
                    self._try_send(sock, REQUEST_ENCODER.encode([Heartbeat(0)]), zmq.NOBLOCK)
                next_beat = now + _BEAT_S
            self._expire(now)
            for sock, _ in self.poller.poll(50):
                if sock is self.zap.socket:
                    self.zap.handle()
                elif sock is self.front:
                    self._drain(self.front, self._from_client)
                elif sock is self.md_in:
                    self._drain(self.md_in, self.md.send_multipart)
                elif sock in self.owner:
                    self._drain(sock, lambda frames, s=sock: self._from_shard(s, frames))
                else:
                    shard = self.monitors.index(sock)
                    self._drain(sock, lambda _frames, i=shard: self._heard(i))
        self.close()

    def _heard(self, shard: int) -> None:
        """A heartbeat answer: ``shard`` is up. Back after it was down (its
        standby took over, or it restarted), the gateway that knew this router's
        sessions is gone: each session there logs on again as its client's
        account, so that the account's maker fills reach the client."""
        if not self.up(shard):
            for link in self.links.values():
                sock = link.dealers.get(shard)
                if sock is not None and link.principal.account is not None:
                    self._try_send(sock, REQUEST_ENCODER.encode([Logon(_OWN_LOGON, False, link.principal.account)]),
                                   zmq.NOBLOCK)
        self.alive[shard] = time.monotonic()

    def stop(self, *_args) -> None:
        """Leave the loop (signal handler)."""
        self.running = False

    def close(self) -> None:
        """Close every socket."""
        for sock in [self.front, self.md, self.md_in, *self.monitors, *self.owner]:
            sock.close(linger=0)
        self.zap.close()
        if self.own_context:
            self.context.term()

    @staticmethod
    def _drain(sock: zmq.Socket, handle) -> None:
        while True:
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            handle(frames)

    # -- client -> shards ----------------------------------------------------------------

    def _from_client(self, frames: list) -> None:
        identity = frames[0].bytes
        principal = self.principals.get(frames[-1].get("User-Id"))
        if principal is None:
            return
        link = self.links.get(identity)
        if link is None:
            link = self.links[identity] = _Link(principal)
        link.seen = time.monotonic()
        try:
            items = RAW_LIST_DECODER.decode(frames[-1].bytes)
        except msgspec.DecodeError:
            self._reply(identity, [Reject(0, 0, GatewayReject.MALFORMED, reject_text(GatewayReject.MALFORMED))])
            return
        for raw in items:
            try:
                req = REQUEST_ITEM_DECODER.decode(raw)
            except msgspec.DecodeError as err:
                self._reply(identity, [Reject(0, 0, GatewayReject.MALFORMED, f"malformed request: {err}"[:240])])
                continue
            refusal = self._forward(identity, link, req)
            if refusal is not None:
                code, detail = refusal
                ref = {n: getattr(req, n) for n in ("client_order_id", "request_id") if hasattr(req, n)}
                self._reply(identity, [Reject(0, 0, int(code), f"{reject_text(code)}: {detail}"[:240], **ref)])

    def _forward(self, identity: bytes, link: _Link, req) -> tuple[int, str] | None:
        """Send ``req`` to its shard(s); (code, detail) if it is refused here."""
        principal = link.principal
        rule = ROUTES[type(req)].rule
        if rule is Rule.OPERATOR and not principal.operator:
            return GatewayReject.NOT_AUTHORIZED, f"{type(req).__name__} needs an operator key"
        if rule is Rule.ACCOUNT:
            account = principal.account if req.account == OWN_ACCOUNT else req.account
            if account is None:
                return GatewayReject.NOT_AUTHORIZED, "this key has no trading account; name the account"
            if account != principal.account and not principal.operator:
                return GatewayReject.NOT_AUTHORIZED, f"this key acts for account {principal.account} only"
            req = msgspec.structs.replace(req, account=account)
        if isinstance(req, Logon):
            req = msgspec.structs.replace(req, account=OWN_ACCOUNT if principal.account is None else principal.account)
        if isinstance(req, _BY_INSTRUMENT) or (isinstance(req, MassCancel) and req.instrument != ALL_INSTRUMENTS):
            if req.instrument not in self.route:
                return CoreReject.UNKNOWN_INSTRUMENT, f"no shard trades instrument {req.instrument}"
            shard, local = self.route[req.instrument]
            return self._send(identity, link, shard, msgspec.structs.replace(req, instrument=local))
        if isinstance(req, Cancel | Amend):
            shard, local = req.order_id % MAX_SHARDS, req.order_id // MAX_SHARDS
            if req.order_id <= 0 or shard >= len(self.shards.shards):
                return CoreReject.UNKNOWN_ORDER, f"order id {req.order_id} names no shard"
            return self._send(identity, link, shard, msgspec.structs.replace(req, order_id=local))
        if isinstance(req, Transfer):
            try:
                src, dst, _number = transfer_route(req.transfer_id)
            except ValueError as err:
                return CoreReject.INVALID_TRANSFER, str(err)
            shard = src if req.leg == TransferLeg.OUT else dst
            if shard >= len(self.shards.shards):
                return CoreReject.INVALID_TRANSFER, f"transfer {req.transfer_id} names shard {shard}; there are " \
                                                    f"{len(self.shards.shards)}"
            return self._send(identity, link, shard, req)
        if isinstance(req, GetTransfers):
            if not 0 <= req.shard < len(self.shards.shards):
                return GatewayReject.NOT_ROUTABLE, f"no shard {req.shard}"
            return self._send(identity, link, req.shard, req)
        if isinstance(req, Debit):
            return self._send(identity, link, self.shards.home.get(req.account, 0), req)
        if isinstance(req, Credit):
            return self._credit(identity, link, req)
        if isinstance(req, GetOpenOrders) and (req.limit or req.after_order_id):
            return GatewayReject.NOT_ROUTABLE, "pages of open orders are per shard; ask for all (limit 0)"
        if isinstance(req, FANOUT):
            return self._fan_out(identity, link, req, range(len(self.shards.shards)))
        return GatewayReject.NOT_ROUTABLE, f"send {type(req).__name__} to a shard gateway"

    def _credit(self, identity: bytes, link: _Link, req: Credit) -> tuple[int, str] | None:
        """A deposit: credited on the account's home shard; its vault deposit id
        skipped on every other shard, so that each shard's deposit counter follows
        the vault's ids. Refused whole while any shard is down."""
        home = self.shards.home.get(req.account)
        if home is None:
            return CoreReject.UNKNOWN_ACCOUNT, f"account {req.account} has no home shard"
        down = [s.name for s in self.shards.shards if not self.up(s.index)]
        if down:
            return GatewayReject.SHARD_UNAVAILABLE, f"a deposit needs every shard; down: {', '.join(down)}"
        if req.deposit_id:
            for shard in range(len(self.shards.shards)):
                if shard != home and not self._try_send(self._dealer_of(identity, link, shard), REQUEST_ENCODER.encode(
                        [SkipDeposit(req.request_id, req.deposit_id)])):
                    return GatewayReject.SHARD_UNAVAILABLE, f"shard {self.shards.shards[shard].name} has no leader"
            return self._fan_out(identity, link, req, [home])
        return self._send(identity, link, home, req)

    def _send(self, identity: bytes, link: _Link, shard: int, req) -> tuple[int, str] | None:
        if not self.up(shard):
            return GatewayReject.SHARD_UNAVAILABLE, f"shard {self.shards.shards[shard].name} is down"
        if not self._try_send(self._dealer_of(identity, link, shard), REQUEST_ENCODER.encode([req])):
            return GatewayReject.SHARD_UNAVAILABLE, f"shard {self.shards.shards[shard].name} has no leader"
        return None

    def _fan_out(self, identity: bytes, link: _Link, req, shards) -> tuple[int, str] | None:
        """Send ``req`` to ``shards`` and merge their answers into one reply
        (a Credit with a deposit id: the home shard's answer only, the others'
        DepositSkipped are dropped as they come)."""
        down = [self.shards.shards[s].name for s in shards if not self.up(s)]
        if down:
            return GatewayReject.SHARD_UNAVAILABLE, f"shard {', '.join(down)} down; this request needs it"
        if req.request_id:
            # Answers are matched by request id: with 0, each shard's answer goes back unmerged.
            link.pending[req.request_id] = _Pending(req, set(shards), deadline=time.monotonic() + self.timeout_s)
        for shard in shards:
            if not self._try_send(self._dealer_of(identity, link, shard), REQUEST_ENCODER.encode([req])):
                link.pending.pop(req.request_id, None)
                return GatewayReject.SHARD_UNAVAILABLE, f"shard {self.shards.shards[shard].name} has no leader"
        return None

    @staticmethod
    def _try_send(sock: zmq.Socket, payload: bytes, flags: int = 0) -> bool:
        """Send, waiting at most ``_CONNECT_MS``; False when no gateway of the
        shard is connected (between a leader's death and its standby's takeover)."""
        try:
            sock.send(payload, flags)
        except zmq.Again:
            return False
        return True

    def _dealer_of(self, identity: bytes, link: _Link, shard: int) -> zmq.Socket:
        sock = link.dealers.get(shard)
        if sock is None:
            sock = link.dealers[shard] = self._dealer(shard)
            self.owner[sock] = (identity, shard)
            self.poller.register(sock, zmq.POLLIN)
            if link.principal.account is not None:
                # The shard then sends this session the account's fills as the maker.
                self._try_send(sock, REQUEST_ENCODER.encode([Logon(_OWN_LOGON, False, link.principal.account)]))
        return sock

    # -- shards -> client ----------------------------------------------------------------

    def _from_shard(self, sock: zmq.Socket, frames: list) -> None:
        identity, shard = self.owner[sock]
        link = self.links.get(identity)
        if link is None:
            return
        out = []
        for reply in REPLY_DECODER.decode(frames[-1].bytes):
            rid = reply.request_id if "request_id" in type(reply).__struct_fields__ else 0
            if rid == _OWN_LOGON:
                continue
            reply = globalize(reply, shard, self.shards.shards[shard].instruments)
            pending = link.pending.get(rid) if rid else None
            if pending is None:
                out.append(reply)
            elif shard in pending.waiting:
                pending.waiting.discard(shard)
                pending.replies.append(reply)
                if not pending.waiting:
                    del link.pending[pending.request.request_id]
                    out.append(merge(pending.request, pending.replies))
        if out:
            self._reply(identity, out)

    def _expire(self, now: float) -> None:
        for identity, link in list(self.links.items()):
            for rid, pending in list(link.pending.items()):
                if now >= pending.deadline:
                    del link.pending[rid]
                    names = ", ".join(self.shards.shards[s].name for s in sorted(pending.waiting))
                    code = GatewayReject.SHARD_UNAVAILABLE
                    self._reply(identity, [Reject(0, 0, int(code), f"{reject_text(code)}: no answer from {names}",
                                                  request_id=rid)])
            if now - link.seen > self.config.session.idle_expiry_s and not link.pending:
                for sock in link.dealers.values():
                    self.poller.unregister(sock)
                    del self.owner[sock]
                    sock.close(linger=0)
                del self.links[identity]

    def _reply(self, identity: bytes, replies: list) -> None:
        try:
            self.front.send_multipart([identity, REPLY_ENCODER.encode(replies)], zmq.NOBLOCK)
        except (zmq.Again, zmq.ZMQError):
            log.warning("reply to a gone or slow client dropped")


def main(argv: list[str] | None = None) -> int:
    """Run the router until SIGTERM / SIGINT; prints a ``ready`` line."""
    parser = argparse.ArgumentParser(prog="python -m engine route", description="Run the shard router.")
    parser.add_argument("--config", type=Path, required=True, help="shards TOML file")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        router = Router(load_shards(args.config))
    except (ConfigError, zmq.ZMQError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, router.stop)
    signal.signal(signal.SIGINT, router.stop)
    orders, md = router.endpoints
    print(f"ready orders={orders} market_data={md} last_seq=0", flush=True)
    router.run()
    return 0

