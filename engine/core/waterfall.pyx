"""The insurance pool and the money of the loss waterfall (docs/pools.md,
"Insurance pool and waterfall"): which accounts are the insurance and main
pools, the liquidation penalty and the insurance pool's shares of penalties
and trading fees, the penalties held for liquidations in progress, each step's
exact transfer, and what every step has moved.

Every transfer here is a move of balance from one account to another in one
asset: nothing is created, and a payer gives at most its free balance (the
penalty step: at most the penalty it holds), so no balance goes negative.
losses.pyx decides the amounts and emits the events.

A liquidation's penalty stays the liquidated account's last resort until the
liquidation ends: every step's penalty is held by the insurance pool as a
reserved amount of its balance (`held`), which only the penalty step of that
account's later steps draws on; when the liquidation ends (losses.pyx,
`_end_liquidations`) the fee account's share goes on to it and the rest becomes
the insurance pool's own.
"""

from cpython.mem cimport PyMem_RawCalloc, PyMem_RawFree

from engine.core.types cimport BPS


cdef class Waterfall:
    """The pools' accounts, the waterfall's settings and its exact transfers over a Ledger."""

    def __cinit__(self, Ledger ledger, int64_t fee_account):
        self.ledger = ledger
        self.fee_account = fee_account
        self.main = -1
        self.insurance = -1
        self.held = {}

    def __dealloc__(self):
        PyMem_RawFree(self.fee_income)
        PyMem_RawFree(self.fees_swept)
        PyMem_RawFree(self.totals)

    # -- queries --

    cdef int64_t payer(self, uint8_t step) noexcept:
        """The account a step draws from: the insurance pool (which holds this
        liquidation's penalty) or the main pool; -1 for none."""
        if step == STEP_PENALTY or step == STEP_INSURANCE:
            return self.insurance
        if step == STEP_MAIN:
            return self.main
        return -1

    cdef int64_t available(self, uint8_t step, int32_t asset, int64_t penalty_left) noexcept:
        """What a step can give in ``asset`` now: the penalty step the
        liquidation's penalty not yet drawn back (``penalty_left``, held reserved
        by the insurance pool), the others their payer's free balance (so the
        insurance step never spends a penalty held for any liquidation)."""
        cdef int64_t payer = self.payer(step)
        cdef int64_t free
        if payer < 0:
            return 0
        if step == STEP_PENALTY:
            return max(0, min(self.ledger.at(payer, asset).reserved, penalty_left))
        free = self.ledger.free(payer, asset)
        return free if free > 0 else 0

    cdef int64_t fees_due(self, int32_t asset) noexcept:
        """The insurance pool's share of the fees earned in ``asset`` not yet
        swept to it, at most the fee account's free balance."""
        cdef int64_t due = self.fee_income[asset] // BPS * self.fee_share_bps + (
            self.fee_income[asset] % BPS * self.fee_share_bps // BPS) - self.fees_swept[asset]
        return max(0, min(due, self.ledger.free(self.fee_account, asset)))

    cdef list step_totals(self):
        """[[step, asset, amount]] of every step and asset that moved something."""
        cdef int step
        cdef int32_t a
        return [[step, a, self.totals[step * self.n_assets + a]]
                for step in range(STEP_OWN, N_STEPS) for a in range(self.n_assets)
                if self.totals[step * self.n_assets + a]]

    # -- commands --

    cdef int configure(self, int64_t insurance, int64_t main, int64_t penalty_bps, int64_t penalty_share_bps,
                       int64_t fee_share_bps, int64_t step_lots, int32_t n_assets, bint hold_penalty) except -1:
        """Turn the waterfall on (once, at set-up, after the assets); ValueError if invalid."""
        if self.enabled:
            raise ValueError("the pools are already configured")
        if not self.ledger.known(insurance) or insurance == self.fee_account:
            raise ValueError("insurance_account must be an open account other than the fee account")
        if main != -1 and (not self.ledger.known(main) or main in (insurance, self.fee_account)):
            raise ValueError("main_account must be an open account other than the insurance and fee accounts")
        for name, bps in (("penalty_bps", penalty_bps), ("penalty_share_bps", penalty_share_bps),
                          ("fee_share_bps", fee_share_bps)):
            if not 0 <= bps <= BPS:
                raise ValueError(f"{name} must be in [0, 10000]")
        if not 0 <= step_lots <= (1 << 31):
            raise ValueError("step_lots must be in [0, 2**31] (0: close everything at once)")
        self.fee_income = <int64_t*>PyMem_RawCalloc(max(n_assets, 1), sizeof(int64_t))
        self.fees_swept = <int64_t*>PyMem_RawCalloc(max(n_assets, 1), sizeof(int64_t))
        self.totals = <int64_t*>PyMem_RawCalloc(N_STEPS * max(n_assets, 1), sizeof(int64_t))
        if self.fee_income == NULL or self.fees_swept == NULL or self.totals == NULL:
            raise MemoryError()
        self.n_assets = n_assets
        self.insurance = insurance
        self.main = main
        self.penalty_bps = penalty_bps
        self.penalty_share_bps = penalty_share_bps
        self.fee_share_bps = fee_share_bps
        self.step_lots = step_lots
        self.hold_penalty = hold_penalty
        self.enabled = True
        return 0

    cdef int64_t draw(self, uint8_t step, int64_t payee, int32_t asset, int64_t want, int64_t penalty_left,
                      Draw* d) noexcept:
        """Move up to ``want`` of ``asset`` from the step's payer to ``payee``;
        returns the amount moved (recorded in ``d`` and the step's total)."""
        cdef int64_t amount = min(want, self.available(step, asset, penalty_left))
        if amount <= 0:
            return 0
        self.ledger.move(self.payer(step), asset, -amount, -amount if step == STEP_PENALTY else 0)
        self.ledger.move(payee, asset, amount, 0)
        d.by_step[step] += amount
        self.count(step, asset, amount)
        return amount

    cdef int64_t sweep(self, int32_t asset) noexcept:
        """Move the insurance pool's due share of fees from the fee account; returns it."""
        cdef int64_t due = self.fees_due(asset)
        if due > 0:
            self.ledger.move(self.fee_account, asset, -due, 0)
            self.ledger.move(self.insurance, asset, due, 0)
            self.fees_swept[asset] += due
        return due

    cdef int hold(self, int64_t account, int32_t asset, int64_t amount) except -1:
        """Charge ``account`` a penalty of ``amount`` (at most its free balance):
        moved to the insurance pool, reserved there and held for the account's
        liquidation until it ends."""
        self.ledger.move(account, asset, -amount, 0)
        self.ledger.move(self.insurance, asset, amount, amount)
        penalty = self.held.setdefault(account, {})
        penalty[asset] = penalty.get(asset, 0) + amount
        return 0

    cdef list release(self, int64_t account):
        """End ``account``'s liquidation: what is still held of its penalty stops
        being reserved and the fee account's share of it goes on to the fee
        account; returns [(asset, fee share paid)] of the assets that paid one."""
        cdef int64_t left, fee_part
        paid = []
        for asset, left in sorted(self.held.pop(account, {}).items()):
            fee_part = left - left * self.penalty_share_bps // BPS
            self.ledger.move(self.insurance, asset, -fee_part, -left)
            self.ledger.move(self.fee_account, asset, fee_part, 0)
            if fee_part > 0:
                paid.append((asset, fee_part))
        return paid

    # -- state --

    cdef list write_part(self):
        """[settings, fee income, fees swept, step totals], or [] when unused
        (the snapshot's `insurance` section)."""
        cdef int32_t a
        if not self.enabled:
            return []
        return [[self.insurance, self.main, self.penalty_bps, self.penalty_share_bps, self.fee_share_bps,
                 self.step_lots, int(self.hold_penalty)],
                [self.fee_income[a] for a in range(self.n_assets)],
                [self.fees_swept[a] for a in range(self.n_assets)],
                self.step_totals()]

    cdef int read_part(self, list part) except -1:
        """Restore what write_part wrote (after the ledger); ValueError if invalid."""
        cdef int32_t a
        if not part:
            return 0
        if len(part) != 4 or len(part[0]) not in (6, 7) or part[0][6:] not in ([], [0], [1]):
            raise ValueError("snapshot insurance section is not valid")
        # Six settings: a version-5 snapshot, written before penalties were held across steps.
        ins, main, penalty, penalty_share, fee_share, step_lots = part[0][:6]
        self.configure(ins, main, penalty, penalty_share, fee_share, step_lots, self.ledger.n_assets,
                       part[0][6:] == [1])
        if len(part[1]) != self.n_assets or len(part[2]) != self.n_assets:
            raise ValueError("snapshot insurance fees do not match the assets")
        for a in range(self.n_assets):
            self.fee_income[a] = part[1][a]
            self.fees_swept[a] = part[2][a]
        for step, a, amount in part[3]:
            if not (STEP_OWN <= step < N_STEPS and 0 <= a < self.n_assets):
                raise ValueError(f"snapshot waterfall total {[step, a, amount]} is not valid")
            self.totals[step * self.n_assets + a] = amount
        return 0

    cdef int hash_words(self, list words) except -1:
        """The waterfall's part of the state hash, only when configured (an
        engine without pools hashes as before they existed); the rule version
        (hold_penalty, fixed by the venue definition) is left out, so an engine
        holding no penalty hashes as before it existed."""
        part = self.write_part()
        if part:
            words += [len(part[3]), *part[0][:6], *part[1], *part[2]]
            for row in part[3]:
                words += row
        rows = self.write_held()
        if rows:
            # Only while a penalty is held: other states hash as before.
            words += [len(rows), *[w for row in rows for w in row]]
        return 0

    cdef list write_held(self):
        """[[account, asset, penalty]] held for liquidations in progress, sorted,
        nonzero only (the snapshot's `penalties_held` section)."""
        return [[account, asset, amount] for account, penalty in sorted(self.held.items())
                for asset, amount in sorted(penalty.items()) if amount]

    cdef int read_held(self, list rows) except -1:
        """Restore what write_held wrote (after the ledger and the settings);
        ValueError if invalid (the integrity check then matches the insurance
        pool's reserved balance against it)."""
        self.held = {}
        if rows and not self.enabled:
            raise ValueError("snapshot holds liquidation penalties but has no insurance pool")
        for row in rows:
            if len(row) != 3:
                raise ValueError(f"snapshot held penalty {row} is not valid")
            account, asset, amount = row
            if not (self.ledger.known(account) and 0 <= asset < self.n_assets and amount > 0
                    and asset not in self.held.get(account, {})):
                raise ValueError(f"snapshot held penalty {row} is not valid")
            self.held.setdefault(account, {})[asset] = amount
        return 0

    cdef int locked(self, dict need) except -1:
        """Add the penalties held to the insurance pool's ``need`` ((account,
        asset) -> reserved amount), for the integrity check."""
        for penalty in self.held.values():
            for asset, amount in penalty.items():
                key = (self.insurance, asset)
                need[key] = need.get(key, 0) + amount
        return 0
