"""Wire messages of sharding (docs/sharding.md): an operator's transfer of
collateral between two shards (one leg per shard: request 46, replies of events
52 and 53) and the transfer counters of a shard (request 47, reply 54).
engine/schemas.py registers them in its unions; the router's reject codes
(116, 117) are GatewayReject's."""

from __future__ import annotations

from enum import IntEnum

import msgspec

from engine.schema_types import I32, I64, U8, reply_config, request_config


class TransferLeg(IntEnum):
    """Which side of a transfer a shard applies."""

    OUT = 1   # debit the source shard's ledger
    IN = 2    # credit the destination shard's ledger


class Transfer(msgspec.Struct, **request_config(46)):
    """One leg of a transfer between shards (operator): ``transfer_id`` is
    ``src << 48 | dst << 40 | number`` (engine/core/transfers.pyx); the router
    sends leg OUT to shard src and leg IN to shard dst."""

    request_id: I64
    leg: U8
    transfer_id: I64
    account: I64
    asset: I32
    amount: I64


class GetTransfers(msgspec.Struct, **request_config(47)):
    """The transfer counters of shard ``shard`` (operator; a shard gateway
    answers for itself whatever ``shard`` says, the router asks that shard)."""

    request_id: I64
    shard: I32 = 0


class TransferredOut(msgspec.Struct, **reply_config(52)):
    """Leg OUT applied: ``amount`` left the account's ledger on this shard."""

    seq: int
    ts: int
    request_id: int
    transfer_id: int
    account: int
    asset: int
    amount: int
    total: int


class TransferredIn(msgspec.Struct, **reply_config(53)):
    """Leg IN applied: ``amount`` credited to the account's ledger on this shard."""

    seq: int
    ts: int
    request_id: int
    transfer_id: int
    account: int
    asset: int
    amount: int
    total: int


class SentTransfer(msgspec.Struct, array_like=True, frozen=True):
    """The last transfer a shard sent to one peer shard."""

    account: int
    asset: int
    amount: int


class Transfers(msgspec.Struct, **reply_config(54)):
    """A shard's transfer counters, one entry per peer shard index (0..15):
    the last number sent to it, the last number received from it, and the
    last transfer sent to it."""

    request_id: int
    out_last: list[int]
    in_last: list[int]
    sent: list[SentTransfer]


EVENT_COLUMN = {"transfer_id": "order_id"}
"""Reply field -> EVENT_DTYPE column of these replies, where the names differ
(``amount`` and ``total`` as in engine/schemas.py)."""

SHARD_REQUESTS = (Transfer, GetTransfers)
SHARD_REPLIES = (TransferredOut, TransferredIn, Transfers)
