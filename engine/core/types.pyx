"""Enums and numeric limits of the matching core, importable from Python, and
readable reject texts."""

from engine import units

# The core's limits are C constants (types.pxd); engine/units.py is their home.
LIMITS = {
    "BPS": BPS,
    "MAX_LEDGER_DECIMALS": MAX_LEDGER_DECIMALS,
    "ORDER_AMOUNT_LIMIT": ORDER_AMOUNT_LIMIT,
    "VALUE_LIMIT": VALUE_LIMIT,
    "MAX_MARGIN_PER_QTY": MAX_MARGIN_PER_QTY,
    "MAX_USD_PRICE": MAX_USD_PRICE,
}
"""The core's numeric limits by their engine.units name."""

if any(getattr(units, name) != value for name, value in LIMITS.items()):
    raise ImportError("engine/core/types.pxd limits differ from engine/units.py")

REJECT_TEXT = {
    Reject.UNKNOWN_INSTRUMENT: "unknown instrument",
    Reject.UNKNOWN_ACCOUNT: "unknown account",
    Reject.INVALID_SIDE: "side must be BUY or SELL",
    Reject.INVALID_ORDER_TYPE: "order type must be LIMIT or MARKET",
    Reject.INVALID_TIF: "time in force not valid for this order type",
    Reject.INVALID_STP: "unknown self-trade prevention mode",
    Reject.INVALID_QUANTITY: "quantity must be positive",
    Reject.QUANTITY_OFF_LOT: "quantity is not a multiple of the lot size",
    Reject.QUANTITY_BELOW_MIN: "quantity below the instrument's minimum",
    Reject.QUANTITY_ABOVE_MAX: "quantity above the instrument's maximum",
    Reject.INVALID_PRICE: "price must be positive",
    Reject.PRICE_OFF_TICK: "price is not a multiple of the tick size",
    Reject.PRICE_ABOVE_MAX: "price above the instrument's maximum",
    Reject.PRICE_OUTSIDE_BAND: "price outside the static band around the reference price",
    Reject.POST_ONLY_WOULD_TAKE: "post-only order would take liquidity",
    Reject.NO_REFERENCE_PRICE: "market order needs a price band (no reference or last price)",
    Reject.INSTRUMENT_HALTED: "instrument is halted",
    Reject.INSTRUMENT_CLOSED: "instrument is closed",
    Reject.UNKNOWN_ORDER: "no resting order with this id",
    Reject.NOT_ORDER_OWNER: "order belongs to another account",
    Reject.UNKNOWN_COMMAND: "unknown command kind",
    Reject.INVALID_STATE: "unknown trading state",
    Reject.BOOK_FULL: "order capacity of the engine is exhausted",
    Reject.UNKNOWN_ASSET: "unknown asset",
    Reject.INSUFFICIENT_BALANCE: "insufficient free balance",
    Reject.AMOUNT_OVERFLOW: "amount exceeds the 64-bit balance limit",
    Reject.INVALID_AMOUNT: "amount must be positive",
    Reject.ACCOUNTS_DISABLED: "this engine runs without accounts (risk off)",
    Reject.DUPLICATE_DEPOSIT: "deposit already credited",
    Reject.DEPOSIT_GAP: "deposit id skips an earlier deposit",
    Reject.INSUFFICIENT_MARGIN: "collateral value after haircuts would not cover the initial margin",
    Reject.NOT_UNDER_MAINTENANCE: "account is not under its maintenance margin",
    Reject.NOT_AN_OPTION: "instrument is not an option series",
    Reject.INVALID_MARGIN: "margins must be positive, maintenance at most initial",
    Reject.MARGIN_NOT_SET: "option series has no margin rates yet (operator SetOptionRisk)",
    Reject.ACCOUNT_IS_FROZEN: "account is frozen: its wallet requested an exit on chain",
    Reject.FEE_ACCOUNT_NOT_FREEZABLE: "the fee account cannot be frozen (every fill pays it)",
    Reject.INVALID_BAND: "band widths must be in [0, 10000) bps",
    Reject.INVALID_HAIRCUT: "haircut must be in [0, 10000] bps",
    Reject.SERIES_EXPIRED: "option series has expired: it no longer trades",
    Reject.SERIES_EXISTS: "a series with these terms is already listed",
    Reject.INVALID_SERIES: "series terms not valid (template, right, expiry date, strike or contract size)",
    Reject.OPEN_INTEREST: "series has open positions: settle it at expiry instead of delisting",
    Reject.NOT_EXPIRED: "series expiry time has not passed (a perpetual series never expires)",
    Reject.SERIES_FINAL: "series is already settled or delisted",
    Reject.NOT_PERPETUAL: "instrument is not a perpetual option series",
    Reject.INVALID_FUNDING: "funding needs 0 <= payoff <= mark <= the series' max price (price units)",
    Reject.FUNDING_OVERFLOW: "funding step would take the series' funding index past its 2**62 limit",
    Reject.NOT_A_POOL: "no main pool has this share asset, or the pool account cannot provide to itself",
    Reject.POOL_COOLDOWN: "the pool request's cooldown is not over yet",
    Reject.POOL_EQUITY_GUARD: "the pool's equity would fall below its initial margin times the equity multiplier",
    Reject.POOL_NAV_UNSET: "the pool's NAV has no price: a held asset or option position is not priced",
    Reject.UNKNOWN_REDEMPTION: "no pending pool request (redemption or deposit) has this id",
    Reject.POOL_REQUEST_DUE: "the deposit request is due: it executes at the pool's NAV now, it cannot be cancelled",
    Reject.POOL_REQUEST_PENDING: "the account already has a pending deposit request (cancel it or wait for it)",
    Reject.TRANSFER_DUPLICATE: "transfer already applied on this shard (each transfer id applies once)",
    Reject.TRANSFER_GAP: "transfer number skips one: transfers between two shards apply in order",
    Reject.INVALID_TRANSFER: "not a transfer id (src << 48 | dst << 40 | number, two different shards below 16)",
    Reject.POOLS_NOT_SET: "no insurance pool is configured ([pools] insurance_account)",
    Reject.NOTHING_TO_SWEEP: "the insurance pool's share of this asset's fees is already swept",
}

CANCEL_TEXT = {
    CancelReason.USER: "cancelled by user",
    CancelReason.IOC_REMAINDER: "immediate-or-cancel remainder",
    CancelReason.FOK_KILLED: "fill-or-kill could not fill completely",
    CancelReason.SELF_TRADE: "self-trade prevention",
    CancelReason.BAND: "price band: could not trade inside the band",
    CancelReason.MASS: "mass cancel",
    CancelReason.LIQUIDATION: "liquidation of the account",
    CancelReason.FROZEN: "account frozen by its on-chain exit request",
    CancelReason.EXPIRED: "option series expired",
    CancelReason.DELISTED: "option series delisted",
}
