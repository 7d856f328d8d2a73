"""Each figure of a ``python -m bench all`` results object beside its baseline from the same run.

The plots (bench/plots.py) and the README block (bench/readme.py) both read
these pairs, so a figure and its baseline are chosen in one place. The options
suite's pairs come from its own ``FIGURES`` table, so a figure added there
appears here without a change.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pair:
    """A measured figure and the baseline it is read against (same run, same unit)."""

    suite: str
    label: str
    value: float
    base_label: str
    base_value: float
    unit: str

    @property
    def ratio(self) -> float:
        """value / baseline (for a time, below 1 is faster than the baseline)."""
        return self.value / self.base_value if self.base_value else float("nan")


def _pair(suite: str, r: dict, label: str, key: str, base_label: str, base_key: str, unit: str) -> list[Pair]:
    if r.get(key) is None or r.get(base_key) is None:
        return []
    return [Pair(suite, label, float(r[key]), base_label, float(r[base_key]), unit)]


def throughput_pairs(results: dict) -> list[Pair]:
    """Rates (things per second), each beside its baseline."""
    suites = results["suites"]
    out: list[Pair] = []
    core = suites.get("core")
    if core:
        out += _pair("core", core, f"core batch API ({core.get('batch_chunk', 4096):,} cmds/call)", "batch_cmds_per_s",
                     "reference matcher (Python), batch", "baseline_cmds_per_s", "cmd/s")
        out += _pair("core", core, "core per-command API", "percommand_cmds_per_s",
                     "reference matcher, per-command", "baseline_percommand_cmds_per_s", "cmd/s")
        out += _pair("core", core, "batch API, risk and fees on", "batch_risk_cmds_per_s",
                     "matching only", "batch_cmds_per_s", "cmd/s")
        out += _pair("core", core, "spot orders, every account margined", "margin_checked_cmds_per_s",
                     "no account margined", "margin_plain_cmds_per_s", "cmd/s")
    options = suites.get("options")
    if options:
        from bench.options import FIGURES

        for label, key, base_label, base_key in FIGURES:
            if not key.endswith(("_ns", "_ms")):
                out += _pair("options", options, label, key, base_label, base_key, "/s")
    gateway = suites.get("gateway")
    if gateway and core:
        for transport in ("tcp", "ipc"):
            # The gateway's orders beside the commands its engine alone takes (the core suite's figure).
            both = {"orders": gateway.get(f"{transport}_orders_per_s"), "core": core.get("batch_risk_cmds_per_s")}
            out += _pair("gateway", both, f"gateway over {transport}, fsync {gateway['gateway_fsync']}", "orders",
                         "core batch API alone, risk on", "core", "/s")
    return out


def latency_pairs(results: dict) -> list[Pair]:
    """Times per operation, each beside its baseline."""
    suites = results["suites"]
    out: list[Pair] = []
    core = suites.get("core")
    if core:
        for name in ("p50", "p99", "p999"):
            out += _pair("core", core, f"core batch latency per command {name} ({core.get('latency_batch')}-cmd calls)",
                         f"latency_{name}_ns", "process() of 1 command", f"latency_single_{name}_ns", "ns")
    options = suites.get("options")
    if options:
        from bench.options import FIGURES

        for label, key, base_label, base_key in FIGURES:
            if key.endswith(("_ns", "_ms")):
                out += _pair("options", options, label, key, base_label, base_key, key[-2:])
    gateway = suites.get("gateway")
    if gateway:
        for rate in gateway_rates(gateway):
            for name in ("p50", "p99"):
                out += _pair("gateway", gateway, f"gateway round trip {name}, TCP, {rate:,} orders/s offered",
                             f"rtt_{name}_us_{rate}", "echo process, same transport and keys",
                             f"echo_rtt_{name}_us_{rate}", "us")
            out += _pair("gateway", gateway, f"gateway round trip p99, TCP, {rate:,} orders/s, fsync per batch",
                         f"rtt_p99_us_{rate}", "no fsync", f"rtt_p99_us_{rate}_nofsync", "us")
    return out


def gas_pairs(results: dict) -> list[Pair]:
    """Gas per settled fill of each batch size beside a one-fill batch over as many accounts."""
    settlement = results["suites"].get("settlement") or {}
    out: list[Pair] = []
    for fills, accounts in gas_grid(settlement):
        if fills > 1:
            out += _pair("settlement", settlement, f"gas per fill, {fills:,} fills over {accounts:,} accounts",
                         f"gas_per_fill_{fills}_{accounts}", "a one-fill batch", f"gas_per_fill_1_{accounts}", "gas")
    return out


def gateway_rates(gateway: dict) -> list[int]:
    """The offered round-trip rates of a gateway results object, ascending."""
    return sorted(int(k.rsplit("_", 1)[1]) for k in gateway if k.startswith("rtt_p50_us_") and k[-1].isdigit())


def gas_grid(settlement: dict) -> list[tuple[int, int]]:
    """(fills per batch, accounts) of every gas measurement, sorted."""
    return sorted(tuple(int(x) for x in k.split("_")[3:5]) for k in settlement if k.startswith("gas_per_fill_"))
