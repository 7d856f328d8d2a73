# Option margin: per-series margin rates, collateral value, requirements, the
# margin check, and liquidation plans (closing orders the matcher runs).
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memset

from engine.core.instrument cimport Instrument, notional, reservation
from engine.core.ledger cimport Ledger
from engine.core.types cimport BPS, BUY, CANCEL_NEWEST, IOC, LIMIT, NEW_ORDER, CommandRec, price_t, qty_t

# Products of an amount and a price need 128 bits.
cdef extern from *:
    ctypedef long long int128_t "__int128"


cdef inline qty_t affordable(const Instrument* inst, price_t price, qty_t want, int64_t free) noexcept:
    # The largest multiple of the lot, at most want, whose buy reservation at
    # price fits in free. R(k lots) = k n + floor(k n f / 10000) with n the
    # notional of a lot and f the reserved fee rate, so k0 = floor(free x 10000
    # / (n (10000 + f))) fits and k0 + 2 never does: only k0 + 1 needs a check.
    cdef int64_t n = notional(inst, price, inst.lot)
    cdef qty_t lots, most = want // inst.lot
    if n <= 0 or free <= 0:
        return 0
    lots = <qty_t>((<int128_t>free * BPS) // (<int128_t>n * (BPS + inst.reserve_bps)))
    if lots >= most:
        return most * inst.lot
    if reservation(inst, BUY, price, (lots + 1) * inst.lot) <= free:
        lots += 1
    return lots * inst.lot


cdef inline void closing_order(CommandRec* out, int32_t instrument, int64_t account, uint8_t side,
                               price_t price, qty_t qty) noexcept:
    # Every closing order (a liquidation's, the waterfall's) is IOC at an edge
    # of the execution band, so it trades only inside the bands.
    memset(out, 0, sizeof(CommandRec))
    out.kind = NEW_ORDER
    out.instrument = instrument
    out.account = account
    out.side = side
    out.order_type = LIMIT
    out.tif = IOC
    out.stp = CANCEL_NEWEST
    out.price = price
    out.qty = qty


# Where a liquidation has got to. Each closing order depends on what the ones
# before it did, so the plan hands them out one at a time.
ctypedef struct Liquidation:
    int64_t account
    int32_t series       # next series to buy back
    int32_t spot         # next spot book to raise quote on for the current series; -1: none
    int32_t instrument   # the current series' instrument
    price_t price        # its buy-back price (the band's high edge)
    qty_t want           # its short to buy back
    int64_t need         # the quote the buy-back would reserve
    int64_t step_lots    # lots closed per series in one liquidation command; 0: all


cdef class Margin:
    cdef Ledger ledger           # balances, prices, haircuts and positions it values
    cdef int32_t* series_inst    # [series]: instrument id
    cdef int64_t* initial        # [series]: initial margin of a short, USD x 1e8 per qty unit (0: unset)
    cdef int64_t* maintenance    # [series]: maintenance margin of a short
    cdef uint8_t* two_sided      # [series]: perpetual: longs are margined too (their funding)
    cdef int32_t* premium_asset  # [series]: the asset its premium and funding are paid in

    # -- queries --
    cdef inline bint has_rates(self, int32_t series) noexcept nogil:
        return self.initial[series] != 0
    cdef int64_t collateral(self, int64_t account, bint free_only) noexcept
    cdef int64_t requirement(self, int64_t account, bint initial) noexcept
    cdef bint ok(self, int64_t account) noexcept
    cdef object state(self, int64_t account)
    cdef list under_maintenance(self)
    cdef list positions(self, int64_t account)
    cdef tuple rates(self, int32_t series)

    # -- commands --
    cdef int add_series(self, Instrument* inst, int32_t instrument, bint two_sided) except -1
    cdef uint8_t set_rates(self, int32_t series, int64_t initial, int64_t maintenance) noexcept
    cdef uint8_t set_asset_price(self, int32_t asset, int64_t usd_e8) noexcept
    cdef uint8_t set_haircut(self, int32_t asset, int64_t haircut_bps) noexcept
    cdef Liquidation plan(self, int64_t account) noexcept
    cdef Liquidation payment_plan(self, int64_t account, int32_t instrument, int64_t need) noexcept
    cdef bint next_order(self, Liquidation* plan, const Instrument* insts, int32_t n_inst,
                         CommandRec* out) noexcept

    # -- state (state.pyx puts the parts together) --
    cdef bytes write_rates(self, const Instrument* insts, int32_t n_inst)
    cdef int read_rates(self, snap, const Instrument* insts, int32_t n_inst, accounts) except -1
    cdef int hash_words(self, list words) except -1
