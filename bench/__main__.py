"""``python -m bench core [--json PATH] [--svg PATH] [--quick] [--data-dir DIR]``,
``python -m bench settlement ...``, ``python -m bench gateway ...``, ``python -m bench options ...``,
``python -m bench ab OLD_DIR NEW_DIR ...`` (two builds compared, bench/ab.py),
``python -m bench all [--quick] [--out DIR]`` (every suite, JSON and PNGs, bench/suites.py),
``python -m bench readme --results PATH`` (the README's performance block, bench/readme.py).

Runs every matching-core measurement (see bench/README.md) and prints a table.
``memory-probe`` is the helper that ``core`` starts in a fresh interpreter for
each memory measurement; it prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from bench.core import DEFAULT_DATA_DIR, Plan, load_engines, probe_memory, run_core
from bench.mix import MixSpec
from bench.report import table, write_json, write_svg

DEFAULT_SVG = Path(__file__).resolve().parent / "results" / "core.svg"


# Suites with their own command line: `python -m bench NAME ...` runs NAME's main(argv).
SUITES = {"settlement": "bench.settlement", "gateway": "bench.gateway", "ab": "bench.ab", "options": "bench.options",
          "all": "bench.suites", "readme": "bench.readme"}


def main(argv: list[str]) -> int:
    """Parse the command line and run the chosen benchmark."""
    if argv and argv[0] in SUITES:
        return __import__(SUITES[argv[0]], fromlist=["main"]).main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmarks of the venue.")
    commands = parser.add_subparsers(dest="command", required=True)

    core = commands.add_parser("core", help="matching core: throughput, latency, LOBSTER replay, memory, baseline")
    core.add_argument("--json", type=Path, help="write the flat results object to this file")
    core.add_argument("--svg", type=Path, default=DEFAULT_SVG, help=f"chart file (default {DEFAULT_SVG})")
    core.add_argument("--quick", action="store_true", help="a short run (under 30 s)")
    core.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                      help=f"directory with the LOBSTER AMZN day (default {DEFAULT_DATA_DIR})")
    core.add_argument("--engine", choices=("core", "reference"), default="core",
                      help="engine to measure (reference: to try the harness without the Cython core)")
    core.add_argument("--seed", type=int, default=MixSpec.seed, help="seed of the synthetic mix")

    probe = commands.add_parser("memory-probe", help="(internal) memory of N resting orders in this process")
    probe.add_argument("--engine", choices=("core", "reference"), default="core")
    probe.add_argument("--orders", type=int, required=True)
    probe.add_argument("--trace", action="store_true", help="measure with tracemalloc")

    args = parser.parse_args(argv)
    if args.command == "memory-probe":
        core_cls, reference_cls = load_engines()
        engine_cls = core_cls if args.engine == "core" else reference_cls
        print(json.dumps(probe_memory(engine_cls, MixSpec(), args.orders, args.trace)))
        return 0

    plan = Plan.quick() if args.quick else Plan()
    plan = replace(plan, mix=replace(plan.mix, seed=args.seed))
    results = run_core(plan, args.data_dir, args.engine, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table(results))
    if args.json is not None:
        write_json(results, args.json)
        print(f"wrote {args.json}")
    write_svg(results, args.svg)
    print(f"wrote {args.svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
