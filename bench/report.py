"""Presenting a ``python -m bench core`` run: the table, the JSON file, an SVG chart.

PNG output would need an imaging library (matplotlib is not a dependency), so
the chart is SVG: plain text, viewable in any browser and on GitHub.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from bench.mix import SHAPE_NAMES


@dataclass(frozen=True)
class Target:
    """A figure the core must reach: ``key`` at least (or at most) ``value``."""

    key: str
    label: str
    value: float
    at_least: bool
    unit: str

    def met(self, figure: float) -> bool:
        return figure >= self.value if self.at_least else figure <= self.value

    def headroom(self, figure: float) -> float:
        """How many times better than the target (>= 1 when met)."""
        if figure <= 0:
            return 0.0
        return figure / self.value if self.at_least else self.value / figure

    def text(self) -> str:
        return f"{'>=' if self.at_least else '<='} {_number(self.value)} {self.unit}"


TARGETS = (
    Target("batch_cmds_per_s", "batch throughput", 5_000_000, True, "cmd/s"),
    Target("percommand_cmds_per_s", "per-command API throughput", 1_000_000, True, "cmd/s"),
    Target("latency_p99_ns", "batch latency p99", 1_000, False, "ns/cmd"),
    Target("ratio", "batch vs reference", 100, True, "x"),
    Target("batch_risk_ratio", "risk-on vs matching-only", 0.75, True, "x"),
    Target("bytes_per_resting_order", "memory per resting order", 128, False, "B"),
)


def _number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and abs(value) < 10:
        return f"{value:,.2f}"
    if isinstance(value, float) and abs(value) < 1000:
        return f"{value:,.1f}"
    return f"{round(value):,}"


def _verdict(results: dict, key: str) -> tuple[str, str]:
    target = next((t for t in TARGETS if t.key == key), None)
    if target is None or key not in results:
        return "", ""
    return target.text(), "ok" if target.met(results[key]) else "MISSED"


def table(results: dict) -> str:
    """The human-readable report."""
    r = results
    lines = [
        f"matching core benchmark: {r['engine']} ({r['run']} run, commit {r['commit']})",
        f"machine: {r['machine_cpu']}, {r['machine_cpus']} CPUs, Python {r['machine_python']}, "
        f"numpy {r['machine_numpy']}; medians of repeated runs",
        f"other processes kept {r['machine_other_cpu_load']:.2f} of {r['machine_cpus']} CPUs busy during the run"
        + (" (figures disturbed: rerun on a quiet machine)" if r["machine_other_cpu_load"] > 0.2 else ""),
        "",
    ]
    rows: list[tuple[str, str, str, str, str]] = []

    def row(label: str, key: str, unit: str, note: str = "") -> None:
        target, verdict = _verdict(r, key)
        rows.append((label, f"{_number(r.get(key))} {unit}" if key in r else "not measured", target, verdict, note))

    def runs(key: str) -> str:
        return "runs " + ", ".join(_number(v) for v in r[key]) if key in r else ""

    row(f"batch process(), {r['batch_chunk']} cmds/call", "batch_cmds_per_s", "cmd/s", runs("batch_cmds_per_s_runs"))
    if "batch_risk_cmds_per_s" in r:
        row("  the same with pre-trade risk and fees", "batch_risk_cmds_per_s", "cmd/s",
            runs("batch_risk_cmds_per_s_runs"))
        row("  risk-on / matching-only (paired runs)", "batch_risk_ratio", "x")
    if "margin_plain_cmds_per_s" in r:
        row("spot orders + cancels, risk on (bench/margin.py)", "margin_plain_cmds_per_s", "cmd/s",
            runs("margin_plain_cmds_per_s_runs"))
        row("  the same, every account margined (options)", "margin_checked_cmds_per_s", "cmd/s",
            runs("margin_checked_cmds_per_s_runs"))
        row("  margined / not margined (paired runs)", "margin_ratio", "x")
    row("per-command API (new_order/cancel/amend)", "percommand_cmds_per_s", "cmd/s",
        runs("percommand_cmds_per_s_runs"))
    row("submit(record) per command", "submit_cmds_per_s", "cmd/s")
    for name in ("p50", "p99", "p999", "max"):
        row(f"batch latency {name}, {r.get('latency_batch')} cmds/call", f"latency_{name}_ns", "ns/cmd")
    row("process() call on an empty array", "process_call_overhead_ns", "ns")
    row("LOBSTER replay (AMZN, 5 levels)", "lobster_msgs_per_s", "msg/s",
        f"{_number(r.get('lobster_mismatches'))} mismatching rows of {_number(r.get('lobster_rows'))}")
    row(f"memory, {_number(r.get('resting_orders'))} resting orders: RSS growth", "bytes_per_resting_order", "B/order")
    row("  RSS growth incl. engine construction", "bytes_per_resting_order_rss_incl_construction", "B/order")
    row("  tracemalloc growth", "bytes_per_resting_order_tracemalloc", "B/order")
    if "bytes_per_resting_order_memory_bytes" in r:
        row("  engine.memory_bytes() growth", "bytes_per_resting_order_memory_bytes", "B/order")
    row("  snapshot() of that book", "resting_book_snapshot_s", "s")
    row("  from_snapshot() of it", "resting_book_restore_s", "s")
    row("reference matcher, batch process()", "baseline_cmds_per_s", "cmd/s", runs("baseline_cmds_per_s_runs"))
    row("reference matcher, per-command API", "baseline_percommand_cmds_per_s", "cmd/s")
    row("core batch / reference batch", "ratio", "x")
    row("core per-command / reference per-command", "ratio_percommand", "x")

    widths = [max(len(x[i]) for x in rows) for i in range(4)]
    header = ("figure", "value", "target", "")
    for cells in [header] + rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells[:4], widths)) + ("  " + cells[4] if cells[4:] and cells[4] else ""))
    for key in ("batch_replay_reproduces_generation", "batch_risk_replay_reproduces_generation"):
        if not r.get(key, True):
            lines.append(f"WARNING: {key} is false: the timed replay did not produce the generation run's events")
    if "memory_note" in r:
        lines.append(f"WARNING: {r['memory_note']}")
    lines.append("")
    for prefix, what in (("latency_single", "process() of a 1-command array"),
                         ("latency_api", "one per-command API call")):
        if f"{prefix}_p50_ns" in r:
            figures = " / ".join(_number(r[f"{prefix}_{n}_ns"]) for n in ("p50", "p99", "p999", "max"))
            lines.append(f"upper bound per command, {what}: p50 / p99 / p99.9 / max = {figures} ns")
    lines += ["", *mix_summary(r), "", f"LOBSTER data: {r.get('lobster_source', '-')}",
              f"total {r['seconds_total']} s"]
    return "\n".join(lines)


def mix_summary(r: dict) -> list[str]:
    """The command mix and the events it produced, per command of the timed part."""
    n = r["mix_commands"]

    def counts(prefix: str, per_command: bool = False) -> str:
        found = [(key[len(prefix):], r[key]) for key in r if key.startswith(prefix)]
        return ", ".join(f"{name} {count / n:.3f}" if per_command else f"{name} {count:,} ({count / n:.3%})"
                         for name, count in found) or "none"

    shapes = ", ".join(f"{name} {r['mix_cmd_' + name.replace(' ', '_')] / n:.1%}" for name in SHAPE_NAMES)
    return [
        f"mix (timed part): {n:,} commands after {r['mix_setup_commands']:,} untimed; "
        f"book {r['mix_resting_before']:,} -> {r['mix_resting_after']:,} resting orders",
        f"  commands: {shapes}",
        f"  events per command: {counts('mix_event_', per_command=True)}",
        f"  cancelled (count, share of commands): {counts('mix_cancelled_')}",
        f"  rejected (count, share of commands): {counts('mix_rejected_')}",
        f"  filled quantity per fill: {r['mix_filled_qty'] / max(r.get('mix_event_FILL', 0), 1):,.0f}",
    ]


def write_json(results: dict, path: Path) -> None:
    """The flat report as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


def write_svg(results: dict, path: Path) -> None:
    """Two panels: each targeted figure as a multiple of its target (log scale), and
    the latency percentile curves (log scale)."""
    width, height = 900, 640
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           'font-family="sans-serif" font-size="13">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="20" y="28" font-size="16">{escape(results["engine"])}: figure / target '
           f'(right of the line = target met)</text>']
    # Panel 1: headroom bars, log10 from 0.01x to 100x, 1x in the middle.
    left, right, top = 360, 860, 50

    def x_of(ratio: float) -> float:
        return left + (right - left) * (math.log10(min(max(ratio, 0.01), 100)) + 2) / 4

    for i, target in enumerate(TARGETS):
        y = top + 12 + i * 34
        figure = results.get(target.key)
        out.append(f'<text x="20" y="{y + 15}">{escape(target.label)} ({escape(target.text())})</text>')
        if figure is None:
            continue
        ratio = target.headroom(figure)
        x0, x1 = sorted((x_of(1), x_of(ratio)))
        colour = "#2a9d4b" if target.met(figure) else "#d1495b"
        out.append(f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 1):.1f}" height="22" fill="{colour}"/>')
        out.append(f'<text x="{x1 + 4 if ratio >= 1 else x0 - 4:.1f}" y="{y + 15}" '
                   f'text-anchor="{"start" if ratio >= 1 else "end"}">{ratio:.2f}x</text>')
    bottom = top + 12 + len(TARGETS) * 34
    for tick in (0.01, 0.1, 1, 10, 100):
        x = x_of(tick)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#888" '
                   f'stroke-dasharray="{"" if tick == 1 else "3,3"}"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{tick:g}x</text>')
    # Panel 2: latency percentiles, y log10 ns from 10 ns to 10 ms.
    left, right, top, bottom = 90, 860, 290, 590
    out.append(f'<text x="20" y="{top - 14}" font-size="16">latency per command (ns, log scale) by percentile</text>')
    curves = [(f"batch process(), {results.get('latency_batch')} cmds/call (mean per cmd)", "latency_curve", "#1d3557"),
              ("process() of 1 cmd", "latency_single_curve", "#e76f51"),
              ("per-command API call", "latency_api_curve", "#2a9d8f")]
    points = [p for _, key, _ in curves for p, _ in results.get(key, [])]
    labels = sorted(set(points))
    if labels:
        x_at = {p: left + (right - left) * i / max(len(labels) - 1, 1) for i, p in enumerate(labels)}

        def y_of(ns: float) -> float:
            return bottom - (bottom - top) * (math.log10(min(max(ns, 10), 10**7)) - 1) / 6

        for decade in range(1, 8):
            y = y_of(10**decade)
            out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#ddd"/>')
            out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{10**decade:,}</text>')
        for p, x in x_at.items():
            out.append(f'<text x="{x:.1f}" y="{bottom + 18}" text-anchor="middle">p{p:g}</text>')
        for i, (name, key, colour) in enumerate(curves):
            curve = results.get(key)
            if not curve:
                continue
            line = " ".join(f"{x_at[p]:.1f},{y_of(ns):.1f}" for p, ns in curve)
            out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2"/>')
            out.append(f'<text x="{left + 10}" y="{top + 16 + i * 18}" fill="{colour}">{escape(name)}</text>')
    out.append("</svg>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
