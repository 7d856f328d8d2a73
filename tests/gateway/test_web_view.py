"""The live web view against a real gateway process: the page in headless Chromium
shows a trade live (no reload) with the band edges, and the gateway as unreachable
once it is down; the ``python -m web`` process refuses bad starts and bad queries."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from gateway_harness import AMZN, PUT_SPEC, PX, client_keys, venue_doc, write_venue

from engine.client import Client
from engine.core.types import Side
from engine.gateway.process import GatewayProcess
from engine.schemas import GetBook, GetInstruments, GetStatus
from engine.schemas_options import GetChain
from engine.schemas_pools import GetPoolInfo
from web.browser import CHROMIUM, CHROMIUM_ARGS, capture, row_texts, unavailable
from web.process import WebProcess
from web.sources import GatewayPools, GatewayView


def _needs_browser() -> None:
    """Skip with the reason when Chromium or Playwright is missing (./dev.sh test
    installs both where the machine can: root with apt-get, and PyPI)."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"browser test skipped: {reason}")


@pytest.fixture
def venue(tmp_path, keys):
    """A gateway (the test venue and a TSLA.M put) and a web view on it (with the
    'retail' key: not an operator)."""
    instruments = venue_doc(keys, tmp_path)["instruments"] + [PUT_SPEC]
    config = write_venue(tmp_path / "venue", keys, instruments=instruments)
    gateway = GatewayProcess(config, tmp_path / "gateway.log")
    args = ["--config", str(config), "--gateway-keys", str(keys / "retail.key_secret"), "--orders", gateway.orders,
            "--market-data", gateway.market_data, "--port", "0", "--settlement-state", str(tmp_path / "settlement")]
    try:
        with WebProcess(args, tmp_path / "web.log") as web:
            yield gateway, web
    finally:
        gateway.stop()


def _state(url: str) -> dict:
    with urllib.request.urlopen(url + "api/state", timeout=5) as answer:
        return json.load(answer)


def _until(check, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s")


def test_page_shows_a_trade_live_with_the_bands_and_the_gateway_going_down(venue, clients, tmp_path):
    _needs_browser()
    from playwright.sync_api import sync_playwright

    gateway, web = venue
    mm, retail = clients(gateway, "mm"), clients(gateway, "retail")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(web.url)
            card = '.instrument[data-symbol="AMZNX/USDC"]'
            page.wait_for_selector(f"{card} .band-edge", timeout=20_000)
            assert row_texts(page, f"{card} .trade-row") == []
            # The static band around $185.00 (10%) and no dynamic band before a trade.
            assert row_texts(page, f"{card} .band-edge") == ["203.5 band high", "166.5 band low"]

            page.evaluate("window.loadedOnce = true")  # gone if the page reloaded
            assert mm.place(AMZN, Side.SELL, 100, PX).__class__.__name__ == "Ack"
            assert retail.place(AMZN, Side.BUY, 40, PX).__class__.__name__ == "Ack"
            page.wait_for_selector(f"{card} .trade-row", timeout=20_000)  # no reload: the event stream brought it
            assert row_texts(page, f"{card} .trade-row")[0].split()[-3:] == ["185", "0.04", "buy"]
            assert page.evaluate("window.loadedOnce") is True
            # After the trade at $185.00 the dynamic band (5%) narrows the execution band.
            page.wait_for_function("document.querySelector('.instrument .band-edge').textContent.includes('194.25')",
                                   timeout=20_000)
            assert row_texts(page, f"{card} .band-edge") == ["194.25 band high", "175.75 band low"]
            assert "UNREACHABLE" not in page.inner_text("#gateway")
            page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
            assert (tmp_path / "live.png").stat().st_size > 10_000

            gateway.stop()
            page.wait_for_function("document.getElementById('gateway').innerText.includes('UNREACHABLE')",
                                   timeout=20_000)
            assert gateway.orders in page.inner_text("#gateway")
        finally:
            browser.close()


def test_capture_returns_what_the_page_showed(venue, clients, tmp_path):
    _needs_browser()
    gateway, web = venue
    clients(gateway, "mm").place(AMZN, Side.SELL, 100, PX + 100)
    clients(gateway, "retail").place(AMZN, Side.BUY, 20, PX + 100)
    seen = capture(web.url, tmp_path / "report" / "web.png", timeout=90)  # headless Chromium starts slowly on a loaded 2-core machine
    assert seen.screenshot.stat().st_size > 10_000
    assert any(row.split()[-3:] == ["185.01", "0.02", "buy"] for row in seen.trades)
    assert "194.26 band high" in seen.band_edges  # 185.01 x 1.05, to the tick downwards
    assert gateway.orders in seen.gateway


def test_state_says_unreachable_when_the_gateway_is_down(venue):
    gateway, web = venue
    up = _until(lambda: (doc := _state(web.url))["gateway"]["reachable"] and doc)
    assert up["gateway"]["status_refused"] == "not authorized: GetStatus needs an operator key"
    assert up["chains"] == [{"underlying": "TSLA.M", "series": [
        {"symbol": PUT_SPEC["symbol"], "expiry": "2026-12-18", "strike": "250", "right": "P", "mark": "14.62",
         "last_trade": None, "open_interest": 0, "status": "live"}]}]
    gateway.stop()
    down = _until(lambda: (doc := _state(web.url))["gateway"]["reachable"] is False and doc)
    assert down["gateway"]["error"] == f"gateway unreachable at {gateway.orders}: no answer within 1.5 s"
    assert down["instruments"] == []
    assert down["pools"] == {"message": "no pools configured", "pools": []}
    assert "does not exist" in down["settlement"]["message"]


def test_malformed_queries_get_400_from_the_process(venue):
    _, web = venue
    for query in ("depth=abc", "trades=1&trades=2", "x=1", "depth=999"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(web.url + "api/state?" + query, timeout=5)
        err.value.close()
        assert err.value.code == 400
    assert "gateway" in _state(web.url)  # still serving


@pytest.mark.parametrize(("extra", "message"), [
    (["--host", "0.0.0.0"], "is not loopback"),
    (["--port", "70000"], "is not 0..65535"),
    (["--gateway-keys", "missing.key_secret"], "missing.key_secret"),
])
def test_bad_starts_exit_1_with_the_reason(tmp_path, keys, extra, message):
    config = write_venue(tmp_path / "venue", keys)
    args = ["--config", str(config), "--gateway-keys", str(keys / "retail.key_secret"), "--orders",
            "tcp://127.0.0.1:1", "--market-data", "tcp://127.0.0.1:2", "--port", "0", *extra]
    done = subprocess.run([sys.executable, "-m", "web", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and message in done.stderr and done.stdout == ""


def test_a_wildcard_endpoint_in_the_config_needs_the_real_one(tmp_path, keys):
    config = write_venue(tmp_path / "venue", keys)  # binds tcp://127.0.0.1:* (any port)
    done = subprocess.run([sys.executable, "-m", "web", "--config", str(config), "--gateway-keys",
                           str(keys / "retail.key_secret"), "--port", "0"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "--orders" in done.stderr


def test_the_view_only_queries(gateway, keys, clients, monkeypatch):
    """Whatever it shows, the view sends queries only (here with an operator key, which
    could do anything else): instruments, books, chains, status, the pool."""
    clients(gateway, "mm").place(AMZN, Side.SELL, 10, PX)
    sent = []
    send = Client.send
    monkeypatch.setattr(Client, "send", lambda self, requests: (sent.extend(requests), send(self, requests))[1])
    view = GatewayView(gateway.orders, gateway.market_data, client_keys(keys, "ops"), GatewayPools())
    try:
        document = _until(lambda: (doc := view.poll(0.1))["instruments"] and doc)
        assert document["gateway"]["status"]["last_seq"] > 0 and document["gateway"]["status_refused"] is None
        assert document["instruments"][AMZN]["asks"][0]["price"] == "185"
    finally:
        view.close()
    assert sent and {type(request) for request in sent} <= {GetInstruments, GetBook, GetChain, GetStatus, GetPoolInfo}
