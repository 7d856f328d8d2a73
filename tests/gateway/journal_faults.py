"""Injected disk failures for the journal's fail-stop tests.

``install`` wraps one ``os`` function (write, fdatasync or fsync) so that, while
armed, it fails with an errno on the files whose name matches a pattern (the
journal's segments or its snapshots) and behaves normally on every other file
descriptor. A failing ``write`` first writes half of its data, as a disk that
fills up mid-record does, so recovery meets a torn record.

In a test process, install it with pytest's monkeypatch; in a gateway child
process, ``sitecustomize_source`` gives a ``sitecustomize`` module that installs
it from the ``JOURNAL_FAULT`` environment variable, armed once a trigger file
exists. The product code has no hook for this: the wrapper replaces ``os``
functions from the outside.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Callable
from pathlib import Path

SEGMENTS = r"journal-\d{20}\.log$"
SNAPSHOT_TEMPS = r"snapshot-\d{20}\.snap\.tmp$"
ENV = "JOURNAL_FAULT"


def faulty(function: str, code: int, pattern: str, armed: Callable[[], bool] = lambda: True) -> Callable:
    """A replacement for os.<function> that fails with `code` on files matching `pattern` while `armed()`."""
    real = getattr(os, function)
    matches = re.compile(pattern).search
    torn: set[int] = set()

    def target(fd: int) -> bool:
        try:
            return matches(os.readlink(f"/proc/self/fd/{fd}")) is not None and armed()
        except OSError:
            return False

    def fail() -> None:
        raise OSError(code, os.strerror(code))

    if function == "write":
        def write(fd: int, data) -> int:
            if not target(fd):
                return real(fd, data)
            if fd not in torn and len(data) > 1:  # a short write, then the error
                torn.add(fd)
                return real(fd, bytes(memoryview(data)[:len(data) // 2]))
            fail()
        return write

    def sync(fd: int) -> None:
        if target(fd):
            fail()
        real(fd)
    return sync


def install_from_env() -> None:
    """Install the fault that JOURNAL_FAULT describes: 'function:ERRNO:pattern:trigger file'."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    function, code, pattern, trigger = spec.split(":", 3)
    setattr(os, function, faulty(function, getattr(errno, code), pattern, Path(trigger).exists))


def sitecustomize_source() -> str:
    """The text of a sitecustomize module that runs install_from_env at interpreter start."""
    return "from journal_faults import install_from_env\n\ninstall_from_env()\n"
