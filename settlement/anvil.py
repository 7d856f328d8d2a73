"""Start and stop a local anvil node (npm package @foundry-rs/anvil) on a free loopback port."""

from __future__ import annotations

import json
import platform
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from settlement.compile import NODE_MODULES

_PLATFORM_PACKAGES = {
    ("Linux", "x86_64"): "anvil-linux-amd64",
    ("Linux", "aarch64"): "anvil-linux-arm64",
    ("Darwin", "x86_64"): "anvil-darwin-amd64",
    ("Darwin", "arm64"): "anvil-darwin-arm64",
}


class AnvilError(RuntimeError):
    """anvil is not installed, did not start, or refused an RPC."""


def anvil_command() -> list[str] | None:
    """The command that runs anvil: the binary shipped in @foundry-rs/anvil's platform package,
    else its node wrapper in node_modules/.bin, else an `anvil` on PATH; None if there is none."""
    package = _PLATFORM_PACKAGES.get((platform.system(), platform.machine()))
    if package is not None:
        binary = NODE_MODULES / "@foundry-rs" / package / "bin" / "anvil"
        if binary.is_file():
            return [str(binary)]
    wrapper = NODE_MODULES / ".bin" / "anvil"
    if wrapper.is_file() and shutil.which("node"):
        return [str(wrapper)]
    found = shutil.which("anvil")
    return [found] if found else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Anvil:
    """One anvil process on 127.0.0.1; a context manager. Extra CLI flags go in `args`
    (e.g. ["--no-mining"], ["--gas-limit", "100000000"])."""

    def __init__(self, args: list[str] | None = None, startup_timeout: float = 30.0) -> None:
        self.args = list(args or [])
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self._process: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        """The node's JSON-RPC URL."""
        if self.port is None:
            raise AnvilError("anvil is not running")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Anvil:
        """Start anvil and wait until it answers; retry on a port taken in the meantime."""
        command = anvil_command()
        if command is None:
            raise AnvilError("anvil not found: run `npm ci` (package @foundry-rs/anvil)")
        last_output = ""
        for _ in range(3):
            self.port = free_port()
            # A file, not a pipe: anvil logs every request and would block on a full pipe.
            self._log = tempfile.TemporaryFile()
            self._process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(self.port), *self.args],
                stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if self._wait_ready():
                return self
            last_output = self._terminate()
        raise AnvilError(f"anvil did not start: {last_output[-2000:]}")

    def stop(self) -> None:
        """Stop the node (SIGTERM, then SIGKILL after 5 s)."""
        self._terminate()
        self.port = None

    def rpc(self, method: str, params: list | None = None):
        """Call a JSON-RPC method (also anvil's evm_* / anvil_* ones) and return its result."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []}).encode()
        request = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                reply = json.loads(response.read())
        except (OSError, urllib.error.URLError) as err:
            raise AnvilError(f"{method}: {err}") from err
        if "error" in reply:
            raise AnvilError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait_receipt(self, tx_hash: str, timeout: float = 10.0) -> dict:
        """The receipt of `tx_hash` once mined. Anvil's automine answers
        eth_sendTransaction before the block is sealed, so a receipt asked for at once
        can still be null; raise AnvilError if none comes within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            receipt = self.rpc("eth_getTransactionReceipt", [tx_hash])
            if receipt is not None:
                return receipt
            if time.monotonic() >= deadline:
                raise AnvilError(f"no receipt for {tx_hash} within {timeout} s")
            time.sleep(0.02)

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            try:
                self.rpc("eth_chainId")
                return True
            except AnvilError:
                time.sleep(0.05)
        return False

    def _terminate(self) -> str:
        process, self._process = self._process, None
        if process is None:
            return ""
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log, self._log = self._log, None
        log.seek(0)
        output = log.read().decode(errors="replace")
        log.close()
        return output
