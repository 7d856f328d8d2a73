"""The matching engine: command dispatch, order handling (new, cancel, amend,
mass cancel), price-time matching inside the bands, and events.

The rules are specified in docs/matching.md; engine/reference/ is the same
rules in plain Python. MatchingEngine extends PoolApi (pool_api.pyx: the main
pool's commands), which extends ChainApi (chain.pyx: option
series listing, delisting and settlement), which extends CommandApi (api.pyx: the
per-command and batch entry points, the event buffer), which extends
EngineParts (parts.pyx: the parts, their set-up, queries and state).
Business outcomes (rejects, cancels) are events, never exceptions. Nothing
here reads a clock or a random source.
"""

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.book cimport BookSide, Books
from engine.core.instrument cimport (check_price, check_qty, execution_band, in_static_band, recentre_dynamic,
                                     set_bands, set_reference)
from engine.core.ledger cimport Position
from engine.core.margin cimport Liquidation
from engine.core.types cimport *


cdef class MatchingEngine(PoolApi):
    """Deterministic price-time matching engine over integer prices and quantities.

    ``MatchingEngine(max_accounts=2**20, max_orders=2**26, risk=False,
    fee_account=0)``; EngineParts.__cinit__ (parts.pyx) says what they mean.
    Per-command methods return ``list[Event]``; ``process`` runs a numpy array of
    COMMAND_DTYPE records and returns a numpy array of EVENT_DTYPE records.
    """

    # ------------------------------------------------------------------
    # dispatch
    # ------------------------------------------------------------------

    cdef int execute(self, const CommandRec* c) except -1:
        cdef Py_ssize_t head
        self.cur_seq = c.seq if c.seq != 0 else self.last_seq + 1
        self.cur_ts = c.ts
        self.last_seq = self.cur_seq
        if c.kind == NEW_ORDER:
            return self._new_order(c)
        if c.kind == CANCEL:
            return self._cancel(c)
        if c.kind == AMEND:
            return self._amend(c)
        if c.kind == MASS_CANCEL:
            return self._mass_cancel(c)
        head = self.ev_n
        self._dispatch_command(c)
        if self.losses.held and self.ev_n > head and self.ev[head].kind != REJECTED:
            # Only while a liquidation holds a penalty, and off the order path: a
            # price, a deposit, a step may have ended it (losses.pyx).
            self._end_liquidations()
        return 0

    cdef int _dispatch_command(self, const CommandRec* c) except -1:
        """Run every command but the order commands."""
        if c.kind == SET_STATE:
            return self._set_state(c)
        if c.kind == SET_REFERENCE:
            return self._set_reference(c)
        if c.kind == CREDIT or c.kind == DEBIT:
            return self._credit_debit(c)
        if c.kind == SET_ASSET_PRICE or c.kind == SET_HAIRCUT:
            return self._set_asset_value(c)
        if c.kind == SKIP_DEPOSIT:
            return self._skip_deposit(c)
        if c.kind == SET_OPTION_RISK:
            return self._set_option_risk(c)
        if c.kind == LIQUIDATE:
            return self._liquidate(c)
        if c.kind == FREEZE_ACCOUNT:
            return self._freeze_account(c)
        if c.kind == SET_BANDS:
            return self._set_bands(c)
        if c.kind == LIST_SERIES:
            return self._list_series(c)
        if c.kind == DELIST_SERIES:
            return self._delist_series(c)
        if c.kind == SETTLE_SERIES:
            return self._settle_series(c)
        if c.kind == COVER_CALLS:
            return self._cover_calls(c)
        if c.kind == FUND:
            return self._fund(c)
        if c.kind == POOL_DEPOSIT:
            return self._pool_deposit(c)
        if c.kind == POOL_REDEEM:
            return self._pool_redeem(c)
        if c.kind == POOL_MARK:
            return self._pool_mark(c)
        if c.kind == POOL_DEPOSIT_REQUEST:
            return self._pool_deposit_request(c)
        if c.kind == POOL_CANCEL:
            return self._pool_cancel(c)
        if c.kind == TRANSFER_OUT or c.kind == TRANSFER_IN:
            return self._transfer(c)
        if c.kind == SWEEP_FEES:
            return self._sweep_fees(c)
        return self._reject(c, UNKNOWN_COMMAND)

    # ------------------------------------------------------------------
    # commands
    # ------------------------------------------------------------------

    cdef int _new_order(self, const CommandRec* c) except -1:
        cdef Instrument* inst
        cdef uint8_t why
        cdef price_t lo, hi, price
        cdef Order taker
        cdef EventRec* e
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return self._reject(c, UNKNOWN_INSTRUMENT)
        if not self._account_ok(c.account):
            return self._reject(c, UNKNOWN_ACCOUNT)
        if self.funds.n_frozen and self.funds.is_frozen(c.account):
            return self._reject(c, ACCOUNT_IS_FROZEN)
        if c.side != BUY and c.side != SELL:
            return self._reject(c, INVALID_SIDE)
        if c.order_type == LIMIT:
            if c.tif < GTC or c.tif > POST_ONLY:
                return self._reject(c, INVALID_TIF)
        elif c.order_type == MARKET:
            if c.tif != IOC and c.tif != FOK:
                return self._reject(c, INVALID_TIF)
        else:
            return self._reject(c, INVALID_ORDER_TYPE)
        if c.stp > CANCEL_BOTH:
            return self._reject(c, INVALID_STP)
        inst = &self.insts[c.instrument]
        why = check_qty(inst, c.qty)
        if why:
            return self._reject(c, why)
        if c.order_type == LIMIT:
            why = check_price(inst, c.price)
            if why:
                return self._reject(c, why)
        if inst.state == HALTED:
            return self._reject(c, INSTRUMENT_HALTED)
        if inst.state == CLOSED:
            return self._reject(c, INSTRUMENT_CLOSED)
        if inst.expiry_ns and c.ts >= inst.expiry_ns:
            return self._reject(c, SERIES_EXPIRED)
        execution_band(inst, &lo, &hi)
        if c.order_type == LIMIT:
            price = c.price
            if not in_static_band(inst, price):
                return self._reject(c, PRICE_OUTSIDE_BAND)
        else:
            if not inst.has_static and not inst.has_dynamic:
                return self._reject(c, NO_REFERENCE_PRICE)
            price = hi if c.side == BUY else lo
        if c.tif == POST_ONLY and self.books.crosses(c.instrument, c.side, price):
            return self._reject(c, POST_ONLY_WOULD_TAKE)
        if ((c.tif == GTC or c.tif == POST_ONLY)
                and self.books.order_live >= self.books.max_orders):
            return self._reject(c, BOOK_FULL)
        if self.risk:
            why = self.funds.reserve(inst, c.account, c.side, 0, 0, price, c.qty)
            if why:
                return self._reject(c, why)

        taker.order_id = self.next_order_id
        self.next_order_id += 1
        taker.client_order_id = c.client_order_id
        taker.price = price
        taker.leaves = c.qty
        taker.account = <int32_t>c.account
        taker.instrument = c.instrument
        taker.side = c.side
        taker.tif = c.tif
        taker.stp = c.stp
        taker.level = -1
        taker.live = 0

        e = self._emit(ACCEPTED)
        e.instrument = c.instrument
        e.order_id = taker.order_id
        e.client_order_id = taker.client_order_id
        e.account = c.account
        e.side = c.side
        e.aux = c.tif
        e.price = price
        e.qty = c.qty
        e.leaves = c.qty

        if c.tif == FOK and not self._fok_fillable(&taker, lo, hi):
            return self._kill(&taker, FOK_KILLED)
        return self._take(inst, &taker, -1, lo, hi, c.order_type == MARKET)

    cdef int _cancel(self, const CommandRec* c) except -1:
        cdef int32_t slot
        if not self._account_ok(c.account):
            return self._reject(c, UNKNOWN_ACCOUNT)
        slot = self.books.index.find(c.order_id) if c.order_id > 0 else -1
        if slot == -1:
            return self._reject(c, UNKNOWN_ORDER)
        if self.books.orders[slot].account != c.account:
            return self._reject(c, NOT_ORDER_OWNER)
        return self._cancel_slot(slot, USER)

    cdef int _amend(self, const CommandRec* c) except -1:
        cdef int32_t slot
        cdef Order* o
        cdef Instrument* inst
        cdef uint8_t why
        cdef price_t new_price, lo, hi
        cdef qty_t new_qty
        if not self._account_ok(c.account):
            return self._reject(c, UNKNOWN_ACCOUNT)
        slot = self.books.index.find(c.order_id) if c.order_id > 0 else -1
        if slot == -1:
            return self._reject(c, UNKNOWN_ORDER)
        o = &self.books.orders[slot]
        if o.account != c.account:
            return self._reject(c, NOT_ORDER_OWNER)
        inst = &self.insts[o.instrument]
        if inst.state == HALTED:
            return self._reject(c, INSTRUMENT_HALTED)
        if inst.state == CLOSED:
            return self._reject(c, INSTRUMENT_CLOSED)
        if inst.expiry_ns and c.ts >= inst.expiry_ns:
            return self._reject(c, SERIES_EXPIRED)
        if c.qty != 0:
            why = check_qty(inst, c.qty)
            if why:
                return self._reject(c, why)
        if c.price != 0:
            why = check_price(inst, c.price)
            if why:
                return self._reject(c, why)
            if not in_static_band(inst, c.price):
                return self._reject(c, PRICE_OUTSIDE_BAND)
        new_price = c.price if c.price != 0 else o.price
        new_qty = c.qty if c.qty != 0 else o.leaves
        if (new_price != o.price and o.tif == POST_ONLY
                and self.books.crosses(o.instrument, o.side, new_price)):
            return self._reject(c, POST_ONLY_WOULD_TAKE)
        if self.risk:
            why = self.funds.reserve(inst, o.account, o.side, o.price, o.leaves, new_price, new_qty)
            if why:
                return self._reject(c, why)
        if c.client_order_id != 0:
            o.client_order_id = c.client_order_id

        if new_price == o.price and new_qty <= o.leaves:
            if new_qty < o.leaves:
                self.books.take(slot, o.leaves - new_qty)
            return self._emit_amended(slot, 0)
        if new_price == o.price:
            self.books.unlink_level(slot)
            self.books.orders[slot].leaves = new_qty
            self.books.relink_back(slot)
            return self._emit_amended(slot, 1)
        # Price change: cancel/replace under the same order id; it may trade.
        self.books.unlink_level(slot)
        o = &self.books.orders[slot]
        o.price = new_price
        o.leaves = new_qty
        self._emit_amended(slot, 1)
        execution_band(inst, &lo, &hi)
        return self._take(inst, &self.books.orders[slot], slot, lo, hi, False)

    cdef int _emit_amended(self, int32_t slot, uint8_t priority_lost) except -1:
        cdef EventRec* e = self._emit(AMENDED)
        cdef Order* o = &self.books.orders[slot]
        e.instrument = o.instrument
        e.order_id = o.order_id
        e.client_order_id = o.client_order_id
        e.account = o.account
        e.side = o.side
        e.aux = priority_lost
        e.price = o.price
        e.qty = o.leaves
        e.leaves = o.leaves
        return 0

    cdef int _mass_cancel(self, const CommandRec* c) except -1:
        cdef EventRec* e
        if not self._account_ok(c.account):
            return self._reject(c, UNKNOWN_ACCOUNT)
        if c.instrument != -1 and (c.instrument < 0 or c.instrument >= self.n_inst):
            return self._reject(c, UNKNOWN_INSTRUMENT)
        cdef int count = self._cancel_account(c.account, c.instrument, MASS)
        e = self._emit(MASS_CANCELLED)
        e.account = c.account
        e.instrument = c.instrument
        e.qty = count
        return 0

    cdef int _cancel_account(self, int64_t account, int32_t instrument, uint8_t reason) except -1:
        """Cancel the account's resting orders (in one instrument, or all for -1); returns how many.
        With -1 (a liquidation, a freeze, an expiry's shortfall) also its pending pool deposit
        request: what it reserved must be free to pay what the account owes."""
        cdef int32_t slot, nxt
        cdef int count = 0
        slot = self.books.acct_head[account] if account < self.books.acct_cap else -1
        while slot != -1:
            nxt = self.books.orders[slot].acct_next
            if instrument == -1 or self.books.orders[slot].instrument == instrument:
                self._cancel_slot(slot, reason)
                count += 1
            slot = nxt
        if instrument == -1:
            self._pool_release(account)
        return count

    cdef int _set_state(self, const CommandRec* c) except -1:
        cdef EventRec* e
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return self._reject(c, UNKNOWN_INSTRUMENT)
        if c.state < OPEN or c.state > CLOSED:
            return self._reject(c, INVALID_STATE)
        if self.insts[c.instrument].series >= 0 and self.life.is_final(self.insts[c.instrument].series):
            return self._reject(c, SERIES_FINAL)
        self.insts[c.instrument].state = c.state
        e = self._emit(STATE_CHANGED)
        e.instrument = c.instrument
        e.aux = c.state
        return 0

    cdef int _set_reference(self, const CommandRec* c) except -1:
        cdef Instrument* inst
        cdef uint8_t why
        cdef EventRec* e
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return self._reject(c, UNKNOWN_INSTRUMENT)
        inst = &self.insts[c.instrument]
        why = check_price(inst, c.price)
        if why:
            return self._reject(c, why)
        set_reference(inst, c.price)
        self._cancel_outside_static(c.instrument)
        e = self._emit(REFERENCE_SET)
        e.instrument = c.instrument
        e.price = c.price
        return 0

    cdef int _set_bands(self, const CommandRec* c) except -1:
        """New band widths for an instrument (operator, e.g. per US market
        session): static in ``price``, dynamic in ``qty``, both bps. The bands
        re-centre on the current reference and last trade, and resting orders
        the new static band leaves outside are cancelled as on SET_REFERENCE."""
        cdef uint8_t why
        cdef EventRec* e
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return self._reject(c, UNKNOWN_INSTRUMENT)
        why = set_bands(&self.insts[c.instrument], c.price, c.qty)
        if why:
            return self._reject(c, why)
        self._cancel_outside_static(c.instrument)
        e = self._emit(BANDS_SET)
        e.instrument = c.instrument
        e.price = c.price
        e.qty = c.qty
        return 0

    cdef int _fund(self, const CommandRec* c) except -1:
        """Funding of a perpetual series (from the option-mark feed): ``price``
        its mark, ``qty`` its payoff, both price units. Brings the series'
        funding index up to this command's timestamp at the previous rate, sets
        the rate after it to mark - payoff, and settles every position
        (docs/funding.md); one FUNDING_SETTLED event per account that paid or
        received."""
        cdef Instrument* inst
        cdef int64_t index, acct
        cdef uint8_t why
        cdef bint payers
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return self._reject(c, UNKNOWN_INSTRUMENT)
        inst = &self.insts[c.instrument]
        why = self.funding.fund(inst, c.price, c.qty, self.cur_ts, &index)
        if why:
            return self._reject(c, why)
        e = self._emit(FUNDED)
        e.instrument = c.instrument
        e.price = c.price
        e.qty = c.qty
        # Payers first, so receivers are paid from what they paid in rather than
        # from the fee account's own balance (docs/funding.md).
        for payers in (True, False):
            acct = self.funding.next_due(inst.series, -1, index, payers)
            while acct >= 0:
                self._settle_funding(inst, acct, index, self.funds.n_frozen and self.funds.is_frozen(acct))
                acct = self.funding.next_due(inst.series, acct, index, payers)
        return 0

    cdef int _settle_fill_funding(self, const Instrument* inst, const Order* taker, const Order* maker,
                                  qty_t q) except -1:
        """Before a fill of q in a perpetual series moves positions: settle both
        accounts at the index of this command's timestamp."""
        cdef int64_t index = self.funding.index_at(inst, inst.series, self.cur_ts)
        # Neither is frozen: a freeze cancels the account's orders and refuses new ones.
        self._settle_funding(inst, taker.account, index, False)
        self._settle_funding(inst, maker.account, index, False)
        if taker.side == BUY:
            self.funding.fill(inst.series, taker.account, maker.account, q)
        else:
            self.funding.fill(inst.series, maker.account, taker.account, q)
        return 0

    cdef int _settle_funding(self, const Instrument* inst, int64_t account, int64_t index,
                             bint frozen) except -1:
        """Settle the account's funding in the series at ``index``: a FUNDING_SETTLED
        event (the fee account, the pool's holder, as maker_account) for an amount
        moved. A ``frozen`` account's funding is booked to the pool, with no event:
        nothing of it is left to settle after its freeze."""
        cdef EventRec* e
        cdef int64_t amount = self.funding.settle(inst, account, index, frozen)
        if amount and not frozen:
            e = self._emit(FUNDING_SETTLED)
            e.instrument = self.funding.series_inst[inst.series]
            e.account = account
            e.maker_account = self.funds.fee_account
            e.asset = inst.quote_asset
            e.qty = amount
        return 0

    cdef int _settle_funding_at_freeze(self, int64_t account) except -1:
        """Settle a just-frozen account's funding, from its own balance, in every
        perpetual series where it has a position or unpaid funding, at this
        command's timestamp and before its ACCOUNT_FROZEN event, so the records
        precede the freeze; from then on its funding is booked to the pool."""
        cdef int32_t s
        cdef const Position* p
        cdef const Instrument* inst
        if not self.funding.n_perpetual or not self.ledger.has_options[account]:
            return 0
        for s in range(self.funding.n_series):
            p = self.ledger.position(account, s)
            if self.funding.perpetual(s) and (p.pos != 0 or p.carry > 0):
                inst = &self.insts[self.funding.series_inst[s]]
                self._settle_funding(inst, account, self.funding.index_at(inst, s, self.cur_ts), False)
        return 0

    cdef int _cancel_outside_static(self, int32_t instrument) except -1:
        """Cancel (reason BAND) the resting orders outside the instrument's
        static band: bids lowest first, then asks highest first; each side's
        arrays run from worst to best."""
        cdef Instrument* inst = &self.insts[instrument]
        cdef BookSide* bs
        cdef int32_t i, lvl, slot, nxt
        cdef uint8_t side
        if not inst.has_static:
            return 0
        for side in (BUY, SELL):
            i = 0
            while True:
                bs = self.books.side_of(instrument, side)
                if i >= bs.n:
                    break
                lvl = bs.levels[i]
                if in_static_band(inst, self.books.levels[lvl].price):
                    i += 1
                    continue
                # Cancelling the level's last order removes index i itself.
                slot = self.books.levels[lvl].head
                while slot != -1:
                    nxt = self.books.orders[slot].next
                    self._cancel_slot(slot, BAND)
                    slot = nxt
        return 0

    cdef int _credit_debit(self, const CommandRec* c) except -1:
        cdef uint8_t why
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        why = self.funds.credit_debit(c)
        if why:
            return self._reject(c, why)
        e = self._emit(CREDITED if c.kind == CREDIT else DEBITED)
        e.order_id = c.order_id if c.kind == CREDIT else 0
        e.account = c.account
        e.asset = c.asset
        e.qty = c.qty
        e.leaves = self.ledger.at(c.account, c.asset).total
        return 0

    cdef int _transfer(self, const CommandRec* c) except -1:
        cdef uint8_t why
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        why = self.funds.transfer(c)
        if why:
            return self._reject(c, why)
        e = self._emit(TRANSFERRED_OUT if c.kind == TRANSFER_OUT else TRANSFERRED_IN)
        e.order_id = c.order_id
        e.account = c.account
        e.asset = c.asset
        e.qty = c.qty
        e.leaves = self.ledger.at(c.account, c.asset).total
        return 0

    cdef int _skip_deposit(self, const CommandRec* c) except -1:
        cdef uint8_t why
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        why = self.funds.skip_deposit(c.order_id)
        if why:
            return self._reject(c, why)
        e = self._emit(DEPOSIT_SKIPPED)
        e.order_id = c.order_id
        return 0

    cdef int _set_asset_value(self, const CommandRec* c) except -1:
        """An asset's USD reference price (SET_ASSET_PRICE) or its collateral haircut
        (SET_HAIRCUT, operator, e.g. per US market session), both in ``price``."""
        cdef uint8_t why
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if c.asset < 0 or c.asset >= self.ledger.n_assets:
            return self._reject(c, UNKNOWN_ASSET)
        if c.kind == SET_HAIRCUT:
            why = self.margins.set_haircut(c.asset, c.price)
        else:
            why = self.margins.set_asset_price(c.asset, c.price)
        if why:
            return self._reject(c, why)
        e = self._emit(HAIRCUT_SET if c.kind == SET_HAIRCUT else ASSET_PRICE_SET)
        e.asset = c.asset
        e.price = c.price
        return 0

    cdef int _set_option_risk(self, const CommandRec* c) except -1:
        """Set a series' initial (qty) and maintenance (price) margin of a short,
        USD x 1e8 per quantity unit (from the option-mark feed)."""
        cdef uint8_t why
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return self._reject(c, UNKNOWN_INSTRUMENT)
        if self.insts[c.instrument].series < 0:
            return self._reject(c, NOT_AN_OPTION)
        why = self.margins.set_rates(self.insts[c.instrument].series, c.qty, c.price)
        if why:
            return self._reject(c, why)
        e = self._emit(OPTION_RISK_SET)
        e.instrument = c.instrument
        e.qty = c.qty
        e.price = c.price
        return 0

    cdef int _liquidate(self, const CommandRec* c) except -1:
        """Liquidate an account under its maintenance margin: cancel its orders,
        then run the closing orders of its liquidation plan (margin.pyx), at most
        the pools' step_lots per series; with pools configured, the loss
        waterfall follows (losses.pyx)."""
        cdef int64_t acct = c.account
        cdef int64_t maintenance, value
        cdef Py_ssize_t head
        cdef Liquidation plan
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if not self.ledger.known(acct):
            return self._reject(c, UNKNOWN_ACCOUNT)
        if self.funds.n_frozen and self.funds.is_frozen(acct):
            return self._reject(c, ACCOUNT_IS_FROZEN)
        maintenance = self.margins.requirement(acct, False)
        value = self.margins.collateral(acct, False)
        if maintenance == 0 or value >= maintenance:
            return self._reject(c, NOT_UNDER_MAINTENANCE)
        head = self.ev_n
        e = self._emit(LIQUIDATED)
        e.account = acct
        e.price = maintenance
        e.leaves = value
        self._cancel_account(acct, -1, LIQUIDATION)
        plan = self.margins.plan(acct)
        plan.step_lots = self.losses.step_lots
        self.ev[head].qty = self._run_plan(&plan)
        if self.losses.enabled:
            self._cover_liquidation(acct, head)
        return 0

    cdef int _freeze_account(self, const CommandRec* c) except -1:
        """Freeze an account whose wallet requested an exit on chain (the exit
        watcher sends this once the request is final): cancel its orders and
        refuse its new orders and withdrawals from now on, after settling its
        perpetual funding up to now, so nothing of it is left to settle after
        this command. qty of the event: orders cancelled."""
        cdef uint8_t why
        cdef Py_ssize_t head
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        why = self.funds.freeze(c.account)
        if why:
            return self._reject(c, why)
        self._settle_funding_at_freeze(c.account)
        head = self.ev_n
        self._emit(ACCOUNT_FROZEN).account = c.account
        self.ev[head].qty = self._cancel_account(c.account, -1, FROZEN)
        return 0

    # ------------------------------------------------------------------
    # matching
    # ------------------------------------------------------------------

    cdef int _take(self, Instrument* inst, Order* taker, int32_t slot, price_t lo, price_t hi,
                   bint collared) except -1:
        """Match a taker inside the execution band [lo, hi] fixed at command
        start, settle its remainder, then re-centre the dynamic band."""
        cdef int64_t last_before = inst.last_trade
        cdef int stop = self._match(taker, lo, hi, collared)
        self._finish(taker, slot, stop)
        if inst.last_trade != last_before:
            recentre_dynamic(inst)
        return 0

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef int _match(self, Order* taker, price_t lo, price_t hi, bint collared) except -1:
        """Match taker against the opposite side; return why the walk stopped.

        collared: the taker's price is a market order's band-edge collar, so
        reaching it is a band stop.
        """
        cdef Books books = self.books
        cdef uint8_t opp = SELL if taker.side == BUY else BUY
        cdef bint buy = taker.side == BUY
        cdef Instrument* inst = &self.insts[taker.instrument]
        cdef BookSide* bs = books.side_of(taker.instrument, opp)
        cdef int32_t lvl, slot, nxt
        cdef price_t p
        cdef qty_t q
        cdef Order* maker
        cdef EventRec* e
        while taker.leaves > 0 and bs.n > 0:
            lvl = bs.levels[bs.n - 1]
            p = books.levels[lvl].price
            if (p > taker.price) if buy else (p < taker.price):
                return STOP_BAND if collared else STOP_NONE
            if p < lo or p > hi:
                return STOP_BAND
            slot = books.levels[lvl].head
            while slot != -1 and taker.leaves > 0:
                maker = &books.orders[slot]
                nxt = maker.next
                if maker.account == taker.account and taker.stp != STP_NONE:
                    if taker.stp == CANCEL_NEWEST:
                        return STOP_STP
                    self._cancel_slot(slot, SELF_TRADE)
                    if taker.stp == CANCEL_BOTH:
                        return STOP_STP
                    slot = nxt
                    continue
                q = maker.leaves if maker.leaves < taker.leaves else taker.leaves
                if self.risk and inst.series >= 0 and self.funding.perpetual(inst.series):
                    self._settle_fill_funding(inst, taker, maker, q)
                taker.leaves -= q
                e = self._emit(FILL)
                e.instrument = taker.instrument
                e.order_id = taker.order_id
                e.client_order_id = taker.client_order_id
                e.account = taker.account
                e.side = taker.side
                e.price = p
                e.qty = q
                e.leaves = taker.leaves
                e.maker_order_id = maker.order_id
                e.maker_client_order_id = maker.client_order_id
                e.maker_account = maker.account
                e.maker_leaves = maker.leaves - q
                if self.risk:
                    self.funds.settle_fill(inst, taker, maker, p, q, e)
                inst.last_trade = p
                if maker.leaves == q:
                    books.remove(slot)
                else:
                    books.take(slot, q)
                slot = nxt
        return STOP_NONE

    @cython.boundscheck(False)
    @cython.wraparound(False)
    cdef bint _fok_fillable(self, const Order* taker, price_t lo, price_t hi) noexcept:
        """Whether matching would fill the taker completely (walks, changes nothing)."""
        cdef Books books = self.books
        cdef uint8_t opp = SELL if taker.side == BUY else BUY
        cdef bint buy = taker.side == BUY
        cdef BookSide* bs = books.side_of(taker.instrument, opp)
        cdef int32_t i, slot
        cdef price_t p
        cdef qty_t need = taker.leaves
        cdef Order* maker
        i = bs.n - 1
        while i >= 0:
            p = books.levels[bs.levels[i]].price
            if (p > taker.price) if buy else (p < taker.price):
                return False
            if p < lo or p > hi:
                return False
            slot = books.levels[bs.levels[i]].head
            while slot != -1:
                maker = &books.orders[slot]
                if maker.account == taker.account and taker.stp != STP_NONE:
                    if taker.stp != CANCEL_OLDEST:
                        return False
                else:
                    need -= maker.leaves
                    if need <= 0:
                        return True
                slot = maker.next
            i -= 1
        return False

    cdef int _finish(self, Order* taker, int32_t slot, int stop) except -1:
        """Remainder of a taker after matching: done, cancelled or resting.

        slot is the taker's pool slot for an amended order, -1 for a new one.
        """
        cdef uint8_t reason
        cdef int32_t new_slot
        if taker.leaves == 0:
            if slot != -1:
                self.books.remove(slot)
            return 0
        if stop == STOP_STP:
            reason = SELF_TRADE
        elif stop == STOP_BAND:
            reason = BAND
        elif taker.tif == IOC or taker.tif == FOK:
            reason = IOC_REMAINDER
        else:
            if slot != -1:
                return self.books.relink_back(slot)
            new_slot = self.books.alloc_order()
            if new_slot == -1:
                raise RuntimeError("order pool exhausted after the capacity check")
            self.books.orders[new_slot] = taker[0]
            return self.books.rest(new_slot, False)
        if slot != -1:
            return self._cancel_slot(slot, reason)
        return self._kill(taker, reason)

    # ------------------------------------------------------------------
    # events
    # ------------------------------------------------------------------

    cdef int _reject(self, const CommandRec* c, uint8_t reason) except -1:
        cdef EventRec* e = self._emit(REJECTED)
        e.reason = reason
        e.instrument = c.instrument
        # Echo the id the command carries: the order a cancel or an amend names,
        # the vault deposit id of a credit or a deposit skip, the pool request executed or cancelled, a transfer's id.
        e.order_id = (c.order_id if c.kind == CANCEL or c.kind == AMEND or c.kind == CREDIT
                      or c.kind == SKIP_DEPOSIT or c.kind == POOL_REDEEM or c.kind == POOL_CANCEL
                      or c.kind == TRANSFER_OUT or c.kind == TRANSFER_IN else 0)
        e.client_order_id = c.client_order_id
        e.account = c.account
        e.side = c.side
        e.price = c.price
        e.qty = c.qty
        e.asset = c.asset
        return 0

    cdef int _kill(self, const Order* o, uint8_t reason) except -1:
        """Emit CANCELLED for an order's whole remainder and release its reservation."""
        if self.risk:
            self.funds.release(&self.insts[o.instrument], o)
        cdef EventRec* e = self._emit(CANCELLED)
        e.reason = reason
        e.instrument = o.instrument
        e.order_id = o.order_id
        e.client_order_id = o.client_order_id
        e.account = o.account
        e.side = o.side
        e.price = o.price
        e.qty = o.leaves
        return 0

    cdef int _cancel_slot(self, int32_t slot, uint8_t reason) except -1:
        """Cancel a resting (or amended, unlinked) order and free its slot."""
        self._kill(&self.books.orders[slot], reason)
        self.books.remove(slot)
        return 0
