"""The core's query results: a resting order (``OrderInfo``), an account's margin
(``MarginState``), its option positions (``PositionInfo``) and a perpetual
series' funding (``FundingState``) and the main pool (``PoolInfo``). The gateway's
replies are built from them (``engine.schemas.from_core``); ``PositionInfo`` is
array_like because it travels on the wire as it is, inside ``Margin``."""

import msgspec


class OrderInfo(msgspec.Struct, frozen=True):
    """One resting order (queries only; never built on the matching path)."""

    order_id: int
    client_order_id: int
    account: int
    instrument: int
    side: int
    price: int
    leaves: int
    tif: int
    stp: int


class MarginState(msgspec.Struct, frozen=True):
    """An account's margin figures, USD x 1e8 (docs/matching.md, "Options").

    collateral: every balance at its reference price less its haircut;
    free_collateral: the same over free balances (what the initial check uses);
    initial: margin of the short it would hold if all its open sells filled;
    maintenance: margin of its current short. Under maintenance when
    collateral < maintenance."""

    collateral: int
    free_collateral: int
    initial: int
    maintenance: int


class PositionInfo(msgspec.Struct, array_like=True, frozen=True):
    """An account's position in one option series (quantity units; negative is
    short), the open quantity of its sell and buy orders in it, and its cost
    basis (premium ledger units paid for the contracts held, negative: received
    for a short; docs/pools.md, "Cost basis") (also the wire's element of
    ``Margin.positions``: new fields only at the end, with a default, so older
    clients still decode it)."""

    instrument: int
    position: int
    open_sells: int
    open_buys: int
    cost: int = 0


class FundingState(msgspec.Struct, frozen=True):
    """A perpetual series' funding (docs/funding.md).

    period_ns: its funding period T; index: the cumulative funding index at the
    last FUND (premium ledger units x 1e-6 per quantity unit) and index_ts its
    timestamp; time_value: mark - payoff of that FUND (price units), the rate
    until the next; pool: premium ledger units paid in and not yet paid out;
    open_interest: the sum of the long positions (quantity units)."""

    period_ns: int
    index: int
    index_ts: int
    time_value: int
    pool: int
    open_interest: int


class PoolInfo(msgspec.Struct, frozen=True, kw_only=True):
    """The main pool now (docs/pools.md).

    equity_usd: NAV in USD x 1e8; equity: NAV in pool-asset ledger units;
    shares: shares held by providers (share ledger units); the NAV per share
    figures are pool-asset units per share unit x 1e12 (engine.units.POOL_PPS_SCALE):
    twap_pps the mean of the last ``samples`` POOL_MARK samples, deposit_pps and
    redeem_pps what a deposit mints and a redemption burns at now (0 when none);
    initial_margin of the pool account in USD x 1e8 (the equity guard is
    equity >= initial_margin x equity_multiplier_bps / 10000); pending:
    (request id, account, shares, due ts in ns) of each redemption request;
    deposits: (request id, account, pool-asset amount reserved, due ts in ns) of
    each deposit request, which executes deposit_cooldown_ns after it."""

    account: int
    asset: int
    share_asset: int
    nav_ok: bool
    equity_usd: int
    equity: int
    shares: int
    twap_pps: int
    samples: int
    deposit_pps: int
    redeem_pps: int
    initial_margin: int
    cooldown_ns: int
    withdrawal_fee_bps: int
    equity_multiplier_bps: int
    pending: tuple[tuple[int, int, int, int], ...]
    deposit_cooldown_ns: int = 0
    deposits: tuple[tuple[int, int, int, int], ...] = ()


class InsuranceState(msgspec.Struct, frozen=True):
    """The pools of the loss waterfall (docs/pools.md, "Insurance pool and waterfall").

    insurance_account / main_account: the pools' accounts (main -1: none);
    balances: the insurance pool's (total, reserved) per asset id, ledger units;
    step_totals: (step, asset, amount) that each waterfall step has moved, net of
    what went back (1 own assets, 2 penalty, 3 insurance, 4 main pool, 5 paid to
    deleveraged longs); fees_due: per asset, the insurance pool's share of fees
    not yet swept to it; penalties_held: (account, asset, amount) of the
    penalties the insurance pool holds (reserved) for liquidations in progress,
    drawn back first if a later step finds the account bankrupt."""

    insurance_account: int
    main_account: int
    balances: list[tuple[int, int]]
    step_totals: list[tuple[int, int, int]]
    fees_due: list[int]
    penalties_held: list[tuple[int, int, int]] = []
