"""The building blocks every wire-protocol module shares (engine/schemas.py and
the per-feature message modules it registers): bounded integer field types and
the msgspec Struct configuration of a request and of a reply."""

from __future__ import annotations

from typing import Annotated

import msgspec

I64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
I32 = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31 - 1)]
U8 = Annotated[int, msgspec.Meta(ge=0, le=255)]


def request_config(tag: int) -> dict:
    """Struct keywords of a request with this tag (unknown fields refused)."""
    return {"tag": tag, "tag_field": "type", "array_like": True, "frozen": True, "forbid_unknown_fields": True}


def reply_config(tag: int) -> dict:
    """Struct keywords of a reply with this tag."""
    return {"tag": tag, "tag_field": "type", "array_like": True, "frozen": True}
