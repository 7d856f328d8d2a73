"""numpy layouts of the core's CommandRec and EventRec records (engine/core/types.pxd).

The batch API takes an array of COMMAND_DTYPE and returns an array of
EVENT_DTYPE. Field order, types and padding mirror the C structs exactly; the
core checks the item sizes when it is imported. Also which events a journal keeps.
"""

import numpy as np

from engine.core.types import EventKind

COMMAND_DTYPE = np.dtype(
    [
        ("seq", "<i8"),
        ("ts", "<i8"),
        ("kind", "u1"),
        ("side", "u1"),
        ("order_type", "u1"),
        ("tif", "u1"),
        ("stp", "u1"),
        ("state", "u1"),
        ("pad0", "u1"),
        ("pad1", "u1"),
        ("instrument", "<i4"),
        ("asset", "<i4"),
        ("account", "<i8"),
        ("order_id", "<i8"),
        ("client_order_id", "<i8"),
        ("price", "<i8"),
        ("qty", "<i8"),
    ],
    align=True,
)

EVENT_DTYPE = np.dtype(
    [
        ("seq", "<i8"),
        ("ts", "<i8"),
        ("kind", "u1"),
        ("reason", "u1"),
        ("side", "u1"),
        ("aux", "u1"),
        ("instrument", "<i4"),
        ("order_id", "<i8"),
        ("client_order_id", "<i8"),
        ("account", "<i8"),
        ("price", "<i8"),
        ("qty", "<i8"),
        ("leaves", "<i8"),
        ("maker_order_id", "<i8"),
        ("maker_client_order_id", "<i8"),
        ("maker_account", "<i8"),
        ("maker_leaves", "<i8"),
        ("fee", "<i8"),
        ("maker_fee", "<i8"),
        ("asset", "<i4"),
        ("pad0", "<i4"),
    ],
    align=True,
)

JOURNALED_EVENT_KINDS = frozenset(int(k) for k in (EventKind.FILL, EventKind.CREDITED, EventKind.DEBITED,
                                                    EventKind.ACCOUNT_FROZEN, EventKind.POSITION_SETTLED,
                                                    EventKind.SERIES_LISTED, EventKind.FUNDING_SETTLED,
                                                    EventKind.POOL_PAID, EventKind.TRANSFERRED_OUT,
                                                    EventKind.TRANSFERRED_IN, EventKind.PENALTY_CHARGED,
                                                    EventKind.LOSS_COVERED, EventKind.DELEVERAGED,
                                                    EventKind.FEES_SWEPT))
"""Event kinds a journal batch record keeps (what settlement needs: transfers order the shard merge); the
journal (engine/journal.py) and the gateway's wire.select_kinds both use it."""

# Event fields without padding: the attributes of engine.core.events.Event.
EVENT_FIELDS = tuple(name for name in EVENT_DTYPE.names if not name.startswith("pad"))


def empty_commands(n: int) -> np.ndarray:
    """A zeroed command array of length n (kind 0 is invalid until set)."""
    return np.zeros(n, dtype=COMMAND_DTYPE)
