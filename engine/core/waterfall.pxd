# The insurance pool and the money of the loss waterfall: which accounts are
# the pools, the liquidation penalty and the insurance pool's shares of
# penalties and fees, the penalties held for liquidations in progress, and the
# exact transfers of each step (losses.pyx runs the steps and emits their events).
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.ledger cimport Ledger


# The steps of the waterfall, in the order they cover a loss (the aux of a
# LOSS_COVERED event, the row of the totals).
cdef enum LossStep:
    STEP_OWN = 1          # the account's own assets the plan could not sell
    STEP_PENALTY = 2      # the penalty it paid in this liquidation (every step of it so far), drawn back
    STEP_INSURANCE = 3
    STEP_MAIN = 4
    STEP_ADL = 5          # what the deleveraged longs were paid (DELEVERAGED)
    N_STEPS = 6


# What one cover drew per step, so what it did not use goes back exactly.
ctypedef struct Draw:
    int64_t by_step[6]


cdef class Waterfall:
    cdef Ledger ledger
    cdef readonly bint enabled
    cdef readonly int64_t insurance          # the insurance pool's account
    cdef readonly int64_t main               # the main pool's account; -1: none
    cdef readonly int64_t fee_account
    cdef readonly int64_t penalty_bps        # of the notional a liquidation buys back
    cdef readonly int64_t penalty_share_bps  # of a penalty, to the insurance pool (the rest: fee account)
    cdef readonly int64_t fee_share_bps      # of trading fees, to the insurance pool (SWEEP_FEES)
    cdef readonly int64_t step_lots          # lots a liquidation closes per series and command; 0: all
    cdef readonly bint hold_penalty          # penalties held across a liquidation's steps (False: the rule of
                                             # venues defined before, each command's penalty released at its end)
    cdef int64_t* fee_income                 # [asset]: fees the fee account earned (risk.pyx adds them)
    cdef int64_t* fees_swept                 # [asset]: moved to the insurance pool so far
    cdef int64_t* totals                     # [step * n_assets + asset]: what each step ever moved
    cdef int32_t n_assets
    # {account: {asset: penalty}} of the liquidations in progress: what their steps
    # charged and did not draw back, reserved in the insurance pool until the
    # liquidation ends (then the fee account's share goes on to it)
    cdef readonly dict held

    # -- queries --
    cdef int64_t payer(self, uint8_t step) noexcept
    cdef int64_t available(self, uint8_t step, int32_t asset, int64_t penalty_left) noexcept
    cdef int64_t fees_due(self, int32_t asset) noexcept
    cdef list step_totals(self)

    # -- commands --
    cdef int configure(self, int64_t insurance, int64_t main, int64_t penalty_bps, int64_t penalty_share_bps,
                       int64_t fee_share_bps, int64_t step_lots, int32_t n_assets, bint hold_penalty) except -1
    cdef int64_t draw(self, uint8_t step, int64_t payee, int32_t asset, int64_t want, int64_t penalty_left,
                      Draw* d) noexcept
    cdef inline void count(self, uint8_t step, int32_t asset, int64_t amount) noexcept nogil:
        self.totals[step * self.n_assets + asset] += amount
    cdef int64_t sweep(self, int32_t asset) noexcept
    cdef int hold(self, int64_t account, int32_t asset, int64_t amount) except -1
    cdef list release(self, int64_t account)

    # -- state (state.pyx puts the parts together) --
    cdef list write_part(self)
    cdef int read_part(self, list part) except -1
    cdef int hash_words(self, list words) except -1
    cdef list write_held(self)
    cdef int read_held(self, list rows) except -1
    cdef int locked(self, dict need) except -1
