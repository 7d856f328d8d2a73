"""Wire messages of perpetual option series (docs/funding.md): the operator's
Fund request, and the replies of its two event kinds, Funded (to the sender)
and FundingSettled (to each account that paid or received). engine/schemas.py
registers them in its request and reply unions."""

from __future__ import annotations

import msgspec

from engine.schema_types import I32, I64, reply_config, request_config


class Fund(msgspec.Struct, **request_config(37)):
    """Funding of a perpetual series (operator, from the option-mark feed): its
    mark and payoff per contract in price units, 0 <= payoff <= mark. The
    engine accrues (mark - payoff) / T from now to the next Fund and settles
    every position at the funding index of this command's timestamp."""

    request_id: I64
    instrument: I32
    mark: I64
    payoff: I64


class FundingSettled(msgspec.Struct, **reply_config(22)):
    """An account's funding in a perpetual series was settled into its balance:
    ``amount`` ledger units of ``asset`` (the premium asset) paid, negative when
    received. On a fill of the series and on every Fund."""

    seq: int
    ts: int
    instrument: int
    account: int
    asset: int
    amount: int


class Funded(msgspec.Struct, **reply_config(23)):
    """A Fund was applied (operator); the FundingSettled replies follow."""

    seq: int
    ts: int
    request_id: int
    instrument: int
    mark: int
    payoff: int


EVENT_COLUMN = {"mark": "price", "payoff": "qty"}
"""Reply field -> EVENT_DTYPE column of these replies, where the names differ
(``amount`` is already ``qty`` in engine.schemas.EVENT_COLUMN)."""
