"""The README's main command, ``python -m demo``, in a short mode: every check of its summary
holds on the embedded chain and on anvil (the pool's among them), it writes its report folder, a Ctrl-C stops every
process it started, and a failed check makes a non-zero exit."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo import venue_web
from demo.participants.thin_book import ThinBookResult
from demo.venue_report import Check, Report
from settlement.anvil import anvil_command
from web.browser import BrowserUnavailable, unavailable

SHORT = ["--duration", "6"]
PLOTS = {"price.png", "depth.png", "funding.png", "gas.png"}


def _demo(*args: str, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "demo", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **options)


def _run_and_check(report: Path, chain: str) -> None:
    process = _demo(*SHORT, "--chain", chain, "--report", str(report))
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    summary = json.loads((report / "summary.json").read_text())
    assert summary["chain"] == chain
    assert len(summary["checks"]) == 14 and all(check["ok"] for check in summary["checks"]), summary["checks"]
    assert summary["batches"] and all(batch["gas"] > 0 for batch in summary["batches"])
    assert summary["funding"]["tsla-writer"] > 0 > summary["funding"]["mm-btc"]
    pool = summary["pool"]
    assert pool["nav_usd"] > 0 and pool["nav_per_share"] > 0 and pool["redemption"]["received"] > 0
    assert sum(pool["attribution"].values()) == pool["equity_change"]
    payments = [p["amount"] for p in summary["expiry"]["payments"]]
    assert summary["expiry"]["settlement_price"] > 0 and sum(payments) == 0  # none if no position was open
    web = summary["checks"][-1]
    if unavailable() is None:
        assert not web["skipped"] and (report / "web.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", web
    else:
        assert web["skipped"] and web["detail"] == f"skipped: {unavailable()}"
    assert PLOTS <= {path.name for path in report.iterdir()}
    for plot in PLOTS:
        assert (report / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "every process stopped" not in out
    assert re.search(r"on-chain balances equal engine balances for every account and token: (\d+) of \1 equal", out)
    assert "a seller's ask at 100x: price outside the static band" in out


def test_venue_demo_on_the_embedded_chain(tmp_path):
    _run_and_check(tmp_path / "report", "embedded")


def test_venue_demo_on_anvil(tmp_path):
    if anvil_command() is None:
        pytest.skip("anvil not installed: run `npm ci` (package @foundry-rs/anvil); the demo would use the "
                    "embedded chain")
    _run_and_check(tmp_path / "report", "anvil")


def _descendants(pid: int) -> list[int]:
    """Every process whose parent chain leads to ``pid`` (read from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_ctrl_c_stops_every_process_the_demo_started(tmp_path):
    process = _demo("--duration", "120", "--report", str(tmp_path / "report"))
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "vault deposits from" in line:   # every process has started by then
            break
    else:
        pytest.fail("the demo ended before its deposits:\n" + "".join(lines))
    children = _descendants(process.pid)
    assert len(children) >= 2, children          # the gateway and the feed process at least
    process.send_signal(signal.SIGINT)
    out = "".join(lines) + process.communicate(timeout=60)[0]
    assert process.returncode == 130, out
    assert "stopped by SIGINT: every process stopped" in out
    deadline = time.monotonic() + 10
    while (alive := [pid for pid in children if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive == [], f"left running: {alive}"


def test_a_failed_check_makes_a_non_zero_exit_naming_it(tmp_path, capsys):
    thin = ThinBookResult(reference=2_000_000, band=(1_800_000, 2_200_000), far_ask_refused="refused",
                          would_be_price=200_000_000, fills=[(2_001_000, 200)], cancelled_qty=2_300)
    checks = [Check("deposits credited once by the watcher", True, "21 of 21"),
              Check("on-chain balances equal engine balances for every account and token", False, "59 of 60 equal")]
    report = Report("embedded", orders=3, fills=2, settlement_records=1, batches=[{"batch_id": 1, "gas": 90_000,
                    "block": 5}], funding={"tsla-writer": 1, "mm-btc": -1}, funding_series={}, thin_book=thin,
                    checks=checks)
    assert report.finish(tmp_path) == 1
    out = capsys.readouterr().out
    assert "[FAILED] on-chain balances equal engine balances" in out
    failed = "on-chain balances equal engine balances for every account and token"
    assert out.rstrip().endswith(f"FAILED checks:\n  {failed}")
    assert json.loads((tmp_path / "summary.json").read_text())["checks"][1]["ok"] is False
    report.checks[1].ok = True
    assert report.finish(tmp_path) == 0


def test_thin_book_result_is_inside_the_band_only_if_every_fill_is():
    inside = ThinBookResult(2_000_000, (1_800_000, 2_200_000), "refused", 200_000_000, [(2_200_000, 1)], 0)
    outside = ThinBookResult(2_000_000, (1_800_000, 2_200_000), None, 200_000_000, [(2_200_100, 1)], 0)
    assert inside.inside_band and not outside.inside_band
    assert "ACCEPTED (a band failure)" in outside.lines()[1]


@pytest.mark.parametrize("error, ok, skipped", [(BrowserUnavailable("no chromium here"), True, True),
                                                (TimeoutError("no trade row within 30 s"), False, False)])
def test_the_web_check_is_skipped_without_a_browser_and_fails_on_a_timeout(tmp_path, monkeypatch, error, ok, skipped):
    def capture(url, screenshot):
        raise error

    monkeypatch.setattr(venue_web, "capture", capture)
    check = venue_web.capture_check("http://127.0.0.1:1/", tmp_path / "web.png")
    assert (check.ok, check.skipped) == (ok, skipped) and str(error) in check.detail
    report = Report("embedded", orders=0, fills=0, settlement_records=0, batches=[], funding={}, funding_series={},
                    thin_book=ThinBookResult(reference=1, band=(1, 1), far_ask_refused=None, would_be_price=1,
                                             fills=[], cancelled_qty=0), checks=[check])
    assert any(line.startswith(f"  [{'skipped' if skipped else 'FAILED'}] the web view") for line in report.summary_lines())
