"""The PNG figures of a ``python -m bench all`` results object (matplotlib, Agg backend).

Three figures, each measured value drawn beside its baseline from the same run
(bench/baselines.py chooses the pairs) and titled with the command that made
it: throughput, latency percentiles, gas per settled fill against batch size.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from PIL import Image  # a dependency of matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen before pyplot loads)

from bench.baselines import Pair, gas_grid, gateway_rates, throughput_pairs  # noqa: E402

DPI = 72
FIGURE = "#1d3557"
BASELINE = "#a8b8c8"
FILES = {"throughput": "throughput.png", "latency": "latency.png", "gas": "gas_per_fill.png"}


def _caption(fig, results: dict, what: str) -> None:
    m = results["machine"]
    fig.suptitle(f"{what}\n{results['command']}  (commit {m['commit']}, {m['date'][:10]}, {m['cpus']} CPUs "
                 f"of which others kept {m.get('other_cpu_load', 0):.2f} busy)", fontsize=9)


def _save(fig, path: Path) -> None:
    """Write ``fig`` as a PNG of at most 64 colours: a third of the bytes of the RGBA file, and the
    figures are flat colours and thin lines."""
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, format="png")
    plt.close(fig)
    buffer.seek(0)
    Image.open(buffer).convert("RGB").quantize(colors=64).save(path, optimize=True)


def _not_run(ax, what: str) -> None:
    ax.text(0.5, 0.5, f"{what}: not in this run", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def plot_throughput(results: dict, path: Path) -> None:
    """Horizontal bars on a log scale: each rate above its baseline, with the ratio."""
    pairs: list[Pair] = throughput_pairs(results)
    fig, ax = plt.subplots(figsize=(10, 1.0 + 0.62 * max(len(pairs), 1)))
    if not pairs:
        _not_run(ax, "throughput")
    for i, pair in enumerate(pairs):
        y = -i
        ax.barh(y + 0.18, pair.value, height=0.34, color=FIGURE)
        ax.barh(y - 0.18, pair.base_value, height=0.34, color=BASELINE)
        ax.text(pair.value, y + 0.18, f" {pair.value:,.0f} ({pair.ratio:.2f}x)", va="center", fontsize=8)
        ax.text(pair.base_value, y - 0.18, f" {pair.base_value:,.0f}  {pair.base_label}", va="center",
                fontsize=8, color="#555")
    if pairs:
        ax.set_yticks([-i for i in range(len(pairs))], [f"{p.label} [{p.suite}]" for p in pairs], fontsize=8)
        ax.set_xscale("log")
        ax.set_xlim(min(min(p.value, p.base_value) for p in pairs) / 2,
                    max(max(p.value, p.base_value) for p in pairs) * 30)
        ax.set_xlabel("per second (log scale); dark: figure, light: its baseline from the same run")
    _caption(fig, results, "throughput beside same-run baselines")
    _save(fig, path)


def _core_latency(ax, core: dict | None) -> None:
    if not core or "latency_curve" not in core:
        _not_run(ax, "core")
        return
    curves = (("latency_curve", f"batch of {core.get('latency_batch')}, mean per cmd", FIGURE),
              ("latency_single_curve", "process() of 1 cmd", "#e76f51"),
              ("latency_api_curve", "per-command API call", "#2a9d8f"))
    for key, label, colour in curves:
        if core.get(key):
            ax.plot([f"p{p:g}" for p, _ in core[key]], [ns for _, ns in core[key]], marker="o", label=label,
                    color=colour)
    if "process_call_overhead_ns" in core:
        ax.axhline(core["process_call_overhead_ns"], color=BASELINE, linestyle="--",
                   label="baseline: process() of an empty array")
    ax.set_yscale("log")
    ax.set_ylabel("ns per command")
    ax.set_title("core (ns, log)", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7)


def _options_latency(ax, options: dict | None) -> None:
    if not options or "margin_check_p50_ns" not in options:
        _not_run(ax, "options")
        return
    names = ("p50", "p99")
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], [options[f"margin_check_{n}_ns"] for n in names], width=0.4, color=FIGURE,
           label=f"option sell, {options.get('margin_portfolio_positions')}-position margin check")
    ax.bar([x + 0.2 for x in xs], [options[f"margin_baseline_{n}_ns"] for n in names], width=0.4, color=BASELINE,
           label="baseline: spot sell, no options")
    ax.set_xticks(list(xs), names)
    ax.set_ylabel("ns per one-order process() call")
    ax.set_title("options: margin check per order", fontsize=9)
    ax.set_ylim(0, 1.35 * max(options["margin_check_p99_ns"], options["margin_baseline_p99_ns"]))
    ax.legend(fontsize=7, loc="upper left")


def _gateway_latency(ax, gateway: dict | None) -> None:
    rates = gateway_rates(gateway) if gateway else []
    if not rates:
        _not_run(ax, "gateway")
        return
    series = ((f"gateway, fsync {gateway['gateway_fsync']}", "rtt_{}_us_{}", FIGURE),
              ("gateway, no fsync", "rtt_{}_us_{}_nofsync", "#e76f51"),
              ("baseline: echo process", "echo_rtt_{}_us_{}", BASELINE))
    for label, pattern, colour in series:
        for name, style in (("p50", "-"), ("p99", "--")):
            points = [(rate, gateway.get(pattern.format(name, rate))) for rate in rates]
            points = [(x, y) for x, y in points if y is not None]
            if points:
                ax.plot(*zip(*points), linestyle=style, marker="o", color=colour, label=f"{label} {name}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered orders/s")
    ax.set_ylabel("round trip, us")
    ax.set_title("gateway round trip over TCP (ipc: in the JSON)", fontsize=9)
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    ax.set_ylim(top=ax.get_ylim()[1] * 30)


def plot_latency(results: dict, path: Path) -> None:
    """Core percentile curves with the fixed call cost, the option margin check against a spot
    order, and the gateway's round trip against an echo process and against no fsync."""
    suites = results["suites"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    _core_latency(axes[0], suites.get("core"))
    _options_latency(axes[1], suites.get("options"))
    _gateway_latency(axes[2], suites.get("gateway"))
    _caption(fig, results, "latency percentiles beside same-run baselines")
    _save(fig, path)


def plot_gas(results: dict, path: Path) -> None:
    """Gas per settled fill against fills per batch, one colour per account count: total and
    execution only, the epoch's first batch dotted; the one-fill batch (x = 1) is the baseline."""
    settlement = results["suites"].get("settlement") or {}
    grid = gas_grid(settlement)
    fig, ax = plt.subplots(figsize=(8, 5))
    if not grid:
        _not_run(ax, "settlement")
    colours = ("#1d3557", "#e76f51", "#2a9d8f", "#8d6cab")
    for i, accounts in enumerate(sorted({a for _, a in grid})):
        sizes = [f for f, a in grid if a == accounts]
        colour = colours[i % len(colours)]
        for key, style, what in (("gas_per_fill", "-", "total"), ("exec_per_fill", "--", "execution"),
                                 ("exec_first_per_fill", ":", "execution, first in epoch")):
            ax.plot(sizes, [settlement[f"{key}_{f}_{accounts}"] for f in sizes], linestyle=style, marker="o",
                    color=colour, label=f"{accounts:,} accounts, {what}")
    if grid:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("fills per batch (1 = baseline: a one-fill batch)")
        ax.set_ylabel("gas per settled fill (log)")
        ax.legend(fontsize=7)
    _caption(fig, results, "gas per settled fill against batch size (anvil, Cancun)")
    _save(fig, path)


def write_plots(results: dict, out: Path) -> dict[str, str]:
    """Write every figure into ``out``; {figure name: file name}."""
    for name, plot in (("throughput", plot_throughput), ("latency", plot_latency), ("gas", plot_gas)):
        plot(results, out / FILES[name])
    return dict(FILES)
