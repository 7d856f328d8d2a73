"""The live web view in the venue demo: ``python -m web`` as one more process (its
WebProcess), and the check that loads it in headless Chromium once trades happened
and saves the screenshot into the report folder."""

from __future__ import annotations

from pathlib import Path

from demo.venue_report import Check
from web.browser import BrowserUnavailable, capture
from web.process import WebProcess

CHECK = "the web view shows band edges and a trade in headless Chromium"


def start_web(run: Path, config: Path, keys: Path, orders: str, market_data: str, rpc: str | None) -> WebProcess:
    """The view on the running gateway (the demo's operator key: it only queries) and
    the settlement job's state, on a free loopback port; its log in the run folder."""
    args = ["--config", str(config), "--gateway-keys", str(keys / "ops.key_secret"), "--orders", orders,
            "--market-data", market_data, "--settlement-state", str(run / "job"), "--port", "0"]
    return WebProcess([*args, *(["--rpc", rpc] if rpc else [])], run / "logs" / "web.log")


def capture_check(url: str, screenshot: Path) -> Check:
    """Load the page and save its screenshot: a skipped check (with the reason) where
    Chromium or Playwright is missing, a failed one if the page did not show a band
    edge and a trade in time."""
    try:
        page = capture(url, screenshot)
    except BrowserUnavailable as err:
        return Check(CHECK, True, f"skipped: {err}", skipped=True)
    except TimeoutError as err:
        return Check(CHECK, False, str(err))
    return Check(CHECK, True, f"{len(page.trades)} trade row(s), {len(page.band_edges)} band edge(s); "
                              f"screenshot {screenshot.name}")
