"""The gateway's C fast path (engine/core/wire.pyx), configured from the wire protocol.

engine/schemas.py is the protocol; this module reads its Structs once and
turns them into the tables the C code runs on:

* ``REQUEST_LAYOUTS``: for NewOrder, Cancel, Amend and MassCancel, each field's
  command column, integer range and default, so the C reader accepts exactly
  what msgspec would decode (anything else goes through msgspec);
* ``REPLIES``: a ``ReplyEncoder`` whose program per event kind lists the reply
  array's elements (tag, event columns, request id, reject text ...), so the
  encoded bytes are those of the reply Struct.
"""

from __future__ import annotations

import msgspec

from engine.core.records import EVENT_DTYPE
from engine.core.types import REJECT_TEXT, CommandKind, EventKind
from engine.core.wire import COLUMNS, ReplyEncoder, RequestLayouts
from engine.schemas import (
    EVENT_COLUMN,
    REPLY_BY_TAG,
    Amend,
    Cancel,
    EngineEvent,
    Liquidity,
    MassCancel,
    NewOrder,
    reject_text,
)

FAST_REQUESTS = {NewOrder: CommandKind.NEW_ORDER, Cancel: CommandKind.CANCEL, Amend: CommandKind.AMEND,
                 MassCancel: CommandKind.MASS_CANCEL}
"""Requests the C reader takes from the MessagePack bytes (they map 1:1 to a command)."""

FANOUT_KINDS = frozenset(int(k) for k in (EventKind.ACCEPTED, EventKind.FILL, EventKind.CANCELLED,
                                          EventKind.MASS_CANCELLED, EventKind.CREDITED, EventKind.DEBITED,
                                          EventKind.LIQUIDATED, EventKind.FUNDING_SETTLED,
                                          EventKind.POSITION_SETTLED, EventKind.TRANSFERRED_OUT,
                                          EventKind.TRANSFERRED_IN, EventKind.PENALTY_CHARGED,
                                          EventKind.LOSS_COVERED, EventKind.DELEVERAGED, EventKind.POOL_PAID,
                                          EventKind.POOL_DEPOSIT_REQUESTED, EventKind.POOL_REQUEST_CANCELLED))
"""Events an account hears about even when another session (or the gateway) caused them:
orders an operator placed in its name (a liquidation's closing orders), their fills,
cancels, balance changes (funding and shard transfers included), its liquidation, the cash settlement of its
expired positions, the loss waterfall's payments to or from it and its deleveraging, and its pool
requests and their executions (the pool clock executes due deposit requests)."""

_EVENT_KINDS = frozenset(int(k) for k in EventKind)

_INT_KINDS = {"<i8": "i64", "<i4": "i32", "|u1": "u8"}


def _range(annotation) -> tuple[int, int]:
    """The integer range of a request field annotation (I64 / I32 / U8)."""
    meta = getattr(annotation, "__metadata__", ())
    bounds = [m for m in meta if isinstance(m, msgspec.Meta)]
    if getattr(annotation, "__origin__", annotation) is not int or len(bounds) != 1:
        raise TypeError(f"fast-path request fields must be bounded ints, not {annotation!r}")
    return bounds[0].ge, bounds[0].le


def request_layouts() -> dict[int, tuple[int, list[tuple[str, int, int, int | None]]]]:
    """{tag: (command kind, [(column, lo, hi, default or None), ...])} of the fast requests."""
    layouts = {}
    for struct, kind in FAST_REQUESTS.items():
        fields = []
        for field in msgspec.structs.fields(struct):
            if field.name not in COLUMNS:
                raise TypeError(f"{struct.__name__}.{field.name} has no command column")
            lo, hi = _range(field.type)
            default = None if field.required else int(field.default)
            fields.append((field.name, lo, hi, default))
        layouts[struct.__struct_config__.tag] = (int(kind), fields)
    return layouts


def _program(tag: int, rename: dict[str, str] | None = None) -> list[tuple[str, object]]:
    """The ops of one reply Struct: the tag, then each field from its event column
    (EVENT_COLUMN, ``rename`` overriding) or computed."""
    names = {**EVENT_COLUMN, **(rename or {})}
    ops: list[tuple[str, object]] = [("const", tag)]
    for field in REPLY_BY_TAG[tag].__struct_fields__:
        column = names.get(field, field)
        if column in EVENT_DTYPE.names:
            ops.append((_INT_KINDS[EVENT_DTYPE.fields[column][0].str], column))
        elif column == "request_id":
            ops.append(("request_id", None))
        elif column == "other_side":
            ops.append(("other_side", "side"))
        elif column == "text":
            ops.append(("text", "reason"))
        elif column in ("taker", "maker"):
            ops.append(("const", int(Liquidity.TAKER if column == "taker" else Liquidity.MAKER)))
        else:
            raise TypeError(f"reply field {REPLY_BY_TAG[tag].__name__}.{field} has no event column")
    return ops


def reply_programs() -> tuple[dict[int, list], list, list]:
    """(program per event kind, maker's fill program, fallback program)."""
    engine_event = EngineEvent.__struct_config__.tag
    # Event replies are the tags that are event kinds (gateway-only reply tags are not).
    programs = {kind: _program(kind, {"liquidity": "taker"} if kind == EventKind.FILL else None)
                for kind in REPLY_BY_TAG if kind in _EVENT_KINDS}
    maker = _program(EventKind.FILL, {"client_order_id": "maker_client_order_id", "order_id": "maker_order_id",
                                      "side": "other_side", "leaves": "maker_leaves", "fee": "maker_fee",
                                      "liquidity": "maker"})
    return programs, maker, _program(engine_event)


def _reject_texts() -> list[bytes]:
    return [msgspec.msgpack.encode(REJECT_TEXT.get(code) or reject_text(code)) for code in range(256)]


def make_reply_encoder() -> ReplyEncoder:
    """A ReplyEncoder for the protocol of engine/schemas.py."""
    programs, maker, fallback = reply_programs()
    return ReplyEncoder(programs, maker, fallback, _reject_texts(), int(EventKind.FILL), FANOUT_KINDS)


REQUEST_LAYOUTS = RequestLayouts(request_layouts())
REPLIES = make_reply_encoder()
