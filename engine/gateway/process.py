"""``GatewayProcess``: a gateway running as a child process, for tests,
benchmarks and demos; it starts ``python -m engine.gateway`` and waits for its
ready line (or, for a hot standby on the replicated journal, its standby line)."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path


class GatewayProcess:
    """A gateway child process: ``orders`` and ``market_data`` are its bound
    endpoints, ``last_seq`` the seq it recovered to. With ``standby=True`` it
    returns once the gateway follows the stream as a standby (endpoints None);
    ``wait_ready`` then waits until it leads and serves."""

    def __init__(self, config_path: str | Path, log_file: str | Path | None = None, *,
                 timeout: float = 60.0, python: str = sys.executable, standby: bool = False,
                 shard: str | None = None, replica: int = 0) -> None:
        root = Path(__file__).resolve().parents[2]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
        command = [python, "-m", "engine.gateway", "--config", str(config_path)]
        if shard is not None:
            command += ["--shard", shard, "--replica", str(replica)]   # config_path is a shards file
        self.log_file = Path(log_file) if log_file else None
        stderr = None
        if self.log_file is not None:
            command += ["--log-file", str(self.log_file)]
            stderr = open(self.log_file, "a")  # noqa: SIM115 - lives as long as the process
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
        if stderr is not None:
            stderr.close()
        self.orders = self.market_data = None
        self.last_seq = 0
        if standby:
            self._wait_line("standby", timeout)
        else:
            self.wait_ready(timeout)

    @property
    def pid(self) -> int:
        """Process id of the gateway."""
        return self.process.pid

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for the ready line (the gateway serves) and take its endpoints."""
        fields = self._wait_line("ready", timeout)
        self.orders, self.market_data, self.last_seq = fields["orders"], fields["market_data"], int(fields["last_seq"])

    def _wait_line(self, word: str, timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(max(0.0, deadline - time.monotonic())):
                    line = self.process.stdout.readline()
                    if line.startswith(word + " "):
                        return dict(part.split("=", 1) for part in line.split()[1:])
                    if not line:
                        break
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()
        tail = self.log_file.read_text()[-2000:] if self.log_file and self.log_file.exists() else ""
        raise RuntimeError(f"gateway did not become {word} (exit code {self.process.returncode}):\n{tail}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (clean shutdown: snapshot, journal closed); returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self.process.stdout.close()
        return code

    def kill(self) -> None:
        """SIGKILL: a crash at whatever point the gateway is."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc) -> None:
        # Also when the gateway has already exited by itself (a fenced leader exits 3):
        # its stdout pipe is closed either way.
        self.stop()
