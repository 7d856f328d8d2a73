"""The engine's state as a whole: snapshot (engine/core/snapshot.py), restore,
state hash and integrity check (EngineParts in parts.pyx calls them).

Each part writes and reads its own state (instrument.pyx the trading states
and band widths an operator changed, book.pyx the resting orders, ledger.pyx
balances, positions and changed haircuts, margin.pyx the
margin rates, funding.pyx the funding indexes, pools and position entries,
pool.pyx the main pool and its deposit requests, waterfall.pyx the insurance pool
and the penalties held, risk.pyx the deposit counter and frozen accounts, expiry.pyx the
series statuses and covered calls); a snapshot is their outputs put
together, and a restore hands each part its own fields back.
"""

import hashlib

import numpy as np

from libc.stdint cimport int32_t, uint8_t

from engine.core.book cimport OrderWalk
from engine.core.instrument cimport (changed_bands, hash_words, in_static_band, read_bands, read_states,
                                     write_states)
from engine.core.types cimport BUY, SELL, Order
from engine.core.ledger cimport Ledger

from engine.core import snapshot as _snap


cdef bytes write_snapshot(const Parts* parts, Books books, Risk risk, Margin margin, Funding funding,
                          MainPool pool, Waterfall losses, list assets, list instruments):
    """The full state as EngineSnapshot bytes."""
    snap = _snap.EngineSnapshot(
        version=_snap.SNAPSHOT_VERSION,
        max_accounts=parts.max_accounts,
        max_orders=books.max_orders,
        risk=bool(parts.risk),
        fee_account=risk.fee_account,
        next_order_id=parts.next_order_id,
        last_seq=parts.last_seq,
        last_deposit_id=risk.last_deposit_id,
        assets=list(assets),
        instruments=list(instruments),
        instrument_state=write_states(parts.insts, parts.n_inst),
        orders=books.write_orders(),
        option_risk=margin.write_rates(parts.insts, parts.n_inst),
        frozen_accounts=risk.write_frozen(),
        bands=changed_bands(parts.insts, parts.n_inst, instruments),
        haircuts=risk.ledger.changed_haircuts(assets),
        funding=funding.write_part(),
        series_status=risk.life.write_status(parts.insts, parts.n_inst),
        covered=risk.life.write_covered(parts.insts, parts.n_inst),
        covering=sorted(risk.life.covering),
        main_pool=pool.write_part(),
        transfers=risk.transfers.write_part(),
        insurance=losses.write_part(),
        pool_deposits=pool.write_deposits(),
        penalties_held=losses.write_held(),
        **risk.ledger.write_part(),
    )
    return _snap.ENCODER.encode(snap)


cdef object decode_snapshot(data):
    """The EngineSnapshot in snapshot() bytes; ValueError if they are not one,
    or of a version this build does not read."""
    try:
        snap = _snap.DECODER.decode(data)
    except Exception as err:
        raise ValueError(f"not an engine snapshot: {err}") from err
    if snap.version not in _snap.SUPPORTED_VERSIONS:
        raise ValueError(f"snapshot version {snap.version}, expected one of {_snap.SUPPORTED_VERSIONS}")
    return snap


cdef int read_snapshot(snap, Parts* parts, Books books, Risk risk, Margin margin, Funding funding,
                       MainPool pool, Waterfall losses) except -1:
    """Hand each part of an engine built from the snapshot's specs its own
    fields; every part checks its values before it writes them."""
    cdef Ledger ledger = risk.ledger
    # Band widths first: read_states centres the bands with them.
    read_bands(parts.insts, parts.n_inst, [list(row) for row in snap.bands])
    read_states(parts.insts, parts.n_inst, snap.instrument_state)
    ledger.read_haircuts([list(row) for row in snap.haircuts])
    accounts = ledger.read_part(snap, parts.max_accounts)
    ledger.read_costs(snap, accounts, _unit_marks(parts, ledger.n_series) if snap.version < 6 else None)
    margin.read_rates(snap, parts.insts, parts.n_inst, accounts)
    funding.read_part(snap.funding, accounts)
    pool.read_part(snap.main_pool, accounts)
    pool.read_deposits([tuple(row) for row in snap.pool_deposits], accounts)
    losses.read_part([list(row) for row in snap.insurance])
    losses.read_held([list(row) for row in snap.penalties_held])
    if losses.enabled:
        risk.fee_income = losses.fee_income
    if len(snap.orders) % _snap.ORDER_DTYPE.itemsize == 0:
        # Accounts first: resting an order sizes the account lists to its account.
        orders = np.frombuffer(snap.orders, dtype=_snap.ORDER_DTYPE)
        if parts.risk:
            bad = ~np.isin(orders["account"], accounts)
        else:
            bad = (orders["account"] < 0) | (orders["account"] >= parts.max_accounts)
        if bad.any():
            raise ValueError(f"snapshot order {orders['order_id'][bad.argmax()]} is not valid for this engine")
    books.read_orders(snap.orders)
    parts.next_order_id = snap.next_order_id
    parts.last_seq = snap.last_seq
    risk.last_deposit_id = snap.last_deposit_id
    risk.read_frozen(list(snap.frozen_accounts))
    risk.transfers.read_part(snap.transfers)
    risk.life.read_part([list(row) for row in snap.series_status], [list(row) for row in snap.covered],
                        list(snap.covering), parts.insts, parts.n_inst)
    try:
        check_integrity(parts, books, risk, funding, pool, losses)
    except AssertionError as err:
        raise ValueError(f"snapshot is inconsistent: {err}") from err
    return 0


cdef list _unit_marks(const Parts* parts, int32_t n_series):
    # Premium ledger units per quantity unit at each option series' mark (0: none),
    # the linear factor of instrument.pxd's notional.
    cdef int32_t i
    cdef const Instrument* inst
    marks = [0] * n_series
    for i in range(parts.n_inst):
        inst = &parts.insts[i]
        if inst.series >= 0:
            marks[inst.series] = inst.reference // inst.tick * inst.quote_per_tick_qty
    return marks


cdef str state_hash(const Parts* parts, Books books, Risk risk, Margin margin, Funding funding, MainPool pool,
                    Waterfall losses, list assets, list instruments):
    """SHA-256 (hex) over the parts' hash words."""
    cdef int32_t i
    cdef list words = [parts.n_inst, parts.next_order_id, parts.last_seq]
    for i in range(parts.n_inst):
        hash_words(&parts.insts[i], i, words)
        books.hash_words(i, words)
    words += [parts.risk, risk.fee_account, risk.last_deposit_id]
    if risk.n_frozen:
        # Only when present: a state without frozen accounts hashes as before.
        words += [risk.n_frozen, *risk.write_frozen()]
    risk.ledger.hash_words(words)
    margin.hash_words(words)
    funding.hash_words(words)
    pool.hash_words(words)
    losses.hash_words(words)
    risk.life.hash_words(parts.insts, parts.n_inst, words)
    risk.transfers.hash_words(words)
    bands = changed_bands(parts.insts, parts.n_inst, instruments)
    haircuts = risk.ledger.changed_haircuts(assets)
    if bands or haircuts:
        # Only when an operator changed them: other states hash as before.
        words += [len(bands), *[w for row in bands for w in row]]
        words += [len(haircuts), *[w for row in haircuts for w in row]]
    return hashlib.sha256(np.asarray(words, dtype=np.int64).tobytes()).hexdigest()


cdef int check_integrity(const Parts* parts, Books books, Risk risk, Funding funding, MainPool pool,
                         Waterfall losses) except -1:
    """Raise AssertionError naming the first broken invariant."""
    cdef int32_t i, slot
    cdef uint8_t side
    cdef OrderWalk w
    cdef const Instrument* inst
    cdef Order* o
    books.check_integrity()
    if parts.risk:
        risk.ledger.check_integrity()
        funding.check_integrity()
        pool.check_integrity()
        need = {}
        pool.locked(need)
        losses.locked(need)
        risk.check_reservations(books, parts.insts, parts.n_inst, need)
    for i in range(parts.n_inst):
        inst = &parts.insts[i]
        for side in (BUY, SELL):
            w = books.walk(i, side)
            slot = books.next_resting(&w)
            while slot != -1:
                o = &books.orders[slot]
                assert 0 < o.order_id < parts.next_order_id, f"order id {o.order_id} never issued"
                assert o.price % inst.tick == 0, f"order {o.order_id} off tick"
                assert in_static_band(inst, o.price), f"order {o.order_id} at {o.price} outside the static band"
                slot = books.next_resting(&w)
    return 0
