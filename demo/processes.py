"""``ProcessGroup``: the demo's child processes, each in its own process group with its
log in the run folder, all stopped together on exit, on failure and on SIGINT/SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ProcessError(RuntimeError):
    """A child did not become ready, or exited while the demo needed it."""


class Stopped(Exception):
    """SIGINT or SIGTERM reached the demo; raised in the main thread so the group unwinds."""


class ProcessGroup:
    """Children started with ``start``; a context manager that stops every one on leaving,
    whatever the reason. Each child leads its own process group (``start_new_session``), so
    stopping it also stops anything it spawned, and a Ctrl-C on the terminal reaches only the
    demo, which then stops them in reverse order (SIGTERM, then SIGKILL after ``grace``)."""

    def __init__(self, log_dir: Path, *, grace: float = 5.0) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.grace = grace
        self.children: dict[str, subprocess.Popen] = {}
        self._previous: dict[int, object] = {}

    def start(self, name: str, argv: list[str], ready: Callable[[], bool] | None = None, *,
              timeout: float = 60.0) -> subprocess.Popen:
        """Start ``argv`` as child ``name`` (output to ``<log_dir>/<name>.log``) and wait until
        ``ready()`` holds; ProcessError if the child exits or ``timeout`` passes first."""
        if name in self.children:
            raise ProcessError(f"{name} is already running")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
                   PYTHONUNBUFFERED="1")
        with open(self.log_path(name), "ab") as log:
            child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, cwd=ROOT, start_new_session=True)
        self.children[name] = child
        deadline = time.monotonic() + timeout
        while ready is not None and not ready():
            if child.poll() is not None or time.monotonic() > deadline:
                self.stop(name)
                why = (f"exited with status {child.returncode} before it was ready" if child.returncode is not None
                       and time.monotonic() <= deadline else f"not ready after {timeout:.0f} s")
                raise ProcessError(f"{name} {why}:\n{self.tail(name)}")
            time.sleep(0.1)
        return child

    def python(self, name: str, module_args: list[str], ready: Callable[[], bool] | None = None,
               **options) -> subprocess.Popen:
        """``start`` for ``python -m ...`` with this interpreter."""
        return self.start(name, [sys.executable, "-m", *module_args], ready, **options)

    def log_path(self, name: str) -> Path:
        """The log file of child ``name``."""
        return self.log_dir / f"{name}.log"

    def tail(self, name: str, chars: int = 2_000) -> str:
        """The end of child ``name``'s log."""
        path = self.log_path(name)
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def check_alive(self) -> None:
        """ProcessError naming the first child that has exited."""
        for name, child in self.children.items():
            if child.poll() is not None:
                raise ProcessError(f"{name} exited with status {child.returncode}:\n{self.tail(name)}")

    def stop(self, name: str) -> int:
        """Stop child ``name`` and its process group: SIGTERM, SIGKILL after the grace period."""
        child = self.children.pop(name)
        if child.poll() is None:
            _signal_group(child.pid, signal.SIGTERM)
            try:
                child.wait(self.grace)
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                child.wait()
        # whatever the leader left behind in its group goes too
        _signal_group(child.pid, signal.SIGKILL)
        return child.returncode

    def stop_all(self) -> None:
        """Stop every child, the last started first."""
        for name in reversed(list(self.children)):
            self.stop(name)

    def __enter__(self) -> ProcessGroup:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, _raise_stopped)
        return self

    def __exit__(self, *exc) -> None:
        # a second Ctrl-C must not interrupt the clean-up itself
        for signum in self._previous:
            signal.signal(signum, signal.SIG_IGN)
        try:
            self.stop_all()
        finally:
            for signum, handler in self._previous.items():
                signal.signal(signum, handler)
            self._previous.clear()


def _raise_stopped(signum, _frame) -> None:
    raise Stopped(signal.Signals(signum).name)


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
