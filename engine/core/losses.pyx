"""The loss waterfall (docs/pools.md, "Insurance pool and waterfall"): what
covers a loss a liquidation or an expiry leaves, step by step, each step an
exact transfer with its own event.

A liquidation (matcher.pyx) first runs its plan (margin.pyx): the account's
own collateral sells and buys back what it can. Then, with pools configured:

* the liquidation penalty: penalty_bps of the premium notional the plan closed,
  from the account's free premium, to the insurance pool (PENALTY_CHARGED),
  which holds it (reserved) while the liquidation goes on;
* for each short the plan could not afford to buy back (the account is bankrupt
  at the band edge): the account's other assets the plan could not sell go to
  the insurance pool (LOSS_COVERED, step OWN), then the penalty it paid in every
  step of this liquidation so far, the insurance pool and the main pool lend it
  the shortfall (LOSS_COVERED, steps
  PENALTY, INSURANCE, MAIN); it buys back on the book, and what the buy-back did
  not use goes back to them in reverse order (LOSS_COVERED, side SELL);
* what is still short after that (no asks left in the band, or the pools are
  empty) and cannot be paid at the series' mark is closed against the opposite
  longs, ranked by profit and leverage (DELEVERAGED), at the bankruptcy price:
  the pools first bring the account's free premium up to the short's value at
  the mark, and the longs share what it then holds;
* last, when a command leaves a liquidated account no longer under its
  maintenance margin (or with nothing left to close, or frozen), its
  liquidation ends: the fee account's share of the penalty held and not drawn
  back goes on to it (PENALTY_CHARGED, insurance pool -> fee account) and the
  rest becomes the insurance pool's own (`_end_liquidations`, which
  MatchingEngine.execute calls after every accepted command but the order
  commands, only while a penalty is held).

The ranking is BitMEX's (adl_score): a long's profit is its value at the mark
less its cost basis (ledger.pxd add_position), its profit ratio r = profit /
cost and its leverage L = value / (its account's collateral + 1); a profitable
long ranks by r x L, any other by r / L, highest first, compared exactly as
fractions of integers; ties go to the larger position, then the lower account
id. The deleveraged long sells and the short buys at the bankruptcy price, so
both cost bases move by what changes hands.

Funding a liquidated account still owes in a perpetual series it no longer
holds is lent the same way and paid into the funding pool. An expired short
that cannot pay (chain.pyx) draws the same steps before the pro rata cut of
its longs (its held penalty first, if it is being liquidated). Without pools
nothing here runs.
"""

from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t
from libc.string cimport memset

from engine.core.api cimport _command
from engine.core.instrument cimport execution_band, notional, reservation
from engine.core.ledger cimport Position, add_position
from engine.core.margin cimport affordable, closing_order
from engine.core.types cimport (ACCOUNTS_DISABLED, BPS, BUY, DELEVERAGED, FEES_SWEPT, FILL, LOSS_COVERED,
                                NOTHING_TO_SWEEP, OPEN, PENALTY_CHARGED, POOLS_NOT_SET, SELL, SWEEP_FEES, UNKNOWN_ASSET,
                                EventRec)
from engine.core.waterfall cimport STEP_ADL, STEP_INSURANCE, STEP_MAIN, STEP_OWN, STEP_PENALTY, Waterfall

from fractions import Fraction

from engine.units import FUNDING_INDEX_SCALE

# Margin arithmetic: a bankruptcy share is an amount times a quantity.
cdef extern from *:
    ctypedef long long int128_t "__int128"

cdef int64_t FUNDING_SCALE = FUNDING_INDEX_SCALE

# The steps that lend, in order; what a cover did not use goes back in reverse.
cdef uint8_t[3] _LENDERS = [STEP_PENALTY, STEP_INSURANCE, STEP_MAIN]


cdef object adl_score(object value, object cost, object collateral):
    """A long's auto-deleveraging rank, an exact Fraction (higher: closed first),
    from its value at the mark and its cost basis (premium ledger units) and its
    account's collateral (USD x 1e8). With profit = value - cost, profit ratio
    r = profit / max(cost, 1) and leverage L = value / (collateral + 1):
    r x L for a profitable long, r / L (value at least 1) for the others, so
    the most profitable and most leveraged go first, and among the others the
    smaller loss ratio and the more leveraged."""
    profit = value - cost
    if profit > 0:
        return Fraction(profit * value, max(cost, 1) * (collateral + 1))
    return Fraction(profit * (collateral + 1), max(cost, 1) * max(value, 1))


cdef class LossApi(CommandApi):
    """The waterfall's steps over the engine's parts; the class ChainApi extends."""

    # ------------------------------------------------------------------
    # per-command API
    # ------------------------------------------------------------------

    def sweep_fees(self, int32_t asset, int64_t seq=0, int64_t ts=0):
        """Move the insurance pool's share of the fees earned in ``asset`` since
        the last sweep to it (operator)."""
        cdef CommandRec c = _command(SWEEP_FEES, seq, ts)
        c.asset = asset
        return self._run_one(&c)

    # ------------------------------------------------------------------
    # commands
    # ------------------------------------------------------------------

    cdef int _sweep_fees(self, const CommandRec* c) except -1:
        """SWEEP_FEES (operator): move the insurance pool's share of the fees
        earned in ``c.asset`` since the last sweep from the fee account
        (FEES_SWEPT: account the fee account, maker_account the insurance pool)."""
        cdef Waterfall w = self.losses
        cdef EventRec* e
        cdef int64_t amount
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if not w.enabled:
            return self._reject(c, POOLS_NOT_SET)
        if c.asset < 0 or c.asset >= self.ledger.n_assets:
            return self._reject(c, UNKNOWN_ASSET)
        amount = w.sweep(c.asset)
        if amount == 0:
            return self._reject(c, NOTHING_TO_SWEEP)
        e = self._emit(FEES_SWEPT)
        e.account = w.fee_account
        e.maker_account = w.insurance
        e.asset = c.asset
        e.qty = amount
        return 0

    cdef int _end_liquidations(self) except -1:
        """End the liquidation of every account holding a penalty that is no
        longer under its maintenance margin, has nothing left to close, or is
        frozen (no step may run on it any more): the fee account's share of what
        is still held goes on to it (PENALTY_CHARGED, insurance pool -> fee
        account), the rest becomes the insurance pool's own. A deposit that
        leaves the account under its maintenance margin does not end it."""
        cdef Waterfall w = self.losses
        cdef int64_t account, maintenance
        for account in sorted(w.held):
            if not any(w.held[account].values()):
                del w.held[account]       # all drawn back: nothing left to hold
                continue
            maintenance = self.margins.requirement(account, False)
            if (maintenance and self.margins.collateral(account, False) < maintenance
                    and not (self.funds.n_frozen and self.funds.is_frozen(account))):
                continue
            self._release_penalty(account)
        return 0

    cdef int _release_penalty(self, int64_t account) except -1:
        # The end of the account's liquidation: the fee account's share of its held penalty.
        cdef Waterfall w = self.losses
        for asset, fee_part in w.release(account):
            self._emit_transfer(PENALTY_CHARGED, 0, w.insurance, w.fee_account, -1, asset, fee_part)
        return 0

    # ------------------------------------------------------------------
    # the waterfall
    # ------------------------------------------------------------------

    cdef int _cover_liquidation(self, int64_t account, Py_ssize_t head) except -1:
        """After a liquidation's plan (its events from ``head``): the penalty and
        the cover of each short it could not close (the penalty's fee share waits
        for the end of the liquidation: _end_liquidations; on a venue defined
        before penalties were held, it is paid at the end of each command)."""
        cdef int32_t s
        penalty = self._charge_penalty(account, head)
        for s in range(self.ledger.n_series):
            self._cover_series(account, s, head, penalty)
        self._cover_funding(account, penalty)
        if not self.losses.hold_penalty:
            self._release_penalty(account)
        return 0

    cdef dict _charge_penalty(self, int64_t account, Py_ssize_t head):
        """Charge penalty_bps of the premium notional of the account's closing
        fills in option series since ``head``, at most its free premium, held by
        the insurance pool; returns {asset: penalty} held for the account's
        liquidation, this step's and the earlier steps' not drawn back (the
        dict the waterfall keeps, updated in place as the steps draw on it)."""
        cdef Waterfall w = self.losses
        cdef EventRec* e
        cdef Py_ssize_t i
        cdef int64_t amount
        closed = {}
        for i in range(head, self.ev_n):
            e = &self.ev[i]
            if e.kind == FILL and e.account == account and self.insts[e.instrument].series >= 0:
                asset = self.insts[e.instrument].quote_asset
                closed[asset] = closed.get(asset, 0) + notional(&self.insts[e.instrument], e.price, e.qty)
        for asset, value in sorted(closed.items()):
            amount = min(value * w.penalty_bps // BPS, self.ledger.free(account, asset))
            if amount > 0:
                w.hold(account, asset, amount)
                self._emit_transfer(PENALTY_CHARGED, 0, account, w.insurance, -1, asset, amount)
                self.ev[self.ev_n - 1].price = value
        return w.held.get(account, {})

    cdef int _cover_series(self, int64_t account, int32_t series, Py_ssize_t head, dict penalty) except -1:
        """Cover the account's short in ``series`` if it cannot pay for it (the
        module docstring's steps); a stepwise liquidation covers at most what is
        left of its step after the plan's buy-backs (events from ``head``)."""
        cdef const Position* p = self.ledger.position(account, series)
        cdef int32_t instrument = self.margins.series_inst[series]
        cdef Instrument* inst = &self.insts[instrument]
        cdef int32_t quote = inst.quote_asset
        cdef int64_t price, lo, hi, value, have
        cdef qty_t want, qty, before
        cdef int32_t lvl
        cdef Draw d
        cdef CommandRec order
        if p.pos >= 0 or inst.state != OPEN:
            return 0
        want = -p.pos
        if self.losses.step_lots:
            want = min(want, self.losses.step_lots * inst.lot - self._bought(account, instrument, head))
            if want <= 0:
                return 0
        execution_band(inst, &lo, &hi)
        if hi != INT64_MAX and lo <= hi:
            # Bankrupt at the band edge with asks to buy from: the pools lend what
            # the buy-back needs, and take back what it did not use.
            price = min(hi, inst.max_price // inst.tick * inst.tick)
            qty = min(want, inst.max_qty) // inst.lot * inst.lot
            lvl = self.books.best_level(instrument, SELL)
            have = self.ledger.free(account, quote)
            if (qty >= inst.min_qty and lvl != -1 and self.books.levels[lvl].price <= price
                    and reservation(inst, BUY, price, qty) > have):
                memset(&d, 0, sizeof(Draw))
                self._take_own(account, instrument, quote)
                self._top_up(account, instrument, quote, reservation(inst, BUY, price, qty) - have, penalty, &d)
                qty = affordable(inst, price, qty, self.ledger.free(account, quote))
                if qty >= inst.min_qty:
                    before = -p.pos
                    closing_order(&order, instrument, account, BUY, price, qty)
                    order.seq = self.cur_seq
                    order.ts = self.cur_ts
                    self.funds.liquidating = True
                    try:
                        self._new_order(&order)
                    finally:
                        self.funds.liquidating = False
                    want -= before - (-p.pos)
                self._give_back(account, instrument, quote,
                                min(d.by_step[<int>STEP_PENALTY] + d.by_step[<int>STEP_INSURANCE]
                                    + d.by_step[<int>STEP_MAIN], self.ledger.free(account, quote)), penalty, &d)
                inst = &self.insts[instrument]
        if want <= 0 or inst.reference <= 0:
            return 0
        value = notional(inst, inst.reference, want)
        have = self.ledger.free(account, quote)
        if value <= have:
            return 0   # it can pay at the mark: the book is only thin, a later liquidation closes it
        ranked = self._ranked_longs(account, inst)
        # Frozen longs are left out: close only what the others hold, and value only that.
        closable = sum(pos for _, pos in ranked)
        if closable < want:
            want = closable
            value = notional(inst, inst.reference, want)
            if want == 0 or value <= have:
                return 0
        memset(&d, 0, sizeof(Draw))
        self._take_own(account, instrument, quote)
        self._top_up(account, instrument, quote, value - have, penalty, &d)
        self._deleverage(account, inst, ranked, want, min(value, self.ledger.free(account, quote)))
        return 0

    cdef qty_t _bought(self, int64_t account, int32_t instrument, Py_ssize_t head) noexcept:
        # What the account bought in the instrument since event ``head``.
        cdef qty_t total = 0
        cdef Py_ssize_t i
        for i in range(head, self.ev_n):
            if (self.ev[i].kind == FILL and self.ev[i].instrument == instrument
                    and self.ev[i].account == account and self.ev[i].side == BUY):
                total += self.ev[i].qty
        return total

    cdef int _cover_payment(self, int64_t account, int32_t instrument, int64_t need) except -1:
        """An expired short that cannot pay ``need`` (chain.pyx, after its payment
        plan): its other assets to the insurance pool, then the insurance and main
        pools lend what it lacks: the penalty step only if it is being
        liquidated (there is no penalty at expiry)."""
        cdef Draw d
        cdef int32_t quote = self.insts[instrument].quote_asset
        cdef int64_t have = self.ledger.free(account, quote)
        if need <= have:
            return 0
        memset(&d, 0, sizeof(Draw))
        self._take_own(account, instrument, quote)
        self._top_up(account, instrument, quote, need - have, self.losses.held.get(account, {}), &d)
        return 0

    cdef int _cover_funding(self, int64_t account, dict penalty) except -1:
        """Funding the liquidated account still owes in a perpetual series it no
        longer holds (its positive carry: docs/funding.md) is a loss too: its other
        assets go to the insurance pool, the lenders pay it what the funding pool is
        owed, and it settles (FUNDING_SETTLED). What they cannot pay stays owed, as
        before pools."""
        cdef Draw d
        cdef int32_t s, instrument
        cdef const Instrument* inst
        cdef Position* p
        cdef int64_t index, owed
        if not self.funding.n_perpetual:
            return 0
        for s in range(self.ledger.n_series):
            p = self.ledger.position(account, s)
            if not self.funding.perpetual(s) or p.pos != 0 or p.carry <= 0:
                continue
            instrument = self.margins.series_inst[s]
            inst = &self.insts[instrument]
            index = self.funding.index_at(inst, s, self.cur_ts)
            self._settle_funding(inst, account, index, False)
            if p.carry <= 0:
                continue
            owed = (p.carry + FUNDING_SCALE - 1) // FUNDING_SCALE - self.ledger.free(account, inst.quote_asset)
            if owed > 0:
                memset(&d, 0, sizeof(Draw))
                self._take_own(account, instrument, inst.quote_asset)
                self._top_up(account, instrument, inst.quote_asset, owed, penalty, &d)
            self._settle_funding(inst, account, index, False)
        return 0

    cdef int _take_own(self, int64_t account, int32_t instrument, int32_t premium) except -1:
        """Step OWN: before the pools pay for an account, its free holdings of
        every asset but the premium (what the plan could not sell) go to the
        insurance pool, so a bankrupt account keeps nothing the pools paid for."""
        cdef Waterfall w = self.losses
        cdef int32_t a
        cdef int64_t amount
        for a in range(self.ledger.n_assets):
            amount = self.ledger.free(account, a)
            if a == premium or amount <= 0:
                continue
            self.ledger.move(account, a, -amount, 0)
            self.ledger.move(w.insurance, a, amount, 0)
            w.count(STEP_OWN, a, amount)
            self._emit_transfer(LOSS_COVERED, STEP_OWN, account, w.insurance, instrument, a, amount)
        return 0

    cdef int64_t _top_up(self, int64_t account, int32_t instrument, int32_t asset, int64_t want,
                         dict penalty, Draw* d) except -1:
        """Steps PENALTY, INSURANCE, MAIN in order lend the account up to
        ``want`` of ``asset``; returns what they lent."""
        cdef Waterfall w = self.losses
        cdef int64_t lent = 0
        cdef int64_t amount
        cdef uint8_t step
        for step in _LENDERS:
            if lent >= want:
                break
            amount = w.draw(step, account, asset, want - lent, penalty.get(asset, 0), d)
            if amount:
                if step == STEP_PENALTY:
                    penalty[asset] -= amount
                lent += amount
                self._emit_transfer(LOSS_COVERED, step, w.payer(step), account, instrument, asset, amount)
        return lent

    cdef int _give_back(self, int64_t account, int32_t instrument, int32_t asset, int64_t amount,
                        dict penalty, Draw* d) except -1:
        """Return ``amount`` a cover lent and did not use, main pool first
        (LOSS_COVERED, side SELL: the account pays back)."""
        cdef Waterfall w = self.losses
        cdef int64_t part
        cdef int i
        cdef uint8_t step
        for i in range(2, -1, -1):
            step = _LENDERS[i]
            part = min(amount, d.by_step[step])
            if part <= 0:
                continue
            self.ledger.move(account, asset, -part, 0)
            self.ledger.move(w.payer(step), asset, part, part if step == STEP_PENALTY else 0)
            d.by_step[step] -= part
            w.count(step, asset, -part)
            if step == STEP_PENALTY:
                penalty[asset] += part
            amount -= part
            self._emit_transfer(LOSS_COVERED, step, account, w.payer(step), instrument, asset, part)
            self.ev[self.ev_n - 1].side = SELL
        return 0

    cdef int _deleverage(self, int64_t account, const Instrument* inst, list ranked, qty_t qty,
                         int64_t paid) except -1:
        """Close ``qty`` of the account's short against the ``ranked`` longs (at
        least ``qty`` between them), paying
        them ``paid`` of its premium between them (the bankruptcy price): each
        gets paid x its contracts / qty, floored, the last the remainder
        (DELEVERAGED: account the long, maker_account the bankrupt short, qty
        the amount, leaves the contracts, price the series' mark)."""
        cdef int32_t s = inst.series
        cdef int32_t instrument = self.margins.series_inst[s]
        cdef Position* held
        cdef Order buyer, seller
        cdef qty_t left = qty
        cdef qty_t k
        cdef int64_t amount, given = 0
        cdef EventRec* e
        memset(&buyer, 0, sizeof(Order))
        memset(&seller, 0, sizeof(Order))
        buyer.side = BUY
        buyer.account = <int32_t>account
        seller.side = SELL
        for long_account, pos in ranked:
            if left == 0:
                break
            k = min(pos, left)
            left -= k
            amount = paid - given if left == 0 else <int64_t>(<int128_t>paid * k // qty)
            given += amount
            if self.funding.perpetual(s):
                seller.account = <int32_t>long_account
                self._settle_fill_funding(&self.insts[instrument], &buyer, &seller, k)
            # The short buys back and the long sells at the bankruptcy price.
            held = self.ledger.position(account, s)
            add_position(held, k, amount)
            self.funds.life.moved(s, held.pos - k, held.pos)
            self.funds.life.trim(account, s)
            held = self.ledger.position(long_account, s)
            add_position(held, -k, amount)
            self.funds.life.moved(s, held.pos + k, held.pos)
            self.ledger.move(account, inst.quote_asset, -amount, 0)
            self.ledger.move(long_account, inst.quote_asset, amount, 0)
            self.losses.count(STEP_ADL, inst.quote_asset, amount)
            e = self._emit(DELEVERAGED)
            e.instrument = instrument
            e.account = long_account
            e.maker_account = account
            e.asset = inst.quote_asset
            e.qty = amount
            e.leaves = k
            e.price = inst.reference
        return 0

    cdef list _ranked_longs(self, int64_t account, const Instrument* inst):
        """[(account, position)] of the series' longs to deleverage, first the
        one with the highest adl_score (profit at the mark over cost, times or
        over leverage: the module's docstring), then the larger position, then
        the lower account id. Frozen accounts are left out: nothing of theirs
        may settle after their freeze."""
        cdef int64_t acct
        cdef const Position* p
        ranked = []
        for acct in range(self.ledger.acct_cap):
            if acct == account or not self.ledger.is_open[acct]:
                continue
            p = self.ledger.position(acct, inst.series)
            if p.pos <= 0 or (self.funds.n_frozen and self.funds.is_frozen(acct)):
                continue
            score = adl_score(notional(inst, inst.reference, p.pos), p.cost, self.margins.collateral(acct, False))
            ranked.append((-score, -p.pos, acct))
        ranked.sort()
        return [(acct, -neg_pos) for _, neg_pos, acct in ranked]

    cdef int _emit_transfer(self, uint8_t kind, uint8_t step, int64_t payer, int64_t payee, int32_t instrument,
                            int32_t asset, int64_t amount) except -1:
        # A payment between two accounts: account pays, maker_account receives.
        cdef EventRec* e = self._emit(kind)
        e.aux = step
        e.side = BUY
        e.account = payer
        e.maker_account = payee
        e.instrument = instrument
        e.asset = asset
        e.qty = amount
        return 0

    # ------------------------------------------------------------------
    # order handling (MatchingEngine's)
    # ------------------------------------------------------------------

    cdef int _new_order(self, const CommandRec* c) except -1:
        raise NotImplementedError("order handling is MatchingEngine's (engine/core/matcher.pyx)")

    cdef int _reject(self, const CommandRec* c, uint8_t reason) except -1:
        raise NotImplementedError("order handling is MatchingEngine's (engine/core/matcher.pyx)")

    cdef int _settle_fill_funding(self, const Instrument* inst, const Order* taker, const Order* maker,
                                  qty_t q) except -1:
        raise NotImplementedError("order handling is MatchingEngine's (engine/core/matcher.pyx)")

    cdef int _settle_funding(self, const Instrument* inst, int64_t account, int64_t index,
                             bint frozen) except -1:
        raise NotImplementedError("order handling is MatchingEngine's (engine/core/matcher.pyx)")
