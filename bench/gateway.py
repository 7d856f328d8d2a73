"""``python -m bench gateway [--json PATH] [--quick] ...``: the order gateway over ZeroMQ.

Starts a real gateway process (CURVE, journal with the chosen fsync policy) and
client processes on the same machine, over loopback TCP and over ``ipc://``:

* **throughput at saturation** (``tcp_orders_per_s``, ``ipc_orders_per_s``): N
  client processes each keep a window of messages in flight, each message a
  batch of new limit orders around the mid (about half of them cross and trade).
  The figure is acknowledged orders (Ack or Reject) per second over the timed
  window, after a warm-up. The messages are encoded before the clock starts, so
  the clients spend their CPU on sending and reading replies.
* **round trip at fixed offered rates** (``rtt_p50_us_R``, ``rtt_p99_us_R``,
  ``rtt_p999_us_R`` for TCP, ``ipc_rtt_*`` for ipc): one client process sends
  orders on a schedule of R orders/s (a message every max(1/R, 100 us), so at
  most 10 orders share a message at 100k/s) and times each order from the send
  of its message to the arrival of its Ack, in an HDR histogram. ``*_sent_R`` /
  ``*_acked_R`` say whether the gateway kept up.

Both run with the journal's ``fsync = "batch"`` policy (one fdatasync per
batch, the venue's durable default) unless ``--fsync`` says otherwise; the
round trip is additionally measured without fsync (``*_nofsync`` keys) so the
cost of durability on this disk is visible. Everything shares the machine's
CPUs (2 here): the gateway, its I/O thread and the clients.

**Baseline, same run** (``echo_rtt_*`` and ``ipc_echo_rtt_*``): the same round
trip client against an echo process on the same transport with the same CURVE
keys, which answers each order with an Ack and does nothing else (no engine,
journal, market data or sessions). It is the floor that ZeroMQ, CURVE, the
kernel and Python wake-ups set on this machine; ``*_over_echo_us_R`` is what
the gateway adds to it at p50 and p99.

These scenarios run with the fairness rates out of reach (``UNLIMITED_RATES``):
they measure capacity, and one benchmark client offers more than a default
principal may send.

**Flood** (``python -m bench gateway --flood``, its own run): an honest client
sends orders at ``--flood-rate`` (default 5,000/s, half the default message rate) over TCP, and its round
trip (``flood_off_rtt_*``) is measured alone, then beside a hostile client of
another account (``flood_on_rtt_*``) that sends, as fast as it can, messages of
20 ``GetBook`` at the level cap on a book it made deep, reading what comes back.
Both are measured on a gateway with the venue's default fairness limits and
again with the rates out of reach (``unlimited_*``: what the limits buy). The
hostile client's counts say what it got: books answered and messages refused
(``RATE_LIMITED``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import random
import select
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import msgspec
import zmq
import zmq.auth
from hdrh.histogram import HdrHistogram

from engine.client import ClientKeys
from engine.config import to_toml
from engine.core.types import SelfTrade, Side
from engine.gateway.process import GatewayProcess
from engine.keys import generate
from engine.config import GatewaySection
from engine.schemas import (
    REPLY_ENCODER,
    REQUEST_DECODER,
    REQUEST_ENCODER,
    Ack,
    BookSnapshot,
    GetBook,
    NewOrder,
    Reject,
)

MID = 1_850_000
TICK = 100
_ITEMS = msgspec.msgpack.Decoder(list[msgspec.Raw])
_ACK_TAGS = (1, 2)  # Ack, Reject: every order gets exactly one of them
_REJECT_TAG = Reject.__struct_config__.tag
_BOOK_TAG = BookSnapshot.__struct_config__.tag
_ACK = msgspec.msgpack.Decoder(Ack)
_REJECT = msgspec.msgpack.Decoder(Reject)
UNLIMITED_RATES = {"max_messages_per_s": 10**9, "max_requests_per_s": 10**9, "max_query_items_per_s": 10**9}
FLOOD_BOOKS = 20  # GetBook requests in one message of the hostile client


@dataclass(frozen=True)
class Plan:
    """Sizes of a run; ``Plan.quick()`` is ``--quick``."""

    clients: int = 2
    batch: int = 100
    window: int = 64
    warmup: float = 1.0
    duration: float = 5.0
    rates: tuple[int, ...] = (10_000, 50_000, 100_000)
    rtt_duration: float = 4.0
    transports: tuple[str, ...] = ("tcp", "ipc")
    fsync: str = "batch"
    nofsync_rtt: bool = True
    flood_rate: int = 5_000

    @classmethod
    def quick(cls) -> Plan:
        """A run of about half a minute."""
        return cls(warmup=0.5, duration=2.0, rtt_duration=1.5, nofsync_rtt=False)


def write_venue(directory: Path, transport: str, clients: int, fsync: str,
                rates: dict[str, int] | None = None, journal: dict | None = None,
                orders_endpoint: str | None = None, name: str | None = None) -> Path:
    """Keys and a one-instrument venue config for the benchmark; returns the config path.
    ``rates`` are the [gateway] fairness rates (default: out of reach); ``journal``
    replaces the [journal] section, ``orders_endpoint`` the TCP order endpoint,
    ``name`` the config file's name (bench/replication.py)."""
    keys = directory / "keys"
    for name in ["server"] + [f"c{k}" for k in range(clients)]:
        if not (keys / f"{name}.key").exists():
            generate(keys, name)
    if transport == "tcp":
        endpoints = {"orders": orders_endpoint or "tcp://127.0.0.1:*", "market_data": "tcp://127.0.0.1:*"}
    else:
        endpoints = {"orders": f"ipc://{directory}/orders.ipc", "market_data": f"ipc://{directory}/md.ipc"}
    doc = {
        "venue": {"name": "bench", "max_accounts": 64, "max_orders": 1 << 22, "fee_account": 0},
        "endpoints": endpoints,
        "server": {"secret_key_file": str(keys / "server.key_secret")},
        "journal": journal or {"path": str(directory / f"journal-{transport}-{fsync}-{time.time_ns()}"),
                               "fsync": fsync, "snapshot_every": 0},
        "gateway": {"max_batch_messages": 1024, "max_requests_per_message": 1024, "send_hwm": 1_000_000,
                    **(UNLIMITED_RATES if rates is None else rates)},
        "market_data": {"depth": 10},
        "assets": [{"symbol": "USDC", "decimals": 6, "ledger_decimals": 6},
                   {"symbol": "AMZNX", "decimals": 18, "ledger_decimals": 6}],
        "instruments": [{"symbol": "AMZNX/USDC", "base": "AMZNX", "quote": "USDC", "tick_size": TICK,
                         "lot_size": 1, "min_qty": 1, "max_qty": 10**9, "max_price": 10**9,
                         "static_band_bps": 1_000, "dynamic_band_bps": 500, "price_scale": 10_000,
                         "qty_scale": 1_000, "maker_fee_bps": -1, "taker_fee_bps": 5,
                         "reference_price": "185.00"}],
        "accounts": [{"id": k + 1, "key_files": [str(keys / f"c{k}.key")],
                      "credit": {"USDC": "1000000000000", "AMZNX": "1000000000"}} for k in range(clients)],
    }
    path = directory / (name or f"venue-{transport}.toml")
    path.write_text(to_toml(doc))
    return path


def _keys(directory: Path, client: int) -> ClientKeys:
    keys = directory / "keys"
    return ClientKeys.from_files(keys / f"c{client}.key_secret", keys / "server.key")


def _socket(endpoint: str, keys: ClientKeys) -> tuple[zmq.Context, zmq.Socket]:
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.sndhwm = sock.rcvhwm = 0
    keys.apply(sock)
    sock.connect(endpoint)
    return context, sock


def _order(rng: random.Random, cid: int) -> NewOrder:
    """A limit order within 3 ticks of the mid: about half cross the spread."""
    return NewOrder(cid, 0, rng.choice((Side.BUY, Side.SELL)), rng.randint(1, 5) * 10,
                    MID + rng.randint(-3, 3) * TICK, stp=SelfTrade.STP_NONE)


def _acks(data: bytes) -> int:
    """Number of Acks and Rejects in a reply message (read from each item's tag byte)."""
    return sum(1 for item in _ITEMS.decode(data) if memoryview(item)[1] in _ACK_TAGS)


def throughput_worker(endpoint: str, directory: str, client: int, plan: Plan, start: float, out) -> None:
    """Keep plan.window messages of plan.batch orders in flight; count acks in the timed window."""
    rng = random.Random(client)
    pool = [REQUEST_ENCODER.encode([_order(rng, k * plan.batch + i) for i in range(plan.batch)])
            for k in range(256)]
    context, sock = _socket(endpoint, _keys(Path(directory), client))
    limit = plan.window * plan.batch
    sent = acked = counted = 0
    t_begin, t_end = start + plan.warmup, start + plan.warmup + plan.duration
    while time.monotonic() < start:
        time.sleep(0.001)
    k = 0
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        while sent - acked < limit:
            sock.send(pool[k % len(pool)], copy=False)
            k += 1
            sent += plan.batch
        if sock.poll(100):
            while True:
                try:
                    data = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                n = _acks(data)
                acked += n
                if t_begin <= time.monotonic() < t_end:
                    counted += n
    out.put({"client": client, "counted": counted, "sent": sent, "acked": acked})
    sock.close()
    context.term()


def _rtt_orders(rate: int, plan: Plan) -> int:
    """How many orders a round-trip run sends (with room to spare)."""
    return int(rate * (plan.warmup + plan.rtt_duration) * 1.1) + 1_000


def rtt_worker(endpoint: str, directory: str, rate: int, plan: Plan, start: float, out) -> None:
    """Send orders at `rate` per second; histogram of send-to-Ack times (us).

    The orders are made before the clock starts and replies are read only as far
    as an Ack's or Reject's client order id, so the client spends little CPU
    beside the gateway (they share the machine's cores)."""
    rng = random.Random(rate)
    pool = [_order(rng, k + 1) for k in range(_rtt_orders(rate, plan))]
    context, sock = _socket(endpoint, _keys(Path(directory), 0))
    fd = sock.getsockopt(zmq.FD)
    tick = max(1.0 / rate, 100e-6)
    hist = HdrHistogram(1, 60_000_000, 3)
    sent_at: dict[int, int] = {}
    sent = acked = recorded = 0
    t_begin, t_end = start + plan.warmup, start + plan.warmup + plan.rtt_duration
    begin_ns = int(t_begin * 1e9)

    def drain() -> None:
        nonlocal acked, recorded
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            data = sock.recv()
            now = time.monotonic_ns()
            for item in _ITEMS.decode(data):
                tag = memoryview(item)[1]
                if tag in _ACK_TAGS:
                    reply = _ACK.decode(item) if tag == 1 else _REJECT.decode(item)
                    t = sent_at.pop(reply.client_order_id, None)
                    if t is not None:
                        acked += 1
                        if t >= begin_ns:
                            hist.record_value(max(1, (now - t) // 1000))
                            recorded += 1

    while time.monotonic() < start:
        time.sleep(0.001)
    next_send = start
    while True:
        now = time.monotonic()
        if now >= t_end:
            break
        if now >= next_send:
            due = min(int((now - start) * rate), len(pool)) - sent
            if due > 0:
                orders = pool[sent:sent + due]
                stamp = time.monotonic_ns()
                sock.send(REQUEST_ENCODER.encode(orders))
                for order in orders:
                    sent_at[order.client_order_id] = stamp
                sent += due
            next_send += tick
        drain()
        wait = next_send - time.monotonic()
        if wait > 0 and not sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            select.select([fd], [], [], wait)
        drain()
    deadline = time.monotonic() + 2.0
    while sent_at and time.monotonic() < deadline:
        select.select([fd], [], [], 0.01)
        drain()
    out.put({"sent": sent, "acked": acked, "recorded": recorded, "lost": len(sent_at),
             "hist": hist.encode().decode()})
    sock.close()
    context.term()


def flood_worker(endpoint: str, directory: str, plan: Plan, start: float, out) -> None:
    """The hostile client (account of client 1): makes the book deep with its own
    orders far from the mid, then sends messages of FLOOD_BOOKS GetBook at the
    level cap as fast as ZeroMQ takes them until the round trip ends, reading
    and counting what comes back."""
    levels = GatewaySection().max_book_levels
    context, sock = _socket(endpoint, _keys(Path(directory), 1))
    sock.sndhwm = 1_000
    deep = [NewOrder(k + 1, 0, side, 10, MID + sign * (200 + k) * TICK)
            for k in range(levels) for side, sign in ((Side.BUY, -1), (Side.SELL, 1))]
    sock.send(REQUEST_ENCODER.encode(deep))
    flood = REQUEST_ENCODER.encode([GetBook(k, 0, levels) for k in range(FLOOD_BOOKS)])
    sent = books = limited = 0
    t_end = start + plan.warmup + plan.rtt_duration
    while time.monotonic() < start:
        time.sleep(0.001)
    while time.monotonic() < t_end:
        try:
            sock.send(flood, zmq.NOBLOCK)
            sent += 1
        except zmq.Again:
            sock.poll(1)
        while sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            for item in _ITEMS.decode(sock.recv()):
                tag = memoryview(item)[1]
                if tag == _REJECT_TAG:
                    limited += 1
                elif tag == _BOOK_TAG:
                    books += 1
    out.put({"flood_messages": sent, "flood_books": books, "flood_rejects": limited})
    sock.close()
    context.term()


def echo_server(endpoint: str, directory: str, ready) -> None:
    """The baseline: a CURVE ROUTER that answers every order with an Ack (order id 0)."""
    keys = Path(directory) / "keys"
    public, secret = zmq.auth.load_certificate(keys / "server.key_secret")
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.linger = 0
    sock.sndhwm = sock.rcvhwm = 0
    sock.curve_server = True
    sock.curve_publickey = public
    sock.curve_secretkey = secret
    sock.bind(endpoint)
    ready.put(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    while True:
        identity, payload = sock.recv_multipart()
        orders = REQUEST_DECODER.decode(payload)
        sock.send_multipart([identity, REPLY_ENCODER.encode(
            [Ack(0, 0, o.client_order_id, 0, o.instrument, o.side, o.price, o.qty, o.tif) for o in orders])])


class EchoProcess:
    """The echo baseline as a child process; ``orders`` is its endpoint."""

    def __init__(self, directory: Path, transport: str) -> None:
        endpoint = "tcp://127.0.0.1:*" if transport == "tcp" else f"ipc://{directory}/echo.ipc"
        ctx = mp.get_context("spawn")
        ready = ctx.Queue()
        self.process = ctx.Process(target=echo_server, args=(endpoint, str(directory), ready), daemon=True)
        self.process.start()
        self.orders = ready.get(timeout=60)

    def __enter__(self) -> EchoProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.process.kill()
        self.process.join(10)


def _run_workers(target, args_list: list[tuple], also: tuple | None = None) -> list[dict]:
    """Run target(*args, queue) for each args in child processes (and ``also``,
    a (target, args) run beside them); every child's result dict."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    jobs = [(target, args) for args in args_list] + ([also] if also else [])
    procs = [ctx.Process(target=job, args=(*args, out)) for job, args in jobs]
    for p in procs:
        p.start()
    results = []
    while len(results) < len(procs):
        try:
            results.append(out.get(timeout=1.0))
        except queue.Empty:
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed:
                raise RuntimeError(f"a benchmark client failed (exit codes {failed})") from None
    for p in procs:
        p.join(30)
    return results


def measure_throughput(gw: GatewayProcess, directory: Path, plan: Plan) -> dict:
    """Sustained acknowledged orders per second with plan.clients saturating clients."""
    start = time.monotonic() + 3.0  # time for the spawned interpreters to start
    results = _run_workers(throughput_worker,
                           [(gw.orders, str(directory), k, plan, start) for k in range(plan.clients)])
    return {"orders_per_s": sum(r["counted"] for r in results) / plan.duration,
            "acked": sum(r["acked"] for r in results)}


def measure_rtt(gw: GatewayProcess | EchoProcess, directory: Path, plan: Plan, rate: int,
                flood: bool = False) -> dict:
    """Round-trip percentiles at one offered rate (beside the hostile flood_worker if ``flood``)."""
    start = time.monotonic() + 3.0 + _rtt_orders(rate, plan) / 250_000  # spawn, then make the orders
    also = (flood_worker, (gw.orders, str(directory), plan, start)) if flood else None
    results = _run_workers(rtt_worker, [(gw.orders, str(directory), rate, plan, start)], also)
    (result,) = [r for r in results if "hist" in r]
    hist = HdrHistogram.decode(result["hist"])
    answered = result["recorded"] > 0  # no percentile of nothing: None when no order came back
    measured = {"p50": hist.get_value_at_percentile(50.0) if answered else None,
                "p99": hist.get_value_at_percentile(99.0) if answered else None,
                "p999": hist.get_value_at_percentile(99.9) if answered else None,
                "max": hist.get_max_value() if answered else None,
                "sent": result["sent"], "acked": result["acked"], "lost": result["lost"],
                "rate_achieved": result["recorded"] / plan.rtt_duration}
    for r in results:
        if "flood_messages" in r:
            measured.update(r)
    return measured


def run_flood_bench(plan: Plan, log=print) -> dict:
    """The honest client's round trip alone and beside the hostile flood, on a
    gateway with the default fairness limits and on one with rates out of reach."""
    rate = plan.flood_rate
    defaults = GatewaySection()
    limited = {name: getattr(defaults, name) for name in UNLIMITED_RATES}
    results: dict = {"flood_rate": rate, "flood_rtt_duration_s": plan.rtt_duration, "gateway_fsync": plan.fsync,
                     "flood_books_per_message": FLOOD_BOOKS, "flood_book_levels": defaults.max_book_levels,
                     **{f"flood_limit_{name}": value for name, value in limited.items()}}
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        directory = Path(tmp)
        for prefix, rates in (("", limited), ("unlimited_", UNLIMITED_RATES)):
            for state in ("off", "on"):
                config = write_venue(directory, "tcp", 2, plan.fsync, rates)
                with GatewayProcess(config, directory / "gateway.log") as gw:
                    r = measure_rtt(gw, directory, plan, rate, flood=state == "on")
                for name in ("p50", "p99", "p999", "max"):
                    results[f"{prefix}flood_{state}_rtt_{name}_us"] = r[name]
                results[f"{prefix}flood_{state}_rate_achieved"] = round(r["rate_achieved"])
                results[f"{prefix}flood_{state}_lost"] = r["lost"]
                line = (f"  {'limits' if not prefix else 'no rate limits'}, flood {state}: honest {rate:,}/s "
                        f"p50 {r['p50']} us, p99 {r['p99']} us, p99.9 {r['p999']} us "
                        f"({r['rate_achieved']:,.0f}/s acked, {r['lost']} unanswered)")
                if state == "on":
                    for name in ("flood_messages", "flood_books", "flood_rejects"):
                        results[f"{prefix}{name}"] = r[name]
                    line += (f"; hostile: {r['flood_messages']:,} messages, {r['flood_books']:,} books answered, "
                             f"{r['flood_rejects']:,} rejects")
                log(line)
    try:
        from bench.core import machine

        results.update(machine())
    except ImportError:
        pass
    return results


def run_gateway_bench(plan: Plan, log=print) -> dict:
    """Every measurement of the plan; returns the flat results dict."""
    results: dict = {"gateway_clients": plan.clients, "gateway_batch_orders": plan.batch,
                     "gateway_window_messages": plan.window, "gateway_duration_s": plan.duration,
                     "gateway_rtt_duration_s": plan.rtt_duration, "gateway_fsync": plan.fsync}
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        directory = Path(tmp)
        for transport in plan.transports:
            prefix = "" if transport == "tcp" else "ipc_"
            write_venue(directory, transport, plan.clients, plan.fsync)  # the keys
            with EchoProcess(directory, transport) as echo:
                for rate in plan.rates:
                    r = measure_rtt(echo, directory, plan, rate)
                    for name in ("p50", "p99", "p999"):
                        results[f"{prefix}echo_rtt_{name}_us_{rate}"] = r[name]
                    log(f"  {transport} echo baseline {rate:,}/s offered: p50 {r['p50']} us, p99 {r['p99']} us, "
                        f"p99.9 {r['p999']} us ({r['rate_achieved']:,.0f}/s acked, {r['lost']} unanswered)")
            policies = [(plan.fsync, "")] + ([("none", "_nofsync")] if plan.nofsync_rtt and plan.fsync != "none"
                                             else [])
            for fsync, suffix in policies:
                config = write_venue(directory, transport, plan.clients, fsync)
                with GatewayProcess(config, directory / "gateway.log") as gw:
                    if not suffix:
                        log(f"{transport}: throughput, {plan.clients} clients x {plan.window} messages "
                            f"x {plan.batch} orders in flight, fsync={fsync}")
                        tput = measure_throughput(gw, directory, plan)
                        results[f"{transport}_orders_per_s{suffix}"] = round(tput["orders_per_s"])
                        log(f"  {tput['orders_per_s']:,.0f} orders/s")
                    for rate in plan.rates:
                        r = measure_rtt(gw, directory, plan, rate)
                        for name in ("p50", "p99", "p999"):
                            results[f"{prefix}rtt_{name}_us_{rate}{suffix}"] = r[name]
                        results[f"{prefix}rtt_max_us_{rate}{suffix}"] = r["max"]
                        results[f"{prefix}rtt_rate_achieved_{rate}{suffix}"] = round(r["rate_achieved"])
                        results[f"{prefix}rtt_lost_{rate}{suffix}"] = r["lost"]
                        for name in ("p50", "p99"):
                            echo = results[f"{prefix}echo_rtt_{name}_us_{rate}"]
                            over = None if r[name] is None else r[name] - echo
                            results[f"{prefix}rtt_{name}_over_echo_us_{rate}{suffix}"] = over
                        log(f"  {transport} fsync={fsync} {rate:,}/s offered: p50 {r['p50']} us, p99 {r['p99']} us, "
                            f"p99.9 {r['p999']} us, max {r['max']} us ({r['rate_achieved']:,.0f}/s acked, "
                            f"{r['lost']} unanswered)")
    try:
        from bench.core import machine

        results.update(machine())
    except ImportError:
        pass
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line of the gateway benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench gateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the flat results object to this file")
    parser.add_argument("--quick", action="store_true", help="a short run")
    parser.add_argument("--clients", type=int, help="saturating client processes (default 2)")
    parser.add_argument("--batch", type=int, help="orders per message when saturating (default 100)")
    parser.add_argument("--rates", help="comma-separated offered rates for the round trip")
    parser.add_argument("--fsync", choices=("batch", "interval", "none"), help="journal fsync policy")
    parser.add_argument("--transports", help="tcp,ipc (default both)")
    parser.add_argument("--flood", action="store_true",
                        help="only the flood scenario: honest round trip without and with a hostile client")
    parser.add_argument("--flood-rate", type=int, help="the honest client's offered rate (default 5000/s)")
    parser.add_argument("--journal", choices=("file", "jetstream"), default="file",
                        help="jetstream: the replicated journal beside the file journal, and failovers "
                             "(bench/replication.py)")
    parser.add_argument("--failovers", type=int, default=20, help="leader kills timed with --journal jetstream")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    plan = Plan.quick() if args.quick else Plan()
    changes = {}
    if args.clients:
        changes["clients"] = args.clients
    if args.batch:
        changes["batch"] = args.batch
    if args.rates:
        changes["rates"] = tuple(int(r) for r in args.rates.split(","))
    if args.fsync:
        changes["fsync"] = args.fsync
    if args.transports:
        changes["transports"] = tuple(args.transports.split(","))
    if args.flood_rate:
        changes["flood_rate"] = args.flood_rate
    plan = replace(plan, **changes)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    if args.journal == "jetstream":
        from bench.replication import run_replication_bench

        # One offered rate unless --rates says otherwise: 50k/s, the figure the issue asks for.
        results = run_replication_bench(plan if args.rates else replace(plan, rates=(50_000,)), args.failovers, log)
    else:
        results = (run_flood_bench if args.flood else run_gateway_bench)(plan, log=log)
    print(json.dumps(results, indent=2))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
