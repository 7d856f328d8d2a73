"""The engine's two entry points: a Python method per command kind (and
``submit`` for one record), and the batch API over numpy arrays of records;
and the event buffer both hand back. What a command does is
MatchingEngine.execute's (matcher.pyx).
"""

from cpython.mem cimport PyMem_RawFree, PyMem_RawRealloc
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memcpy

from engine.core.events cimport events_from_recs
from engine.core.instrument cimport Instrument
from engine.core.recarrays cimport new_records, record_data
from engine.core.types cimport (AMEND, CANCEL, CANCEL_NEWEST, CREDIT, DEBIT, FREEZE_ACCOUNT, FUND, GTC, LIMIT, LIQUIDATE,
                                MASS_CANCEL, NEW_ORDER, SET_ASSET_PRICE, SET_BANDS, SET_HAIRCUT, SET_OPTION_RISK,
                                SET_REFERENCE, SET_STATE, SKIP_DEPOSIT, TRANSFER_IN, TRANSFER_OUT)

import numpy as np

cimport numpy as cnp

cnp.import_array()

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


cdef EventRec _ZERO_EVENT

cdef enum:
    _INITIAL_EVENTS = 256



cdef class CommandApi(EngineParts):
    """The entry points of a MatchingEngine, the class that extends this one
    and implements ``execute``. Per-command methods return ``list[Event]``;
    ``process`` runs a numpy array of COMMAND_DTYPE records and returns a
    numpy array of EVENT_DTYPE records."""

    def __cinit__(self, *args, **kwargs):
        # EngineParts.__cinit__ has checked and taken the arguments.
        self.ev_cap = _INITIAL_EVENTS
        self.ev = <EventRec*>PyMem_RawRealloc(NULL, self.ev_cap * sizeof(EventRec))
        if self.ev == NULL:
            raise MemoryError()

    def __dealloc__(self):
        PyMem_RawFree(self.ev)

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

    def freeze_account(self, int64_t account, int64_t seq=0, int64_t ts=0):
        """Freeze an account whose wallet requested an exit on chain: its orders
        are cancelled, new orders and withdrawals refused (ACCOUNT_IS_FROZEN)."""
        cdef CommandRec c = _command(FREEZE_ACCOUNT, seq, ts)
        c.account = account
        return self._run_one(&c)

    def debit(self, int64_t account, int32_t asset, int64_t amount, int64_t seq=0, int64_t ts=0):
        """Debit a withdrawal from the free balance (ledger units)."""
        cdef CommandRec c = _command(DEBIT, seq, ts)
        c.account = account
        c.asset = asset
        c.qty = amount
        return self._run_one(&c)

    def transfer_out(self, int64_t transfer_id, int64_t account, int32_t asset, int64_t amount,
                     int64_t seq=0, int64_t ts=0):
        """Send ``amount`` of an asset from the account's free balance to another
        shard (transfer ids: engine/core/transfers.pyx)."""
        cdef CommandRec c = _command(TRANSFER_OUT, seq, ts)
        c.order_id = transfer_id
        c.account = account
        c.asset = asset
        c.qty = amount
        return self._run_one(&c)

    def transfer_in(self, int64_t transfer_id, int64_t account, int32_t asset, int64_t amount,
                    int64_t seq=0, int64_t ts=0):
        """Credit ``amount`` of an asset sent by another shard's transfer out."""
        cdef CommandRec c = _command(TRANSFER_IN, seq, ts)
        c.order_id = transfer_id
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

    def set_bands(self, int32_t instrument, int64_t static_bps, int64_t dynamic_bps,
                  int64_t seq=0, int64_t ts=0):
        """Set an instrument's static and dynamic band widths in bps (0 disables
        a band); resting orders outside the new static band are cancelled."""
        cdef CommandRec c = _command(SET_BANDS, seq, ts)
        c.instrument = instrument
        c.price = static_bps
        c.qty = dynamic_bps
        return self._run_one(&c)

    def set_haircut(self, int32_t asset, int64_t haircut_bps, int64_t seq=0, int64_t ts=0):
        """Set an asset's collateral haircut in bps (0..10000)."""
        cdef CommandRec c = _command(SET_HAIRCUT, seq, ts)
        c.asset = asset
        c.price = haircut_bps
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

    def fund(self, int32_t instrument, int64_t mark, int64_t payoff, int64_t seq=0, int64_t ts=0):
        """Funding of a perpetual option series at ``ts`` (ns): its mark and
        payoff in price units (0 <= payoff <= mark); settles every position
        (docs/funding.md)."""
        cdef CommandRec c = _command(FUND, seq, ts)
        c.instrument = instrument
        c.price = mark
        c.qty = payoff
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
    # dispatch (MatchingEngine's)
    # ------------------------------------------------------------------

    cdef int execute(self, const CommandRec* c) except -1:
        """Run one command, appending its events to the buffer."""
        raise NotImplementedError("execute is MatchingEngine's (engine/core/matcher.pyx)")

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

    # ------------------------------------------------------------------
    # queries
    # ------------------------------------------------------------------

    def memory_bytes(self):
        """Bytes held by the engine's C structures (books, index, event buffer)."""
        return (self.books.memory_bytes() + self.n_inst * sizeof(Instrument)
                + self.ev_cap * sizeof(EventRec))
