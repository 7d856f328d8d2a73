"""The matching engine: validation, price-time matching, bands, events.

The rules are specified in docs/matching.md; engine/reference.py is the same
rules in plain Python. Business outcomes (rejects, cancels) are events, never
exceptions. Nothing here reads a clock or a random source.
"""

cimport cython
from cpython.mem cimport PyMem_RawFree, PyMem_RawRealloc
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t
from libc.string cimport memcpy, memset

from engine.core.book cimport BookSide, Books
from engine.core.events cimport events_from_recs
from engine.core.ledger cimport Balance, Ledger, Position
from engine.core.recarrays cimport new_records, record_data
from engine.core.types cimport *

import hashlib

import numpy as np

cimport numpy as cnp

cnp.import_array()

from engine.assets import USD_PRICE_SCALE
from engine.core.order_info import MarginState, OrderInfo, PositionInfo
from engine.core import snapshot as _snap
from engine.core.records import COMMAND_DTYPE, EVENT_DTYPE

if COMMAND_DTYPE.itemsize != sizeof(CommandRec) or EVENT_DTYPE.itemsize != sizeof(EventRec):
    raise ImportError("engine.core.records dtypes do not match the C records")

# The batch API reads and builds its arrays through engine/core/recarrays.
cdef cnp.dtype _EVENT_DESCR = EVENT_DTYPE
cdef cnp.dtype _COMMAND_DESCR = COMMAND_DTYPE


cdef inline cnp.ndarray _new_events(Py_ssize_t n):
    return new_records(_EVENT_DESCR, n)


cdef inline const CommandRec* _command_data(object commands, Py_ssize_t* n) except NULL:
    return <const CommandRec*>record_data(commands, _COMMAND_DESCR, "engine.core.records.COMMAND_DTYPE", n)

# One resting order in a snapshot (engine/core/snapshot.py ORDER_DTYPE, packed).
cdef packed struct SnapOrder:
    int64_t order_id
    int64_t client_order_id
    int64_t price
    int64_t leaves
    int64_t account
    int32_t instrument
    uint8_t side
    uint8_t tif
    uint8_t stp
    uint8_t pad

if _snap.ORDER_DTYPE.itemsize != sizeof(SnapOrder) or _snap.ORDER_DTYPE.fields["instrument"][1] != 40:
    raise ImportError("engine.core.snapshot.ORDER_DTYPE does not match the C snapshot record")

# Margin and collateral arithmetic: products of an amount and a price need 128 bits.
cdef extern from *:
    ctypedef long long int128_t "__int128"

cdef CommandRec _EMPTY_COMMAND
cdef EventRec _ZERO_EVENT

DEF _STOP_NONE = 0
DEF _STOP_BAND = 1
DEF _STOP_STP = 2
DEF _INITIAL_EVENTS = 256
DEF _BPS = 10000
# One order's amounts stay below 2**60 (checked when an instrument is added);
# balances and each asset's supply stay below 2**62 (checked on credit), and
# fills only move value: no int64 overflow.
_ORDER_AMOUNT_LIMIT = 1 << 60
# 2**62: collateral values saturate here. A typed C global (a literal this
# size compared with an int128 would go through Python objects).
cdef int64_t _VALUE_LIMIT = 4611686018427387904
cdef int64_t _MAX_MARGIN = 1000000000000000      # 1e15: USD x 1e8 per quantity unit
cdef int64_t _MAX_USD_PRICE = 1000000000000000   # 1e15: USD x 1e8 per whole token


cdef inline void _band_around(int64_t centre, int64_t bps, int64_t tick,
                              int64_t* lo, int64_t* hi) noexcept nogil:
    # Edges rounded inwards to the tick grid (docs/matching.md, "Numbers").
    cdef int64_t unit = _BPS * tick
    lo[0] = (centre * (_BPS - bps) + unit - 1) // unit * tick
    hi[0] = centre * (_BPS + bps) // unit * tick


cdef inline int64_t _bps_of(int64_t amount, int64_t bps) noexcept nogil:
    # floor(amount * bps / 10000) for amount, bps >= 0, without 128-bit products.
    return (amount // _BPS) * bps + (amount % _BPS) * bps // _BPS


cdef inline int64_t _fee(int64_t notional, int64_t bps) noexcept nogil:
    # Fees and rebates both round towards zero: the fee account receives exactly
    # what takers pay minus what makers are rebated, and a maker rebate never
    # exceeds the taker fee of the same fill (|maker_bps| <= taker_bps).
    return _bps_of(notional, bps) if bps >= 0 else -_bps_of(notional, -bps)


cdef inline int64_t _notional(const Instrument* inst, price_t price, qty_t qty) noexcept nogil:
    return (price // inst.tick) * qty * inst.quote_per_tick_qty


cdef inline int64_t _reservation(const Instrument* inst, uint8_t side, price_t price,
                                 qty_t leaves) noexcept nogil:
    # What an order may still spend: a buy its notional at its limit plus the
    # largest fee it could pay, a sell its base quantity. Floor-rounded fees make
    # R(leaves) - R(leaves - q) cover every fill of q at or inside the limit.
    cdef int64_t n
    if side == BUY:
        n = _notional(inst, price, leaves)
        return n + _bps_of(n, inst.reserve_bps)
    return leaves * inst.base_per_qty


cdef inline qty_t _affordable(const Instrument* inst, price_t price, qty_t want, int64_t free) noexcept:
    # The largest multiple of the lot, at most want, whose buy reservation at
    # price fits in free. R(k lots) = k n + floor(k n f / 10000) with n the
    # notional of a lot and f the reserved fee rate, so k0 = floor(free x 10000
    # / (n (10000 + f))) fits and k0 + 2 never does: only k0 + 1 needs a check.
    cdef int64_t n = _notional(inst, price, inst.lot)
    cdef qty_t lots, most = want // inst.lot
    if n <= 0 or free <= 0:
        return 0
    lots = <qty_t>((<int128_t>free * _BPS) // (<int128_t>n * (_BPS + inst.reserve_bps)))
    if lots >= most:
        return most * inst.lot
    if _reservation(inst, BUY, price, (lots + 1) * inst.lot) <= free:
        lots += 1
    return lots * inst.lot


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
        self.risk = risk
        self.fee_account = fee_account
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
        PyMem_RawFree(self.series_inst)

    # ------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------

    def add_asset(self, spec):
        """Register an AssetSpec; returns its asset id (0, 1, ...)."""
        if any(a.symbol == spec.symbol for a in self.asset_specs):
            raise ValueError(f"asset {spec.symbol} already registered")
        if self.risk and spec.ledger_decimals > 18:
            # Collateral values divide by 10**ledger_decimals, an int64.
            raise ValueError(f"{spec.symbol}: ledger_decimals above 18 do not fit the engine's int64 ledger")
        self.ledger.add_asset(spec.haircut_bps, 10 ** spec.ledger_decimals if spec.ledger_decimals <= 18 else 0)
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

    def open_account(self, int64_t account):
        """Open an account (risk mode): it may then hold balances and trade."""
        if not self.risk:
            raise ValueError("accounts are only kept with risk=True")
        if not 0 <= account < self.max_accounts:
            raise ValueError(f"account {account} outside [0, {self.max_accounts})")
        self.ledger.open_account(account)

    def add_instrument(self, spec):
        """Register an InstrumentSpec; returns its instrument id (0, 1, ...)."""
        unit = self._risk_units(spec) if self.risk else None
        cdef Instrument* grown = <Instrument*>PyMem_RawRealloc(
            self.insts, (self.n_inst + 1) * sizeof(Instrument))
        if grown == NULL:
            raise MemoryError()
        self.insts = grown
        cdef Instrument* inst = &self.insts[self.n_inst]
        memset(inst, 0, sizeof(Instrument))
        inst.tick = spec.tick_size
        inst.lot = spec.lot_size
        inst.min_qty = spec.min_qty
        inst.max_qty = spec.max_qty
        inst.max_price = spec.max_price
        inst.static_bps = spec.static_band_bps
        inst.dynamic_bps = spec.dynamic_band_bps
        inst.state = OPEN
        inst.series = -1
        cdef int32_t* series_grown
        if unit is not None:
            (inst.base_asset, inst.quote_asset, inst.base_per_qty, inst.quote_per_tick_qty) = unit
            inst.maker_bps = spec.maker_fee_bps
            inst.taker_bps = spec.taker_fee_bps
            inst.reserve_bps = max(spec.maker_fee_bps, spec.taker_fee_bps, 0)
            if spec.option is not None:
                series_grown = <int32_t*>PyMem_RawRealloc(
                    self.series_inst, (self.ledger.n_series + 1) * sizeof(int32_t))
                if series_grown == NULL:
                    raise MemoryError()
                self.series_inst = series_grown
                inst.series = self.ledger.add_series()
                self.series_inst[inst.series] = self.n_inst
        self.books.add_book()
        self.specs.append(spec)
        self.n_inst += 1
        return self.n_inst - 1

    def _risk_units(self, spec):
        """(base id, quote id, base per qty unit, quote per tick x qty unit), exact.

        An option series moves no base asset (its base is the underlying): a
        fill moves the premium, and positions are kept per account."""
        base_id, quote_id = self.asset_id(spec.base), self.asset_id(spec.quote)
        if spec.option is not None and base_id == quote_id:
            raise ValueError(f"{spec.symbol}: an option's underlying and premium asset must differ")
        base, quote = self.asset_specs[base_id], self.asset_specs[quote_id]
        # One quantity unit is 1/qty_scale base tokens; one tick is
        # tick_size/price_scale quote tokens per base token.
        bpq_num, bpq_den = 10 ** base.ledger_decimals, spec.qty_scale
        qpt_num = spec.tick_size * 10 ** quote.ledger_decimals
        qpt_den = spec.price_scale * spec.qty_scale
        if bpq_num % bpq_den or qpt_num % qpt_den:
            raise ValueError(f"{spec.symbol}: a lot or a tick is finer than one ledger unit "
                             f"of {base.symbol}/{quote.symbol}; raise ledger_decimals")
        bpq, qpt = bpq_num // bpq_den, qpt_num // qpt_den
        if spec.option is not None:
            bpq = 0
        worst = (spec.max_price // spec.tick_size) * spec.max_qty * qpt
        worst += worst * max(spec.maker_fee_bps, spec.taker_fee_bps, 0) // 10000
        if worst >= _ORDER_AMOUNT_LIMIT or spec.max_qty * bpq >= _ORDER_AMOUNT_LIMIT:
            raise ValueError(f"{spec.symbol}: max_price x max_qty could overflow; lower them")
        return base_id, quote_id, bpq, qpt

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
        return self._run_balance(DEBIT, account, asset, amount, seq, ts)

    def set_asset_price(self, int32_t asset, int64_t usd_e8, int64_t seq=0, int64_t ts=0):
        """Set an asset's reference price in USD x 1e8 per whole token."""
        return self._run_balance(SET_ASSET_PRICE, 0, asset, usd_e8, seq, ts)

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

    def _run_balance(self, uint8_t kind, int64_t account, int32_t asset, int64_t amount,
                     int64_t seq, int64_t ts):
        cdef CommandRec c = _command(kind, seq, ts)
        c.account = account
        c.asset = asset
        if kind == SET_ASSET_PRICE:
            c.price = amount
        else:
            c.qty = amount
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
        why = self._check_qty(inst, c.qty)
        if why:
            return self._reject(c, why)
        if c.order_type == LIMIT:
            why = self._check_price(inst, c.price)
            if why:
                return self._reject(c, why)
        if inst.state == HALTED:
            return self._reject(c, INSTRUMENT_HALTED)
        if inst.state == CLOSED:
            return self._reject(c, INSTRUMENT_CLOSED)
        self._execution_band(inst, &lo, &hi)
        if c.order_type == LIMIT:
            price = c.price
            if inst.has_static and (price < inst.s_lo or price > inst.s_hi):
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
            why = self._reserve_new(inst, c, price)
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
        cdef EventRec* e
        cdef int64_t old_r, new_r
        cdef int32_t asset
        cdef Position* p
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
            why = self._check_qty(inst, c.qty)
            if why:
                return self._reject(c, why)
        if c.price != 0:
            why = self._check_price(inst, c.price)
            if why:
                return self._reject(c, why)
            if inst.has_static and (c.price < inst.s_lo or c.price > inst.s_hi):
                return self._reject(c, PRICE_OUTSIDE_BAND)
        new_price = c.price if c.price != 0 else o.price
        new_qty = c.qty if c.qty != 0 else o.leaves
        if (new_price != o.price and o.tif == POST_ONLY
                and self._crosses(o.instrument, o.side, new_price)):
            return self._reject(c, POST_ONLY_WOULD_TAKE)
        if self.risk and inst.series >= 0 and o.side == SELL:
            p = self.ledger.position(o.account, inst.series)
            p.ask_open += new_qty - o.leaves
            if new_qty > o.leaves and p.ask_open > p.pos and not self._margin_ok(o.account):
                p.ask_open -= new_qty - o.leaves
                return self._reject(c, INSUFFICIENT_MARGIN)
        elif self.risk:
            old_r = _reservation(inst, o.side, o.price, o.leaves)
            new_r = _reservation(inst, o.side, new_price, new_qty)
            asset = inst.quote_asset if o.side == BUY else inst.base_asset
            if new_r > old_r:
                why = self.ledger.reserve(o.account, asset, new_r - old_r)
                if why:
                    return self._reject(c, why)
            else:
                self.ledger.release(o.account, asset, old_r - new_r)
            p = self.ledger.position(o.account, inst.series) if inst.series >= 0 else NULL
            if p != NULL:
                p.bid_open += new_qty - o.leaves
            if (new_r > old_r and self.ledger.has_options[o.account]
                    and not (p != NULL and p.bid_open <= -p.pos)
                    and not self._margin_ok(o.account)):
                self.ledger.release(o.account, asset, new_r - old_r)
                if p != NULL:
                    p.bid_open -= new_qty - o.leaves
                return self._reject(c, INSUFFICIENT_MARGIN)
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
        self._execution_band(inst, &lo, &hi)
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
        cdef int32_t slot, nxt
        cdef int64_t count = 0
        cdef EventRec* e
        if not self._account_ok(c.account):
            return self._reject(c, UNKNOWN_ACCOUNT)
        if c.instrument != -1 and (c.instrument < 0 or c.instrument >= self.n_inst):
            return self._reject(c, UNKNOWN_INSTRUMENT)
        slot = self.books.acct_head[c.account] if c.account < self.books.acct_cap else -1
        while slot != -1:
            nxt = self.books.orders[slot].acct_next
            if c.instrument == -1 or self.books.orders[slot].instrument == c.instrument:
                self._cancel_slot(slot, MASS)
                count += 1
            slot = nxt
        e = self._emit(MASS_CANCELLED)
        e.account = c.account
        e.instrument = c.instrument
        e.qty = count
        return 0

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
        why = self._check_price(inst, c.price)
        if why:
            return self._reject(c, why)
        inst.reference = c.price
        if inst.static_bps:
            inst.has_static = 1
            _band_around(c.price, inst.static_bps, inst.tick, &inst.s_lo, &inst.s_hi)
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
                    if inst.s_lo <= p <= inst.s_hi:
                        i += 1
                        continue
                    # Cancelling the level's last order removes index i itself.
                    slot = self.books.levels[lvl].head
                    while slot != -1:
                        nxt = self.books.orders[slot].next
                        self._cancel_slot(slot, BAND)
                        slot = nxt
            if inst.last_trade and not inst.s_lo <= inst.last_trade <= inst.s_hi:
                # A last trade outside the new static band is stale: its dynamic
                # band would not meet the static band and nothing could trade.
                inst.last_trade = 0
                inst.has_dynamic = 0
        e = self._emit(REFERENCE_SET)
        e.instrument = c.instrument
        e.price = c.price
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
        if inst.last_trade != last_before and inst.dynamic_bps:
            inst.has_dynamic = 1
            _band_around(inst.last_trade, inst.dynamic_bps, inst.tick, &inst.d_lo, &inst.d_hi)
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
                return _STOP_BAND if collared else _STOP_NONE
            if p < lo or p > hi:
                return _STOP_BAND
            slot = books.levels[lvl].head
            while slot != -1 and taker.leaves > 0:
                maker = &books.orders[slot]
                nxt = maker.next
                if maker.account == taker.account and taker.stp != STP_NONE:
                    if taker.stp == CANCEL_NEWEST:
                        return _STOP_STP
                    self._cancel_slot(slot, SELF_TRADE)
                    if taker.stp == CANCEL_BOTH:
                        return _STOP_STP
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
                    self._settle_fill(inst, taker, maker, p, q, e)
                inst.last_trade = p
                if maker.leaves == q:
                    books.remove(slot)
                else:
                    books.take(slot, q)
                slot = nxt
        return _STOP_NONE

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
        if stop == _STOP_STP:
            reason = SELF_TRADE
        elif stop == _STOP_BAND:
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

    cdef void _execution_band(self, const Instrument* inst, price_t* lo, price_t* hi) noexcept:
        lo[0] = 0
        hi[0] = INT64_MAX
        if inst.has_static:
            lo[0] = inst.s_lo
            hi[0] = inst.s_hi
        if inst.has_dynamic:
            if inst.d_lo > lo[0]:
                lo[0] = inst.d_lo
            if inst.d_hi < hi[0]:
                hi[0] = inst.d_hi

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
        # Only cancels and amends name an existing order.
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
            self._release(o)
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

    # ------------------------------------------------------------------
    # risk
    # ------------------------------------------------------------------

    cdef bint _account_ok(self, int64_t account) noexcept:
        if self.risk:
            return self.ledger.known(account)
        return 0 <= account < self.max_accounts

    cdef uint8_t _reserve_new(self, const Instrument* inst, const CommandRec* c,
                              price_t price) noexcept:
        """Reserve what a new order could spend; a reject code if it cannot.

        No receiving balance can overflow: credits keep each asset's supply
        (credits minus debits) at most 2**62, balances are never negative and
        fills only move value, so no single balance exceeds 2**62.
        """
        cdef Position* p
        cdef int32_t asset
        cdef int64_t amount
        cdef uint8_t why
        if inst.series >= 0 and c.side == SELL:
            # An option sell reserves margin: what it could add to a short.
            if inst.im_per_qty == 0:
                return MARGIN_NOT_SET
            p = self.ledger.position(c.account, inst.series)
            p.ask_open += c.qty
            # Open sells within a long can only reduce it: no margin needed.
            if not self.liquidating and p.ask_open > p.pos and not self._margin_ok(c.account):
                p.ask_open -= c.qty
                return INSUFFICIENT_MARGIN
            self.ledger.has_options[c.account] = 1
            return 0
        if c.side == BUY:
            asset = inst.quote_asset
            amount = _reservation(inst, BUY, price, c.qty)
        else:
            asset = inst.base_asset
            amount = c.qty * inst.base_per_qty
        why = self.ledger.reserve(c.account, asset, amount)
        if why:
            return why
        p = self.ledger.position(c.account, inst.series) if inst.series >= 0 else NULL
        if p != NULL:
            p.bid_open += c.qty
        # A reservation takes free balance out of collateral: an account with
        # option exposure must still cover its initial margin, unless the order
        # can only reduce a short (with its other open buys in the series, at
        # most the short).
        if (self.ledger.has_options[c.account] and not self.liquidating
                and not (p != NULL and p.bid_open <= -p.pos)
                and not self._margin_ok(c.account)):
            self.ledger.release(c.account, asset, amount)
            if p != NULL:
                p.bid_open -= c.qty
            return INSUFFICIENT_MARGIN
        return 0

    cdef void _release(self, const Order* o) noexcept:
        cdef Instrument* inst = &self.insts[o.instrument]
        if inst.series >= 0:
            if o.side == SELL:
                self.ledger.position(o.account, inst.series).ask_open -= o.leaves
                return
            self.ledger.position(o.account, inst.series).bid_open -= o.leaves
        self.ledger.release(o.account, inst.quote_asset if o.side == BUY else inst.base_asset,
                            _reservation(inst, o.side, o.price, o.leaves))

    # Margin (docs/matching.md, "Options"). Collateral counts balances at their
    # reference price less the haircut; the initial check uses free balances
    # (reserved amounts are committed to orders), maintenance uses totals.

    cdef int64_t _collateral(self, int64_t account, bint free_only) noexcept:
        """Collateral value in USD x 1e8: per asset floor(amount x price / unit),
        capped at 2**62, less its haircut (floored); the sum capped at 2**62."""
        cdef Ledger ledger = self.ledger
        cdef int128_t total = 0
        cdef int128_t v
        cdef int32_t a
        cdef const Balance* b
        cdef int64_t amount
        for a in range(ledger.n_assets):
            b = ledger.at(account, a)
            amount = b.total - b.reserved if free_only else b.total
            if amount <= 0 or ledger.usd_price[a] == 0:
                continue
            v = <int128_t>amount * ledger.usd_price[a] // ledger.unit_scale[a]
            if v > _VALUE_LIMIT:
                v = _VALUE_LIMIT
            total += v * (_BPS - ledger.haircut_bps[a]) // _BPS
        return <int64_t>(total if total < _VALUE_LIMIT else _VALUE_LIMIT)

    cdef int64_t _requirement(self, int64_t account, bint initial) noexcept:
        """Margin in USD x 1e8 over the account's option series: initial covers
        the short it would hold if all its open sells filled (ask_open - pos),
        maintenance its current short (-pos). Saturates at INT64_MAX."""
        cdef int128_t total = 0
        cdef int128_t exposure
        cdef int32_t s
        cdef const Position* p
        cdef const Instrument* inst
        for s in range(self.ledger.n_series):
            p = self.ledger.position(account, s)
            inst = &self.insts[self.series_inst[s]]
            if initial:
                exposure = <int128_t>p.ask_open - p.pos
                if exposure > 0:
                    total += exposure * inst.im_per_qty
            elif p.pos < 0:
                total += -(<int128_t>p.pos) * inst.mm_per_qty
        return <int64_t>(total if total < INT64_MAX else INT64_MAX)

    cdef bint _margin_ok(self, int64_t account) noexcept:
        cdef int64_t need = self._requirement(account, True)
        return need == 0 or self._collateral(account, True) >= need

    cdef void _settle_fill(self, const Instrument* inst, const Order* taker, const Order* maker,
                           price_t p, qty_t q, EventRec* e) noexcept:
        """Move the exact amounts of one fill; called before leaves are reduced
        (taker.leaves is already reduced by q, maker.leaves not yet)."""
        cdef int64_t n = _notional(inst, p, q)
        cdef int64_t base = q * inst.base_per_qty
        cdef int64_t taker_fee = _fee(n, inst.taker_bps)
        cdef int64_t maker_fee = _fee(n, inst.maker_bps)
        cdef int64_t buyer_fee, seller_fee, drop
        cdef const Order* buyer
        cdef const Order* seller
        cdef qty_t buyer_leaves_before
        # (Separate assignments: a tuple assignment of C values goes through
        # Python objects.)
        if taker.side == BUY:
            buyer = taker
            seller = maker
            buyer_fee = taker_fee
            seller_fee = maker_fee
            buyer_leaves_before = taker.leaves + q
        else:
            buyer = maker
            seller = taker
            buyer_fee = maker_fee
            seller_fee = taker_fee
            buyer_leaves_before = maker.leaves
        drop = (_reservation(inst, BUY, buyer.price, buyer_leaves_before)
                - _reservation(inst, BUY, buyer.price, buyer_leaves_before - q))
        self.ledger.move(buyer.account, inst.quote_asset, -(n + buyer_fee), -drop)
        self.ledger.move(buyer.account, inst.base_asset, base, 0)
        self.ledger.move(seller.account, inst.base_asset, -base, -base)
        self.ledger.move(seller.account, inst.quote_asset, n - seller_fee, 0)
        self.ledger.move(self.fee_account, inst.quote_asset, taker_fee + maker_fee, 0)
        e.fee = taker_fee
        e.maker_fee = maker_fee
        cdef Position* held
        if inst.series >= 0:
            held = self.ledger.position(buyer.account, inst.series)
            held.pos += q
            held.bid_open -= q
            held = self.ledger.position(seller.account, inst.series)
            held.pos -= q
            held.ask_open -= q
            self.ledger.has_options[buyer.account] = 1

    cdef int _credit_debit(self, const CommandRec* c) except -1:
        cdef uint8_t why
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if not self.ledger.known(c.account):
            return self._reject(c, UNKNOWN_ACCOUNT)
        if c.asset < 0 or c.asset >= self.ledger.n_assets:
            return self._reject(c, UNKNOWN_ASSET)
        if c.kind == CREDIT and c.order_id != 0:
            why = self._check_deposit_id(c.order_id)
            if why:
                return self._reject(c, why)
        if c.kind == CREDIT:
            why = self.ledger.credit(c.account, c.asset, c.qty)
        else:
            why = self.ledger.debit(c.account, c.asset, c.qty)
        if why:
            return self._reject(c, why)
        if c.kind == DEBIT and self.ledger.has_options[c.account] and not self._margin_ok(c.account):
            self.ledger.credit(c.account, c.asset, c.qty)   # undo: the withdrawal would leave margin short
            return self._reject(c, INSUFFICIENT_MARGIN)
        if c.kind == CREDIT and c.order_id != 0:
            self.last_deposit_id = c.order_id
        e = self._emit(CREDITED if c.kind == CREDIT else DEBITED)
        e.order_id = c.order_id if c.kind == CREDIT else 0
        e.account = c.account
        e.asset = c.asset
        e.qty = c.qty
        e.leaves = self.ledger.at(c.account, c.asset).total
        return 0

    cdef uint8_t _check_deposit_id(self, int64_t deposit_id) noexcept:
        # Deposits from the vault arrive in id order, each exactly once.
        if deposit_id <= self.last_deposit_id:
            return DUPLICATE_DEPOSIT
        if deposit_id != self.last_deposit_id + 1:
            return DEPOSIT_GAP
        return 0

    cdef int _skip_deposit(self, const CommandRec* c) except -1:
        cdef uint8_t why
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        why = self._check_deposit_id(c.order_id)
        if why:
            return self._reject(c, why)
        self.last_deposit_id = c.order_id
        e = self._emit(DEPOSIT_SKIPPED)
        e.order_id = c.order_id
        return 0

    cdef int _set_asset_price(self, const CommandRec* c) except -1:
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if c.asset < 0 or c.asset >= self.ledger.n_assets:
            return self._reject(c, UNKNOWN_ASSET)
        if c.price <= 0 or c.price > _MAX_USD_PRICE:
            return self._reject(c, INVALID_PRICE)
        self.ledger.usd_price[c.asset] = c.price
        e = self._emit(ASSET_PRICE_SET)
        e.asset = c.asset
        e.price = c.price
        return 0

    cdef int _set_option_risk(self, const CommandRec* c) except -1:
        """Set a series' initial (qty) and maintenance (price) margin of a short,
        USD x 1e8 per quantity unit (from the option-mark feed)."""
        cdef EventRec* e
        cdef Instrument* inst
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if c.instrument < 0 or c.instrument >= self.n_inst:
            return self._reject(c, UNKNOWN_INSTRUMENT)
        inst = &self.insts[c.instrument]
        if inst.series < 0:
            return self._reject(c, NOT_AN_OPTION)
        if not 0 < c.price <= c.qty <= _MAX_MARGIN:
            return self._reject(c, INVALID_MARGIN)
        inst.im_per_qty = c.qty
        inst.mm_per_qty = c.price
        e = self._emit(OPTION_RISK_SET)
        e.instrument = c.instrument
        e.qty = c.qty
        e.price = c.price
        return 0

    cdef int _liquidate(self, const CommandRec* c) except -1:
        """Liquidate an account under its maintenance margin: cancel its orders,
        sell collateral for the premium asset where it lacks it, and buy back
        its short options; every closing order is IOC at the edge of the
        execution band, so it trades only inside the bands."""
        cdef int64_t acct = c.account
        cdef int64_t maintenance, value
        cdef Py_ssize_t head
        cdef int32_t slot, nxt, s, i
        cdef int64_t closing = 0
        cdef Instrument* inst
        cdef price_t lo, hi, price
        cdef qty_t want, qty
        cdef EventRec* e
        if not self.risk:
            return self._reject(c, ACCOUNTS_DISABLED)
        if not self.ledger.known(acct):
            return self._reject(c, UNKNOWN_ACCOUNT)
        maintenance = self._requirement(acct, False)
        value = self._collateral(acct, False)
        if maintenance == 0 or value >= maintenance:
            return self._reject(c, NOT_UNDER_MAINTENANCE)
        head = self.ev_n
        e = self._emit(LIQUIDATED)
        e.account = acct
        e.price = maintenance
        e.leaves = value
        slot = self.books.acct_head[acct] if acct < self.books.acct_cap else -1
        while slot != -1:
            nxt = self.books.orders[slot].acct_next
            self._cancel_slot(slot, LIQUIDATION)
            slot = nxt
        self.liquidating = True
        try:
            for s in range(self.ledger.n_series):
                want = -self.ledger.position(acct, s).pos
                i = self.series_inst[s]
                inst = &self.insts[i]
                if want <= 0 or inst.state != OPEN:
                    continue
                self._execution_band(inst, &lo, &hi)
                if hi == INT64_MAX or hi < lo:
                    continue  # no band to bound a closing order, or no price can trade
                price = min(hi, inst.max_price // inst.tick * inst.tick)
                want = min(want, inst.max_qty) // inst.lot * inst.lot
                if want < inst.min_qty:
                    continue
                closing += self._raise_quote(acct, inst.quote_asset, _reservation(inst, BUY, price, want))
                qty = _affordable(inst, price, want, self._free(acct, inst.quote_asset))
                if qty >= inst.min_qty and self._closing_order(i, acct, BUY, price, qty):
                    closing += 1
        finally:
            self.liquidating = False
        self.ev[head].qty = closing
        return 0

    cdef int _raise_quote(self, int64_t account, int32_t quote, int64_t need) except -1:
        """Sell the account's other assets on spot books quoted in ``quote``
        (IOC at the band's low edge) until its free quote covers ``need``;
        returns the number of orders placed."""
        cdef int32_t i
        cdef Instrument* inst
        cdef price_t lo, hi
        cdef int64_t shortfall, per_lot, free_base
        cdef qty_t qty
        cdef int placed = 0
        for i in range(self.n_inst):
            shortfall = need - self._free(account, quote)
            if shortfall <= 0:
                break
            inst = &self.insts[i]
            if inst.series >= 0 or inst.quote_asset != quote or inst.state != OPEN:
                continue
            self._execution_band(inst, &lo, &hi)
            if lo == 0 or hi < lo:
                continue
            free_base = self._free(account, inst.base_asset)
            per_lot = _notional(inst, lo, inst.lot)
            per_lot -= _fee(per_lot, inst.taker_bps)
            if free_base <= 0 or per_lot <= 0:
                continue
            # One lot more than the proceeds at the band edge need: fees round.
            qty = min(shortfall // per_lot + 2, inst.max_qty // inst.lot,
                      free_base // inst.base_per_qty // inst.lot) * inst.lot
            if qty >= inst.min_qty and self._closing_order(i, account, SELL, lo, qty):
                placed += 1
        return placed

    cdef bint _closing_order(self, int32_t instrument, int64_t account, uint8_t side, price_t price,
                             qty_t qty) except -1:
        """Place one IOC limit order of a liquidation; True if the engine accepted it."""
        cdef CommandRec cc = _command(NEW_ORDER, self.cur_seq, self.cur_ts)
        cdef Py_ssize_t before = self.ev_n
        cc.instrument = instrument
        cc.account = account
        cc.side = side
        cc.order_type = LIMIT
        cc.tif = IOC
        cc.stp = CANCEL_NEWEST
        cc.price = price
        cc.qty = qty
        self._new_order(&cc)
        return self.ev[before].kind == ACCEPTED

    cdef int64_t _free(self, int64_t account, int32_t asset) noexcept:
        cdef Balance* b = self.ledger.at(account, asset)
        return b.total - b.reserved

    # ------------------------------------------------------------------
    # validation
    # ------------------------------------------------------------------

    cdef uint8_t _check_qty(self, const Instrument* inst, qty_t qty) noexcept:
        if qty <= 0:
            return INVALID_QUANTITY
        if qty % inst.lot != 0:
            return QUANTITY_OFF_LOT
        if qty < inst.min_qty:
            return QUANTITY_BELOW_MIN
        if qty > inst.max_qty:
            return QUANTITY_ABOVE_MAX
        return 0

    cdef uint8_t _check_price(self, const Instrument* inst, price_t price) noexcept:
        if price <= 0:
            return INVALID_PRICE
        if price % inst.tick != 0:
            return PRICE_OFF_TICK
        if price > inst.max_price:
            return PRICE_ABOVE_MAX
        return 0

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
        if self._check_price(inst, price):
            raise ValueError(f"invalid seed price {price}")
        if inst.has_static and not inst.s_lo <= price <= inst.s_hi:
            raise ValueError(f"seed price {price} outside the static band")
        if self._crosses(instrument, <uint8_t>side, price):
            raise ValueError(f"seed order at {price} would cross the book")
        if self.books.order_live >= self.books.max_orders:
            raise ValueError("order capacity exhausted")
        cdef CommandRec c
        if self.risk:
            c = _command(NEW_ORDER, 0, 0)
            c.account = account
            c.side = <uint8_t>side
            c.qty = qty
            if self._reserve_new(inst, &c, price):
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
    # snapshots
    # ------------------------------------------------------------------

    def snapshot(self):
        """The full state as bytes (see engine/core/snapshot.py)."""
        cdef int32_t i, k, slot
        cdef BookSide* bs
        cdef Order* o
        cdef Instrument* inst
        cdef cnp.ndarray orders = np.zeros(self.books.order_live, dtype=_snap.ORDER_DTYPE)
        cdef SnapOrder* out = <SnapOrder*>cnp.PyArray_DATA(orders)
        cdef SnapOrder* rec
        states = np.zeros(self.n_inst, dtype=_snap.INSTRUMENT_STATE_DTYPE)
        cdef Py_ssize_t n = 0
        for i in range(self.n_inst):
            inst = &self.insts[i]
            states[i] = (inst.state, inst.reference, inst.last_trade)
            for side in (BUY, SELL):
                bs = self.books.side_of(i, side)
                for k in range(bs.n - 1, -1, -1):
                    slot = self.books.levels[bs.levels[k]].head
                    while slot != -1:
                        o = &self.books.orders[slot]
                        if n >= self.books.order_live:
                            raise RuntimeError("more orders in the books than the pool counts")
                        rec = &out[n]
                        rec.order_id = o.order_id
                        rec.client_order_id = o.client_order_id
                        rec.price = o.price
                        rec.leaves = o.leaves
                        rec.account = o.account
                        rec.instrument = o.instrument
                        rec.side = o.side
                        rec.tif = o.tif
                        rec.stp = o.stp
                        rec.pad = 0
                        n += 1
                        slot = o.next
        cdef int64_t acct
        cdef int32_t a
        accounts = [acct for acct in range(self.ledger.acct_cap) if self.ledger.is_open[acct]]
        n_assets = self.ledger.n_assets
        totals = np.zeros((len(accounts), n_assets), dtype=np.int64)
        reserved = np.zeros((len(accounts), n_assets), dtype=np.int64)
        for row, acct in enumerate(accounts):
            for a in range(n_assets):
                totals[row, a] = self.ledger.at(acct, a).total
                reserved[row, a] = self.ledger.at(acct, a).reserved
        snap = _snap.EngineSnapshot(
            version=_snap.SNAPSHOT_VERSION,
            max_accounts=self.max_accounts,
            max_orders=self.books.max_orders,
            risk=bool(self.risk),
            fee_account=self.fee_account,
            next_order_id=self.next_order_id,
            last_seq=self.last_seq,
            last_deposit_id=self.last_deposit_id,
            assets=list(self.asset_specs),
            instruments=list(self.specs),
            instrument_state=states.tobytes(),
            orders=orders.tobytes(),
            open_accounts=np.asarray(accounts, dtype=np.int64).tobytes(),
            totals=totals.tobytes(),
            reserved=reserved.tobytes(),
            net_credits=np.asarray([self.ledger.net_credits[a] for a in range(n_assets)],
                                   dtype=np.int64).tobytes(),
            usd_prices=np.asarray([self.ledger.usd_price[a] for a in range(n_assets)],
                                  dtype=np.int64).tobytes(),
            option_risk=np.asarray([(self.insts[i].im_per_qty, self.insts[i].mm_per_qty)
                                    for i in range(self.n_inst)], dtype=np.int64).reshape(self.n_inst, 2).tobytes(),
            positions=np.asarray([(self.ledger.position(acct, s).pos, self.ledger.position(acct, s).ask_open,
                                   self.ledger.position(acct, s).bid_open)
                                  for acct in accounts for s in range(self.ledger.n_series)],
                                 dtype=np.int64).tobytes(),
            margin_flags=np.asarray([self.ledger.has_options[acct] for acct in accounts], dtype=np.uint8).tobytes(),
        )
        return _snap.ENCODER.encode(snap)

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
        try:
            return MatchingEngine._restore(snap)
        except (OverflowError, TypeError) as err:
            raise ValueError(f"snapshot value out of range: {err}") from err

    cdef int _restore_options(self, snap, accounts) except -1:
        """Option margins, positions and margin flags of a snapshot (empty parts:
        a snapshot without options), for accounts ``_restore`` has opened."""
        cdef int32_t n_series = self.ledger.n_series
        cdef int32_t i, s
        cdef Position* p
        risk = (np.frombuffer(snap.option_risk, dtype=np.int64).reshape(-1, 2)
                if snap.option_risk else np.zeros((self.n_inst, 2), dtype=np.int64))
        n_pos = len(accounts) * n_series * 3
        positions = (np.frombuffer(snap.positions, dtype=np.int64) if snap.positions
                     else np.zeros(n_pos, dtype=np.int64))
        flags = (np.frombuffer(snap.margin_flags, dtype=np.uint8) if snap.margin_flags
                 else np.zeros(len(accounts), dtype=np.uint8))
        if len(risk) != self.n_inst or len(positions) != n_pos or len(flags) != len(accounts):
            raise ValueError("snapshot option parts do not match its instruments and accounts")
        for i, (initial, maintenance) in enumerate(risk.tolist()):
            if self.insts[i].series < 0:
                if initial or maintenance:
                    raise ValueError(f"snapshot gives margins to instrument {i}, not an option")
            elif not (initial == maintenance == 0 or 0 < maintenance <= initial <= _MAX_MARGIN):
                raise ValueError(f"snapshot margins of instrument {i} are not valid")
            self.insts[i].im_per_qty = initial
            self.insts[i].mm_per_qty = maintenance
        positions = positions.reshape(len(accounts), n_series, 3)
        if positions.size and ((positions > _VALUE_LIMIT).any() or (positions < -_VALUE_LIMIT).any()
                               or (positions[:, :, 1:] < 0).any()):
            raise ValueError("snapshot positions are out of range")
        for s in range(n_series):
            if self.insts[self.series_inst[s]].im_per_qty == 0 and positions[:, s, :].any():
                raise ValueError(f"snapshot holds positions or orders in series {s} but no margins for it")
        for row, acct in enumerate(accounts.tolist()):
            if not self.ledger.known(acct):
                raise ValueError(f"snapshot positions of account {acct}, which is not open")
            self.ledger.has_options[acct] = 1 if flags[row] else 0
            for s in range(n_series):
                p = self.ledger.position(acct, s)
                p.pos = positions[row, s, 0]
                p.ask_open = positions[row, s, 1]
                p.bid_open = positions[row, s, 2]

    @staticmethod
    def _restore(snap):
        cdef MatchingEngine eng = MatchingEngine(snap.max_accounts, snap.max_orders, snap.risk,
                                                 snap.fee_account)
        for spec in snap.assets:
            eng.add_asset(spec)
        for spec in snap.instruments:
            eng.add_instrument(spec)
        cdef int64_t acct
        cdef int32_t a
        n_assets = len(snap.assets)
        if (len(snap.instrument_state) != eng.n_inst * _snap.INSTRUMENT_STATE_DTYPE.itemsize
                or len(snap.net_credits) != n_assets * 8 or len(snap.usd_prices) != n_assets * 8):
            raise ValueError("snapshot state does not match its instruments and assets")
        accounts = np.frombuffer(snap.open_accounts, dtype=np.int64)
        if len(accounts) and (not snap.risk or accounts.min() < 0 or accounts.max() >= eng.max_accounts):
            raise ValueError(f"snapshot accounts outside [0, {eng.max_accounts}) or kept without risk")
        totals = np.frombuffer(snap.totals, dtype=np.int64).reshape(len(accounts), n_assets)
        reserved = np.frombuffer(snap.reserved, dtype=np.int64).reshape(len(accounts), n_assets)
        for row, acct in enumerate(accounts.tolist()):
            eng.ledger.open_account(acct)
            for a in range(n_assets):
                eng.ledger.at(acct, a).total = totals[row, a]
                eng.ledger.at(acct, a).reserved = reserved[row, a]
        for a, (credits, price) in enumerate(zip(np.frombuffer(snap.net_credits, dtype=np.int64).tolist(),
                                                 np.frombuffer(snap.usd_prices, dtype=np.int64).tolist())):
            if not 0 <= price <= _MAX_USD_PRICE:
                raise ValueError(f"snapshot price of asset {a} is not valid")
            eng.ledger.net_credits[a] = credits
            eng.ledger.usd_price[a] = price
        eng._restore_options(snap, accounts)
        cdef Instrument* inst
        cdef int32_t i
        for i, (state, reference, last_trade) in enumerate(
                np.frombuffer(snap.instrument_state, dtype=_snap.INSTRUMENT_STATE_DTYPE).tolist()):
            if state not in (OPEN, HALTED, CLOSED) or reference < 0 or last_trade < 0:
                raise ValueError(f"snapshot state of instrument {i} is not valid")
            inst = &eng.insts[i]
            inst.state = state
            inst.reference = reference
            inst.last_trade = last_trade
            if reference and inst.static_bps:
                inst.has_static = 1
                _band_around(reference, inst.static_bps, inst.tick, &inst.s_lo, &inst.s_hi)
            if last_trade and inst.dynamic_bps:
                inst.has_dynamic = 1
                _band_around(last_trade, inst.dynamic_bps, inst.tick, &inst.d_lo, &inst.d_hi)
        cdef int32_t slot
        cdef Order* o
        if len(snap.orders) % sizeof(SnapOrder):
            raise ValueError("snapshot orders are not whole records")
        cdef cnp.ndarray recs = np.frombuffer(snap.orders, dtype=np.uint8)
        cdef const SnapOrder* src = <const SnapOrder*>cnp.PyArray_DATA(recs)
        cdef Py_ssize_t r, n_recs = len(snap.orders) // sizeof(SnapOrder)
        for r in range(n_recs):
            if (src[r].instrument < 0 or src[r].instrument >= eng.n_inst or (src[r].side != BUY and src[r].side != SELL)
                    or not eng._account_ok(src[r].account) or src[r].leaves <= 0):
                raise ValueError(f"snapshot order {src[r].order_id} is not valid for this engine")
            slot = eng.books.alloc_order()
            if slot == -1:
                raise ValueError("snapshot holds more orders than max_orders")
            o = &eng.books.orders[slot]
            memset(o, 0, sizeof(Order))
            o.order_id = src[r].order_id
            o.client_order_id = src[r].client_order_id
            o.price = src[r].price
            o.leaves = src[r].leaves
            o.account = <int32_t>src[r].account
            o.instrument = src[r].instrument
            o.side = src[r].side
            o.tif = src[r].tif
            o.stp = src[r].stp
            o.level = -1
            eng.books.rest(slot, False)
        eng.books.rebuild_account_lists()
        eng.next_order_id = snap.next_order_id
        eng.last_seq = snap.last_seq
        eng.last_deposit_id = snap.last_deposit_id
        try:
            eng.check_integrity()
        except AssertionError as err:
            raise ValueError(f"snapshot is inconsistent: {err}") from err
        return eng

    # ------------------------------------------------------------------
    # queries
    # ------------------------------------------------------------------

    def _checked_instrument(self, int32_t instrument):
        if instrument < 0 or instrument >= self.n_inst:
            raise ValueError(f"unknown instrument {instrument}")

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
        return self._side_depth(instrument, BUY, levels), self._side_depth(instrument, SELL, levels)

    cdef list _side_depth(self, int32_t instrument, uint8_t side, int levels):
        cdef BookSide* bs = self.books.side_of(instrument, side)
        cdef list out = []
        cdef int32_t i = bs.n - 1
        cdef int32_t lvl
        while i >= 0 and len(out) < levels:
            lvl = bs.levels[i]
            out.append((self.books.levels[lvl].price, self.books.levels[lvl].qty,
                        self.books.levels[lvl].count))
            i -= 1
        return out

    def orders_at(self, int32_t instrument, int64_t side, int64_t price):
        """The resting orders at one price, in queue (FIFO) order."""
        self._checked_instrument(instrument)
        if side != BUY and side != SELL:
            raise ValueError(f"invalid side {side}")
        cdef int32_t lvl = self.books.find_level(instrument, <uint8_t>side, price)
        cdef list out = []
        cdef int32_t slot = self.books.levels[lvl].head if lvl != -1 else -1
        while slot != -1:
            out.append(self._info(slot))
            slot = self.books.orders[slot].next
        return out

    def open_orders(self, int64_t account):
        """The account's resting orders, by order id."""
        if account < 0 or account >= self.max_accounts:
            raise ValueError(f"unknown account {account}")
        cdef list out = []
        cdef int32_t slot = self.books.acct_head[account] if account < self.books.acct_cap else -1
        while slot != -1:
            out.append(self._info(slot))
            slot = self.books.orders[slot].acct_next
        return out

    def order(self, int64_t order_id):
        """OrderInfo of a resting order, or None."""
        cdef int32_t slot = self.books.index.find(order_id) if order_id > 0 else -1
        return self._info(slot) if slot != -1 else None

    cdef object _info(self, int32_t slot):
        cdef Order* o = &self.books.orders[slot]
        return OrderInfo(o.order_id, o.client_order_id, o.account, o.instrument, o.side,
                         o.price, o.leaves, o.tif, o.stp)

    def balances(self, int64_t account):
        """[(total, reserved)] per asset id, in ledger units (risk mode)."""
        if not self.risk or not self.ledger.known(account):
            raise ValueError(f"unknown account {account}")
        cdef int32_t a
        out = []
        for a in range(self.ledger.n_assets):
            out.append((self.ledger.at(account, a).total, self.ledger.at(account, a).reserved))
        return out

    def asset_price(self, int32_t asset):
        """An asset's reference price, USD x 1e8 per whole token (0 = unset)."""
        if asset < 0 or asset >= self.ledger.n_assets:
            raise ValueError(f"unknown asset {asset}")
        return self.ledger.usd_price[asset]

    def collateral_value(self, int64_t account):
        """Collateral value of an account in USD x 1e8: over assets, balance x
        reference price (floored to a unit) less the asset's haircut (floored).
        Assets without a reference price count as zero."""
        if not self.risk or not self.ledger.known(account):
            raise ValueError(f"unknown account {account}")
        return self._collateral(account, False)

    def margin(self, int64_t account):
        """MarginState of an account (risk mode)."""
        if not self.risk or not self.ledger.known(account):
            raise ValueError(f"unknown account {account}")
        return MarginState(self._collateral(account, False), self._collateral(account, True),
                           self._requirement(account, True), self._requirement(account, False))

    def positions(self, int64_t account):
        """The account's option positions and open sells, [PositionInfo] by instrument id."""
        if not self.risk or not self.ledger.known(account):
            raise ValueError(f"unknown account {account}")
        cdef int32_t s
        cdef Position* p
        out = []
        for s in range(self.ledger.n_series):
            p = self.ledger.position(account, s)
            if p.pos or p.ask_open or p.bid_open:
                out.append(PositionInfo(self.series_inst[s], p.pos, p.ask_open, p.bid_open))
        return out

    def under_maintenance(self):
        """[(account, MarginState)] of every account whose collateral value is
        below its maintenance margin, by account id: the liquidation candidates."""
        cdef int64_t acct, maintenance, value
        out = []
        if not self.risk:
            return out
        for acct in range(self.ledger.acct_cap):
            if not self.ledger.is_open[acct] or not self.ledger.has_options[acct]:
                continue
            maintenance = self._requirement(acct, False)
            if maintenance:
                value = self._collateral(acct, False)
                if value < maintenance:
                    out.append((acct, MarginState(value, self._collateral(acct, True),
                                                  self._requirement(acct, True), maintenance)))
        return out

    def option_risk(self, int32_t instrument):
        """(initial, maintenance) margin of a short in an option series, USD x
        1e8 per quantity unit; (0, 0) until set."""
        self._checked_instrument(instrument)
        cdef Instrument* inst = &self.insts[instrument]
        if inst.series < 0:
            raise ValueError(f"instrument {instrument} is not an option series"
                             + ("" if self.risk else " (options are margined only with risk=True)"))
        return (inst.im_per_qty, inst.mm_per_qty)

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

    def state_hash(self):
        """SHA-256 (hex) over the full state; equal states give equal hashes."""
        h = hashlib.sha256()
        cdef list words = [self.n_inst, self.next_order_id, self.last_seq]
        cdef int32_t i, k, slot
        cdef Instrument* inst
        cdef BookSide* bs
        cdef Order* o
        for i in range(self.n_inst):
            inst = &self.insts[i]
            words += [i, inst.state, inst.reference, inst.last_trade]
            for side in (BUY, SELL):
                bs = self.books.side_of(i, side)
                words += [side, bs.n]
                for k in range(bs.n - 1, -1, -1):
                    slot = self.books.levels[bs.levels[k]].head
                    while slot != -1:
                        o = &self.books.orders[slot]
                        words += [o.order_id, o.client_order_id, o.account, o.price, o.leaves,
                                  o.tif, o.stp]
                        slot = o.next
        cdef int64_t acct
        cdef int32_t a, s
        words += [self.risk, self.fee_account, self.last_deposit_id, self.ledger.n_assets]
        for a in range(self.ledger.n_assets):
            words += [self.ledger.net_credits[a], self.ledger.usd_price[a]]
        for acct in range(self.ledger.acct_cap):
            if self.ledger.is_open[acct]:
                words.append(acct)
                for a in range(self.ledger.n_assets):
                    words += [self.ledger.at(acct, a).total, self.ledger.at(acct, a).reserved]
                if self.ledger.n_series:
                    words.append(self.ledger.has_options[acct])
                for s in range(self.ledger.n_series):
                    words += [self.ledger.position(acct, s).pos, self.ledger.position(acct, s).ask_open,
                              self.ledger.position(acct, s).bid_open]
        for i in range(self.n_inst):
            if self.insts[i].series >= 0:
                words += [i, self.insts[i].im_per_qty, self.insts[i].mm_per_qty]
        h.update(np.asarray(words, dtype=np.int64).tobytes())
        return h.hexdigest()

    def check_integrity(self):
        """Raise AssertionError naming the first broken invariant."""
        self.books.check_integrity()
        if self.risk:
            self.ledger.check_integrity()
            self._check_reservations()
        cdef int32_t i, k, slot
        cdef BookSide* bs
        cdef Instrument* inst
        cdef Order* o
        for i in range(self.n_inst):
            inst = &self.insts[i]
            for side in (BUY, SELL):
                bs = self.books.side_of(i, side)
                for k in range(bs.n):
                    slot = self.books.levels[bs.levels[k]].head
                    while slot != -1:
                        o = &self.books.orders[slot]
                        assert 0 < o.order_id < self.next_order_id, f"order id {o.order_id} never issued"
                        assert o.price % inst.tick == 0, f"order {o.order_id} off tick"
                        if inst.has_static:
                            assert inst.s_lo <= o.price <= inst.s_hi, (
                                f"order {o.order_id} at {o.price} outside the static band")
                        slot = o.next

    def _check_reservations(self):
        """Every account's reserved amount equals what its open orders need."""
        cdef int32_t i, k, slot
        cdef BookSide* bs
        cdef Instrument* inst
        cdef Order* o
        cdef int64_t acct
        need = {}
        held = {}
        for i in range(self.n_inst):
            inst = &self.insts[i]
            for side in (BUY, SELL):
                bs = self.books.side_of(i, side)
                asset = inst.quote_asset if side == BUY else inst.base_asset
                for k in range(bs.n):
                    slot = self.books.levels[bs.levels[k]].head
                    while slot != -1:
                        o = &self.books.orders[slot]
                        if inst.series >= 0:
                            key = (o.account, inst.series, side)
                            held[key] = held.get(key, 0) + o.leaves
                        if inst.series < 0 or side == BUY:
                            key = (o.account, asset)
                            need[key] = need.get(key, 0) + _reservation(inst, o.side, o.price, o.leaves)
                        slot = o.next
        cdef int32_t s
        for acct, s, _side in list(held):
            assert self.ledger.known(acct), f"account {acct} has open option orders but is not open"
        for acct in range(self.ledger.acct_cap):
            for s in range(self.ledger.n_series):
                for side, have in ((SELL, self.ledger.position(acct, s).ask_open),
                                   (BUY, self.ledger.position(acct, s).bid_open)):
                    assert have == held.get((acct, s, side), 0), (
                        f"account {acct} series {s}: open {'sells' if side == SELL else 'buys'} counted {have}, "
                        f"open orders hold {held.get((acct, s, side), 0)}")
        for acct in range(self.ledger.acct_cap):
            for asset in range(self.ledger.n_assets):
                have = self.ledger.at(acct, asset).reserved
                assert have == need.get((acct, asset), 0), (
                    f"account {acct} asset {asset}: reserved {have}, open orders need "
                    f"{need.get((acct, asset), 0)}")
