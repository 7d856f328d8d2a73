# The engine's parts and what reaches them outside a command: set-up, seeded
# resting orders, queries and state. MatchingEngine (matcher.pxd) extends this
# class through CommandApi (api.pxd).
from libc.stdint cimport int32_t, int64_t

from engine.core.book cimport Books
from engine.core.expiry cimport SeriesLife
from engine.core.funding cimport Funding
from engine.core.instrument cimport Instrument
from engine.core.ledger cimport Ledger
from engine.core.margin cimport Margin
from engine.core.pool cimport MainPool
from engine.core.risk cimport Risk
from engine.core.state cimport Parts
from engine.core.types cimport oid_t
from engine.core.waterfall cimport Waterfall


cdef class EngineParts:
    # -- parts --
    cdef Books books              # resting orders
    cdef Instrument* insts        # [instrument]
    cdef int32_t n_inst
    cdef list specs               # [instrument]: InstrumentSpec
    cdef list asset_specs         # [asset]: AssetSpec
    cdef Ledger ledger
    cdef Margin margins
    cdef SeriesLife life          # series status, settlement, covered calls
    cdef Risk funds               # reservations, fills, deposits
    cdef Funding funding          # perpetual series: funding indexes, pools, settlement
    cdef MainPool pool            # the main liquidity pool: terms, NAV samples, redemption requests
    cdef Waterfall losses         # insurance and main pool accounts, the loss waterfall's money
    cdef readonly bint risk
    cdef readonly int64_t max_accounts
    cdef readonly oid_t next_order_id   # every id below it was issued (paging cursors)
    cdef readonly int64_t last_seq

    # -- queries --
    cdef bint _account_ok(self, int64_t account) noexcept
    cdef int _checked_account(self, int64_t account) except -1

    # -- state (state.pyx puts the parts together) --
    cdef Parts _parts(self) noexcept
