"""The engine's parts and what reaches them outside a command: set-up (assets,
instruments, accounts, seeded resting orders), queries, and the state
wrappers (snapshot, restore, state hash, integrity check; state.pyx does the
work).

An engine holds one of each part: instruments (instrument.pyx), resting
orders (book.pyx), balances (ledger.pyx), reservations, fills and deposits
(risk.pyx), option margin and liquidation plans (margin.pyx), series status,
settlement and covered calls (expiry.pyx). Commands change
them only through MatchingEngine.execute (matcher.pyx), which api.pyx's entry
points call.
"""

from cpython.mem cimport PyMem_RawFree, PyMem_RawRealloc
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memset

from engine.core.instrument cimport check_price, in_static_band, init_instrument
from engine.core.state cimport check_integrity, decode_snapshot, read_snapshot, state_hash, write_snapshot
from engine.core.types cimport BUY, CANCEL_NEWEST, GTC, MAX_LEDGER_DECIMALS, SELL, Order
from engine.core.waterfall cimport Waterfall

from engine.core.order_info import FundingState, InsuranceState
from engine.units import NS_PER_S, instrument_units, series_terms


def _terms_or_none(spec, assets):
    # A configured series whose strike or contract size is finer than the
    # core's integers still trades; it cannot be covered or settled on chain.
    try:
        return series_terms(spec, assets)
    except ValueError:
        return None


cdef class EngineParts:
    """The parts of a MatchingEngine, the class it extends (through
    CommandApi): set-up, queries and state, none of which runs a command."""

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
        self.life = SeriesLife(self.ledger)
        self.funds = Risk(self.ledger, self.margins, self.life, fee_account)
        self.funding = Funding(self.ledger, fee_account)
        self.pool = MainPool(self.ledger)
        self.losses = Waterfall(self.ledger, fee_account)
        self.risk = risk
        self.asset_specs = []
        self.specs = []
        self.max_accounts = max_accounts
        self.next_order_id = 1
        self.last_seq = 0
        if risk:
            self.ledger.open_account(fee_account)

    def __dealloc__(self):
        PyMem_RawFree(self.insts)

    # ------------------------------------------------------------------
    # set-up
    # ------------------------------------------------------------------

    def add_asset(self, spec):
        """Register an AssetSpec; returns its asset id (0, 1, ...)."""
        if any(a.symbol == spec.symbol for a in self.asset_specs):
            raise ValueError(f"asset {spec.symbol} already registered")
        if self.losses.enabled:
            raise ValueError("assets are registered before the pools are configured")
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

    def is_frozen(self, int64_t account):
        """Whether the account is frozen by its wallet's exit request."""
        return bool(self.funds.is_frozen(account))

    @property
    def frozen_accounts(self):
        """The frozen accounts, sorted."""
        return tuple(self.funds.write_frozen())

    def open_account(self, int64_t account):
        """Open an account (risk mode): it may then hold balances and trade."""
        if not self.risk:
            raise ValueError("accounts are only kept with risk=True")
        if not 0 <= account < self.max_accounts:
            raise ValueError(f"account {account} outside [0, {self.max_accounts})")
        self.ledger.open_account(account)

    def set_pools(self, int64_t insurance_account, int64_t main_account=-1, int64_t penalty_bps=0,
                  int64_t penalty_share_bps=10000, int64_t fee_share_bps=0, int64_t step_lots=0,
                  bint hold_penalty=True):
        """Turn on the loss waterfall (risk mode, once, after the assets and the
        pools' accounts): the insurance pool's account, the main pool's (-1:
        none), the liquidation penalty (bps of the premium notional a liquidation
        buys back), the insurance pool's shares of penalties and of trading fees,
        the lots a liquidation closes per series and command (0: all), and
        whether a liquidation's penalty is held across its steps (False only for
        venues defined before it was, whose journals replay by their rule)."""
        if not self.risk:
            raise ValueError("pools need accounts (risk=True)")
        self.losses.configure(insurance_account, main_account, penalty_bps, penalty_share_bps, fee_share_bps,
                              step_lots, self.ledger.n_assets, hold_penalty)
        self.funds.fee_income = self.losses.fee_income

    def insurance_state(self):
        """InsuranceState of the pools (engine/core/order_info.py), or None
        without pools."""
        cdef Waterfall w = self.losses
        if not w.enabled:
            return None
        return InsuranceState(w.insurance, w.main, self.ledger.balances(w.insurance),
                              [tuple(row) for row in w.step_totals()],
                              [w.fees_due(a) for a in range(self.ledger.n_assets)],
                              [tuple(row) for row in w.write_held()])

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
            period_ns = spec.option.funding_period_s * NS_PER_S
            self.margins.add_series(&self.insts[self.n_inst], self.n_inst, period_ns != 0)
            self.funding.add_series(self.insts[self.n_inst].series, self.n_inst, period_ns)
            self.life.add_series(self.insts[self.n_inst].series, _terms_or_none(spec, self.asset_specs),
                                 units.base_asset)
        self.books.add_book()
        self.specs.append(spec)
        self.n_inst += 1
        return self.n_inst - 1

    @property
    def instruments(self):
        """The registered InstrumentSpecs, indexed by instrument id."""
        return tuple(self.specs)

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
        if self.books.crosses(instrument, <uint8_t>side, price):
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
        return write_snapshot(&parts, self.books, self.funds, self.margins, self.funding, self.pool, self.losses,
                              self.asset_specs, self.specs)

    @classmethod
    def from_snapshot(cls, data):
        """Rebuild an engine from snapshot() bytes; raises ValueError if invalid.

        Every part is checked against the engine it rebuilds before it is
        written into the C structures, so a corrupt snapshot is refused, never
        half-applied."""
        snap = decode_snapshot(data)
        cdef EngineParts eng
        cdef Parts parts
        try:
            eng = cls(snap.max_accounts, snap.max_orders, snap.risk, snap.fee_account)
            for spec in snap.assets:
                eng.add_asset(spec)
            for spec in snap.instruments:
                eng.add_instrument(spec)
            parts = eng._parts()
            read_snapshot(snap, &parts, eng.books, eng.funds, eng.margins, eng.funding, eng.pool, eng.losses)
        except (OverflowError, TypeError) as err:
            raise ValueError(f"snapshot value out of range: {err}") from err
        eng.next_order_id = parts.next_order_id
        eng.last_seq = parts.last_seq
        return eng

    def state_hash(self):
        """SHA-256 (hex) over the full state; equal states give equal hashes."""
        cdef Parts parts = self._parts()
        return state_hash(&parts, self.books, self.funds, self.margins, self.funding, self.pool, self.losses,
                          self.asset_specs, self.specs)

    def check_integrity(self):
        """Raise AssertionError naming the first broken invariant."""
        cdef Parts parts = self._parts()
        check_integrity(&parts, self.books, self.funds, self.funding, self.pool, self.losses)

    # ------------------------------------------------------------------
    # queries
    # ------------------------------------------------------------------

    cdef bint _account_ok(self, int64_t account) noexcept:
        if self.risk:
            return self.ledger.known(account)
        return 0 <= account < self.max_accounts

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

    def open_orders(self, int64_t account, int64_t after_order_id=0, Py_ssize_t limit=-1):
        """The account's resting orders, by order id: those with an id above
        ``after_order_id``, at most ``limit`` of them (all for a negative limit).
        Order ids only grow and an amend keeps its id, so paging with the last
        id of each page neither repeats nor skips an order resting throughout."""
        if account < 0 or account >= self.max_accounts:
            raise ValueError(f"unknown account {account}")
        return self.books.open_orders(account, after_order_id, limit)

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

    def haircut(self, int32_t asset):
        """An asset's collateral haircut in bps now: its spec's, or what SET_HAIRCUT set."""
        if asset < 0 or asset >= self.ledger.n_assets:
            raise ValueError(f"unknown asset {asset}")
        return self.ledger.haircut_bps[asset]

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

    def transfers(self):
        """The shard transfer counters: (last number sent per destination shard,
        last number received per source shard, (account, asset, amount) of the
        last transfer sent per destination shard), each over MAX_SHARDS peers."""
        return self.funds.transfers.state()

    def funding_state(self, int32_t instrument):
        """FundingState of a perpetual option series (risk mode)."""
        return FundingState(*self.funding.series_state(self._perpetual_series(instrument)))

    def funding_position(self, int64_t account, int32_t instrument):
        """(entry index, carry) of the account's position in a perpetual series:
        the index it was last settled at, and the funding it still owes in
        ledger units x 1e-6 (negative: a rounding credit)."""
        self._checked_account(account)
        return self.funding.position_state(account, self._perpetual_series(instrument))

    def _perpetual_series(self, int32_t instrument):
        self._checked_instrument(instrument)
        cdef int32_t s = self.insts[instrument].series
        if not self.risk or s < 0 or not self.funding.perpetual(s):
            raise ValueError(f"instrument {instrument} is not a perpetual option series")
        return s

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

    def band_widths(self, int32_t instrument):
        """(static band bps, dynamic band bps) now: the spec's, or what SET_BANDS set."""
        self._checked_instrument(instrument)
        return (self.insts[instrument].static_bps, self.insts[instrument].dynamic_bps)

    @property
    def resting_orders(self):
        """Number of resting orders across all books."""
        return self.books.order_live
