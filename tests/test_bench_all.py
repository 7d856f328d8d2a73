"""``python -m bench all`` and ``python -m bench readme``: the results file's schema on the
tiny sizes, valid PNGs, the README's performance block equal to what the generator renders
from the committed full run, and clear errors on bad arguments. No timing is asserted:
figures come from the benchmark run stated in the README."""

import json
import math
import struct
import zlib
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.baselines import gas_pairs, latency_pairs, throughput_pairs
from bench.options import FIGURES
from bench.plots import FILES
from bench.readme import BEGIN, END, BlockError, README, render, replace_block
from settlement.anvil import anvil_command

COMMITTED = Path(__file__).resolve().parent.parent / "docs" / "bench" / "results.json"
SUITES = ("core", "options", "gateway", "settlement")
MACHINE_KEYS = {"cpu", "cpus", "python", "numpy", "platform", "commit", "date", "other_cpu_load"}
CORE_KEYS = ("batch_cmds_per_s", "batch_risk_cmds_per_s", "percommand_cmds_per_s", "baseline_cmds_per_s",
             "baseline_percommand_cmds_per_s", "latency_p50_ns", "latency_p99_ns", "latency_single_p99_ns",
             "process_call_overhead_ns", "margin_checked_cmds_per_s", "margin_plain_cmds_per_s", "ratio",
             "bytes_per_resting_order", "lobster_msgs_per_s")


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG whose signature, chunk CRCs and closing IEND chunk are valid."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: no PNG signature"
    offset, kinds = 8, []
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind, body = data[offset + 4:offset + 8], data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{path}: bad CRC in chunk {kind!r}"
        kinds.append(kind)
        offset += 12 + length
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds, f"{path}: chunks {kinds}"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny run of every suite (the LOBSTER replay on the vendored slice): about 35 s."""
    if anvil_command() is None:
        pytest.skip("anvil not installed: run `npm ci` (package @foundry-rs/anvil)")
    out = tmp_path_factory.mktemp("bench-all")
    empty = tmp_path_factory.mktemp("no-lobster-day")
    assert main(["all", "--tiny", "--out", str(out), "--data-dir", str(empty)]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_results_schema(tiny_run):
    _, results = tiny_run
    assert results["schema"] == 1 and results["mode"] == "tiny"
    assert results["command"] == "python -m bench all --tiny"
    assert set(results["machine"]) == MACHINE_KEYS
    assert results["machine"]["cpus"] >= 1 and results["machine"]["commit"]
    assert set(results["suites"]) == set(results["seconds"]) == set(SUITES)
    assert results["figures"] == FILES
    core, options, gateway, settlement = (results["suites"][name] for name in SUITES)
    for key in CORE_KEYS:
        assert isinstance(core[key], (int, float)) and core[key] > 0, key
    assert [p for p, _ in core["latency_curve"]] == [50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0]
    for _, key, _, base_key in FIGURES:
        assert options[key] > 0 and options[base_key] > 0, key
    for key in ("tcp_orders_per_s", "echo_rtt_p50_us_2000", "rtt_p50_us_2000", "rtt_p99_us_2000",
                "rtt_p99_us_2000_nofsync"):
        assert gateway[key] > 0, key
    assert gateway["gateway_fsync"] == "batch"
    for fills in (1, 100, 1_000):
        for prefix in ("gas_per_fill", "exec_per_fill", "exec_first_per_fill", "gas_per_batch"):
            assert settlement[f"{prefix}_{fills}_10"] > 0, (prefix, fills)
    # Every figure of the report is paired with its baseline.
    pairs = throughput_pairs(results) + latency_pairs(results) + gas_pairs(results)
    assert {p.suite for p in pairs} == set(SUITES)
    timed = sum(key.endswith(("_ns", "_ms")) for _, key, _, _ in FIGURES)
    assert len(gas_pairs(results)) == 2 and len(throughput_pairs(results)) == 4 + (len(FIGURES) - timed) + 1
    assert len(latency_pairs(results)) == 3 + timed + 3
    for pair in pairs:
        assert math.isfinite(pair.ratio) and pair.value > 0 and pair.base_value > 0, pair


def test_plots_are_valid_pngs(tiny_run):
    out, _ = tiny_run
    for file in FILES.values():
        width, height = png_size(out / file)
        assert 300 <= width <= 1200 and 200 <= height <= 900, (file, width, height)
        assert (out / file).stat().st_size < 200_000, file


def test_readme_block_is_generated_from_the_committed_results():
    results = json.loads(COMMITTED.read_text())
    assert results["mode"] == "full"
    block = render(results, COMMITTED, README.parent)
    text = README.read_text()
    assert text[text.index(BEGIN):text.index(END) + len(END)] == block, \
        "README's performance block is stale: run `python -m bench readme --results docs/bench/results.json`"
    for file in results["figures"].values():
        png_size(COMMITTED.parent / file)
        assert f"(docs/bench/{file})" in block
    assert block.count(f"`{results['command']}`") >= len(results["figures"]) + 2


def test_readme_block_markers_are_required():
    with pytest.raises(BlockError, match="exactly one"):
        replace_block("no markers here", BEGIN + END)
    with pytest.raises(BlockError, match="exactly one"):
        replace_block(f"{BEGIN} a {END} {BEGIN} b {END}", BEGIN + END)
    assert replace_block(f"head\n{BEGIN}\nold\n{END}\ntail", f"{BEGIN}new{END}") == f"head\n{BEGIN}new{END}\ntail"


@pytest.mark.parametrize("argv, message", [
    (["all", "--suites", "core,nope"], "unknown suite nope: choose from core, options, gateway, settlement"),
    (["all", "--suites", ","], "unknown suite (none given)"),
    (["all", "--quick", "--tiny"], "not allowed with argument"),
    (["readme", "--results", "/nonexistent/results.json"], "cannot read results file /nonexistent/results.json"),
    (["readme"], "the following arguments are required: --results"),
    (["readme", "--results", "r.json", "--check", "--plots"], "argument --plots: not allowed with argument --check"),
])
def test_bad_arguments_get_a_clear_error(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_out_must_be_a_directory(tmp_path, capsys):
    file = tmp_path / "a-file"
    file.write_text("")
    with pytest.raises(SystemExit):
        main(["all", "--tiny", "--suites", "options", "--out", str(file)])
    assert f"--out {file} is a file, not a directory" in capsys.readouterr().err


def test_readme_refuses_a_run_that_is_not_full(tmp_path, capsys):
    results = json.loads(COMMITTED.read_text())
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**results, "mode": "quick"}))
    with pytest.raises(SystemExit):
        main(["readme", "--results", str(path), "--readme", str(tmp_path / "README.md")])
    assert "a quick run; the README takes a full run's figures" in capsys.readouterr().err
