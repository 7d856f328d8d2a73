"""``WebProcess``: the live view running as a child process (``python -m web``), for
tests and the demo; it waits for the ``ready url=...`` line and stops with SIGTERM."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path


class WebProcess:
    """A ``python -m web`` child started with ``args`` (its command-line arguments;
    ``--port 0`` lets it pick a port); ``url`` is the page's address once ready."""

    def __init__(self, args: list[str], log_file: str | Path, *, timeout: float = 30.0,
                 python: str = sys.executable) -> None:
        root = Path(__file__).resolve().parents[1]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        self.log_file = Path(log_file)
        with open(self.log_file, "a") as stderr:
            self.process = subprocess.Popen([python, "-m", "web", *args], stdout=subprocess.PIPE, stderr=stderr,
                                            text=True, env=env)
        self.url = self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(max(0.0, deadline - time.monotonic())):
                    line = self.process.stdout.readline()
                    if line.startswith("ready url="):
                        return line.split("=", 1)[1].strip()
                    if not line:
                        break
        self.stop()
        raise RuntimeError(f"web view did not become ready (exit code {self.process.returncode}):\n"
                           f"{self.log_file.read_text()[-2000:]}")

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then SIGKILL if it does not stop within ``timeout``; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stdout.close()
        return self.process.returncode

    def __enter__(self) -> WebProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
