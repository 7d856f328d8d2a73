"""``python -m bench ab OLD_DIR NEW_DIR [--rounds N] [--json PATH]``: two builds side by side.

Each round runs ``python -m bench core --quick`` and ``python -m bench gateway --quick``
once per build, in a subprocess whose working directory is that build's tree (so the
tree's own packages and compiled extensions are imported), with this interpreter. The
builds alternate, and each round swaps which goes first, so drift in the machine's load
falls on both. The table gives each figure's median over the rounds per build and the
new/old ratio; a figure a build's JSON lacks is "n/a".
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUITE_ARGS = {"core": ("core", "--quick"), "gateway": ("gateway", "--quick")}
"""The ``python -m bench`` command line of each suite (``--json`` is added)."""

STDERR_TAIL_LINES = 20


@dataclass(frozen=True)
class Figure:
    """One row of the comparison: ``key`` of the ``suite``'s JSON; an ``optional`` row
    is left out when no run of either build has it."""

    label: str
    suite: str
    key: str
    optional: bool = False


FIGURES = (
    Figure("core batch cmds/s", "core", "batch_cmds_per_s"),
    Figure("per-command cmds/s", "core", "percommand_cmds_per_s"),
    Figure("risk-on ratio", "core", "batch_risk_ratio"),
    Figure("margin-check ratio", "core", "margin_ratio"),
    Figure("LOBSTER msgs/s", "core", "lobster_msgs_per_s", optional=True),
    Figure("gateway orders/s (tcp)", "gateway", "tcp_orders_per_s"),
    Figure("gateway orders/s (ipc)", "gateway", "ipc_orders_per_s", optional=True),
)

Runs = dict[str, list[dict]]
"""Suite name -> the JSON objects of that suite's runs for one build."""


@dataclass(frozen=True)
class Row:
    """A figure's medians for the old and the new build (None: no run has it)."""

    label: str
    old: float | None
    new: float | None

    @property
    def ratio(self) -> float | None:
        """new / old, or None when either is missing or old is 0."""
        if self.old is None or self.new is None or self.old == 0:
            return None
        return self.new / self.old


class ABError(RuntimeError):
    """A benchmark subprocess failed or wrote no usable JSON."""


def median_of(runs: list[dict], key: str) -> float | None:
    """The median of ``key`` over the runs that have it as a number; None if none has."""
    values = [run[key] for run in runs if type(run.get(key)) in (int, float)]
    return statistics.median(values) if values else None


def compare(old: Runs, new: Runs) -> list[Row]:
    """One row per figure of ``FIGURES`` (optional ones only where some run has them)."""
    rows = []
    for figure in FIGURES:
        row = Row(figure.label, median_of(old.get(figure.suite, []), figure.key),
                  median_of(new.get(figure.suite, []), figure.key))
        if figure.optional and row.old is None and row.new is None:
            continue
        rows.append(row)
    return rows


def _text(value: float | None) -> str:
    """A figure for the table: ratios with two decimals, rates as whole numbers."""
    if value is None:
        return "n/a"
    return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"


def format_table(rows: list[Row], old_name: str = "old", new_name: str = "new") -> str:
    """The rows as an aligned text table: figure, old median, new median, new/old."""
    lines = [("figure", f"{old_name} (median)", f"{new_name} (median)", "new/old")]
    lines += [(row.label, _text(row.old), _text(row.new), _text(row.ratio)) for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return "\n".join(
        "  ".join([line[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(line[1:], widths[1:])])
        for line in lines
    )


def _environment() -> dict[str, str]:
    """This process's environment without PYTHONPATH, so the tree in cwd is what imports."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def check_tree(tree: Path) -> None:
    """ABError unless ``engine`` and ``bench`` import from ``tree`` when run there."""
    probe = ("import bench, engine, engine.core.matcher as m; "
             "print(bench.__file__, engine.__file__, m.__file__, sep='\\n')")
    done = subprocess.run([sys.executable, "-c", probe], cwd=tree, env=_environment(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise ABError(f"{tree}: the engine does not import (build it first):\n{_tail(done.stderr)}")
    outside = [path for path in done.stdout.splitlines() if not Path(path).resolve().is_relative_to(tree.resolve())]
    if outside:
        raise ABError(f"{tree}: run there, python imports {', '.join(outside)} from elsewhere")


def run_suite(tree: Path, suite: str, scratch: Path) -> dict:
    """Run one suite in ``tree``; its JSON results. ABError, with the stderr tail, if it fails."""
    json_path = scratch / f"{suite}.json"
    json_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "bench", *SUITE_ARGS[suite], "--json", str(json_path)]
    if suite == "core":
        command += ["--svg", str(scratch / "core.svg")]  # not into the tree
    done = subprocess.run(command, cwd=tree, env=_environment(), capture_output=True, text=True)
    shown = " ".join(["python", *command[1:]])
    if done.returncode != 0:
        raise ABError(f"{tree}: `{shown}` failed with exit code {done.returncode}; stderr ends:\n"
                      f"{_tail(done.stderr)}")
    try:
        return json.loads(json_path.read_text())
    except (OSError, ValueError) as err:
        raise ABError(f"{tree}: `{shown}` wrote no readable JSON ({err}); stderr ends:\n"
                      f"{_tail(done.stderr)}") from err


def _tail(text: str) -> str:
    return "\n".join(text.rstrip().splitlines()[-STDERR_TAIL_LINES:]) or "(empty)"


def run_ab(old_tree: Path, new_tree: Path, rounds: int, log=print) -> tuple[Runs, Runs]:
    """Every suite once per build per round, alternating builds; (old runs, new runs)."""
    runs: dict[str, Runs] = {"old": {suite: [] for suite in SUITE_ARGS}, "new": {suite: [] for suite in SUITE_ARGS}}
    trees = {"old": old_tree, "new": new_tree}
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        scratch = Path(tmp)
        for round_number in range(rounds):
            order = ("old", "new") if round_number % 2 == 0 else ("new", "old")
            for suite in SUITE_ARGS:
                for build in order:
                    log(f"round {round_number + 1}/{rounds}: {suite} on {build} ({trees[build]}) ...")
                    runs[build][suite].append(run_suite(trees[build], suite, scratch))
    return runs["old"], runs["new"]


def main(argv: list[str] | None = None) -> int:
    """Command line of the A/B driver."""
    parser = argparse.ArgumentParser(prog="python -m bench ab", description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path, help="tree of the old build (built in place)")
    parser.add_argument("new", type=Path, help="tree of the new build (built in place)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--json", type=Path, help="write every run and the medians to this file")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        for tree in (args.old, args.new):
            check_tree(tree)
        old, new = run_ab(args.old, args.new, args.rounds, log)
    except ABError as err:
        print(f"bench ab: {err}", file=sys.stderr)
        return 1
    rows = compare(old, new)
    print(f"old: {args.old}\nnew: {args.new}\nrounds: {args.rounds}\n")
    print(format_table(rows))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {"old": str(args.old), "new": str(args.new), "rounds": args.rounds,
                  "medians": [{"figure": r.label, "old": r.old, "new": r.new, "new_over_old": r.ratio} for r in rows],
                  "runs": {"old": old, "new": new}}
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
