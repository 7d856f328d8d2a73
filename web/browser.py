"""Loading the live view in Debian's headless Chromium through Playwright: wait
until it shows what a running venue should (a band edge, a trade) and save a
screenshot. Nothing is downloaded: the system's Chromium is launched directly.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class BrowserUnavailable(RuntimeError):
    """Chromium or Playwright is not installed here (the reason says which)."""


@dataclass
class PageCapture:
    """What the page showed when the screenshot was taken."""

    gateway: str                  # the gateway status line
    trades: list[str]             # the recent-trade rows' texts
    band_edges: list[str]         # the band-edge rows' texts ("194.25 band high")
    screenshot: Path


def unavailable() -> str | None:
    """Why the browser cannot run here, or None if it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; ./dev.sh test installs it)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium; ./dev.sh test installs it as root)"
    return None


def row_texts(page, selector: str) -> list[str]:
    """The non-empty cells of each table row matching ``selector``, joined by spaces.
    Read in one script run: the page replaces its tables on every update, and a
    row read piecewise may be detached between two reads."""
    return page.eval_on_selector_all(
        selector, "rows => rows.map(r => Array.from(r.cells, c => c.textContent.trim()).filter(Boolean).join(' '))")


def capture(url: str, screenshot_path: str | Path, *, expect_trade: bool = True, timeout: float = 30.0) -> PageCapture:
    """Open ``url``, wait (up to ``timeout`` s) until a band edge is shown and, with
    ``expect_trade``, a trade; save a full-page screenshot. Raises
    BrowserUnavailable without Chromium / Playwright and TimeoutError when the page
    does not show them in time (the screenshot is saved either way)."""
    reason = unavailable()
    if reason:
        raise BrowserUnavailable(reason)
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    screenshot = Path(screenshot_path)
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="web-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True,
                                                            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 900})
            try:
                page = context.new_page()
                page.goto(url, timeout=timeout * 1000)
                wanted = ".band-edge" + (", .trade-row" if expect_trade else "")
                try:
                    page.wait_for_selector(".band-edge", timeout=timeout * 1000)
                    if expect_trade:
                        page.wait_for_selector(".trade-row", timeout=timeout * 1000)
                except PlaywrightError as err:
                    page.screenshot(path=str(screenshot), full_page=True)
                    raise TimeoutError(f"{url} did not show {wanted} within {timeout} s: {err}") from err
                page.screenshot(path=str(screenshot), full_page=True)
                return PageCapture(page.inner_text("#gateway"), row_texts(page, ".trade-row"), row_texts(page, ".band-edge"),
                                   screenshot)
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
