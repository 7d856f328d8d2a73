"""One instrument: its parameters from an InstrumentSpec, its trading state and
its price bands (static around the reference price, dynamic around the last
trade). The checks of a price and a quantity are inline in instrument.pxd."""

from libc.string cimport memset

from engine.core.types cimport BPS, CLOSED, HALTED, INVALID_BAND, OPEN

import numpy as np

from engine.core import snapshot as _snap


cdef int init_instrument(Instrument* inst, spec, units) except -1:
    """Fill ``inst`` from an InstrumentSpec; ``units`` is its engine.units
    InstrumentUnits (risk mode) or None. Not an option series until margin.pyx
    gives it one."""
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
    if spec.option is not None:
        inst.expiry_ns = spec.option.expiry_ns
    if units is not None:
        inst.base_asset = units.base_asset
        inst.quote_asset = units.quote_asset
        inst.base_per_qty = units.base_per_qty
        inst.quote_per_tick_qty = units.quote_per_tick_qty
        inst.maker_bps = spec.maker_fee_bps
        inst.taker_bps = spec.taker_fee_bps
        inst.reserve_bps = max(spec.maker_fee_bps, spec.taker_fee_bps, 0)
    return 0


cdef void set_reference(Instrument* inst, price_t price) noexcept:
    """Re-centre the static band on a new reference price (resting orders
    outside it are the matcher's to cancel)."""
    inst.reference = price
    if not inst.static_bps:
        return
    inst.has_static = 1
    band_around(price, inst.static_bps, inst.tick, &inst.s_lo, &inst.s_hi)
    if inst.last_trade and not inst.s_lo <= inst.last_trade <= inst.s_hi:
        # A last trade outside the new static band is stale: its dynamic
        # band would not meet the static band and nothing could trade.
        inst.last_trade = 0
        inst.has_dynamic = 0


cdef void recentre_dynamic(Instrument* inst) noexcept:
    """Re-centre the dynamic band on the last trade."""
    if inst.dynamic_bps:
        inst.has_dynamic = 1
        band_around(inst.last_trade, inst.dynamic_bps, inst.tick, &inst.d_lo, &inst.d_hi)


cdef uint8_t set_bands(Instrument* inst, int64_t static_bps, int64_t dynamic_bps) noexcept:
    """Give the instrument new band widths (0 disables a band) and re-centre
    both bands where they have a centre; 0, or INVALID_BAND (nothing changed).
    Resting orders outside the new static band are the matcher's to cancel."""
    if not (0 <= static_bps < BPS and 0 <= dynamic_bps < BPS):
        return INVALID_BAND
    inst.static_bps = static_bps
    inst.dynamic_bps = dynamic_bps
    inst.has_static = 0
    inst.has_dynamic = 0
    if inst.reference:
        set_reference(inst, inst.reference)
    if inst.last_trade:
        recentre_dynamic(inst)
    return 0


cdef bytes write_states(const Instrument* insts, int32_t n):
    """(state, reference, last trade) per instrument, INSTRUMENT_STATE_DTYPE."""
    cdef int32_t i
    states = np.zeros(n, dtype=_snap.INSTRUMENT_STATE_DTYPE)
    for i in range(n):
        states[i] = (insts[i].state, insts[i].reference, insts[i].last_trade)
    return states.tobytes()


cdef int read_states(Instrument* insts, int32_t n, bytes data) except -1:
    """Restore what write_states wrote, with the bands it implies."""
    cdef int32_t i
    cdef Instrument* inst
    if len(data) != n * _snap.INSTRUMENT_STATE_DTYPE.itemsize:
        raise ValueError("snapshot state does not match its instruments and assets")
    for i, (state, reference, last_trade) in enumerate(
            np.frombuffer(data, dtype=_snap.INSTRUMENT_STATE_DTYPE).tolist()):
        if state not in (OPEN, HALTED, CLOSED) or reference < 0 or last_trade < 0:
            raise ValueError(f"snapshot state of instrument {i} is not valid")
        inst = &insts[i]
        inst.state = state
        inst.reference = reference
        inst.last_trade = last_trade
        if reference and inst.static_bps:
            inst.has_static = 1
            band_around(reference, inst.static_bps, inst.tick, &inst.s_lo, &inst.s_hi)
        if last_trade:
            recentre_dynamic(inst)
    return 0


cdef int hash_words(const Instrument* inst, int32_t i, list words) except -1:
    """Instrument i's part of the state hash."""
    words += [i, inst.state, inst.reference, inst.last_trade]
    return 0


cdef list changed_bands(const Instrument* insts, int32_t n, list specs):
    """[instrument, static bps, dynamic bps] of each instrument whose band
    widths differ from its spec's (operator SET_BANDS): the only widths a
    snapshot or the state hash carries, so a state without such a change
    writes and hashes as before SET_BANDS existed."""
    cdef int32_t i
    return [[i, insts[i].static_bps, insts[i].dynamic_bps] for i in range(n)
            if (insts[i].static_bps != specs[i].static_band_bps
                or insts[i].dynamic_bps != specs[i].dynamic_band_bps)]


cdef int read_bands(Instrument* insts, int32_t n, list rows) except -1:
    """Restore what changed_bands wrote, before read_states centres the bands."""
    for i, static_bps, dynamic_bps in rows:
        if not (0 <= i < n and 0 <= static_bps < BPS and 0 <= dynamic_bps < BPS):
            raise ValueError(f"snapshot band widths {[i, static_bps, dynamic_bps]} are not valid")
        insts[i].static_bps = static_bps
        insts[i].dynamic_bps = dynamic_bps
    return 0
