# One instrument's parameters, trading state and price bands, and the checks
# an order's price and quantity must pass against them.
from libc.stdint cimport INT64_MAX, int32_t, int64_t, uint8_t

from engine.core.types cimport (BPS, BUY, INVALID_PRICE, INVALID_QUANTITY, PRICE_ABOVE_MAX, PRICE_OFF_TICK,
                                QUANTITY_ABOVE_MAX, QUANTITY_BELOW_MIN, QUANTITY_OFF_LOT, price_t, qty_t)


# Parameters and trading state of one instrument. Band edges are cached when
# their centre changes; has_static / has_dynamic say whether the band exists.
ctypedef struct Instrument:
    int64_t tick
    int64_t lot
    int64_t min_qty
    int64_t max_qty
    int64_t max_price
    int64_t static_bps
    int64_t dynamic_bps
    int64_t reference
    int64_t last_trade
    int64_t s_lo
    int64_t s_hi
    int64_t d_lo
    int64_t d_hi
    # risk: assets, exact unit mapping (engine/units.py), fees
    int32_t base_asset
    int32_t quote_asset
    int64_t base_per_qty          # base ledger units per quantity unit
    int64_t quote_per_tick_qty    # quote ledger units per (tick x quantity unit)
    int64_t maker_bps
    int64_t taker_bps
    int64_t reserve_bps           # fee rate a buy reserves: max(maker, taker, 0)
    int64_t expiry_ns             # a dated option series' expiry instant (no order from then on); 0: none
    int32_t series                # option series (position column, margin.pyx); -1: not an option
    uint8_t has_static
    uint8_t has_dynamic
    uint8_t state


# -- queries --

cdef inline void band_around(int64_t centre, int64_t bps, int64_t tick,
                             int64_t* lo, int64_t* hi) noexcept nogil:
    # Edges rounded inwards to the tick grid (docs/matching.md, "Numbers").
    cdef int64_t unit = BPS * tick
    lo[0] = (centre * (BPS - bps) + unit - 1) // unit * tick
    hi[0] = centre * (BPS + bps) // unit * tick


cdef inline void execution_band(const Instrument* inst, price_t* lo, price_t* hi) noexcept nogil:
    """The prices a trade may print at now: inside both bands that exist."""
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


cdef inline bint in_static_band(const Instrument* inst, price_t price) noexcept nogil:
    return not inst.has_static or inst.s_lo <= price <= inst.s_hi


cdef inline uint8_t check_qty(const Instrument* inst, qty_t qty) noexcept nogil:
    """0, or the reject code of an order quantity."""
    if qty <= 0:
        return INVALID_QUANTITY
    if qty % inst.lot != 0:
        return QUANTITY_OFF_LOT
    if qty < inst.min_qty:
        return QUANTITY_BELOW_MIN
    if qty > inst.max_qty:
        return QUANTITY_ABOVE_MAX
    return 0


cdef inline uint8_t check_price(const Instrument* inst, price_t price) noexcept nogil:
    """0, or the reject code of a limit price."""
    if price <= 0:
        return INVALID_PRICE
    if price % inst.tick != 0:
        return PRICE_OFF_TICK
    if price > inst.max_price:
        return PRICE_ABOVE_MAX
    return 0


# -- amounts (ledger units) --

cdef inline int64_t notional(const Instrument* inst, price_t price, qty_t qty) noexcept nogil:
    """Quote ledger units of qty at price."""
    return (price // inst.tick) * qty * inst.quote_per_tick_qty


cdef inline int64_t bps_of(int64_t amount, int64_t bps) noexcept nogil:
    # floor(amount * bps / 10000) for amount, bps >= 0, without 128-bit products.
    return (amount // BPS) * bps + (amount % BPS) * bps // BPS


cdef inline int64_t fee(int64_t amount, int64_t bps) noexcept nogil:
    # Fees and rebates both round towards zero: the fee account receives exactly
    # what takers pay minus what makers are rebated, and a maker rebate never
    # exceeds the taker fee of the same fill (|maker_bps| <= taker_bps).
    return bps_of(amount, bps) if bps >= 0 else -bps_of(amount, -bps)


cdef inline int64_t reservation(const Instrument* inst, uint8_t side, price_t price,
                                qty_t leaves) noexcept nogil:
    # What an order may still spend: a buy its notional at its limit plus the
    # largest fee it could pay, a sell its base quantity. Floor-rounded fees make
    # R(leaves) - R(leaves - q) cover every fill of q at or inside the limit.
    cdef int64_t n
    if side == BUY:
        n = notional(inst, price, leaves)
        return n + bps_of(n, inst.reserve_bps)
    return leaves * inst.base_per_qty


# -- commands --

cdef int init_instrument(Instrument* inst, spec, units) except -1
cdef void set_reference(Instrument* inst, price_t price) noexcept
cdef void recentre_dynamic(Instrument* inst) noexcept
cdef uint8_t set_bands(Instrument* inst, int64_t static_bps, int64_t dynamic_bps) noexcept

# -- state (state.pyx puts the parts together) --

cdef bytes write_states(const Instrument* insts, int32_t n)
cdef int read_states(Instrument* insts, int32_t n, bytes data) except -1
cdef int hash_words(const Instrument* inst, int32_t i, list words) except -1
cdef list changed_bands(const Instrument* insts, int32_t n, list specs)
cdef int read_bands(Instrument* insts, int32_t n, list rows) except -1
