"""What the feed process remembers across restarts: the instruments it halted (the
venue shows an operator's halt and the feed's alike, so only the feed can tell
which are its own to reopen) and each stock token's last reference (the split
rule's yardstick for an adjusted price), with the venue's sequence number of the
last command it recorded.

One small JSON file (the feeds config's ``state_file``), replaced atomically on
every change; a halt is recorded before it is sent. On start the feed process
reconciles it with the gateway (feeds/process.py): a file newer than the venue's
journal is ignored, and a recorded halt counts only while the instrument is still
halted (so one whose command never reached the venue is dropped).
"""

from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path

import msgspec

__all__ = ["FeedState", "load_state", "save_state"]

log = logging.getLogger(__name__)


class FeedState(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The feed process's memory."""

    seq: int = 0                             # venue sequence number of the last command recorded here
    halted: list[int] = []                   # instruments the feed process halted, sorted
    last_references: dict[str, str] = {}     # stock token -> last reference, USD per token, exact ("n/d")

    def references(self) -> dict[str, Fraction]:
        """``last_references`` as exact fractions."""
        return {asset: Fraction(text) for asset, text in self.last_references.items()}


def load_state(path: Path) -> FeedState | None:
    """The state saved at ``path``; None if there is none or it cannot be read (logged:
    the process then starts without memory, and leaves every halt to the operator)."""
    try:
        state = msgspec.json.decode(path.read_bytes(), type=FeedState)
        state.references()
    except FileNotFoundError:
        return None
    except (OSError, msgspec.DecodeError, ValueError, ZeroDivisionError) as err:
        log.error("feed state %s unreadable, starting without it: %s", path, err)
        return None
    return state


def save_state(path: Path, state: FeedState) -> None:
    """Write ``state`` to ``path`` atomically (a crash leaves the old file or the new one)."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as stream:
        stream.write(msgspec.json.encode(state))
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)
