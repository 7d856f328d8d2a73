# The main liquidity pool (docs/pools.md): its terms, its net asset value over
# the pool account's balances and option positions at mark, the time-weighted
# NAV per share sampled by POOL_MARK, the pending redemption requests (at
# most one per account: a new request adds to it) and the pending deposit
# requests (at most one per account; their pool asset is reserved).
from libc.stdint cimport int32_t, int64_t

from engine.core.instrument cimport Instrument
from engine.core.ledger cimport Ledger


# What a NAV computation found: equity in USD x 1e8 and in pool-asset ledger
# units, and the shares held outside the pool's treasury.
ctypedef struct Nav:
    int64_t usd
    int64_t units
    int64_t shares
    bint ok              # every held asset and option position has a price


cdef class MainPool:
    cdef Ledger ledger
    cdef readonly bint configured
    cdef readonly int64_t account        # the pool account
    cdef readonly int32_t asset          # what providers deposit and are paid in
    cdef readonly int32_t share_asset    # the pool share; the pool account holds the unissued supply
    cdef readonly int32_t nav_window     # samples averaged (0: spot NAV only)
    cdef readonly int64_t cooldown_ns
    cdef readonly int64_t deposit_cooldown_ns  # between a deposit request and its execution
    cdef readonly int64_t fee_bps        # withdrawal fee, kept by the pool
    cdef readonly int64_t multiplier_bps # equity guard: equity >= initial margin x this / 10000
    cdef list samples                    # NAV per share (x PPS_SCALE) of the last nav_window POOL_MARKs
    cdef dict pending                    # request id -> (account, shares, due ts)
    cdef dict requested                  # account -> its one pending request id
    cdef dict deposits                   # request id -> (account, pool-asset amount reserved, due ts)
    cdef dict depositing                 # account -> its one pending deposit request id
    cdef readonly int64_t next_request

    # -- queries --
    cdef Nav nav(self, const Instrument* insts, int32_t n_inst) noexcept
    cdef int64_t twap(self)
    cdef int64_t deposit_pps(self, const Nav* n)
    cdef int64_t redeem_pps(self, const Nav* n)
    cdef int64_t pending_shares(self, int64_t account)
    cdef int locked(self, dict need) except -1

    # -- commands --
    cdef int configure(self, int64_t account, int32_t asset, int32_t share_asset, int32_t nav_window,
                       int64_t cooldown_ns, int64_t fee_bps, int64_t multiplier_bps,
                       int64_t deposit_cooldown_ns) except -1
    cdef int sample(self, const Nav* n) except -1
    cdef int64_t request(self, int64_t account, int64_t shares, int64_t due) except -1
    cdef int done(self, int64_t rid) except -1
    cdef int64_t request_deposit(self, int64_t account, int64_t amount, int64_t due) except -1
    cdef int deposit_done(self, int64_t rid) except -1

    # -- state (state.pyx puts the parts together) --
    cdef object write_part(self)
    cdef int read_part(self, part, accounts) except -1
    cdef list write_deposits(self)
    cdef int read_deposits(self, list rows, accounts) except -1
    cdef int hash_words(self, list words) except -1
    cdef int check_integrity(self) except -1
