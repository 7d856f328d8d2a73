"""The main pool's commands (docs/pools.md), their Python entry points and the
pool query.

* POOL_DEPOSIT_REQUEST (``account`` the provider, ``asset`` the pool's share
  asset, ``qty`` pool-asset ledger units): reserves the amount in the provider's
  balance and records a deposit request, due after the deposit cooldown (one
  pending per account).
* POOL_DEPOSIT (same fields): the immediate deposit of journals written before
  deposit requests existed, kept so they replay: moves the amount to the pool
  account and mints shares at the deposit NAV per share (pool.pyx), rounded
  down. The gateway no longer sends it.
* POOL_REDEEM with ``order_id`` 0 requests the redemption of ``qty`` shares
  (added to the account's pending request if it has one, whose cooldown restarts);
  with ``order_id`` a request id executes it once the cooldown is over (sent for
  its provider by the gateway's pool clock when due, or by the provider): a
  redemption burns shares at the redemption NAV per share, rounded down, less
  the withdrawal fee, rounded up, which stays in the pool; refused when
  the pool's equity after it would fall below its initial margin times the
  configured multiplier. A deposit request moves its reserved amount to the pool
  and mints shares at the deposit NAV per share then.
* POOL_CANCEL (``order_id`` a request id, ``account`` its provider): forgets a
  redemption request, or a deposit request before it is due (releasing its
  reservation); a due deposit request executes, and is cancelled only while it
  cannot (docs/pools.md: its provider may not wait for a NAV it likes and back
  out otherwise).
* POOL_MARK (operator clock): samples the NAV per share for the time-weighted NAV.

Every movement is a POOL_PAID event (the provider pays ``qty`` of ``asset``
to the pool account, ``maker_account``; negative: it receives), which the
settlement job turns into a payment fill, as it does funding. Rounding always
favours the providers who stay. MatchingEngine (matcher.pyx) extends this class.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.api cimport _command
from engine.core.pool cimport MainPool
from engine.core.types cimport (ACCOUNT_IS_FROZEN, ACCOUNTS_DISABLED, AMOUNT_OVERFLOW, BPS, INSUFFICIENT_BALANCE,
                                INSUFFICIENT_MARGIN, INVALID_AMOUNT, NOT_A_POOL, NOT_ORDER_OWNER, ORDER_AMOUNT_LIMIT,
                                POOL_CANCEL, POOL_COOLDOWN, POOL_DEPOSIT, POOL_DEPOSIT_REQUEST, POOL_DEPOSIT_REQUESTED,
                                POOL_EQUITY_GUARD, POOL_MARK, POOL_MARKED, POOL_NAV_UNSET, POOL_PAID, POOL_REDEEM,
                                POOL_REDEEM_REQUESTED, POOL_REQUEST_CANCELLED, POOL_REQUEST_DUE, POOL_REQUEST_PENDING,
                                UNKNOWN_ACCOUNT, UNKNOWN_REDEMPTION, EventRec)

from engine.core.order_info import PoolInfo
from engine.units import POOL_PPS_SCALE

cdef extern from *:
    ctypedef long long int128_t "__int128"

cdef int64_t PPS_SCALE = POOL_PPS_SCALE


cdef class PoolApi(ChainApi):
    """The main pool's commands and query; the class MatchingEngine extends."""

    # -- set-up and queries --

    def set_main_pool(self, int64_t account, int32_t asset, int32_t share_asset, int32_t nav_window,
                      int64_t cooldown_ns, int64_t fee_bps, int64_t multiplier_bps, int64_t deposit_cooldown_ns=0):
        """Make ``account`` the main pool (risk mode, before any command):
        providers deposit ``asset`` and receive ``share_asset``, whose unissued
        supply the pool account holds (engine/pools_config.py MainPoolTerms); a
        deposit request executes ``deposit_cooldown_ns`` after it at the earliest."""
        if not self.risk:
            raise ValueError("the main pool needs risk=True")
        if not 0 <= account < self.max_accounts or account == self.funds.fee_account:
            raise ValueError(f"main pool account {account} must be an account id other than the fee account")
        self.pool.configure(account, asset, share_asset, nav_window, cooldown_ns, fee_bps, multiplier_bps,
                            deposit_cooldown_ns)
        if not self.ledger.known(account):
            self.ledger.open_account(account)

    def pool_info(self):
        """PoolInfo of the main pool now; ValueError if there is none."""
        if not self.pool.configured:
            raise ValueError("no main pool is configured")
        cdef Nav n = self.pool.nav(self.insts, self.n_inst)
        cdef MainPool p = self.pool
        return PoolInfo(
            account=p.account, asset=p.asset, share_asset=p.share_asset, nav_ok=bool(n.ok), equity_usd=n.usd,
            equity=n.units, shares=n.shares, twap_pps=p.twap(), samples=len(p.samples),
            deposit_pps=p.deposit_pps(&n) if n.ok else 0, redeem_pps=p.redeem_pps(&n) if n.ok else 0,
            initial_margin=self.margins.requirement(p.account, True), cooldown_ns=p.cooldown_ns,
            withdrawal_fee_bps=p.fee_bps, equity_multiplier_bps=p.multiplier_bps,
            pending=tuple((rid, *p.pending[rid]) for rid in sorted(p.pending)),
            deposit_cooldown_ns=p.deposit_cooldown_ns,
            deposits=tuple((rid, *p.deposits[rid]) for rid in sorted(p.deposits)))

    def pool_due_requests(self, int64_t ts):
        """(request id, account, shares held) of each request, deposit or redemption,
        due at ``ts``, by id; ``shares held`` is False for a redemption whose owner no
        longer has its shares free (withdrawn, sold, reserved), True otherwise. The
        gateway's pool clock executes them for their owners, and cancels the others
        (engine/gateway/pool_clock.py)."""
        if not self.pool.configured:
            return []
        cdef MainPool p = self.pool
        due = [(rid, p.deposits[rid][0], True) for rid in p.deposits if p.deposits[rid][2] <= ts]
        due += [(rid, p.pending[rid][0], self.ledger.free(p.pending[rid][0], p.share_asset) >= p.pending[rid][1])
                for rid in p.pending if p.pending[rid][2] <= ts]
        return sorted(due)

    def pool_nav(self):
        """(equity USD x 1e8, equity in pool-asset ledger units, shares out), or
        None while a held asset or position has no price."""
        if not self.pool.configured:
            raise ValueError("no main pool is configured")
        cdef Nav n = self.pool.nav(self.insts, self.n_inst)
        return (n.usd, n.units, n.shares) if n.ok else None

    # -- entry points --

    def pool_deposit(self, int64_t account, int32_t share_asset, int64_t amount, int64_t seq=0, int64_t ts=0,
                     bint immediate=False):
        """Request a deposit of ``amount`` pool-asset ledger units into the pool of
        ``share_asset`` (executed after the deposit cooldown); ``immediate``: the
        POOL_DEPOSIT of older journals, which mints at once."""
        cdef CommandRec c = _command(POOL_DEPOSIT if immediate else POOL_DEPOSIT_REQUEST, seq, ts)
        c.account = account
        c.asset = share_asset
        c.qty = amount
        return self._run_one(&c)

    def pool_cancel(self, int64_t account, int32_t share_asset, int64_t request, int64_t seq=0, int64_t ts=0):
        """Cancel ``account``'s pending request ``request`` (a deposit only before it is due)."""
        cdef CommandRec c = _command(POOL_CANCEL, seq, ts)
        c.account = account
        c.asset = share_asset
        c.order_id = request
        return self._run_one(&c)

    def pool_redeem(self, int64_t account, int32_t share_asset, int64_t shares=0, int64_t request=0,
                    int64_t seq=0, int64_t ts=0):
        """Request the redemption of ``shares`` (request 0), or execute request ``request``
        (a redemption or a deposit) once it is due."""
        cdef CommandRec c = _command(POOL_REDEEM, seq, ts)
        c.account = account
        c.asset = share_asset
        c.qty = shares
        c.order_id = request
        return self._run_one(&c)

    def pool_mark(self, int32_t share_asset, int64_t seq=0, int64_t ts=0):
        """Sample the pool's NAV per share (operator clock)."""
        cdef CommandRec c = _command(POOL_MARK, seq, ts)
        c.asset = share_asset
        return self._run_one(&c)

    # -- commands --

    cdef int _pool_check(self, const CommandRec* c, bint provider) except -1:
        """0, or the reject code of a pool command's pool and provider."""
        if not self.risk:
            return ACCOUNTS_DISABLED
        if not self.pool.configured or c.asset != self.pool.share_asset:
            return NOT_A_POOL
        if not provider:
            return 0
        if not self.ledger.known(c.account):
            return UNKNOWN_ACCOUNT
        if c.account == self.pool.account:
            # The pool cannot provide to itself: its shares are its treasury.
            return NOT_A_POOL
        if self.funds.n_frozen and (self.funds.is_frozen(c.account) or self.funds.is_frozen(self.pool.account)):
            return ACCOUNT_IS_FROZEN
        return 0

    cdef int _pool_paid(self, const CommandRec* c, int32_t asset, int64_t qty, int64_t pps, int64_t fee,
                        int64_t request) except -1:
        """Move ``qty`` of ``asset`` from the provider to the pool account
        (negative: to the provider) and emit its POOL_PAID event."""
        cdef EventRec* e
        self.ledger.move(c.account, asset, -qty, 0)
        self.ledger.move(self.pool.account, asset, qty, 0)
        e = self._emit(POOL_PAID)
        e.account = c.account
        e.maker_account = self.pool.account
        e.asset = asset
        e.qty = qty
        e.price = pps
        e.fee = fee
        e.order_id = request
        return 0

    cdef int _pool_request_event(self, uint8_t kind, int64_t rid, int64_t account, int32_t asset, int64_t qty,
                                 int64_t leaves) except -1:
        """Emit a request's event (requested, cancelled): ``qty`` of ``asset``, ``leaves`` pending now."""
        cdef EventRec* e = self._emit(kind)
        e.order_id = rid
        e.account = account
        e.maker_account = self.pool.account
        e.asset = asset
        e.qty = qty
        e.leaves = leaves
        return 0

    cdef int _deposit_check(self, const CommandRec* c) except -1:
        """0, or the reject code of a deposit's pool, provider and amount (the checks
        an immediate deposit and a deposit request share, in this order)."""
        cdef int why = self._pool_check(c, True)
        if why:
            return why
        if c.qty <= 0:
            return INVALID_AMOUNT
        if c.qty > ORDER_AMOUNT_LIMIT:
            return AMOUNT_OVERFLOW
        return 0

    cdef uint8_t _mint_terms(self, int64_t amount, int64_t* pps, int64_t* shares) except 255:
        """0 and the deposit NAV per share and shares minted for ``amount`` now, or
        why a deposit cannot mint now."""
        cdef MainPool p = self.pool
        cdef Nav n = p.nav(self.insts, self.n_inst)
        if not n.ok:
            return POOL_NAV_UNSET
        pps[0] = p.deposit_pps(&n)
        if pps[0] <= 0:
            # Shares are out and the pool has no positive equity: no price to mint at.
            return POOL_EQUITY_GUARD
        shares[0] = <int64_t>(<int128_t>amount * PPS_SCALE // pps[0])
        if shares[0] <= 0:
            return INVALID_AMOUNT
        if self.ledger.free(p.account, p.share_asset) < shares[0]:
            return INSUFFICIENT_BALANCE
        return 0

    cdef int _pool_deposit(self, const CommandRec* c) except -1:
        cdef uint8_t why = self._deposit_check(c)
        cdef MainPool p = self.pool
        cdef int64_t pps, shares
        if why:
            return self._reject(c, why)
        if self.ledger.free(c.account, p.asset) < c.qty:
            return self._reject(c, INSUFFICIENT_BALANCE)
        why = self._mint_terms(c.qty, &pps, &shares)
        if why:
            return self._reject(c, why)
        self.ledger.move(c.account, p.asset, -c.qty, 0)
        if self.ledger.has_options[c.account] and not self.margins.ok(c.account):
            # The provider's margin may not rest on what it deposits.
            self.ledger.move(c.account, p.asset, c.qty, 0)
            return self._reject(c, INSUFFICIENT_MARGIN)
        self.ledger.move(c.account, p.asset, c.qty, 0)
        self._pool_paid(c, p.asset, c.qty, pps, 0, 0)
        self._pool_paid(c, p.share_asset, -shares, pps, 0, 0)
        return 0

    cdef int _pool_deposit_request(self, const CommandRec* c) except -1:
        cdef uint8_t why = self._deposit_check(c)
        cdef MainPool p = self.pool
        cdef int64_t rid
        if why:
            return self._reject(c, why)
        if c.account in p.depositing:
            return self._reject(c, POOL_REQUEST_PENDING)
        if self.ledger.reserve(c.account, p.asset, c.qty):
            return self._reject(c, INSUFFICIENT_BALANCE)
        if self.ledger.has_options[c.account] and not self.margins.ok(c.account):
            # The provider's margin may not rest on what it is depositing.
            self.ledger.release(c.account, p.asset, c.qty)
            return self._reject(c, INSUFFICIENT_MARGIN)
        rid = p.request_deposit(c.account, c.qty, c.ts + p.deposit_cooldown_ns)
        return self._pool_request_event(POOL_DEPOSIT_REQUESTED, rid, c.account, p.asset, c.qty, c.qty)

    cdef int _pool_execute_deposit(self, const CommandRec* c) except -1:
        cdef MainPool p = self.pool
        cdef int64_t account, amount, due, pps, shares
        cdef uint8_t why
        account, amount, due = p.deposits[c.order_id]
        if account != c.account:
            return self._reject(c, NOT_ORDER_OWNER)
        if c.ts < due:
            return self._reject(c, POOL_COOLDOWN)
        why = self._mint_terms(amount, &pps, &shares)
        if why:
            return self._reject(c, why)
        # The reserved amount leaves the provider: its free balance, and so its margin, do not change.
        self.ledger.release(account, p.asset, amount)
        p.deposit_done(c.order_id)
        self._pool_paid(c, p.asset, amount, pps, 0, c.order_id)
        self._pool_paid(c, p.share_asset, -shares, pps, 0, c.order_id)
        return 0

    cdef int _pool_cancel(self, const CommandRec* c) except -1:
        cdef uint8_t why = self._pool_check(c, True)
        cdef MainPool p = self.pool
        cdef int64_t account, qty, due, pps, shares
        if why:
            return self._reject(c, why)
        if c.order_id in p.deposits:
            account, qty, due = p.deposits[c.order_id]
            if account != c.account:
                return self._reject(c, NOT_ORDER_OWNER)
            if c.ts >= due and self._mint_terms(qty, &pps, &shares) == 0:
                # Due and executable: cancelling now would let the provider watch the
                # NAV after the cooldown and back out whenever it moved against it.
                return self._reject(c, POOL_REQUEST_DUE)
            return self._pool_release(account)
        if c.order_id in p.pending:
            account, qty, due = p.pending[c.order_id]
            if account != c.account:
                return self._reject(c, NOT_ORDER_OWNER)
            p.done(c.order_id)
            return self._pool_request_event(POOL_REQUEST_CANCELLED, c.order_id, account, p.share_asset, qty, 0)
        return self._reject(c, UNKNOWN_REDEMPTION)

    cdef int _pool_release(self, int64_t account) except -1:
        """Cancel the account's pending deposit request, if any, releasing its
        reservation: its owner's cancel, or a liquidation, a freeze or an expiry's
        shortfall (matcher.pyx _cancel_account), after which the money pays what
        the account owes."""
        cdef MainPool p = self.pool
        cdef int64_t rid, qty
        if not p.configured or account not in p.depositing:
            return 0
        rid = p.depositing[account]
        qty = p.deposits[rid][1]
        self.ledger.release(account, p.asset, qty)
        p.deposit_done(rid)
        return self._pool_request_event(POOL_REQUEST_CANCELLED, rid, account, p.asset, qty, 0)

    cdef int _pool_redeem(self, const CommandRec* c) except -1:
        cdef uint8_t why = self._pool_check(c, True)
        cdef int64_t rid
        if why:
            return self._reject(c, why)
        if c.order_id != 0:
            return self._pool_execute(c)
        if c.qty <= 0:
            return self._reject(c, INVALID_AMOUNT)
        if c.qty > self.ledger.at(c.account, self.pool.share_asset).total - self.pool.pending_shares(c.account):
            return self._reject(c, INSUFFICIENT_BALANCE)
        rid = self.pool.request(c.account, c.qty, c.ts + self.pool.cooldown_ns)
        return self._pool_request_event(POOL_REDEEM_REQUESTED, rid, c.account, self.pool.share_asset, c.qty,
                                        self.pool.pending[rid][1])

    cdef int _pool_execute(self, const CommandRec* c) except -1:
        cdef MainPool p = self.pool
        cdef Nav n
        cdef int64_t account, shares, due, pps, gross, fee, net, im
        cdef int128_t after
        if c.order_id in p.deposits:
            return self._pool_execute_deposit(c)
        if c.order_id not in p.pending:
            return self._reject(c, UNKNOWN_REDEMPTION)
        account, shares, due = p.pending[c.order_id]
        if account != c.account:
            return self._reject(c, NOT_ORDER_OWNER)
        if c.ts < due:
            return self._reject(c, POOL_COOLDOWN)
        if self.ledger.free(c.account, p.share_asset) < shares:
            return self._reject(c, INSUFFICIENT_BALANCE)
        n = p.nav(self.insts, self.n_inst)
        if not n.ok:
            return self._reject(c, POOL_NAV_UNSET)
        pps = p.redeem_pps(&n)
        if pps <= 0:
            return self._reject(c, POOL_EQUITY_GUARD)
        gross = <int64_t>(<int128_t>shares * pps // PPS_SCALE)
        fee = <int64_t>((<int128_t>gross * p.fee_bps + BPS - 1) // BPS)
        net = gross - fee
        if net <= 0:
            return self._reject(c, INVALID_AMOUNT)
        if self.ledger.free(p.account, p.asset) < net:
            return self._reject(c, INSUFFICIENT_BALANCE)
        # The last providers out are not left with the risk: equity after the
        # payment must still cover the pool's initial margin x the multiplier.
        im = self.margins.requirement(p.account, True)
        after = (<int128_t>n.units - net) * self.ledger.usd_price[p.asset] // self.ledger.unit_scale[p.asset]
        if after * BPS < <int128_t>im * p.multiplier_bps:
            return self._reject(c, POOL_EQUITY_GUARD)
        self.ledger.move(p.account, p.asset, -net, 0)
        if self.ledger.has_options[p.account] and not self.margins.ok(p.account):
            # Whatever the multiplier, a payment never leaves the pool's own margin uncovered.
            self.ledger.move(p.account, p.asset, net, 0)
            return self._reject(c, POOL_EQUITY_GUARD)
        self.ledger.move(p.account, p.asset, net, 0)
        p.done(c.order_id)
        self._pool_paid(c, p.share_asset, shares, pps, 0, c.order_id)
        self._pool_paid(c, p.asset, -net, pps, fee, c.order_id)
        return 0

    cdef int _pool_mark(self, const CommandRec* c) except -1:
        cdef uint8_t why = self._pool_check(c, False)
        cdef EventRec* e
        cdef Nav n
        if why:
            return self._reject(c, why)
        n = self.pool.nav(self.insts, self.n_inst)
        if not n.ok:
            return self._reject(c, POOL_NAV_UNSET)
        self.pool.sample(&n)
        e = self._emit(POOL_MARKED)
        e.account = self.pool.account
        e.asset = self.pool.share_asset
        e.price = self.pool.twap()
        e.qty = n.units
        e.leaves = n.shares
        return 0
