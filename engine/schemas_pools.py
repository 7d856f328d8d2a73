"""Wire messages of the main pool (docs/pools.md): a provider's PoolDeposit,
PoolRedeem and PoolCancel (request tag 49) requests, the replies of the pool's
event kinds: PoolPaid (each movement of a deposit or a redemption),
RedemptionRequested, PoolMarked, DepositRequested (55) and RequestCancelled (56);
and the GetPoolInfo query with its PoolInfo answer (request tag 48, reply tag
44). engine/schemas.py registers them in its request and reply unions."""

from __future__ import annotations

import msgspec

from engine.schema_types import I32, I64, reply_config, request_config
from engine.units import POOL_PPS_SCALE


class PoolDeposit(msgspec.Struct, **request_config(39)):
    """Request a deposit of ``amount`` ledger units of the pool's asset into the pool
    whose share asset is ``pool``: the amount is reserved now, and once the deposit
    cooldown has passed the gateway's pool clock executes the request, minting
    shares at the deposit NAV per share then (two PoolPaid, sent to the provider's
    sessions). Answered by DepositRequested or a Reject."""

    request_id: I64
    pool: I32
    amount: I64
    account: I64 = -1


class PoolRedeem(msgspec.Struct, **request_config(40)):
    """With ``redemption`` 0: request the redemption of ``shares`` (answered by
    RedemptionRequested); with a request id of the sender's, once its cooldown is
    over: execute it (answered by two PoolPaid: for a redemption the shares paid
    back and the pool asset received less the withdrawal fee; for a deposit
    request the asset paid in and the shares received). Or a Reject saying why not."""

    request_id: I64
    pool: I32
    shares: I64 = 0
    redemption: I64 = 0
    account: I64 = -1


class PoolCancel(msgspec.Struct, **request_config(49)):
    """Cancel the sender's pending request ``request``: a redemption request any time,
    a deposit request before it is due (or while it cannot execute), releasing its
    reserved amount. Answered by RequestCancelled or a Reject (POOL_REQUEST_DUE:
    the deposit executes at the NAV now instead)."""

    request_id: I64
    pool: I32
    request: I64
    account: I64 = -1


class GetPoolInfo(msgspec.Struct, **request_config(48)):
    """The main pool's figures now: answered by PoolInfo, or a GatewayReject
    NO_POOL when the venue has no main pool. Anyone may ask (they are public)."""

    request_id: I64


class PoolPaid(msgspec.Struct, **reply_config(24)):
    """One movement between a provider and the pool: ``amount`` ledger units of
    ``asset`` paid to the pool (negative: received), at ``nav_per_share`` (pool-asset
    units per share unit x 1e12); ``fee`` the withdrawal fee the pool kept;
    ``redemption`` the request executed (a redemption or a deposit request; 0 for
    the immediate deposit of older journals)."""

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
    has one request at most: ``pending`` is its total now); the pool's clock executes
    it once the pool's cooldown has passed since ``ts`` (``Client.pool_redeem_paid``)."""

    seq: int
    ts: int
    request_id: int
    redemption: int
    account: int
    asset: int
    shares: int
    pending: int


class DepositRequested(msgspec.Struct, **reply_config(55)):
    """A deposit request of ``amount`` ledger units of ``asset`` was recorded as
    ``request`` and the amount reserved; the pool's clock executes it once the
    deposit cooldown (PoolInfo.deposit_cooldown_ns) has passed since ``ts``."""

    seq: int
    ts: int
    request_id: int
    request: int
    account: int
    asset: int
    amount: int


class RequestCancelled(msgspec.Struct, **reply_config(56)):
    """Pending request ``request`` was cancelled: ``amount`` of ``asset`` (the deposit's
    pool asset, released; or the redemption's shares) is the provider's again. Also
    sent when a freeze or a liquidation of the account cancels its deposit request."""

    seq: int
    ts: int
    request_id: int
    request: int
    account: int
    asset: int
    amount: int


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


class PoolInfo(msgspec.Struct, **reply_config(44)):
    """The main pool now (``MatchingEngine.pool_info()``): ``pool`` its share asset,
    ``account`` the pool account, ``asset`` what providers deposit. With ``nav_ok``
    False a held asset or position has no price and the NAV figures are 0.
    ``nav_usd`` NAV in USD x 1e8, ``equity`` NAV in pool-asset ledger units,
    ``shares`` the shares outstanding; per-share figures are pool-asset units per
    share unit x 1e12 (engine.units.POOL_PPS_SCALE): ``nav_per_share`` the spot NAV
    per share rounded down (0 while no share is out), ``twap_nav_per_share`` the
    mean of the last ``samples`` NAV samples, ``deposit_pps`` and ``redeem_pps``
    what a deposit mints and a redemption burns at now. ``pending_redemptions``
    requests hold ``pending_shares`` in all; ``cooldown_ns`` between a request and
    its execution; ``withdrawal_fee_bps`` of each redemption stays in the pool;
    redemptions keep ``equity`` >= ``initial_margin`` (USD x 1e8) x
    ``equity_multiplier_bps`` / 10000. ``pending_deposits`` deposit requests hold
    ``pending_deposit_amount`` pool-asset units reserved in all; each executes
    ``deposit_cooldown_ns`` after its request."""

    request_id: int
    pool: int
    account: int
    asset: int
    nav_ok: bool
    nav_usd: int
    equity: int
    shares: int
    nav_per_share: int
    twap_nav_per_share: int
    samples: int
    deposit_pps: int
    redeem_pps: int
    pending_redemptions: int
    pending_shares: int
    cooldown_ns: int
    withdrawal_fee_bps: int
    equity_multiplier_bps: int
    initial_margin: int
    deposit_cooldown_ns: int = 0
    pending_deposits: int = 0
    pending_deposit_amount: int = 0


def pool_info_reply(request_id: int, info) -> PoolInfo:
    """The PoolInfo answer from the core's ``PoolInfo`` (engine/core/order_info.py)."""
    return PoolInfo(
        request_id=request_id, pool=info.share_asset, account=info.account, asset=info.asset, nav_ok=info.nav_ok,
        nav_usd=info.equity_usd, equity=info.equity, shares=info.shares,
        nav_per_share=_spot_pps(info),
        twap_nav_per_share=info.twap_pps, samples=info.samples, deposit_pps=info.deposit_pps,
        redeem_pps=info.redeem_pps, pending_redemptions=len(info.pending),
        pending_shares=sum(shares for _rid, _account, shares, _due in info.pending),
        cooldown_ns=info.cooldown_ns, withdrawal_fee_bps=info.withdrawal_fee_bps,
        equity_multiplier_bps=info.equity_multiplier_bps, initial_margin=info.initial_margin,
        deposit_cooldown_ns=info.deposit_cooldown_ns, pending_deposits=len(info.deposits),
        pending_deposit_amount=sum(amount for _rid, _account, amount, _due in info.deposits))


def _spot_pps(info) -> int:
    # The core's redemption-side spot figure (engine/core/pool.pyx redeem_pps):
    # rounded down, 0 without shares or positive equity, capped to int64.
    if not info.nav_ok or info.shares <= 0 or info.equity <= 0:
        return 0
    return min(info.equity * POOL_PPS_SCALE // info.shares, 2**63 - 1)


POOL_REQUESTS = (PoolDeposit, PoolRedeem, PoolCancel, GetPoolInfo)
POOL_REPLIES = (PoolPaid, RedemptionRequested, PoolMarked, PoolInfo, DepositRequested, RequestCancelled)
EVENT_COLUMN = {"nav_per_share": "price", "redemption": "order_id", "shares": "qty", "pool": "asset",
                "request": "order_id",
                "twap_nav_per_share": "price", "equity": "qty", "outstanding": "leaves",
                "pending": "leaves"}
"""Reply field -> EVENT_DTYPE column of these replies (engine.schemas.EVENT_COLUMN takes them)."""
