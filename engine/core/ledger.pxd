from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.types cimport INSUFFICIENT_BALANCE, VALUE_LIMIT

# A cost basis share is a cost times a quantity.
cdef extern from *:
    ctypedef long long int128_t "__int128"


# One (account, asset) balance: both halves share a cache line.
ctypedef struct Balance:
    int64_t total
    int64_t reserved


# One (account, option series) position: signed contracts held (in quantity
# units; negative = short), the leaves of the account's open sell orders in
# the series (they may still add to a short) and of its open buys (a buy is
# exempt from the margin check while all of them stay within the short), and
# the part of its call exposure covered by underlying it holds locked
# (expiry.pyx: at most max(ask_open - pos, 0); margin.pyx does not margin it).
# In a perpetual series also its funding (funding.pyx): the series' index when
# it was last settled, and what it still owes in index units (docs/funding.md).
# cost is the position's cost basis (add_position; docs/pools.md, "Cost basis"),
# kept last so the fields the margin check reads stay together.
ctypedef struct Position:
    int64_t pos
    int64_t ask_open
    int64_t bid_open
    int64_t entry       # funding index at the last settlement
    int64_t carry       # funding owed, ledger units x 1e-6: > 0 unpaid, in (-1e6, 0] a rounding credit
    int64_t covered
    int64_t cost        # premium ledger units paid for the contracts held (short: received, negative)


cdef inline void add_position(Position* p, int64_t q, int64_t premium) noexcept nogil:
    """Add ``q`` contracts (negative: sold) traded for ``premium`` (>= 0, the
    amount paid or received) to the position and its cost basis, average cost:
    adding to a side adds the signed premium; closing part keeps cost x
    remaining / held, truncated toward zero (the rest is realised); closing all
    leaves 0; flipping keeps the new side's share of the signed premium,
    premium x new / |q|, truncated toward zero. The cost saturates at
    +-VALUE_LIMIT (a premium is at most a balance, below VALUE_LIMIT, so the
    sum cannot overflow first): only wash trades of more than all the money
    there is could reach it. engine/reference/cost.py is the same rule in
    plain Python."""
    cdef int64_t before = p.pos
    cdef int64_t signed_premium = premium if q > 0 else -premium
    p.pos = before + q
    if before == 0 or (before > 0) == (q > 0):
        p.cost += signed_premium
        if p.cost > VALUE_LIMIT:
            p.cost = VALUE_LIMIT
        elif p.cost < -VALUE_LIMIT:
            p.cost = -VALUE_LIMIT
    elif p.pos == 0:
        p.cost = 0
    elif (p.pos > 0) == (before > 0):
        p.cost = <int64_t>(<int128_t>p.cost * p.pos // before)   # cdivision: truncates toward zero
    else:
        p.cost = <int64_t>(<int128_t>signed_premium * p.pos // q)


cdef class Ledger:
    """Per (account, asset) total and reserved balances in ledger units, the
    open-account flags, per-asset reference prices (USD x 1e8), and option
    positions per (account, series)."""

    cdef Balance* rows          # [account * stride + asset]
    cdef uint8_t* is_open       # [account]
    cdef int64_t acct_cap
    cdef int32_t stride         # asset capacity of a row
    cdef int32_t n_assets
    cdef int64_t* net_credits   # [asset]: credits minus debits, for the conservation check
    cdef int64_t* usd_price     # [asset]: 0 = unset
    cdef int32_t* haircut_bps   # [asset]
    cdef int64_t* unit_scale    # [asset]: ledger units per whole token (10**ledger_decimals)
    cdef int64_t n_open
    cdef Position* positions    # [account * series_stride + series]
    cdef uint8_t* has_options   # [account]: ever held an option position or sell order
    cdef int32_t series_stride
    cdef int32_t n_series

    # -- queries --
    cdef inline bint known(self, int64_t account) noexcept nogil:
        return 0 <= account < self.acct_cap and self.is_open[account]

    cdef inline Balance* at(self, int64_t account, int32_t asset) noexcept nogil:
        return &self.rows[account * self.stride + asset]

    cdef inline int64_t free(self, int64_t account, int32_t asset) noexcept nogil:
        cdef Balance* b = &self.rows[account * self.stride + asset]
        return b.total - b.reserved

    cdef list balances(self, int64_t account)
    cdef list open_accounts(self)

    # -- commands --
    cdef uint8_t credit(self, int64_t account, int32_t asset, int64_t amount) noexcept
    cdef uint8_t debit(self, int64_t account, int32_t asset, int64_t amount) noexcept
    cdef inline uint8_t reserve(self, int64_t account, int32_t asset, int64_t amount) noexcept nogil:
        cdef Balance* b = &self.rows[account * self.stride + asset]
        if amount > b.total - b.reserved:
            return INSUFFICIENT_BALANCE
        b.reserved += amount
        return 0
    cdef inline void release(self, int64_t account, int32_t asset, int64_t amount) noexcept nogil:
        self.rows[account * self.stride + asset].reserved -= amount

    cdef inline void move(self, int64_t account, int32_t asset, int64_t total_delta,
                          int64_t reserved_delta) noexcept nogil:
        cdef Balance* b = &self.rows[account * self.stride + asset]
        b.total += total_delta
        b.reserved += reserved_delta

    cdef inline Position* position(self, int64_t account, int32_t series) noexcept nogil:
        return &self.positions[account * self.series_stride + series]

    cdef int add_asset(self, int32_t haircut_bps, int64_t unit_scale) except -1
    cdef int add_series(self) except -1
    cdef int open_account(self, int64_t account) except -1

    # -- state (state.pyx puts the parts together) --
    cdef dict write_part(self)
    cdef object read_part(self, snap, int64_t max_accounts)
    cdef int hash_words(self, list words) except -1
    cdef int read_costs(self, snap, accounts, list marks) except -1
    cdef list changed_haircuts(self, list asset_specs)
    cdef int read_haircuts(self, list rows) except -1
