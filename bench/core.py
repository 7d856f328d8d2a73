"""Measurements of the matching core: throughput, latency, LOBSTER replay, memory, baseline.

Each function times one thing; its inputs (the stream from ``bench.mix``, the
prepared per-command calls, the LOBSTER arrays) are built before the clock
starts. ``run_core`` runs them all and returns one flat dict, the JSON report.
bench/README.md says what each figure includes.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import median
from typing import Callable

import numpy as np
from hdrh.histogram import HdrHistogram

from bench.margin import margin_check_cost
from bench.mix import TICK, Mix, MixGenerator, MixSpec, build_engine, generate_mix
from engine.core.types import CommandKind, EventKind, OrderType, SelfTrade, Side, TimeInForce

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data" / "lobster"
VENDORED_DATA_DIR = REPO / "tests" / "data"
LOBSTER_STOCK = "AMZN"
LOBSTER_LEVELS = 5
PERCENTILES = (("p50", 50.0), ("p99", 99.0), ("p999", 99.9))
CURVE_PERCENTILES = (50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0)

_API_FIELDS = ["kind", "instrument", "account", "side", "order_type", "tif", "stp", "order_id",
               "client_order_id", "price", "qty"]


@dataclass(frozen=True)
class Plan:
    """How much of everything to run; ``Plan.quick()`` is the ``--quick`` size."""

    name: str = "full"
    mix: MixSpec = MixSpec()
    batch_chunk: int = 4096
    batch_reps: int = 7
    percommand_reps: int = 5
    latency_batch: int = 16
    single_latency_commands: int = 400_000
    baseline_commands: int = 20_000
    baseline_reps: int = 5
    lobster_reps: int = 3
    resting_orders: int = 1_000_000
    margin_rounds: int = 200

    @classmethod
    def quick(cls) -> Plan:
        """A run of well under 30 seconds: a shorter stream, fewer repetitions."""
        return cls(
            name="quick",
            mix=replace(MixSpec(), warmup_chunks=10, timed_chunks=60),
            batch_reps=3,
            percommand_reps=3,
            single_latency_commands=100_000,
            baseline_commands=4_000,
            baseline_reps=3,
            lobster_reps=1,
            margin_rounds=60,
        )


def load_engines() -> tuple[type | None, type | None]:
    """(MatchingEngine, ReferenceMatcher); None for a class that does not import."""
    try:
        from engine.core.matcher import MatchingEngine
    except ImportError:
        MatchingEngine = None
    try:
        from engine.reference import ReferenceMatcher
    except ImportError:
        ReferenceMatcher = None
    return MatchingEngine, ReferenceMatcher


# -- helpers --


def _chunks(commands: np.ndarray, size: int) -> list[np.ndarray]:
    return [commands[i : i + size] for i in range(0, len(commands), size)]


def ready_engine(engine_cls: type, mix: Mix, risk: bool = False):
    """A fresh engine (with ``risk``: funded accounts, see ``build_engine``) that
    has processed the untimed setup part of the stream."""
    engine = build_engine(engine_cls, mix.spec, risk)
    for chunk in _chunks(mix.setup, mix.spec.chunk):
        engine.process(chunk)
    return engine


class _Frozen:
    """Collect, then freeze every live object for a timed region, so the cyclic
    collector does not rescan the benchmark's own inputs (millions of prepared
    tuples). Garbage made inside the region is still collected as usual."""

    def __enter__(self):
        gc.collect()
        gc.freeze()

    def __exit__(self, *exc):
        gc.unfreeze()


def _histogram(values_ns: np.ndarray, count_each: int = 1) -> HdrHistogram:
    """An HDR histogram (1 ns .. 60 s, 3 significant digits) of ``values_ns``."""
    hist = HdrHistogram(1, 60 * 10**9, 3)
    values, counts = np.unique(np.maximum(values_ns, 1), return_counts=True)
    for value, count in zip(values.tolist(), counts.tolist()):
        hist.record_value(value, count * count_each)
    return hist


def _percentiles(hist: HdrHistogram, prefix: str) -> dict:
    out = {f"{prefix}_{name}_ns": hist.get_value_at_percentile(p) for name, p in PERCENTILES}
    out[f"{prefix}_max_ns"] = hist.get_max_value()
    out[f"{prefix}_mean_ns"] = round(hist.get_mean_value(), 1)
    out[f"{prefix}_curve"] = [[p, hist.get_value_at_percentile(p)] for p in CURVE_PERCENTILES]
    return out


def _api_arguments(commands: np.ndarray) -> tuple[list[int], list[tuple]]:
    """Kind and positional arguments of the per-command call for each command:
    what a gateway that decoded its messages into Python values would pass."""
    kinds, args = [], []
    for kind, inst, account, side, otype, tif, stp, oid, coid, price, qty in commands[_API_FIELDS].tolist():
        kinds.append(kind)
        if kind == CommandKind.NEW_ORDER:
            args.append((inst, account, side, qty, price, otype, tif, stp, coid))
        elif kind == CommandKind.CANCEL:
            args.append((account, oid, coid))
        elif kind == CommandKind.AMEND:
            args.append((account, oid, qty, price, coid))
        else:
            raise ValueError(f"no per-command call for command kind {kind}")
    return kinds, args


def _api_calls(engine, arguments: tuple[list[int], list[tuple]]) -> list[tuple[Callable, tuple]]:
    """(bound method of ``engine``, positional args) per command."""
    kinds, args = arguments
    bound = {CommandKind.NEW_ORDER: engine.new_order, CommandKind.CANCEL: engine.cancel,
             CommandKind.AMEND: engine.amend}
    return list(zip([bound[kind] for kind in kinds], args))


# -- throughput --


def replay_matches_generation(engine_cls: type, mix: Mix, chunk: int, risk: bool = False) -> bool:
    """Whether replaying the stream on a fresh engine (untimed) gives the generation
    run's events in the timed part, counted by kind, and (without risk, which
    adds balances to the state) its final ``state_hash()``."""
    engine = ready_engine(engine_cls, mix, risk)
    kinds = np.zeros_like(mix.tally.events)
    for batch in _chunks(mix.timed, chunk):
        kinds += np.bincount(engine.process(batch)["kind"], minlength=len(kinds))
    return bool((kinds == mix.tally.events).all()) and (risk or engine.state_hash() == mix.final_hash)


def _time_batches(engine_cls: type, mix: Mix, batches: list[np.ndarray], risk: bool) -> float:
    """Commands per second of one pass over the timed part on a fresh engine."""
    engine = ready_engine(engine_cls, mix, risk)
    process = engine.process
    with _Frozen():
        start = time.perf_counter_ns()
        for batch in batches:
            process(batch)
        elapsed = time.perf_counter_ns() - start
    return len(mix.timed) / elapsed * 1e9


def batch_throughput(engine_cls: type, mix: Mix, chunk: int, reps: int, with_risk: bool = False) -> dict:
    """Commands per second of ``process()`` on gateway batches of ``chunk`` commands.

    Each repetition replays the setup on a fresh engine, then times the whole
    loop over the timed part. With ``with_risk`` every repetition also runs the
    same stream with pre-trade risk (``batch_risk_*`` keys) right after the
    matching-only pass, so the two are measured under the same machine load;
    ``batch_risk_ratio`` is the median of the paired per-repetition ratios.
    """
    batches = _chunks(mix.timed, chunk)
    plain, risky = [], []
    for _ in range(reps):
        plain.append(_time_batches(engine_cls, mix, batches, False))
        if with_risk:
            risky.append(_time_batches(engine_cls, mix, batches, True))
    out = {
        "batch_cmds_per_s": median(plain),
        "batch_cmds_per_s_runs": [round(r) for r in plain],
        "batch_chunk": chunk,
        "batch_replay_reproduces_generation": replay_matches_generation(engine_cls, mix, chunk),
    }
    if with_risk:
        out.update({
            "batch_risk_cmds_per_s": median(risky),
            "batch_risk_cmds_per_s_runs": [round(r) for r in risky],
            "batch_risk_ratio": median(r / p for r, p in zip(risky, plain)),
            "batch_risk_replay_reproduces_generation": replay_matches_generation(engine_cls, mix, chunk, True),
        })
    return out


def percommand_throughput(engine_cls: type, mix: Mix, reps: int, submit_commands: int) -> dict:
    """Commands per second of ``new_order``/``cancel``/``amend`` called in a Python loop
    (each call returns its list of Event objects), and of ``submit(record)`` over
    the first ``submit_commands`` of the timed part."""
    rates = []
    arguments = _api_arguments(mix.timed)
    for _ in range(reps):
        engine = ready_engine(engine_cls, mix)
        calls = _api_calls(engine, arguments)
        with _Frozen():
            start = time.perf_counter_ns()
            for method, args in calls:
                method(*args)
            elapsed = time.perf_counter_ns() - start
        rates.append(len(calls) / elapsed * 1e9)
    engine = ready_engine(engine_cls, mix)
    records = list(mix.timed[:submit_commands])
    submit = engine.submit
    with _Frozen():
        start = time.perf_counter_ns()
        for record in records:
            submit(record)
        elapsed = time.perf_counter_ns() - start
    return {
        "percommand_cmds_per_s": median(rates),
        "percommand_cmds_per_s_runs": [round(r) for r in rates],
        "submit_cmds_per_s": len(records) / elapsed * 1e9,
    }


# -- latency --


def batch_latency(engine_cls: type, mix: Mix, batch: int) -> dict:
    """Per-command latency in batch mode: each ``process()`` call on ``batch``
    consecutive commands is timed alone, and its time divided by ``batch`` is
    recorded once per command of the batch.

    A figure is the mean over the commands of one small batch, including the
    call's fixed cost (argument checks, output array) spread over ``batch``
    commands and one ``perf_counter_ns`` pair.
    """
    engine = ready_engine(engine_cls, mix)
    process, clock = engine.process, time.perf_counter_ns
    batches = _chunks(mix.timed, batch)
    times = np.empty(len(batches), dtype=np.int64)
    with _Frozen():
        for i, commands in enumerate(batches):
            start = clock()
            process(commands)
            times[i] = clock() - start
    per_command = np.rint(times / batch).astype(np.int64)
    return {"latency_batch": batch, **_percentiles(_histogram(per_command, batch), "latency")}


def single_command_latency(engine_cls: type, mix: Mix, commands: int) -> dict:
    """Upper bounds on one command's latency, over the first ``commands`` of the timed part:
    ``process()`` of a 1-command array, and one per-command API call (Event objects
    included); plus the fixed cost of a ``process()`` call on an empty array."""
    clock = time.perf_counter_ns
    out = {}
    engine = ready_engine(engine_cls, mix)
    process = engine.process
    singles = _chunks(mix.timed[:commands], 1)
    times = np.empty(len(singles), dtype=np.int64)
    with _Frozen():
        for i, command in enumerate(singles):
            start = clock()
            process(command)
            times[i] = clock() - start
    out.update(_percentiles(_histogram(times), "latency_single"))

    engine = ready_engine(engine_cls, mix)
    calls = _api_calls(engine, _api_arguments(mix.timed[:commands]))
    times = np.empty(len(calls), dtype=np.int64)
    with _Frozen():
        for i, (method, args) in enumerate(calls):
            start = clock()
            method(*args)
            times[i] = clock() - start
    out.update(_percentiles(_histogram(times), "latency_api"))

    empty = mix.timed[:0]
    process = engine.process
    times = np.empty(10_000, dtype=np.int64)
    for i in range(len(times)):
        start = clock()
        process(empty)
        times[i] = clock() - start
    pairs = np.empty(10_000, dtype=np.int64)
    for i in range(len(pairs)):
        start = clock()
        pairs[i] = clock() - start
    out["process_call_overhead_ns"] = int(np.median(times))
    out["clock_pair_overhead_ns"] = int(np.median(pairs))
    return out


# -- baseline --


def baseline(reference_cls: type, mix: Mix, commands: int, reps: int) -> dict:
    """The reference matcher on the same stream: setup untimed, then ``reps``
    consecutive stretches of ``commands`` timed through ``process()`` in
    gateway batches, and one stretch through the per-command API."""
    engine = ready_engine(reference_cls, mix)
    rates = []
    for rep in range(reps):
        stretch = mix.timed[rep * commands : (rep + 1) * commands]
        batches = _chunks(stretch, mix.spec.chunk)
        with _Frozen():
            start = time.perf_counter_ns()
            for batch in batches:
                engine.process(batch)
            elapsed = time.perf_counter_ns() - start
        rates.append(len(stretch) / elapsed * 1e9)
    calls = _api_calls(engine, _api_arguments(mix.timed[reps * commands : (reps + 1) * commands]))
    with _Frozen():
        start = time.perf_counter_ns()
        for method, args in calls:
            method(*args)
        elapsed = time.perf_counter_ns() - start
    return {
        "baseline_cmds_per_s": median(rates),
        "baseline_cmds_per_s_runs": [round(r) for r in rates],
        "baseline_percommand_cmds_per_s": len(calls) / elapsed * 1e9,
        "baseline_commands": commands,
    }


# -- LOBSTER --


def lobster_files(data_dir: Path) -> tuple[Path, Path, str] | None:
    """(messages, orderbook, note) of the AMZN day in ``data_dir``, else the vendored slice, else None."""
    day = f"{LOBSTER_STOCK}_2012-06-21_34200000_57600000_{{}}_{LOBSTER_LEVELS}.csv.gz"
    messages, orderbook = data_dir / day.format("message"), data_dir / day.format("orderbook")
    if messages.exists() and orderbook.exists():
        return messages, orderbook, "full day"
    for messages in sorted(VENDORED_DATA_DIR.glob(f"{LOBSTER_STOCK}_*message_{LOBSTER_LEVELS}*")):
        orderbook = messages.with_name(messages.name.replace("message", "orderbook"))
        if orderbook.exists():
            return messages, orderbook, f"vendored slice ({data_dir} has no full day)"
    return None


def lobster_replay(engine_cls: type, data_dir: Path, reps: int) -> dict:
    """Messages per second of ``engine.tools.lobster.replay`` on the AMZN day (load untimed).

    The replay's own clock is used: it covers decoding the messages, running
    them through the engine in C (engine.core.depth.LobsterRun) and comparing
    the engine's top 5 levels with the file's row after each message.
    """
    from engine.tools.lobster import load_lobster, replay

    found = lobster_files(data_dir)
    if found is None:
        return {"lobster_source": f"none found in {data_dir} or {VENDORED_DATA_DIR}"}
    messages_path, orderbook_path, note = found
    messages, orderbook = load_lobster(messages_path, orderbook_path)
    results = []
    for _ in range(reps):
        with _Frozen():
            results.append(replay(messages, orderbook, LOBSTER_LEVELS, engine_factory=engine_cls))
    rates = [r.rows / r.seconds for r in results]
    return {
        "lobster_msgs_per_s": median(rates),
        "lobster_msgs_per_s_runs": [round(r) for r in rates],
        "lobster_rows": results[0].rows,
        "lobster_mismatches": results[0].mismatches,
        "lobster_source": f"{messages_path.name} ({note})",
    }


# -- memory --


def resting_book_commands(spec: MixSpec, orders: int) -> np.ndarray:
    """The mix's reference prices, then ``orders`` non-crossing GTC limits: spread
    evenly over the instruments, both sides, 200 price levels a side, the mix's accounts."""
    generator = MixGenerator(spec)
    head = generator.reference_commands()
    cmds = np.zeros(orders, dtype=head.dtype)
    i = np.arange(orders)
    instrument = i % spec.instruments
    side = np.where((i // spec.instruments) % 2 == 0, Side.BUY, Side.SELL)
    away = 1 + (i // (2 * spec.instruments)) % 200
    base = generator.base_ticks
    cmds["seq"] = len(head) + 1 + i
    cmds["kind"] = CommandKind.NEW_ORDER
    cmds["instrument"] = instrument
    cmds["account"] = i % spec.accounts
    cmds["side"] = side
    cmds["order_type"] = OrderType.LIMIT
    cmds["tif"] = TimeInForce.GTC
    cmds["stp"] = SelfTrade.CANCEL_NEWEST
    cmds["price"] = np.where(side == Side.BUY, base[instrument] - away, base[instrument] + away) * TICK
    cmds["qty"] = 100
    cmds["client_order_id"] = i + 1
    return np.concatenate([head, cmds])


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def probe_memory(engine_cls: type, spec: MixSpec, orders: int, trace: bool) -> dict:
    """Memory of ``orders`` resting orders, measured in this (fresh) process.

    The commands are built first; the RSS baseline is taken after building
    an empty engine (and once before it). With ``trace``, tracemalloc runs
    (it sees allocations through PyMem/PyObject, including PyMem_Raw*, not
    plain malloc).
    """
    commands = resting_book_commands(spec, orders)
    gc.collect()
    if trace:
        tracemalloc.start()
    rss_start = _rss_bytes()
    engine = build_engine(engine_cls, spec)
    gc.collect()
    rss_empty = _rss_bytes()
    traced_empty = tracemalloc.get_traced_memory()[0] if trace else 0
    has_memory_bytes = hasattr(engine, "memory_bytes")
    reported_empty = engine.memory_bytes() if has_memory_bytes else 0
    accepted = 0
    for chunk in _chunks(commands, 4096):
        events = engine.process(chunk)
        accepted += int(np.count_nonzero(events["kind"] == EventKind.ACCEPTED))
        del events
    gc.collect()
    out = {"orders_accepted": accepted, "rss_growth": _rss_bytes() - rss_empty,
           "rss_with_construction": _rss_bytes() - rss_start}
    if trace:
        out["traced_growth"] = tracemalloc.get_traced_memory()[0] - traced_empty
        tracemalloc.stop()
    if has_memory_bytes:
        out["memory_bytes"] = engine.memory_bytes()
        out["memory_bytes_growth"] = engine.memory_bytes() - reported_empty
    if not trace and hasattr(engine, "snapshot"):
        # What a periodic snapshot costs the gateway loop, and a restart's restore.
        started = time.perf_counter()
        data = engine.snapshot()
        out["snapshot_s"] = time.perf_counter() - started
        started = time.perf_counter()
        type(engine).from_snapshot(data)
        out["restore_s"] = time.perf_counter() - started
        out["snapshot_bytes"] = len(data)
    return out


def memory_per_order(engine_name: str, orders: int) -> dict:
    """Bytes per resting order, each way of measuring in its own fresh interpreter."""
    out: dict = {"resting_orders": orders}
    for trace in (False, True):
        argv = [sys.executable, "-m", "bench", "memory-probe", "--engine", engine_name, "--orders", str(orders)]
        argv += ["--trace"] if trace else []
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True)
        probe = json.loads(done.stdout)
        if probe["orders_accepted"] != orders:
            out["memory_note"] = f"only {probe['orders_accepted']} of {orders} orders rested"
        if trace:
            out["bytes_per_resting_order_tracemalloc"] = probe["traced_growth"] / orders
        else:
            out["bytes_per_resting_order"] = probe["rss_growth"] / orders
            out["bytes_per_resting_order_rss_incl_construction"] = probe["rss_with_construction"] / orders
            if "memory_bytes" in probe:
                out["bytes_per_resting_order_memory_bytes"] = probe["memory_bytes_growth"] / orders
                out["memory_bytes_total"] = probe["memory_bytes"]
            for name in ("snapshot_s", "restore_s", "snapshot_bytes"):
                if name in probe:
                    out[f"resting_book_{name}"] = probe[name]
    return out


# -- everything --


class OtherLoad:
    """CPUs kept busy by other processes since creation: the machine's busy
    time (/proc/stat) less this process's and its children's CPU time."""

    def __init__(self) -> None:
        self.start = (time.monotonic(), self._machine_busy(), self._own())

    @staticmethod
    def _machine_busy() -> float:
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:]]
        idle = ticks[3] + ticks[4]  # idle, iowait
        return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _own() -> float:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system

    def load(self) -> float:
        """Average number of CPUs other processes used."""
        wall, busy, own = self.start
        elapsed = time.monotonic() - wall
        return max(0.0, (self._machine_busy() - busy) - (self._own() - own)) / elapsed if elapsed > 0 else 0.0



def machine() -> dict:
    """Where and what was measured."""
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "none"
    return {
        "machine_cpu": cpu,
        "machine_cpus": os.cpu_count(),
        "machine_python": platform.python_version(),
        "machine_numpy": np.__version__,
        "machine_platform": platform.platform(),
        "commit": commit,
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_core(plan: Plan, data_dir: Path, engine_name: str = "core", log: Callable[[str], None] = print) -> dict:
    """Run every measurement of ``python -m bench core``; return the flat report."""
    core_cls, reference_cls = load_engines()
    engine_cls = core_cls if engine_name == "core" else reference_cls
    if engine_cls is None:
        raise SystemExit(f"bench: the {engine_name} engine does not import; build it first "
                         "(.venv/bin/pip install -q --no-build-isolation -e .)")
    results: dict = {"engine": engine_cls.__module__ + "." + engine_cls.__qualname__, "run": plan.name}
    results.update(machine())

    others = OtherLoad()
    started = time.perf_counter()
    log(f"generating the mix through {engine_cls.__name__} ...")
    mix = generate_mix(engine_cls, plan.mix)
    results["mix_generation_s"] = round(time.perf_counter() - started, 2)
    results["mix_timed_commands"] = len(mix.timed)
    results["mix_setup_commands"] = len(mix.setup)
    results.update({f"mix_{k}": v for k, v in mix.tally.as_dict().items()})

    steps = [
        ("batch throughput", lambda: batch_throughput(engine_cls, mix, plan.batch_chunk, plan.batch_reps,
                                                      with_risk=hasattr(engine_cls, "open_account"))),
        ("per-command throughput", lambda: percommand_throughput(engine_cls, mix, plan.percommand_reps,
                                                                plan.single_latency_commands)),
        ("batch latency", lambda: batch_latency(engine_cls, mix, plan.latency_batch)),
        ("single-command latency", lambda: single_command_latency(engine_cls, mix, plan.single_latency_commands)),
        ("margin check", lambda: margin_check_cost(engine_cls, rounds=plan.margin_rounds, reps=plan.batch_reps)),
        ("LOBSTER replay", lambda: lobster_replay(engine_cls, data_dir, plan.lobster_reps)),
        ("memory", lambda: memory_per_order(engine_name, plan.resting_orders)),
    ]
    if reference_cls is not None:
        steps.append(("reference baseline",
                      lambda: baseline(reference_cls, mix, plan.baseline_commands, plan.baseline_reps)))
    for name, step in steps:
        log(f"{name} ...")
        step_started = time.perf_counter()
        results.update(step())
        results[f"seconds_{name.replace(' ', '_').replace('-', '_').lower()}"] = round(
            time.perf_counter() - step_started, 2)
    if "baseline_cmds_per_s" in results:
        results["ratio"] = results["batch_cmds_per_s"] / results["baseline_cmds_per_s"]
        results["ratio_percommand"] = results["percommand_cmds_per_s"] / results["baseline_percommand_cmds_per_s"]
    results["seconds_total"] = round(time.perf_counter() - started, 2)
    results["machine_other_cpu_load"] = round(others.load(), 2)
    return results
