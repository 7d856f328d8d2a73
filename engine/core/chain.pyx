"""The commands of an option series' life (docs/options_expiry.md): LIST_SERIES
adds a series at run time from a template series and integer terms
(engine/chains.py), DELIST_SERIES closes a series nobody holds, SETTLE_SERIES
closes an expired series and pays its positions in cash (expiry.pyx), and
COVER_CALLS, an account's choice to cover its call sells with its holdings.

The first three are operator commands; all are journaled and replayed like
any other, and they are the only way a series' status changes. ChainApi extends
LossApi (losses.pyx: the loss waterfall, which covers an expired short's
shortfall before its longs are cut); MatchingEngine (matcher.pyx) extends this
class and provides the order handling it calls.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t

from engine.core.api cimport _clip_u8, _command
from engine.core.book cimport OrderWalk
from engine.core.expiry cimport LIFE_DELISTED, LIFE_SETTLED
from engine.core.instrument cimport Instrument
from engine.core.types cimport (ACCEPTED, ACCOUNTS_DISABLED, AMOUNT_OVERFLOW, BUY, CLOSED, COVER_CALLS, COVERING_SET,
                                DELIST_SERIES, DELISTED, EXPIRED, INVALID_PRICE, INVALID_SERIES, INVALID_STATE,
                                LIQUIDATION, LIST_SERIES, NOT_AN_OPTION, NOT_EXPIRED, OPEN_INTEREST, POSITION_SETTLED,
                                SELL, SERIES_CLOSED, SERIES_EXISTS, SERIES_EXPIRED, SERIES_FINAL, SERIES_LISTED,
                                SETTLE_SERIES, UNKNOWN_ACCOUNT, UNKNOWN_INSTRUMENT, VALUE_LIMIT, EventRec)

from engine.chains import listed_series


cdef class ChainApi(LossApi):
    """Listing, delisting and settlement of option series; the class
    MatchingEngine extends (through it, CommandApi and EngineParts)."""

    # ------------------------------------------------------------------
    # per-command API
    # ------------------------------------------------------------------

    def list_series(self, int32_t template, int64_t right, int64_t expiry, int64_t strike, int64_t contract,
                    int64_t seq=0, int64_t ts=0):
        """List a series like ``template`` (operator): right 1 call / 2 put, expiry
        YYYYMMDD, strike in price units per underlying token, contract size in
        underlying ledger units (engine/chains.py)."""
        cdef CommandRec c = _command(LIST_SERIES, seq, ts)
        c.instrument = template
        c.side = _clip_u8(right)
        c.order_id = expiry
        c.price = strike
        c.qty = contract
        return self._run_one(&c)

    def delist_series(self, int32_t instrument, int64_t seq=0, int64_t ts=0):
        """Delist a series without open interest (operator); its orders are cancelled."""
        cdef CommandRec c = _command(DELIST_SERIES, seq, ts)
        c.instrument = instrument
        return self._run_one(&c)

    def settle_series(self, int32_t instrument, int64_t price, int64_t seq=0, int64_t ts=0):
        """Settle an expired series in cash at ``price`` (price units per underlying
        token: the TWAP the feed process computed)."""
        cdef CommandRec c = _command(SETTLE_SERIES, seq, ts)
        c.instrument = instrument
        c.price = price
        return self._run_one(&c)

    def cover_calls(self, int64_t account, bint on=True, int64_t seq=0, int64_t ts=0):
        """Cover the account's call sells with the underlying it holds (or stop)."""
        cdef CommandRec c = _command(COVER_CALLS, seq, ts)
        c.account = account
        c.state = on
        return self._run_one(&c)

    def series_status(self, int32_t instrument):
        """(status, settlement price) of an option series: 0 live, 1 settled, 2 delisted."""
        self._checked_instrument(instrument)
        cdef int32_t s = self.insts[instrument].series
        if s < 0:
            raise ValueError(f"instrument {instrument} is not an option series")
        return (self.life.status[s], self.life.settle_price[s])

    def open_interest(self, int32_t instrument):
        """Quantity units held long in an option series (every short faces a long);
        kept by every fill, so the query costs nothing per account."""
        self._checked_instrument(instrument)
        cdef int32_t s = self.insts[instrument].series
        if s < 0:
            raise ValueError(f"instrument {instrument} is not an option series")
        return self.life.open_interest[s]

    def covered(self, int64_t account, int32_t instrument):
        """Quantity units of the account's call exposure in the series covered by locked underlying."""
        self._checked_account(account)
        self._checked_instrument(instrument)
        cdef int32_t s = self.insts[instrument].series
        return self.ledger.position(account, s).covered if s >= 0 else 0

    # ------------------------------------------------------------------
    # commands
    # ------------------------------------------------------------------

    cdef int _list_series(self, const CommandRec* c) except -1:
        """Add the series LIST_SERIES describes (engine/chains.py); SERIES_LISTED
        carries its instrument id, right (side), expiry (order_id), strike
        (price) and contract size (qty)."""
        cdef EventRec* e
        cdef int32_t i
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return self._reject(c, UNKNOWN_INSTRUMENT)
        if self.specs[c.instrument].option is None:
            return self._reject(c, NOT_AN_OPTION)
        try:
            spec = listed_series(self.specs[c.instrument], self.asset_specs, c.side, c.order_id, c.price, c.qty)
        except ValueError:
            return self._reject(c, INVALID_SERIES)
        if c.ts and spec.option.expiry_ns <= c.ts:
            return self._reject(c, SERIES_EXPIRED)
        if any(s.symbol == spec.symbol for s in self.specs):
            return self._reject(c, SERIES_EXISTS)
        i = self.add_instrument(spec)
        e = self._emit(SERIES_LISTED)
        e.instrument = i
        e.side = c.side
        e.order_id = c.order_id
        e.price = c.price
        e.qty = c.qty
        return 0

    cdef int _delist_series(self, const CommandRec* c) except -1:
        """Close a live series nobody holds for good; SERIES_CLOSED (aux 2,
        delisted; qty: orders cancelled with reason DELISTED)."""
        cdef uint8_t why = self._final_check(c)
        cdef int32_t s
        cdef EventRec* e
        cdef Py_ssize_t head
        if why:
            return self._reject(c, why)
        s = self.insts[c.instrument].series
        if self.life.open_interest[s]:
            return self._reject(c, OPEN_INTEREST)
        head = self.ev_n
        e = self._emit(SERIES_CLOSED)
        e.instrument = c.instrument
        e.aux = LIFE_DELISTED
        self.ev[head].qty = self._cancel_instrument(c.instrument, DELISTED)
        self.insts[c.instrument].state = CLOSED
        self.life.close(s, LIFE_DELISTED, 0)
        return 0

    cdef int _settle_series(self, const CommandRec* c) except -1:
        """Close an expired series and pay its positions in cash at ``price``.

        SERIES_CLOSED (aux 1, settled; price: the settlement price; qty: premium
        collected from the shorts; leaves: their shortfall) comes first; then its orders are
        cancelled (EXPIRED), covered calls unlocked, each short whose free
        premium cannot pay has its orders cancelled (LIQUIDATION) and its other
        assets sold on spot books quoted in the premium asset (margin.pyx's
        payment plan), and one POSITION_SETTLED per position: side SELL paid /
        BUY received, qty the amount in premium ledger units, leaves the
        position, maker_account the clearing counterparty (the fee account)."""
        cdef uint8_t why = self._final_check(c)
        cdef Instrument* inst
        cdef Py_ssize_t head
        cdef Liquidation plan
        cdef EventRec* e
        if why:
            return self._reject(c, why)
        inst = &self.insts[c.instrument]
        if self.life.terms[inst.series] is None:
            return self._reject(c, INVALID_SERIES)
        # A perpetual series (expiry_ns 0) never expires: only delisting ends it.
        if inst.expiry_ns == 0 or c.ts < inst.expiry_ns:
            return self._reject(c, NOT_EXPIRED)
        if c.price <= 0:
            return self._reject(c, INVALID_PRICE)
        value = self.life.value(inst, c.price)
        if value > VALUE_LIMIT:
            return self._reject(c, AMOUNT_OVERFLOW)
        head = self.ev_n
        e = self._emit(SERIES_CLOSED)
        e.instrument = c.instrument
        e.aux = LIFE_SETTLED
        e.price = c.price
        self._cancel_instrument(c.instrument, EXPIRED)
        inst.state = CLOSED
        self.life.close(inst.series, LIFE_SETTLED, c.price)
        self.life.uncover_all(inst.series)
        for account, need in self.life.shortfalls(inst, value):
            self._cancel_account(account, -1, LIQUIDATION)
            plan = self.margins.payment_plan(account, c.instrument, min(need, VALUE_LIMIT))
            self._run_plan(&plan)
            if self.losses.enabled:
                self._cover_payment(account, c.instrument, need)
        inst = &self.insts[c.instrument]
        rows, collected, shortfall = self.life.settle(inst, value, self.funds.fee_account)
        for account, amount, side, pos in rows:
            e = self._emit(POSITION_SETTLED)
            e.instrument = c.instrument
            e.account = account
            e.asset = inst.quote_asset
            e.side = side
            e.price = c.price
            e.qty = amount
            e.leaves = pos if pos > 0 else -pos
            e.maker_account = self.funds.fee_account
        self.ev[head].qty = collected
        self.ev[head].leaves = shortfall
        return 0

    cdef int _cover_calls(self, const CommandRec* c) except -1:
        """An account's choice (``state`` 1 on, 0 off) to cover its call sells with
        the underlying it holds (expiry.pyx); COVERING_SET echoes it in aux."""
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if not self.ledger.known(c.account):
            return self._reject(c, UNKNOWN_ACCOUNT)
        if c.state > 1:
            return self._reject(c, INVALID_STATE)
        self.life.set_covering(c.account, c.state)
        e = self._emit(COVERING_SET)
        e.account = c.account
        e.aux = c.state
        return 0

    cdef uint8_t _final_check(self, const CommandRec* c) noexcept:
        # What DELIST_SERIES and SETTLE_SERIES both need: a live option series.
        if not self.risk:
            return ACCOUNTS_DISABLED
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return UNKNOWN_INSTRUMENT
        if self.insts[c.instrument].series < 0:
            return NOT_AN_OPTION
        if self.life.is_final(self.insts[c.instrument].series):
            return SERIES_FINAL
        return 0

    cdef int64_t _run_plan(self, Liquidation* plan) except -1:
        """Run a liquidation or payment plan's orders, each reading what the one
        before left; returns how many were accepted."""
        cdef int64_t accepted = 0
        cdef Py_ssize_t before
        cdef CommandRec order
        self.funds.liquidating = True
        try:
            while self.margins.next_order(plan, self.insts, self.n_inst, &order):
                order.seq = self.cur_seq
                order.ts = self.cur_ts
                before = self.ev_n
                self._new_order(&order)
                if self.ev[before].kind == ACCEPTED:
                    accepted += 1
        finally:
            self.funds.liquidating = False
        return accepted

    cdef int _cancel_instrument(self, int32_t instrument, uint8_t reason) except -1:
        """Cancel every resting order of an instrument, bids then asks, best first; returns how many."""
        cdef OrderWalk w
        cdef int32_t slot
        slots = []
        for side in (BUY, SELL):
            w = self.books.walk(instrument, side)
            slot = self.books.next_resting(&w)
            while slot != -1:
                slots.append(slot)
                slot = self.books.next_resting(&w)
        for slot in slots:
            self._cancel_slot(slot, reason)
        return len(slots)

    # ------------------------------------------------------------------
    # order handling (MatchingEngine's)
    # ------------------------------------------------------------------

    cdef int _new_order(self, const CommandRec* c) except -1:
        raise NotImplementedError("order handling is MatchingEngine's (engine/core/matcher.pyx)")

    cdef int _cancel_account(self, int64_t account, int32_t instrument, uint8_t reason) except -1:
        raise NotImplementedError("order handling is MatchingEngine's (engine/core/matcher.pyx)")

    cdef int _cancel_slot(self, int32_t slot, uint8_t reason) except -1:
        raise NotImplementedError("order handling is MatchingEngine's (engine/core/matcher.pyx)")

    cdef int _reject(self, const CommandRec* c, uint8_t reason) except -1:
        raise NotImplementedError("order handling is MatchingEngine's (engine/core/matcher.pyx)")
