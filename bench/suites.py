"""``python -m bench all [--quick | --tiny] [--suites LIST] [--out DIR]``: every suite in one report.

Runs the core, options, gateway and settlement suites (each through its own
module's ``run`` function, at the size of the chosen mode) in one process and
writes ``results.json`` and the PNG figures (bench/plots.py) into
``bench-results/<UTC date>/`` or ``--out``. The JSON holds the machine facts,
the command, the mode, and each suite's flat results object unchanged under
``suites``; bench/README.md ("python -m bench all") describes it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

SCHEMA = 1
SUITE_NAMES = ("core", "options", "gateway", "settlement")
DEFAULT_OUT = Path("bench-results")


def _core(mode: str, data_dir: Path, log) -> dict:
    from bench.core import Plan, run_core
    from bench.mix import MixSpec

    if mode == "tiny":
        plan = Plan(name="tiny", mix=replace(MixSpec(), accounts=500, chunk=1024, seed_chunks=2, warmup_chunks=2,
                                             timed_chunks=4, target_resting=2_000),
                    batch_chunk=1024, batch_reps=1, percommand_reps=1, single_latency_commands=2_000,
                    baseline_commands=1_000, baseline_reps=1, lobster_reps=1, resting_orders=10_000, margin_rounds=5)
    else:
        plan = Plan.quick() if mode == "quick" else Plan()
    return run_core(plan, data_dir, log=log)


def _options(mode: str, data_dir: Path, log) -> dict:
    from bench.options import Sizes, run

    return run(Sizes(quick=mode == "quick", tiny=mode == "tiny"), log=log)


def _gateway(mode: str, data_dir: Path, log) -> dict:
    from bench.gateway import Plan, run_gateway_bench

    if mode == "full":
        plan = Plan()
    else:
        # The round trip without fsync is the durability baseline of the latency figure: measured in every mode.
        plan = replace(Plan.quick(), nofsync_rtt=True)
        if mode == "tiny":
            plan = replace(plan, rates=(2_000,), transports=("tcp",), warmup=0.2, duration=0.5, rtt_duration=0.5,
                           window=8, batch=20)
    return run_gateway_bench(plan, log=log)


def _settlement(mode: str, data_dir: Path, log) -> dict:
    from bench.settlement import run

    # A one-fill batch is the per-trade baseline of gas per fill.
    if mode == "tiny":
        return run(True, log, fills=10_000, sizes=[1, 100, 1_000], account_counts=[10])
    return run(mode == "quick", log, sizes=[1, 100, 1_000] if mode == "quick" else [1, 100, 1_000, 10_000])


RUNNERS = {"core": _core, "options": _options, "gateway": _gateway, "settlement": _settlement}


def command_line(mode: str, suites: tuple[str, ...]) -> str:
    """The command that reproduces a run (without ``--out``)."""
    words = ["python -m bench all"] + ([f"--{mode}"] if mode != "full" else [])
    if suites != SUITE_NAMES:
        words.append("--suites " + ",".join(suites))
    return " ".join(words)


def run_all(mode: str, suites: tuple[str, ...], data_dir: Path, log) -> dict:
    """Every chosen suite at the mode's size; the results object of results.json."""
    from bench.core import OtherLoad, machine

    facts = machine()
    others = OtherLoad()
    results: dict = {
        "schema": SCHEMA,
        "command": command_line(mode, suites),
        "mode": mode,
        "machine": {"cpu": facts["machine_cpu"], "cpus": facts["machine_cpus"], "python": facts["machine_python"],
                    "numpy": facts["machine_numpy"], "platform": facts["machine_platform"],
                    "commit": facts["commit"], "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "seconds": {},
        "suites": {},
    }
    for name in suites:
        log(f"== {name} ({mode})")
        started = time.perf_counter()
        results["suites"][name] = RUNNERS[name](mode, data_dir, log)
        results["seconds"][name] = round(time.perf_counter() - started, 1)
    results["machine"]["other_cpu_load"] = round(others.load(), 2)
    return results


def parse_suites(text: str) -> tuple[str, ...]:
    """``core,options`` -> the suites in their canonical order; an unknown name is an error."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = sorted(set(names) - set(SUITE_NAMES))
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown suite {', '.join(unknown) or '(none given)'}: choose from {', '.join(SUITE_NAMES)}")
    return tuple(name for name in SUITE_NAMES if name in names)


def main(argv: list[str]) -> int:
    """``python -m bench all``."""
    from bench.core import DEFAULT_DATA_DIR
    from bench.plots import write_plots

    parser = argparse.ArgumentParser(prog="python -m bench all", description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats: a few minutes on 2 cores")
    size.add_argument("--tiny", action="store_true", help="(tests) the smallest sizes; figures mean nothing")
    parser.add_argument("--suites", type=parse_suites, default=SUITE_NAMES,
                        help=f"comma-separated subset of {','.join(SUITE_NAMES)} (default all)")
    parser.add_argument("--out", type=Path,
                        help=f"directory for results.json and the PNGs (default {DEFAULT_OUT}/<UTC date>)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"the LOBSTER AMZN day for the core suite (default {DEFAULT_DATA_DIR})")
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "tiny" if args.tiny else "full"
    out = args.out or DEFAULT_OUT / time.strftime("%Y-%m-%d", time.gmtime())
    if out.exists() and not out.is_dir():
        parser.error(f"--out {out} is a file, not a directory")
    results = run_all(mode, args.suites, args.data_dir, log=lambda line: print(line, file=sys.stderr, flush=True))
    out.mkdir(parents=True, exist_ok=True)
    results["figures"] = write_plots(results, out)
    path = out / "results.json"
    path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path} and {', '.join(results['figures'].values())} in {out}")
    return 0
