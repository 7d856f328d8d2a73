"""Wire messages of the main pool (docs/pools.md): a provider's PoolDeposit and
PoolRedeem requests, and the replies of the pool's three event kinds: PoolPaid
(each movement of a deposit or a redemption), RedemptionRequested and
PoolMarked. engine/schemas.py registers them in its request and reply unions."""

from __future__ import annotations

import msgspec

from engine.schema_types import I32, I64, reply_config, request_config


class PoolDeposit(msgspec.Struct, **request_config(39)):
    """Deposit ``amount`` ledger units of the pool's asset into the pool whose share
    asset is ``pool``, for shares minted at the deposit NAV per share. Answered by
    two PoolPaid (the asset paid in, the shares received) or a Reject."""

    request_id: I64
    pool: I32
    amount: I64
    account: I64 = -1


class PoolRedeem(msgspec.Struct, **request_config(40)):
    """With ``redemption`` 0: request the redemption of ``shares`` (answered by
    RedemptionRequested); with a request id, once its cooldown is over: execute it
    (answered by two PoolPaid: the shares paid back, the pool asset received less
    the withdrawal fee). Or a Reject saying why not."""

    request_id: I64
    pool: I32
    shares: I64 = 0
    redemption: I64 = 0
    account: I64 = -1


class PoolPaid(msgspec.Struct, **reply_config(24)):
    """One movement between a provider and the pool: ``amount`` ledger units of
    ``asset`` paid to the pool (negative: received), at ``nav_per_share`` (pool-asset
    units per share unit x 1e12); ``fee`` the withdrawal fee the pool kept;
    ``redemption`` the request executed (0 for a deposit)."""

    seq: int
    ts: int
    request_id: int
    account: int
    asset: int
    amount: int
    nav_per_share: int
    fee: int
    redemption: int


class RedemptionRequested(msgspec.Struct, **reply_config(25)):
    """A redemption request of ``shares`` was recorded as ``redemption`` (an account
    has one request at most: ``pending`` is its total now); execute it with
    PoolRedeem once the pool's cooldown has passed since ``ts``."""

    seq: int
    ts: int
    request_id: int
    redemption: int
    account: int
    asset: int
    shares: int
    pending: int


class PoolMarked(msgspec.Struct, **reply_config(26)):
    """A NAV sample was taken (operator clock): the time-weighted NAV per share
    after it, the pool's equity in pool-asset units and the shares outstanding."""

    seq: int
    ts: int
    request_id: int
    pool: int
    twap_nav_per_share: int
    equity: int
    outstanding: int


POOL_REQUESTS = (PoolDeposit, PoolRedeem)
POOL_REPLIES = (PoolPaid, RedemptionRequested, PoolMarked)
EVENT_COLUMN = {"nav_per_share": "price", "redemption": "order_id", "shares": "qty", "pool": "asset",
                "twap_nav_per_share": "price", "equity": "qty", "outstanding": "leaves",
                "pending": "leaves"}
"""Reply field -> EVENT_DTYPE column of these replies (engine.schemas.EVENT_COLUMN takes them)."""
