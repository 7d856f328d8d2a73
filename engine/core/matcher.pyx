"""The matching engine: command dispatch, order handling (new, cancel, amend,
mass cancel), price-time matching inside the bands, and events.

The rules are specified in docs/matching.md; engine/reference/ is the same
rules in plain Python. The engine holds one of each part: instruments
(instrument.pyx), resting orders (book.pyx), balances (ledger.pyx),
reservations, fills and deposits (risk.pyx), option margin and liquidation
plans (margin.pyx); state.pyx puts their snapshots and hashes together.
Business outcomes (rejects, cancels) are events, never exceptions. Nothing
here reads a clock or a random source.
"""

cimport cython
from cpython.mem cimport PyMem_RawFree, PyMem_RawRealloc
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t
from libc.string cimport memcpy, memset

from engine.core.book cimport BookSide
from engine.core.events cimport events_from_recs
from engine.core.instrument cimport (check_price, check_qty, execution_band, in_static_band, init_instrument,
                                     recentre_dynamic, set_reference)
from engine.core.margin cimport Liquidation
from engine.core.recarrays cimport new_records, record_data
from engine.core.state cimport check_integrity, read_snapshot, state_hash, write_snapshot
from engine.core.types cimport *

import numpy as np

cimport numpy as cnp

cnp.import_array()

from engine.core import snapshot as _snap
from engine.core.records import COMMAND_DTYPE, EVENT_DTYPE
from engine.units import instrument_units

if COMMAND_DTYPE.itemsize != sizeof(CommandRec) or EVENT_DTYPE.itemsize != sizeof(EventRec):
    raise ImportError("engine.core.records dtypes do not match the C records")

# The batch API reads and builds its arrays through engine/core/recarrays.
cdef cnp.dtype _EVENT_DESCR = EVENT_DTYPE
cdef cnp.dtype _COMMAND_DESCR = COMMAND_DTYPE


cdef inline cnp.ndarray _new_events(Py_ssize_t n):
    return new_records(_EVENT_DESCR, n)


cdef inline const CommandRec* _command_data(object commands, Py_ssize_t* n) except NULL:
    return <const CommandRec*>record_data(commands, _COMMAND_DESCR, "engine.core.records.COMMAND_DTYPE", n)


cdef CommandRec _EMPTY_COMMAND
cdef EventRec _ZERO_EVENT

cdef enum:
    _INITIAL_EVENTS = 256


cdef inline CommandRec _command(uint8_t kind, int64_t seq, int64_t ts) noexcept:
    cdef CommandRec c = _EMPTY_COMMAND
    c.kind = kind
    c.seq = seq
    c.ts = ts
    return c


cdef inline uint8_t _clip_u8(int64_t value) noexcept:
    # Out-of-range enum arguments from Python become 255, invalid for every enum.
    return <uint8_t>value if 0 <= value <= 254 else 255


cdef class MatchingEngine:
    """Deterministic price-time matching engine over integer prices and quantities.

    Per-command methods return ``list[Event]``; ``process`` runs a numpy array of
    COMMAND_DTYPE records and returns a numpy array of EVENT_DTYPE records.
    """

    def __cinit__(self, int64_t max_accounts=(1 << 20), int32_t max_orders=(1 << 26),
                  bint risk=False, int64_t fee_account=0):
        """risk=False runs a pure matcher (any account id below max_accounts
        trades, nothing is reserved); risk=True needs assets, opened accounts
        and balances, and checks every order before it reaches the book."""
        if max_accounts <= 0 or max_accounts > (1 << 31):
            raise ValueError("max_accounts must be in [1, 2**31]")
        if max_orders <= 0:
            raise ValueError("max_orders must be positive")
        if not 0 <= fee_account < max_accounts:
            raise ValueError("fee_account must be a valid account id")
        self.books = Books(max_orders)
        self.ledger = Ledger()
        self.margins = Margin(self.ledger)
        self.funds = Risk(self.ledger, self.margins, fee_account)
        self.risk = risk
        self.asset_specs = []
        self.specs = []
        self.max_accounts = max_accounts
        self.next_order_id = 1
        self.last_seq = 0
        self.ev_cap = _INITIAL_EVENTS
        self.ev = <EventRec*>PyMem_RawRealloc(NULL, self.ev_cap * sizeof(EventRec))
        if self.ev == NULL:
            raise MemoryError()
        if risk:
            self.ledger.open_account(fee_account)

    def __dealloc__(self):
        PyMem_RawFree(self.insts)
        PyMem_RawFree(self.ev)

    # ------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------

    def add_asset(self, spec):
        """Register an AssetSpec; returns its asset id (0, 1, ...)."""
        if any(a.symbol == spec.symbol for a in self.asset_specs):
            raise ValueError(f"asset {spec.symbol} already registered")
        if self.risk and spec.ledger_decimals > MAX_LEDGER_DECIMALS:
            # Collateral values divide by 10**ledger_decimals, an int64.
            raise ValueError(f"{spec.symbol}: ledger_decimals above 18 do not fit the engine's int64 ledger")
        self.ledger.add_asset(spec.haircut_bps, 10 ** spec.ledger_decimals
                              if spec.ledger_decimals <= MAX_LEDGER_DECIMALS else 0)
        self.asset_specs.append(spec)
        return len(self.asset_specs) - 1

    def asset_id(self, str symbol):
        """Asset id of a registered symbol."""
        for i, a in enumerate(self.asset_specs):
            if a.symbol == symbol:
                return i
        raise ValueError(f"unknown asset {symbol}")

    @property
    def assets(self):
        """The registered AssetSpecs, indexed by asset id."""
        return tuple(self.asset_specs)

    @property
    def fee_account(self):
        """The account that receives trading fees."""
        return self.funds.fee_account

    @property
    def last_deposit_id(self):
        """The last vault deposit id credited or skipped (0: none)."""
        return self.funds.last_deposit_id

    def open_account(self, int64_t account):
        """Open an account (risk mode): it may then hold balances and trade."""
        if not self.risk:
            raise ValueError("accounts are only kept with risk=True")
        if not 0 <= account < self.max_accounts:
            raise ValueError(f"account {account} outside [0, {self.max_accounts})")
        self.ledger.open_account(account)

    def add_instrument(self, spec):
        """Register an InstrumentSpec; returns its instrument id (0, 1, ...)."""
        units = instrument_units(spec, self.asset_specs) if self.risk else None
        cdef Instrument* grown = <Instrument*>PyMem_RawRealloc(
            self.insts, (self.n_inst + 1) * sizeof(Instrument))
        if grown == NULL:
            raise MemoryError()
        self.insts = grown
        init_instrument(&self.insts[self.n_inst], spec, units)
        if units is not None and spec.option is not None:
            self.margins.add_series(&self.insts[self.n_inst], self.n_inst)
        self.books.add_book()
        self.specs.append(spec)
        self.n_inst += 1
        return self.n_inst - 1

    @property
    def instruments(self):
        """The registered InstrumentSpecs, indexed by instrument id."""
        return tuple(self.specs)

    # ------------------------------------------------------------------
    # per-command API
    # ------------------------------------------------------------------

    def new_order(self, int32_t instrument, int64_t account, int64_t side, int64_t qty,
                  int64_t price=0, int64_t order_type=LIMIT, int64_t tif=GTC,
                  int64_t stp=CANCEL_NEWEST, int64_t client_order_id=0,
                  int64_t seq=0, int64_t ts=0):
        """Place an order; returns its events (ACCEPTED, FILLs, CANCELLED, or REJECTED)."""
        cdef CommandRec c = _command(NEW_ORDER, seq, ts)
        c.instrument = instrument
        c.account = account
        c.side = _clip_u8(side)
        c.order_type = _clip_u8(order_type)
        c.tif = _clip_u8(tif)
        c.stp = _clip_u8(stp)
        c.client_order_id = client_order_id
        c.price = price
        c.qty = qty
        return self._run_one(&c)

    def cancel(self, int64_t account, int64_t order_id, int64_t client_order_id=0,
               int64_t seq=0, int64_t ts=0):
        """Cancel a resting order of this account."""
        cdef CommandRec c = _command(CANCEL, seq, ts)
        c.account = account
        c.order_id = order_id
        c.client_order_id = client_order_id
        return self._run_one(&c)

    def amend(self, int64_t account, int64_t order_id, int64_t qty=0, int64_t price=0,
              int64_t client_order_id=0, int64_t seq=0, int64_t ts=0):
        """Change a resting order's open quantity and/or price (0 keeps the value)."""
        cdef CommandRec c = _command(AMEND, seq, ts)
        c.account = account
        c.order_id = order_id
        c.qty = qty
        c.price = price
        c.client_order_id = client_order_id
        return self._run_one(&c)

    def mass_cancel(self, int64_t account, int32_t instrument=-1, int64_t seq=0, int64_t ts=0):
        """Cancel every resting order of the account (in one instrument, or all for -1)."""
        cdef CommandRec c = _command(MASS_CANCEL, seq, ts)
        c.account = account
        c.instrument = instrument
        return self._run_one(&c)

    def set_state(self, int32_t instrument, int64_t state, int64_t seq=0, int64_t ts=0):
        """Set an instrument's trading state (OPEN, HALTED, CLOSED)."""
        cdef CommandRec c = _command(SET_STATE, seq, ts)
        c.instrument = instrument
        c.state = _clip_u8(state)
        return self._run_one(&c)

    def set_reference_price(self, int32_t instrument, int64_t price, int64_t seq=0, int64_t ts=0):
        """Set the reference price the static band is centred on."""
        cdef CommandRec c = _command(SET_REFERENCE, seq, ts)
        c.instrument = instrument
        c.price = price
        return self._run_one(&c)

    def credit(self, int64_t account, int32_t asset, int64_t amount, int64_t deposit_id=0,
               int64_t seq=0, int64_t ts=0):
        """Credit a confirmed deposit (ledger units). A non-zero deposit_id is the
        vault's deposit id: accepted only as last_deposit_id + 1 (exactly once)."""
        cdef CommandRec c = _command(CREDIT, seq, ts)
        c.account = account
        c.asset = asset
        c.qty = amount
        c.order_id = deposit_id
        return self._run_one(&c)

    def skip_deposit(self, int64_t deposit_id, int64_t seq=0, int64_t ts=0):
        """Consume a vault deposit id without crediting (its wallet has no
        account here); the funds stay on the wallet's vault balance."""
        cdef CommandRec c = _command(SKIP_DEPOSIT, seq, ts)
        c.order_id = deposit_id
        return self._run_one(&c)

    def debit(self, int64_t account, int32_t asset, int64_t amount, int64_t seq=0, int64_t ts=0):
        """Debit a withdrawal from the free balance (ledger units)."""
        cdef CommandRec c = _command(DEBIT, seq, ts)
        c.account = account
        c.asset = asset
        c.qty = amount
        return self._run_one(&c)

    def set_asset_price(self, int32_t asset, int64_t usd_e8, int64_t seq=0, int64_t ts=0):
        """Set an asset's reference price in USD x 1e8 per whole token."""
        cdef CommandRec c = _command(SET_ASSET_PRICE, seq, ts)
        c.asset = asset
        c.price = usd_e8
        return self._run_one(&c)

    def set_option_risk(self, int32_t instrument, int64_t initial, int64_t maintenance,
                        int64_t seq=0, int64_t ts=0):
        """Set an option series' initial and maintenance margin of a short,
        USD x 1e8 per quantity unit (0 < maintenance <= initial <= 1e15)."""
        cdef CommandRec c = _command(SET_OPTION_RISK, seq, ts)
        c.instrument = instrument
        c.qty = initial
        c.price = maintenance
        return self._run_one(&c)

    def liquidate(self, int64_t account, int64_t seq=0, int64_t ts=0):
        """Liquidate an account under its maintenance margin (operator)."""
        cdef CommandRec c = _command(LIQUIDATE, seq, ts)
        c.account = account
        return self._run_one(&c)

    def submit(self, record):
        """Run one COMMAND_DTYPE record (a numpy void scalar or 0-d array)."""
        cdef CommandRec c
        if isinstance(record, np.void) and record.dtype == COMMAND_DTYPE:
            memcpy(&c, cnp.PyArray_DATA(np.asarray(record)), sizeof(CommandRec))
        else:
            arr = np.ascontiguousarray(record)
            if arr.dtype != COMMAND_DTYPE or arr.size != 1:
                raise TypeError("submit() takes one record of engine.core.records.COMMAND_DTYPE")
            memcpy(&c, cnp.PyArray_DATA(arr), sizeof(CommandRec))
        return self._run_one(&c)

    cdef list _run_one(self, const CommandRec* c):
        self.ev_n = 0
        self.execute(c)
        return events_from_recs(self.ev, self.ev_n)

    # ------------------------------------------------------------------
    # batch API
    # ------------------------------------------------------------------

    def process(self, commands):
        """Run an array of COMMAND_DTYPE records; return an array of EVENT_DTYPE records."""
        cdef Py_ssize_t i, n
        cdef const CommandRec* cmds = _command_data(commands, &n)
        self.ev_n = 0
        for i in range(n):
            self.execute(&cmds[i])
        cdef cnp.ndarray out = _new_events(self.ev_n)
        if self.ev_n:
            memcpy(cnp.PyArray_DATA(out), self.ev, self.ev_n * sizeof(EventRec))
        return out

    # ------------------------------------------------------------------
    # dispatch
    # ------------------------------------------------------------------

    cdef int execute(self, const CommandRec* c) except -1:
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
        if c.kind == SET_STATE:
            return self._set_state(c)
        if c.kind == SET_REFERENCE:
            return self._set_reference(c)
        if c.kind == CREDIT or c.kind == DEBIT:
            return self._credit_debit(c)
        if c.kind == SET_ASSET_PRICE:
            return self._set_asset_price(c)
        if c.kind == SKIP_DEPOSIT:
            return self._skip_deposit(c)
        if c.kind == SET_OPTION_RISK:
            return self._set_option_risk(c)
        if c.kind == LIQUIDATE:
            return self._liquidate(c)
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
        execution_band(inst, &lo, &hi)
        if c.order_type == LIMIT:
            price = c.price
            if not in_static_band(inst, price):
                return self._reject(c, PRICE_OUTSIDE_BAND)
        else:
            if not inst.has_static and not inst.has_dynamic:
                return self._reject(c, NO_REFERENCE_PRICE)
            price = hi if c.side == BUY else lo
        if c.tif == POST_ONLY and self._crosses(c.instrument, c.side, price):
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
                and self._crosses(o.instrument, o.side, new_price)):
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
        """Cancel the account's resting orders (in one instrument, or all for -1); returns how many."""
        cdef int32_t slot, nxt
        cdef int count = 0
        slot = self.books.acct_head[account] if account < self.books.acct_cap else -1
        while slot != -1:
            nxt = self.books.orders[slot].acct_next
            if instrument == -1 or self.books.orders[slot].instrument == instrument:
                self._cancel_slot(slot, reason)
                count += 1
            slot = nxt
        return count

    cdef int _set_state(self, const CommandRec* c) except -1:
        cdef EventRec* e
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return self._reject(c, UNKNOWN_INSTRUMENT)
        if c.state < OPEN or c.state > CLOSED:
            return self._reject(c, INVALID_STATE)
        self.insts[c.instrument].state = c.state
        e = self._emit(STATE_CHANGED)
        e.instrument = c.instrument
        e.aux = c.state
        return 0

    cdef int _set_reference(self, const CommandRec* c) except -1:
        cdef Instrument* inst
        cdef uint8_t why
        cdef EventRec* e
        cdef BookSide* bs
        cdef int32_t i, lvl, slot, nxt
        cdef price_t p
        cdef uint8_t side
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return self._reject(c, UNKNOWN_INSTRUMENT)
        inst = &self.insts[c.instrument]
        why = check_price(inst, c.price)
        if why:
            return self._reject(c, why)
        set_reference(inst, c.price)
        if inst.static_bps:
            # Cancel what the new band leaves outside: bids lowest first, then
            # asks highest first; each side's arrays run from worst to best.
            for side in (BUY, SELL):
                i = 0
                while True:
                    bs = self.books.side_of(c.instrument, side)
                    if i >= bs.n:
                        break
                    lvl = bs.levels[i]
                    p = self.books.levels[lvl].price
                    if in_static_band(inst, p):
                        i += 1
                        continue
                    # Cancelling the level's last order removes index i itself.
                    slot = self.books.levels[lvl].head
                    while slot != -1:
                        nxt = self.books.orders[slot].next
                        self._cancel_slot(slot, BAND)
                        slot = nxt
        e = self._emit(REFERENCE_SET)
        e.instrument = c.instrument
        e.price = c.price
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

    cdef int _set_asset_price(self, const CommandRec* c) except -1:
        cdef uint8_t why
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if c.asset < 0 or c.asset >= self.ledger.n_assets:
            return self._reject(c, UNKNOWN_ASSET)
        why = self.margins.set_asset_price(c.asset, c.price)
        if why:
            return self._reject(c, why)
        e = self._emit(ASSET_PRICE_SET)
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
        then run the closing orders of its liquidation plan (margin.pyx)."""
        cdef int64_t acct = c.account
        cdef int64_t maintenance, value
        cdef Py_ssize_t head, before
        cdef int64_t closing = 0
        cdef Liquidation plan
        cdef CommandRec order
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if not self.ledger.known(acct):
            return self._reject(c, UNKNOWN_ACCOUNT)
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
        self.funds.liquidating = True
        try:
            while self.margins.next_order(&plan, self.insts, self.n_inst, &order):
                order.seq = self.cur_seq
                order.ts = self.cur_ts
                before = self.ev_n
                self._new_order(&order)
                if self.ev[before].kind == ACCEPTED:
                    closing += 1
        finally:
            self.funds.liquidating = False
        self.ev[head].qty = closing
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

    cdef bint _crosses(self, int32_t instrument, uint8_t side, price_t price) noexcept:
        """Whether a price reaches the best opposite price."""
        cdef int32_t lvl = self.books.best_level(instrument, SELL if side == BUY else BUY)
        if lvl == -1:
            return False
        if side == BUY:
            return price >= self.books.levels[lvl].price
        return price <= self.books.levels[lvl].price

    # ------------------------------------------------------------------
    # events
    # ------------------------------------------------------------------

    cdef EventRec* _emit(self, uint8_t kind) except NULL:
        """A zeroed event stamped with the current command's seq and ts."""
        cdef EventRec* grown
        cdef EventRec* e
        if self.ev_n == self.ev_cap:
            grown = <EventRec*>PyMem_RawRealloc(self.ev, 2 * self.ev_cap * sizeof(EventRec))
            if grown == NULL:
                raise MemoryError()
            self.ev = grown
            self.ev_cap *= 2
        e = &self.ev[self.ev_n]
        self.ev_n += 1
        e[0] = _ZERO_EVENT
        e.seq = self.cur_seq
        e.ts = self.cur_ts
        e.kind = kind
        return e

    cdef int _reject(self, const CommandRec* c, uint8_t reason) except -1:
        cdef EventRec* e = self._emit(REJECTED)
        e.reason = reason
        e.instrument = c.instrument
        # Echo the id the command carries: the order a cancel or an amend names,
        # the vault deposit id of a credit or a deposit skip.
        e.order_id = (c.order_id if c.kind == CANCEL or c.kind == AMEND or c.kind == CREDIT
                      or c.kind == SKIP_DEPOSIT else 0)
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

    cdef bint _account_ok(self, int64_t account) noexcept:
        if self.risk:
            return self.ledger.known(account)
        return 0 <= account < self.max_accounts

    # ------------------------------------------------------------------
    # replay / recovery
    # ------------------------------------------------------------------

    def seed_order(self, int32_t instrument, int64_t account, int64_t side, int64_t price,
                   int64_t qty, bint at_front=False, int64_t client_order_id=0):
        """Place a resting GTC order without matching (book reconstruction).

        Raises ValueError on invalid input or if the order would cross the book.
        at_front queues it before the orders already at that price.
        """
        cdef Instrument* inst
        cdef int32_t slot
        cdef Order* o
        if instrument < 0 or instrument >= self.n_inst:
            raise ValueError(f"unknown instrument {instrument}")
        if not self._account_ok(account):
            raise ValueError(f"unknown account {account}")
        if side != BUY and side != SELL:
            raise ValueError(f"invalid side {side}")
        inst = &self.insts[instrument]
        # A recovered order may hold less than min_qty after partial fills.
        if qty <= 0 or qty % inst.lot != 0 or qty > inst.max_qty:
            raise ValueError(f"invalid seed quantity {qty}")
        if check_price(inst, price):
            raise ValueError(f"invalid seed price {price}")
        if not in_static_band(inst, price):
            raise ValueError(f"seed price {price} outside the static band")
        if self._crosses(instrument, <uint8_t>side, price):
            raise ValueError(f"seed order at {price} would cross the book")
        if self.books.order_live >= self.books.max_orders:
            raise ValueError("order capacity exhausted")
        if self.risk:
            if self.funds.reserve(inst, account, <uint8_t>side, 0, 0, price, qty):
                raise ValueError(f"account {account} cannot cover the seed order")
        slot = self.books.alloc_order()
        o = &self.books.orders[slot]
        memset(o, 0, sizeof(Order))
        o.order_id = self.next_order_id
        self.next_order_id += 1
        o.client_order_id = client_order_id
        o.price = price
        o.leaves = qty
        o.account = <int32_t>account
        o.instrument = instrument
        o.side = <uint8_t>side
        o.tif = GTC
        o.stp = CANCEL_NEWEST
        o.level = -1
        self.books.rest(slot, at_front)
        return self.books.orders[slot].order_id

    # ------------------------------------------------------------------
    # state (state.pyx)
    # ------------------------------------------------------------------

    cdef Parts _parts(self) noexcept:
        cdef Parts parts
        parts.insts = self.insts
        parts.n_inst = self.n_inst
        parts.next_order_id = self.next_order_id
        parts.last_seq = self.last_seq
        parts.max_accounts = self.max_accounts
        parts.risk = self.risk
        return parts

    def snapshot(self):
        """The full state as bytes (see engine/core/snapshot.py)."""
        cdef Parts parts = self._parts()
        return write_snapshot(&parts, self.books, self.funds, self.margins, self.asset_specs, self.specs)

    @staticmethod
    def from_snapshot(data):
        """Rebuild an engine from snapshot() bytes; raises ValueError if invalid.

        Every part is checked against the engine it rebuilds before it is
        written into the C structures, so a corrupt snapshot is refused, never
        half-applied."""
        try:
            snap = _snap.DECODER.decode(data)
        except Exception as err:
            raise ValueError(f"not an engine snapshot: {err}") from err
        if snap.version not in _snap.SUPPORTED_VERSIONS:
            raise ValueError(f"snapshot version {snap.version}, expected one of {_snap.SUPPORTED_VERSIONS}")
        cdef MatchingEngine eng
        cdef Parts parts
        try:
            eng = MatchingEngine(snap.max_accounts, snap.max_orders, snap.risk, snap.fee_account)
            for spec in snap.assets:
                eng.add_asset(spec)
            for spec in snap.instruments:
                eng.add_instrument(spec)
            parts = eng._parts()
            read_snapshot(snap, &parts, eng.books, eng.funds, eng.margins)
        except (OverflowError, TypeError) as err:
            raise ValueError(f"snapshot value out of range: {err}") from err
        eng.next_order_id = parts.next_order_id
        eng.last_seq = parts.last_seq
        return eng

    def state_hash(self):
        """SHA-256 (hex) over the full state; equal states give equal hashes."""
        cdef Parts parts = self._parts()
        return state_hash(&parts, self.books, self.funds, self.margins)

    def check_integrity(self):
        """Raise AssertionError naming the first broken invariant."""
        cdef Parts parts = self._parts()
        check_integrity(&parts, self.books, self.funds)

    # ------------------------------------------------------------------
    # queries
    # ------------------------------------------------------------------

    def _checked_instrument(self, int32_t instrument):
        if instrument < 0 or instrument >= self.n_inst:
            raise ValueError(f"unknown instrument {instrument}")

    cdef int _checked_account(self, int64_t account) except -1:
        if not self.risk or not self.ledger.known(account):
            raise ValueError(f"unknown account {account}")
        return 0

    def best_bid(self, int32_t instrument):
        """(price, qty) of the best bid, or None."""
        return self._best(instrument, BUY)

    def best_ask(self, int32_t instrument):
        """(price, qty) of the best ask, or None."""
        return self._best(instrument, SELL)

    def _best(self, int32_t instrument, uint8_t side):
        self._checked_instrument(instrument)
        cdef int32_t lvl = self.books.best_level(instrument, side)
        if lvl == -1:
            return None
        return (self.books.levels[lvl].price, self.books.levels[lvl].qty)

    def depth(self, int32_t instrument, int levels):
        """(bids, asks), each a list of (price, qty, order count), best first."""
        self._checked_instrument(instrument)
        return self.books.depth(instrument, BUY, levels), self.books.depth(instrument, SELL, levels)

    def orders_at(self, int32_t instrument, int64_t side, int64_t price):
        """The resting orders at one price, in queue (FIFO) order."""
        self._checked_instrument(instrument)
        if side != BUY and side != SELL:
            raise ValueError(f"invalid side {side}")
        return self.books.orders_at(instrument, <uint8_t>side, price)

    def open_orders(self, int64_t account):
        """The account's resting orders, by order id."""
        if account < 0 or account >= self.max_accounts:
            raise ValueError(f"unknown account {account}")
        return self.books.open_orders(account)

    def order(self, int64_t order_id):
        """OrderInfo of a resting order, or None."""
        cdef int32_t slot = self.books.index.find(order_id) if order_id > 0 else -1
        return self.books.info(slot) if slot != -1 else None

    def balances(self, int64_t account):
        """[(total, reserved)] per asset id, in ledger units (risk mode)."""
        self._checked_account(account)
        return self.ledger.balances(account)

    def asset_price(self, int32_t asset):
        """An asset's reference price, USD x 1e8 per whole token (0 = unset)."""
        if asset < 0 or asset >= self.ledger.n_assets:
            raise ValueError(f"unknown asset {asset}")
        return self.ledger.usd_price[asset]

    def collateral_value(self, int64_t account):
        """Collateral value of an account in USD x 1e8: over assets, balance x
        reference price (floored to a unit) less the asset's haircut (floored).
        Assets without a reference price count as zero."""
        self._checked_account(account)
        return self.margins.collateral(account, False)

    def margin(self, int64_t account):
        """MarginState of an account (risk mode)."""
        self._checked_account(account)
        return self.margins.state(account)

    def positions(self, int64_t account):
        """The account's option positions and open sells, [PositionInfo] by instrument id."""
        self._checked_account(account)
        return self.margins.positions(account)

    def under_maintenance(self):
        """[(account, MarginState)] of every account whose collateral value is
        below its maintenance margin, by account id: the liquidation candidates."""
        return self.margins.under_maintenance() if self.risk else []

    def option_risk(self, int32_t instrument):
        """(initial, maintenance) margin of a short in an option series, USD x
        1e8 per quantity unit; (0, 0) until set."""
        self._checked_instrument(instrument)
        if self.insts[instrument].series < 0:
            raise ValueError(f"instrument {instrument} is not an option series"
                             + ("" if self.risk else " (options are margined only with risk=True)"))
        return self.margins.rates(self.insts[instrument].series)

    def instrument_units(self, int32_t instrument):
        """(base asset, quote asset, base per qty unit, quote per tick x qty unit,
        tick size): the exact mapping of fills to ledger units (risk mode)."""
        self._checked_instrument(instrument)
        if not self.risk:
            raise ValueError("instruments map to ledger units only with risk=True")
        cdef Instrument* inst = &self.insts[instrument]
        return (inst.base_asset, inst.quote_asset, inst.base_per_qty, inst.quote_per_tick_qty,
                inst.tick)

    def instrument_state(self, int32_t instrument):
        """(trading state, reference price, last trade price); 0 means unset."""
        self._checked_instrument(instrument)
        cdef Instrument* inst = &self.insts[instrument]
        return (inst.state, inst.reference, inst.last_trade)

    @property
    def resting_orders(self):
        """Number of resting orders across all books."""
        return self.books.order_live

    def memory_bytes(self):
        """Bytes held by the engine's C structures (books, index, event buffer)."""
        return (self.books.memory_bytes() + self.n_inst * sizeof(Instrument)
                + self.ev_cap * sizeof(EventRec))
