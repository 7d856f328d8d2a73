# Shared typedefs, enums, numeric limits and C records of the matching core.
# Prices are int64 price units, quantities int64 quantity units (docs/matching.md).
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t

# -- numeric limits (engine/units.py is their one home; types.pyx refuses to
# import if a value here differs from it) --

cdef extern from *:
    """
    #define VENUE_BPS ((int64_t)10000)
    #define VENUE_MAX_LEDGER_DECIMALS ((int64_t)18)
    #define VENUE_ORDER_AMOUNT_LIMIT ((int64_t)1 << 60)
    #define VENUE_VALUE_LIMIT ((int64_t)1 << 62)
    #define VENUE_MAX_MARGIN_PER_QTY ((int64_t)1000000000000000)
    #define VENUE_MAX_USD_PRICE ((int64_t)1000000000000000)
    """
    const int64_t BPS "VENUE_BPS"
    const int64_t MAX_LEDGER_DECIMALS "VENUE_MAX_LEDGER_DECIMALS"
    const int64_t ORDER_AMOUNT_LIMIT "VENUE_ORDER_AMOUNT_LIMIT"
    const int64_t VALUE_LIMIT "VENUE_VALUE_LIMIT"
    const int64_t MAX_MARGIN_PER_QTY "VENUE_MAX_MARGIN_PER_QTY"
    const int64_t MAX_USD_PRICE "VENUE_MAX_USD_PRICE"

ctypedef int64_t price_t
ctypedef int64_t qty_t
ctypedef int64_t oid_t

# -- enums --

cpdef enum Side:
    BUY = 1
    SELL = 2

cpdef enum OrderType:
    LIMIT = 1
    MARKET = 2

cpdef enum TimeInForce:
    GTC = 1
    IOC = 2
    FOK = 3
    POST_ONLY = 4

cpdef enum SelfTrade:
    STP_NONE = 0
    CANCEL_NEWEST = 1
    CANCEL_OLDEST = 2
    CANCEL_BOTH = 3

cpdef enum TradingState:
    OPEN = 1
    HALTED = 2
    CLOSED = 3

cpdef enum CommandKind:
    NEW_ORDER = 1
    CANCEL = 2
    AMEND = 3
    MASS_CANCEL = 4
    SET_STATE = 5
    SET_REFERENCE = 6
    CREDIT = 7
    DEBIT = 8
    SET_ASSET_PRICE = 9
    SKIP_DEPOSIT = 10
    SET_OPTION_RISK = 11
    LIQUIDATE = 12
    FREEZE_ACCOUNT = 13
    SET_BANDS = 14
    SET_HAIRCUT = 15
    LIST_SERIES = 16
    DELIST_SERIES = 17
    SETTLE_SERIES = 18
    COVER_CALLS = 19
    FUND = 20
    POOL_DEPOSIT = 21
    POOL_REDEEM = 22
    POOL_MARK = 23
    POOL_DEPOSIT_REQUEST = 25
    POOL_CANCEL = 26
    TRANSFER_OUT = 27
    TRANSFER_IN = 28
    SWEEP_FEES = 24

cpdef enum EventKind:
    ACCEPTED = 1
    REJECTED = 2
    FILL = 3
    CANCELLED = 4
    AMENDED = 5
    MASS_CANCELLED = 6
    STATE_CHANGED = 7
    REFERENCE_SET = 8
    CREDITED = 9
    DEBITED = 10
    ASSET_PRICE_SET = 11
    DEPOSIT_SKIPPED = 12
    OPTION_RISK_SET = 13
    LIQUIDATED = 14
    ACCOUNT_FROZEN = 15
    BANDS_SET = 16
    HAIRCUT_SET = 17
    SERIES_LISTED = 18
    SERIES_CLOSED = 19
    POSITION_SETTLED = 20
    COVERING_SET = 21
    FUNDING_SETTLED = 22
    FUNDED = 23
    POOL_PAID = 24
    POOL_REDEEM_REQUESTED = 25
    POOL_MARKED = 26
    POOL_DEPOSIT_REQUESTED = 55
    POOL_REQUEST_CANCELLED = 56
    TRANSFERRED_OUT = 52
    TRANSFERRED_IN = 53
    PENALTY_CHARGED = 27
    LOSS_COVERED = 28
    DELEVERAGED = 29
    FEES_SWEPT = 30

cpdef enum CancelReason:
    USER = 1
    IOC_REMAINDER = 2
    FOK_KILLED = 3
    SELF_TRADE = 4
    BAND = 5
    MASS = 6
    LIQUIDATION = 7
    FROZEN = 8
    EXPIRED = 9
    DELISTED = 10

cpdef enum Reject:
    UNKNOWN_INSTRUMENT = 1
    UNKNOWN_ACCOUNT = 2
    INVALID_SIDE = 3
    INVALID_ORDER_TYPE = 4
    INVALID_TIF = 5
    INVALID_STP = 6
    INVALID_QUANTITY = 7
    QUANTITY_OFF_LOT = 8
    QUANTITY_BELOW_MIN = 9
    QUANTITY_ABOVE_MAX = 10
    INVALID_PRICE = 11
    PRICE_OFF_TICK = 12
    PRICE_ABOVE_MAX = 13
    PRICE_OUTSIDE_BAND = 14
    POST_ONLY_WOULD_TAKE = 15
    NO_REFERENCE_PRICE = 16
    INSTRUMENT_HALTED = 17
    INSTRUMENT_CLOSED = 18
    UNKNOWN_ORDER = 19
    NOT_ORDER_OWNER = 20
    UNKNOWN_COMMAND = 21
    INVALID_STATE = 22
    BOOK_FULL = 23
    UNKNOWN_ASSET = 24
    INSUFFICIENT_BALANCE = 25
    AMOUNT_OVERFLOW = 26
    INVALID_AMOUNT = 27
    ACCOUNTS_DISABLED = 28
    DUPLICATE_DEPOSIT = 29
    DEPOSIT_GAP = 30
    INSUFFICIENT_MARGIN = 31
    NOT_UNDER_MAINTENANCE = 32
    NOT_AN_OPTION = 33
    INVALID_MARGIN = 34
    MARGIN_NOT_SET = 35
    ACCOUNT_IS_FROZEN = 36
    FEE_ACCOUNT_NOT_FREEZABLE = 37
    INVALID_BAND = 38
    INVALID_HAIRCUT = 39
    SERIES_EXPIRED = 40
    SERIES_EXISTS = 41
    INVALID_SERIES = 42
    OPEN_INTEREST = 43
    NOT_EXPIRED = 44
    SERIES_FINAL = 45
    NOT_PERPETUAL = 46
    INVALID_FUNDING = 47
    FUNDING_OVERFLOW = 48
    NOT_A_POOL = 49
    POOL_COOLDOWN = 50
    POOL_EQUITY_GUARD = 51
    POOL_NAV_UNSET = 52
    UNKNOWN_REDEMPTION = 53
    POOL_REQUEST_DUE = 56
    POOL_REQUEST_PENDING = 57
    TRANSFER_DUPLICATE = 59
    TRANSFER_GAP = 60
    INVALID_TRANSFER = 61
    POOLS_NOT_SET = 54
    NOTHING_TO_SWEEP = 55

# -- records shared with numpy (engine/core/records.py mirrors them) --

ctypedef struct CommandRec:
    int64_t seq
    int64_t ts
    uint8_t kind
    uint8_t side
    uint8_t order_type
    uint8_t tif
    uint8_t stp
    uint8_t state
    uint8_t pad0
    uint8_t pad1
    int32_t instrument
    int32_t asset
    int64_t account
    int64_t order_id
    int64_t client_order_id
    int64_t price
    int64_t qty

ctypedef struct EventRec:
    int64_t seq
    int64_t ts
    uint8_t kind
    uint8_t reason
    uint8_t side
    uint8_t aux
    int32_t instrument
    int64_t order_id
    int64_t client_order_id
    int64_t account
    int64_t price
    int64_t qty
    int64_t leaves
    int64_t maker_order_id
    int64_t maker_client_order_id
    int64_t maker_account
    int64_t maker_leaves
    int64_t fee
    int64_t maker_fee
    int32_t asset
    int32_t pad0

# -- internal records --

# One order in the pool. Resting orders are linked twice: into their price
# level's FIFO (prev/next) and into their account's list (acct_prev/acct_next).
ctypedef struct Order:
    oid_t order_id
    int64_t client_order_id
    price_t price
    qty_t leaves
    int32_t account
    int32_t instrument
    int32_t prev
    int32_t next
    int32_t acct_prev
    int32_t acct_next
    int32_t level
    uint8_t side
    uint8_t tif
    uint8_t stp
    uint8_t live

# One price level: an intrusive FIFO of orders (head is oldest).
ctypedef struct Level:
    price_t price
    qty_t qty
    int32_t head
    int32_t tail
    int32_t count
    int32_t next_free
