"""demo/processes.py: children start with a ready check, log to their files, and are stopped
with everything they spawned on leaving the group, on a failure and on SIGINT."""

from __future__ import annotations

import os
import signal
import sys
import time

import pytest

from demo.processes import ProcessError, ProcessGroup, Stopped

# a child that spawns a grandchild (its pid on stdout), then sleeps
PARENT = ("import subprocess, sys, time; g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
          "print('grandchild', g.pid, flush=True); time.sleep(60)")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:   # a zombie not reaped yet is gone for our purpose
        return stat.read().rsplit(")", 1)[1].split()[0] != "Z"


def _grandchild(group: ProcessGroup, name: str) -> int | None:
    for line in group.log_path(name).read_text().splitlines():
        if line.startswith("grandchild "):
            return int(line.split()[1])
    return None


def _wait_gone(pids: list[int], timeout: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (alive := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def test_children_and_grandchildren_stop_when_the_group_ends(tmp_path):
    with ProcessGroup(tmp_path) as group:
        child = group.start("parent", [sys.executable, "-c", PARENT],
                            lambda: _grandchild(group, "parent") is not None)
        grandchild = _grandchild(group, "parent")
        assert _alive(child.pid) and _alive(grandchild)
    assert _wait_gone([child.pid, grandchild]) == []


def test_a_failure_inside_the_group_stops_every_child(tmp_path):
    pids = []
    with pytest.raises(RuntimeError, match="scenario failed"):
        with ProcessGroup(tmp_path) as group:
            for name in ("a", "b"):
                group.start(name, [sys.executable, "-c", PARENT], lambda n=name: _grandchild(group, n) is not None)
                pids += [group.children[name].pid, _grandchild(group, name)]
            raise RuntimeError("scenario failed")
    assert _wait_gone(pids) == []


def test_sigint_raises_stopped_and_stops_every_child(tmp_path):
    with pytest.raises(Stopped, match="SIGINT"):
        with ProcessGroup(tmp_path) as group:
            group.start("parent", [sys.executable, "-c", PARENT], lambda: _grandchild(group, "parent") is not None)
            pids = [group.children["parent"].pid, _grandchild(group, "parent")]
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)   # the handler raises long before this ends
    assert _wait_gone(pids) == []
    assert signal.getsignal(signal.SIGINT) is not None   # the previous handler is back


def test_a_child_that_exits_before_it_is_ready_is_reported_with_its_log(tmp_path):
    with ProcessGroup(tmp_path) as group:
        with pytest.raises(ProcessError, match="exited with status 3 before it was ready:\n.*no config"):
            group.start("broken", [sys.executable, "-c", "import sys; print('no config'); sys.exit(3)"],
                        lambda: False)
        group.start("quick", [sys.executable, "-c", "pass"])
        group.children["quick"].wait()
        with pytest.raises(ProcessError, match="quick exited with status 0"):
            group.check_alive()


def test_a_child_never_ready_times_out(tmp_path):
    seen = []

    def never():
        seen.append(group.children["sleeper"].pid)
        return False

    with ProcessGroup(tmp_path) as group:
        with pytest.raises(ProcessError, match="sleeper not ready after 1 s"):
            group.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], never, timeout=1)
        assert "sleeper" not in group.children   # stopped at once
        assert _wait_gone(seen[:1]) == []
