"""Option margin (docs/matching.md, "Options"): the margin rates of each option
series, the collateral value of an account, its initial and maintenance
requirements, the check an order or a withdrawal must pass, and liquidation
plans.

Collateral counts balances at their reference price less the haircut; the
initial check uses free balances (reserved amounts are committed to orders),
maintenance uses totals. A liquidation plan hands the matcher its closing
orders one at a time, so this module never places an order itself.
"""

from cpython.mem cimport PyMem_RawFree, PyMem_RawRealloc
from libc.stdint cimport INT64_MAX

from engine.core.instrument cimport execution_band, fee, notional
from engine.core.ledger cimport Balance, Position
from engine.core.types cimport (BPS, BUY, INVALID_HAIRCUT, INVALID_MARGIN, INVALID_PRICE, MAX_MARGIN_PER_QTY,
                                MAX_USD_PRICE, OPEN, SELL, VALUE_LIMIT)

import numpy as np

from engine.core.order_info import MarginState, PositionInfo
from engine.units import FUNDING_INDEX_SCALE

cdef int64_t FUNDING_SCALE = FUNDING_INDEX_SCALE


cdef void* _grow(void* ptr, Py_ssize_t count, Py_ssize_t item) except NULL:
    cdef void* out = PyMem_RawRealloc(ptr, count * item)
    if out == NULL:
        raise MemoryError()
    return out


cdef inline qty_t _step(const Liquidation* plan, const Instrument* inst) noexcept:
    # A stepwise liquidation closes at most step_lots lots of a series per
    # command, so a thin book is not swept at the band edge all at once.
    return plan.step_lots * inst.lot if plan.step_lots > 0 else INT64_MAX


cdef class Margin:
    """Margin rates, collateral, requirements and liquidation plans over a Ledger."""

    def __cinit__(self, Ledger ledger):
        self.ledger = ledger

    def __dealloc__(self):
        PyMem_RawFree(self.series_inst)
        PyMem_RawFree(self.initial)
        PyMem_RawFree(self.maintenance)
        PyMem_RawFree(self.two_sided)
        PyMem_RawFree(self.premium_asset)

    # -- queries --

    cdef int64_t collateral(self, int64_t account, bint free_only) noexcept:
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
            if v > VALUE_LIMIT:
                v = VALUE_LIMIT
            total += v * (BPS - ledger.haircut_bps[a]) // BPS
        return <int64_t>(total if total < VALUE_LIMIT else VALUE_LIMIT)

    cdef int64_t requirement(self, int64_t account, bint initial) noexcept:
        """Margin in USD x 1e8 over the account's option series: initial covers
        the short it would hold if all its open sells filled (ask_open - pos),
        maintenance its current short (-pos), each short less its covered part. In a perpetual series longs pay
        funding, so the same rate covers the larger of that short and the long
        it would hold if all its open buys filled (bid_open + pos), and its
        current long; funding it could not pay (docs/funding.md) adds its USD
        value, rounded up, to both. Saturates at INT64_MAX."""
        cdef Ledger ledger = self.ledger
        cdef int32_t a
        cdef int128_t total = 0
        cdef int128_t exposure
        cdef int32_t s
        cdef const Position* p
        for s in range(self.ledger.n_series):
            p = self.ledger.position(account, s)
            # The covered part of a call exposure is backed by locked underlying.
            if initial:
                exposure = <int128_t>p.ask_open - p.pos - p.covered
                if self.two_sided[s] and p.bid_open + p.pos > exposure:
                    exposure = <int128_t>p.bid_open + p.pos
                if exposure > 0:
                    total += exposure * self.initial[s]
            else:
                exposure = 0
                if p.pos < 0:
                    exposure = -(<int128_t>p.pos) - p.covered
                elif self.two_sided[s]:
                    exposure = p.pos
                if exposure > 0:
                    total += exposure * self.maintenance[s]
            if p.carry > 0:
                a = self.premium_asset[s]
                total += (((<int128_t>p.carry + FUNDING_SCALE - 1) // FUNDING_SCALE * ledger.usd_price[a]
                           + ledger.unit_scale[a] - 1) // ledger.unit_scale[a])
        return <int64_t>(total if total < INT64_MAX else INT64_MAX)

    cdef bint ok(self, int64_t account) noexcept:
        """Whether the account's free collateral covers its initial margin."""
        cdef int64_t need = self.requirement(account, True)
        return need == 0 or self.collateral(account, True) >= need

    cdef object state(self, int64_t account):
        """MarginState of an account."""
        return MarginState(self.collateral(account, False), self.collateral(account, True),
                           self.requirement(account, True), self.requirement(account, False))

    cdef list under_maintenance(self):
        """[(account, MarginState)] of the accounts below their maintenance margin."""
        cdef int64_t acct, maintenance, value
        cdef Ledger ledger = self.ledger
        out = []
        for acct in range(ledger.acct_cap):
            if not ledger.is_open[acct] or not ledger.has_options[acct]:
                continue
            maintenance = self.requirement(acct, False)
            if maintenance:
                value = self.collateral(acct, False)
                if value < maintenance:
                    out.append((acct, MarginState(value, self.collateral(acct, True),
                                                  self.requirement(acct, True), maintenance)))
        return out

    cdef list positions(self, int64_t account):
        """[PositionInfo] of the account's option series with a position or open orders."""
        cdef int32_t s
        cdef Position* p
        out = []
        for s in range(self.ledger.n_series):
            p = self.ledger.position(account, s)
            if p.pos or p.ask_open or p.bid_open:
                out.append(PositionInfo(self.series_inst[s], p.pos, p.ask_open, p.bid_open, p.cost))
        return out

    cdef tuple rates(self, int32_t series):
        return (self.initial[series], self.maintenance[series])

    # -- commands --

    cdef int add_series(self, Instrument* inst, int32_t instrument, bint two_sided) except -1:
        """Make ``inst`` (instrument id ``instrument``) an option series, rates
        unset; ``two_sided`` (perpetual series) margins longs as well."""
        cdef int32_t s = self.ledger.n_series
        self.series_inst = <int32_t*>_grow(self.series_inst, s + 1, sizeof(int32_t))
        self.initial = <int64_t*>_grow(self.initial, s + 1, sizeof(int64_t))
        self.maintenance = <int64_t*>_grow(self.maintenance, s + 1, sizeof(int64_t))
        self.two_sided = <uint8_t*>_grow(self.two_sided, s + 1, sizeof(uint8_t))
        self.premium_asset = <int32_t*>_grow(self.premium_asset, s + 1, sizeof(int32_t))
        inst.series = self.ledger.add_series()
        self.series_inst[s] = instrument
        self.initial[s] = 0
        self.maintenance[s] = 0
        self.two_sided[s] = two_sided
        self.premium_asset[s] = inst.quote_asset
        return 0

    cdef uint8_t set_rates(self, int32_t series, int64_t initial, int64_t maintenance) noexcept:
        """Set a series' margins of a short (USD x 1e8 per quantity unit); a reject code if invalid."""
        if not 0 < maintenance <= initial <= MAX_MARGIN_PER_QTY:
            return INVALID_MARGIN
        self.initial[series] = initial
        self.maintenance[series] = maintenance
        return 0

    cdef uint8_t set_asset_price(self, int32_t asset, int64_t usd_e8) noexcept:
        """Set the reference price collateral is valued at; a reject code if invalid."""
        if usd_e8 <= 0 or usd_e8 > MAX_USD_PRICE:
            return INVALID_PRICE
        self.ledger.usd_price[asset] = usd_e8
        return 0

    cdef uint8_t set_haircut(self, int32_t asset, int64_t haircut_bps) noexcept:
        """Set the share of an asset's value collateral does not count; a
        reject code if invalid."""
        if haircut_bps < 0 or haircut_bps > BPS:
            return INVALID_HAIRCUT
        self.ledger.haircut_bps[asset] = <int32_t>haircut_bps
        return 0

    cdef Liquidation plan(self, int64_t account) noexcept:
        """A liquidation of ``account`` from its first series (its orders already cancelled)."""
        cdef Liquidation plan
        plan.account = account
        plan.series = 0
        plan.spot = -1
        plan.instrument = -1
        plan.price = 0
        plan.want = 0
        plan.need = 0
        plan.step_lots = 0
        return plan

    cdef Liquidation payment_plan(self, int64_t account, int32_t instrument, int64_t need) noexcept:
        """A plan that only sells the account's other assets on spot books quoted
        in ``instrument``'s premium asset until ``need`` of it is free (an expiring
        short's payment, expiry.pyx); it buys nothing back."""
        cdef Liquidation plan = self.plan(account)
        plan.series = self.ledger.n_series
        plan.spot = 0
        plan.instrument = instrument
        plan.need = need
        return plan

    cdef bint next_order(self, Liquidation* plan, const Instrument* insts, int32_t n_inst,
                         CommandRec* out) noexcept:
        """The plan's next closing order into ``out``; False when it is done.

        Per short series in turn: sell the account's other assets on spot books
        quoted in the premium asset (IOC at the band's low edge) until its free
        premium covers the buy-back's reservation, then buy back as much of the
        short as it can afford (IOC at the band's high edge). A long in a
        perpetual series, which owes funding, is sold (IOC at the band's low
        edge). Each step reads the balances the previous orders left."""
        cdef const Instrument* inst
        cdef const Instrument* spot
        cdef int64_t acct = plan.account
        cdef int64_t shortfall, per_lot, free_base
        cdef price_t lo, hi
        cdef qty_t qty, want
        cdef int32_t s, i
        while True:
            if plan.spot >= 0:
                inst = &insts[plan.instrument]
                while plan.spot < n_inst:
                    i = plan.spot
                    plan.spot += 1
                    shortfall = plan.need - self.ledger.free(acct, inst.quote_asset)
                    if shortfall <= 0:
                        break
                    spot = &insts[i]
                    if spot.series >= 0 or spot.quote_asset != inst.quote_asset or spot.state != OPEN:
                        continue
                    execution_band(spot, &lo, &hi)
                    if lo == 0 or hi < lo:
                        continue
                    free_base = self.ledger.free(acct, spot.base_asset)
                    per_lot = notional(spot, lo, spot.lot)
                    per_lot -= fee(per_lot, spot.taker_bps)
                    if free_base <= 0 or per_lot <= 0:
                        continue
                    # One lot more than the proceeds at the band edge need: fees round.
                    qty = min(shortfall // per_lot + 2, spot.max_qty // spot.lot,
                              free_base // spot.base_per_qty // spot.lot) * spot.lot
                    if qty >= spot.min_qty:
                        closing_order(out, i, acct, SELL, lo, qty)
                        return True
                plan.spot = -1
                qty = affordable(inst, plan.price, plan.want, self.ledger.free(acct, inst.quote_asset))
                if qty >= inst.min_qty:
                    closing_order(out, plan.instrument, acct, BUY, plan.price, qty)
                    return True
            if plan.series >= self.ledger.n_series:
                return False
            s = plan.series
            plan.series += 1
            want = -self.ledger.position(acct, s).pos
            i = self.series_inst[s]
            inst = &insts[i]
            if inst.state != OPEN:
                continue
            if want < 0 and self.two_sided[s]:
                execution_band(inst, &lo, &hi)
                qty = min(-want, inst.max_qty, _step(plan, inst)) // inst.lot * inst.lot
                if lo > 0 and lo <= hi and qty >= inst.min_qty:
                    closing_order(out, i, acct, SELL, lo, qty)
                    return True
                continue
            if want <= 0:
                continue
            execution_band(inst, &lo, &hi)
            if hi == INT64_MAX or hi < lo:
                continue  # no band to bound a closing order, or no price can trade
            plan.price = min(hi, inst.max_price // inst.tick * inst.tick)
            plan.want = min(want, inst.max_qty, _step(plan, inst)) // inst.lot * inst.lot
            if plan.want < inst.min_qty:
                continue
            plan.instrument = i
            plan.need = reservation(inst, BUY, plan.price, plan.want)
            plan.spot = 0

    # -- state --

    cdef bytes write_rates(self, const Instrument* insts, int32_t n_inst):
        """(initial, maintenance) per instrument, int64 [n_inst, 2] (0, 0 for a non-option)."""
        cdef int32_t i
        rates = np.zeros((n_inst, 2), dtype=np.int64)
        for i in range(n_inst):
            if insts[i].series >= 0:
                rates[i] = self.rates(insts[i].series)
        return rates.tobytes()

    cdef int read_rates(self, snap, const Instrument* insts, int32_t n_inst, accounts) except -1:
        """Restore what write_rates wrote and check the ledger's restored
        positions against it (no position or order in a series without margins)."""
        cdef int32_t i, s
        cdef int64_t acct
        cdef const Position* p
        rates = (np.frombuffer(snap.option_risk, dtype=np.int64).reshape(-1, 2)
                 if snap.option_risk else np.zeros((n_inst, 2), dtype=np.int64))
        if len(rates) != n_inst:
            raise ValueError("snapshot option parts do not match its instruments and accounts")
        for i, (initial, maintenance) in enumerate(rates.tolist()):
            if insts[i].series < 0:
                if initial or maintenance:
                    raise ValueError(f"snapshot gives margins to instrument {i}, not an option")
            elif initial == maintenance == 0:
                continue
            elif self.set_rates(insts[i].series, initial, maintenance):
                raise ValueError(f"snapshot margins of instrument {i} are not valid")
        for s in range(self.ledger.n_series):
            if self.initial[s] == 0:
                for acct in accounts.tolist():
                    p = self.ledger.position(acct, s)
                    if p.pos or p.ask_open or p.bid_open:
                        raise ValueError(f"snapshot holds positions or orders in series {s} "
                                         f"but no margins for it")
        return 0

    cdef int hash_words(self, list words) except -1:
        """The margin rates' part of the state hash, by series (instrument order)."""
        cdef int32_t s
        for s in range(self.ledger.n_series):
            words += [self.series_inst[s], self.initial[s], self.maintenance[s]]
        return 0
