"""The main liquidity pool (docs/pools.md): its terms, its net asset value, the
time-weighted NAV per share, and the pending redemption and deposit requests.

NAV is the pool account's balances at their USD reference price plus its
option positions at their mark (the series' reference price), each term
floored, in USD x 1e8, then in pool-asset ledger units. Shares live as ledger
balances of the share asset: the pool account holds the unissued supply, so
minting and burning are transfers (nothing is created), and the shares
outstanding are the asset's credited total less the pool's holding. A pending
deposit request's amount is reserved in the provider's pool-asset balance
(pool_api.pyx reserves and releases it; ``locked`` tells the integrity check).
Deposit and redemption requests take their ids from one counter, so an id
names one request of either kind.
PoolApi (pool_api.pyx) runs the commands; this module holds the state and
the arithmetic.
"""

from libc.stdint cimport int32_t, int64_t

from engine.core.types cimport VALUE_LIMIT

from engine.units import POOL_PPS_SCALE

cdef extern from *:
    ctypedef long long int128_t "__int128"

cdef int64_t PPS_SCALE = POOL_PPS_SCALE


cdef inline int64_t _capped(int128_t v) noexcept:
    # Values saturate at +-2**62, as collateral values do.
    if v > VALUE_LIMIT:
        return VALUE_LIMIT
    if v < -VALUE_LIMIT:
        return -VALUE_LIMIT
    return <int64_t>v


cdef inline int128_t _floordiv(int128_t a, int128_t b) noexcept:
    # C division truncates; NAV terms of short positions are negative and floor.
    cdef int128_t q = a / b
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef class MainPool:
    """The main pool's terms, NAV, NAV samples and redemption requests over a Ledger."""

    def __cinit__(self, Ledger ledger):
        self.ledger = ledger
        self.samples = []
        self.pending = {}
        self.requested = {}
        self.deposits = {}
        self.depositing = {}
        self.next_request = 1

    # -- queries --

    cdef Nav nav(self, const Instrument* insts, int32_t n_inst) noexcept:
        """The pool's equity: balances (its share treasury excluded) at their
        USD price plus option positions at mark. ``ok`` is false when a held
        asset, a position's mark or its premium asset, or the pool asset has
        no price."""
        cdef Ledger ledger = self.ledger
        cdef Nav n
        cdef int128_t usd = 0
        cdef int32_t a, i, q
        cdef int64_t amount, pos
        cdef const Instrument* inst
        n.ok = True
        for a in range(ledger.n_assets):
            amount = ledger.at(self.account, a).total
            if a == self.share_asset or amount == 0:
                continue
            if ledger.usd_price[a] == 0:
                n.ok = False
                continue
            usd += <int128_t>amount * ledger.usd_price[a] // ledger.unit_scale[a]
        for i in range(n_inst):
            inst = &insts[i]
            if inst.series < 0:
                continue
            pos = ledger.position(self.account, inst.series).pos
            if pos == 0:
                continue
            q = inst.quote_asset
            if inst.reference == 0 or ledger.usd_price[q] == 0:
                n.ok = False
                continue
            usd += _floordiv(<int128_t>pos * (inst.reference // inst.tick) * inst.quote_per_tick_qty
                             * ledger.usd_price[q], ledger.unit_scale[q])
        if ledger.usd_price[self.asset] == 0:
            n.ok = False
        n.usd = _capped(usd)
        n.units = (_capped(_floordiv(<int128_t>n.usd * ledger.unit_scale[self.asset], ledger.usd_price[self.asset]))
                   if n.ok else 0)
        n.shares = ledger.net_credits[self.share_asset] - ledger.at(self.account, self.share_asset).total
        return n

    cdef int64_t twap(self):
        """Mean of the NAV-per-share samples, floored; 0 without samples."""
        if not self.samples:
            return 0
        return sum(self.samples) // len(self.samples)

    cdef int64_t deposit_pps(self, const Nav* n):
        """The NAV per share a deposit mints at: the higher of the spot NAV per
        share (rounded up) and the time-weighted one; 1e12 (one share unit per
        pool-asset unit) before any share is out. 0: the pool has no positive equity."""
        cdef int64_t spot, avg
        if n.shares == 0:
            return PPS_SCALE
        if n.units <= 0:
            return 0
        spot = _capped((<int128_t>n.units * PPS_SCALE + n.shares - 1) // n.shares)
        avg = self.twap()
        return spot if spot >= avg else avg

    cdef int64_t redeem_pps(self, const Nav* n):
        """The NAV per share a redemption burns at: the lower of the spot NAV per
        share (rounded down) and the time-weighted one. 0: no positive equity."""
        cdef int64_t spot, avg
        if n.shares <= 0 or n.units <= 0:
            return 0
        spot = _capped(<int128_t>n.units * PPS_SCALE // n.shares)
        if not self.samples:
            return spot
        avg = self.twap()
        return spot if spot <= avg else avg

    cdef int64_t pending_shares(self, int64_t account):
        """Shares of the account's redemption request not yet executed."""
        rid = self.requested.get(account)
        return 0 if rid is None else self.pending[rid][1]

    cdef int locked(self, dict need) except -1:
        """Add each pending deposit's reserved pool asset to ``need`` ((account,
        asset) -> reserved amount), for the integrity check."""
        for account, amount, _due in self.deposits.values():
            key = (account, self.asset)
            need[key] = need.get(key, 0) + amount
        return 0

    # -- commands --

    cdef int configure(self, int64_t account, int32_t asset, int32_t share_asset, int32_t nav_window,
                       int64_t cooldown_ns, int64_t fee_bps, int64_t multiplier_bps,
                       int64_t deposit_cooldown_ns) except -1:
        """Set the pool's terms (once, before any command)."""
        if self.configured:
            raise ValueError("the main pool is already configured")
        if not (0 <= asset < self.ledger.n_assets and 0 <= share_asset < self.ledger.n_assets
                and asset != share_asset):
            raise ValueError("the pool asset and share asset must be two registered assets")
        if self.ledger.unit_scale[asset] != self.ledger.unit_scale[share_asset]:
            raise ValueError("the share asset needs the pool asset's ledger decimals")
        if (nav_window < 0 or cooldown_ns < 0 or deposit_cooldown_ns < 0 or not 0 <= fee_bps < 10_000
                or multiplier_bps < 0):
            raise ValueError("invalid main pool terms")
        self.configured = True
        self.account = account
        self.asset = asset
        self.share_asset = share_asset
        self.nav_window = nav_window
        self.cooldown_ns = cooldown_ns
        self.fee_bps = fee_bps
        self.multiplier_bps = multiplier_bps
        self.deposit_cooldown_ns = deposit_cooldown_ns
        return 0

    cdef int sample(self, const Nav* n) except -1:
        """Add the spot NAV per share (rounded down) to the window; nothing
        while no share is out or the window is 0."""
        if self.nav_window == 0 or n.shares <= 0 or n.units <= 0:
            return 0
        self.samples.append(_capped(<int128_t>n.units * PPS_SCALE // n.shares))
        if len(self.samples) > self.nav_window:
            del self.samples[0]
        return 0

    cdef int64_t request(self, int64_t account, int64_t shares, int64_t due) except -1:
        """Record a redemption request; returns its id. An account has one request
        at most: a new one adds its shares to it and restarts its cooldown, so the
        requests held are bounded by the accounts, whatever a provider sends."""
        cdef int64_t rid
        if account in self.requested:
            rid = self.requested[account]
            shares += self.pending[rid][1]
        else:
            rid = self.next_request
            self.next_request += 1
            self.requested[account] = rid
        self.pending[rid] = (account, shares, due)
        return rid

    cdef int done(self, int64_t rid) except -1:
        """Forget an executed or cancelled redemption request."""
        del self.requested[self.pending.pop(rid)[0]]
        return 0

    cdef int64_t request_deposit(self, int64_t account, int64_t amount, int64_t due) except -1:
        """Record a deposit request (the caller has reserved ``amount``); returns its
        id. The caller refuses a second one of the same account, so the requests
        held stay bounded by the accounts."""
        cdef int64_t rid = self.next_request
        self.next_request += 1
        self.deposits[rid] = (account, amount, due)
        self.depositing[account] = rid
        return rid

    cdef int deposit_done(self, int64_t rid) except -1:
        """Forget an executed or cancelled deposit request (the caller releases its reservation)."""
        del self.depositing[self.deposits.pop(rid)[0]]
        return 0

    # -- state --

    cdef object write_part(self):
        """The pool's terms and state as a snapshot section; None when unconfigured."""
        from engine.core.snapshot import MainPoolState
        if not self.configured:
            return None
        return MainPoolState(
            terms=[self.account, self.asset, self.share_asset, self.nav_window, self.cooldown_ns, self.fee_bps,
                   self.multiplier_bps],
            samples=list(self.samples), next_request=self.next_request,
            pending=[(rid, *self.pending[rid]) for rid in sorted(self.pending)],
            deposit_cooldown_ns=self.deposit_cooldown_ns)

    cdef int read_part(self, part, accounts) except -1:
        """Restore from a snapshot section (None: no pool); ValueError if invalid."""
        if part is None:
            return 0
        if len(part.terms) != 7:
            raise ValueError("snapshot main pool terms are malformed")
        t = part.terms
        # A version-5 snapshot has no deposit cooldown: its venue had no deposit requests.
        self.configure(t[0], t[1], t[2], t[3], t[4], t[5], t[6], part.deposit_cooldown_ns)
        if self.account not in accounts:
            raise ValueError(f"snapshot main pool account {self.account} is not open")
        if len(part.samples) > self.nav_window or any(s <= 0 for s in part.samples):
            raise ValueError("snapshot main pool NAV samples are invalid")
        if part.next_request < 1:
            raise ValueError("snapshot main pool request counter is invalid")
        for rid, account, shares, due in part.pending:
            if (not 0 < rid < part.next_request or account not in accounts or shares <= 0 or rid in self.pending
                    or account in self.requested):
                raise ValueError(f"snapshot main pool request {rid} is invalid")
            self.pending[rid] = (account, shares, due)
            self.requested[account] = rid
        self.samples = list(part.samples)
        self.next_request = part.next_request
        return 0

    cdef list write_deposits(self):
        """The pending deposit requests as (id, account, amount, due ts), by id; [] when none."""
        return [(rid, *self.deposits[rid]) for rid in sorted(self.deposits)]

    cdef int read_deposits(self, list rows, accounts) except -1:
        """Restore the pending deposit requests (after read_part); ValueError if invalid.
        The ledger's reserved amounts hold them already; the integrity check compares."""
        if rows and not self.configured:
            raise ValueError("snapshot main pool deposit requests without a main pool")
        for rid, account, amount, due in rows:
            if (not 0 < rid < self.next_request or account not in accounts or amount <= 0 or rid in self.deposits
                    or rid in self.pending or account in self.depositing):
                raise ValueError(f"snapshot main pool deposit request {rid} is invalid")
            self.deposits[rid] = (account, amount, due)
            self.depositing[account] = rid
        return 0

    cdef int hash_words(self, list words) except -1:
        """Only when configured: a venue without a main pool hashes as before."""
        if not self.configured:
            return 0
        words += [self.account, self.asset, self.share_asset, self.nav_window, self.cooldown_ns, self.fee_bps,
                  self.multiplier_bps, self.next_request, len(self.samples), *self.samples, len(self.pending)]
        for rid in sorted(self.pending):
            words += [rid, *self.pending[rid]]
        if self.deposit_cooldown_ns or self.deposits:
            # Only when used: a pool of an older build hashes as it did.
            words += [self.deposit_cooldown_ns, len(self.deposits)]
            for rid in sorted(self.deposits):
                words += [rid, *self.deposits[rid]]
        return 0

    cdef int check_integrity(self) except -1:
        """Raise AssertionError naming the first broken invariant."""
        if not self.configured:
            return 0
        assert self.ledger.known(self.account), "main pool account is not open"
        assert len(self.samples) <= self.nav_window, "more NAV samples than the window"
        for rid, (account, shares, _due) in self.pending.items():
            assert 0 < rid < self.next_request and shares > 0, f"redemption request {rid} is invalid"
            assert self.requested.get(account) == rid, f"account {account} has more than one redemption request"
        assert len(self.requested) == len(self.pending), "a redemption request is missing"
        for rid, (account, amount, _due) in self.deposits.items():
            assert 0 < rid < self.next_request and amount > 0 and rid not in self.pending, (
                f"deposit request {rid} is invalid")
            assert self.depositing.get(account) == rid, f"account {account} has more than one deposit request"
        assert len(self.depositing) == len(self.deposits), "a deposit request is missing"
        return 0
