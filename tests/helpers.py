"""Shared test helpers: sample instruments, an integrity-checking engine wrapper,
expected-event builders and command records."""

from __future__ import annotations

import numpy as np

from engine.core.events import Event
from engine.core.records import COMMAND_DTYPE, EVENT_DTYPE
from engine.core.types import CommandKind, EventKind, OrderType, SelfTrade, TimeInForce
from engine.instruments import InstrumentSpec

def cython_engine_class():
    """engine.core.matcher.MatchingEngine, or None if the Cython core is not built."""
    try:
        from engine.core.matcher import MatchingEngine
    except ImportError:
        return None
    return MatchingEngine


CYTHON_MISSING = ("Cython core engine.core.matcher not importable; "
                  "build it with `.venv/bin/pip install --no-build-isolation -e .`")

# Instrument 0 has both bands; instrument 1 has none; instrument 2 a narrow static band.
BANDED = 0
FREE = 1
NARROW = 2

TICK = 100
LOT = 10
MID = 1_000_000  # $100.0000 in price units

BANDED_SPEC = InstrumentSpec(
    symbol="AMZNX/USDC", base="AMZNX", quote="USDC", tick_size=TICK, lot_size=LOT, min_qty=20,
    max_qty=1_000_000, max_price=10_000_000, static_band_bps=1000, dynamic_band_bps=500, price_scale=10_000,
)
FREE_SPEC = InstrumentSpec(
    symbol="TSLA.M/USDC", base="TSLA.M", quote="USDC", tick_size=TICK, lot_size=LOT, min_qty=10,
    max_qty=1_000_000, max_price=10_000_000, price_scale=10_000,
)
NARROW_SPEC = InstrumentSpec(
    symbol="NVDA.M/USDC", base="NVDA.M", quote="USDC", tick_size=TICK, lot_size=LOT, min_qty=10,
    max_qty=1_000_000, max_price=10_000_000, static_band_bps=100, price_scale=10_000,
)
SPECS = (BANDED_SPEC, FREE_SPEC, NARROW_SPEC)


class Checked:
    """Wraps an engine and runs check_integrity() after every method call."""

    def __init__(self, engine):
        self.engine = engine

    def __getattr__(self, name):
        attr = getattr(self.engine, name)
        if not callable(attr):
            return attr

        def checked(*args, **kwargs):
            result = attr(*args, **kwargs)
            self.engine.check_integrity()
            return result

        return checked


def make_engine(engine_cls, specs=SPECS, **kwargs) -> Checked:
    """A fresh engine of engine_cls with the given instruments, wrapped in Checked."""
    engine = engine_cls(**kwargs)
    for spec in specs:
        engine.add_instrument(spec)
    engine.check_integrity()
    return Checked(engine)


# -- expected events (every argument keyword-only so a test reads like the event) --


def accepted(*, seq, order_id, account, side, price, qty, tif=TimeInForce.GTC, instrument=BANDED,
             client_order_id=0, ts=0) -> Event:
    """An ACCEPTED event."""
    return Event(seq=seq, ts=ts, kind=EventKind.ACCEPTED, side=side, aux=tif, instrument=instrument,
                 order_id=order_id, client_order_id=client_order_id, account=account, price=price, qty=qty,
                 leaves=qty)


def rejected(*, seq, reason, account=0, side=0, price=0, qty=0, order_id=0, instrument=0,
             client_order_id=0, asset=0, ts=0) -> Event:
    """A REJECTED event echoing the command's fields."""
    return Event(seq=seq, ts=ts, kind=EventKind.REJECTED, reason=reason, side=side, instrument=instrument,
                 order_id=order_id, client_order_id=client_order_id, account=account, price=price, qty=qty,
                 asset=asset)


def fill(*, seq, order_id, account, side, price, qty, leaves, maker_order_id, maker_account, maker_leaves,
         instrument=BANDED, client_order_id=0, maker_client_order_id=0, ts=0) -> Event:
    """A FILL event (order_id/account/side are the taker's)."""
    return Event(seq=seq, ts=ts, kind=EventKind.FILL, side=side, instrument=instrument, order_id=order_id,
                 client_order_id=client_order_id, account=account, price=price, qty=qty, leaves=leaves,
                 maker_order_id=maker_order_id, maker_client_order_id=maker_client_order_id,
                 maker_account=maker_account, maker_leaves=maker_leaves)


def cancelled(*, seq, reason, order_id, account, side, price, qty, instrument=BANDED, client_order_id=0,
              ts=0) -> Event:
    """A CANCELLED event (qty = the quantity cancelled)."""
    return Event(seq=seq, ts=ts, kind=EventKind.CANCELLED, reason=reason, side=side, instrument=instrument,
                 order_id=order_id, client_order_id=client_order_id, account=account, price=price, qty=qty)


def amended(*, seq, order_id, account, side, price, qty, priority_lost, instrument=BANDED, client_order_id=0,
            ts=0) -> Event:
    """An AMENDED event (qty = leaves = the new open quantity)."""
    return Event(seq=seq, ts=ts, kind=EventKind.AMENDED, side=side, aux=int(priority_lost), instrument=instrument,
                 order_id=order_id, client_order_id=client_order_id, account=account, price=price, qty=qty,
                 leaves=qty)


def mass_cancelled(*, seq, account, instrument, count, ts=0) -> Event:
    """A MASS_CANCELLED summary event."""
    return Event(seq=seq, ts=ts, kind=EventKind.MASS_CANCELLED, instrument=instrument, account=account, qty=count)


def state_changed(*, seq, instrument, state, ts=0) -> Event:
    """A STATE_CHANGED event."""
    return Event(seq=seq, ts=ts, kind=EventKind.STATE_CHANGED, instrument=instrument, aux=state)


def reference_set(*, seq, instrument, price, ts=0) -> Event:
    """A REFERENCE_SET event."""
    return Event(seq=seq, ts=ts, kind=EventKind.REFERENCE_SET, instrument=instrument, price=price)


# -- command records --


def events_of(batch: np.ndarray) -> list[Event]:
    """An EVENT_DTYPE array as a list of Event."""
    assert batch.dtype == EVENT_DTYPE
    return [Event.from_record(record) for record in batch]


def command_array(commands: list[dict]) -> np.ndarray:
    """A COMMAND_DTYPE array, one record per dict of fields (the rest zero)."""
    array = np.zeros(len(commands), dtype=COMMAND_DTYPE)
    for name in {name for fields in commands for name in fields}:
        array[name] = [int(fields.get(name, 0)) for fields in commands]
    return array


def command_record(**fields) -> np.void:
    """One COMMAND_DTYPE record with the given fields (the rest zero)."""
    return command_array([fields])[0]


def new_order_fields(instrument, account, side, qty, price=0, order_type=OrderType.LIMIT, tif=TimeInForce.GTC,
                     stp=SelfTrade.CANCEL_NEWEST, client_order_id=0, seq=0, ts=0) -> dict:
    """COMMAND_DTYPE fields of a NEW_ORDER, with the per-command API's defaults."""
    return dict(kind=CommandKind.NEW_ORDER, instrument=instrument, account=account, side=side, qty=qty,
                price=price, order_type=order_type, tif=tif, stp=stp, client_order_id=client_order_id, seq=seq,
                ts=ts)
