"""The reference matcher: the matching rules of docs/matching.md as plain Python.

`ReferenceMatcher` has the same Python surface as the Cython core
(`engine.core.matcher.MatchingEngine`). It is written to be read: the books
(engine/reference/book.py) are a dict of price levels and a sorted list of
prices per side, a deque per price level, plus a dict of resting orders by id.
The property tests drive it and the Cython core with the same commands and
compare every event; the benchmarks use it as the baseline.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import msgspec
import numpy as np

from engine.core.events import Event
from engine.core.records import COMMAND_DTYPE, EVENT_DTYPE, EVENT_FIELDS
from engine.core.types import (
    CancelReason,
    CommandKind,
    EventKind,
    OrderType,
    Reject,
    SelfTrade,
    Side,
    TimeInForce,
    TradingState,
)
from engine.instruments import InstrumentSpec
from engine.units import BPS
from engine.reference.bands import in_band
from engine.reference.book import BookSide, InstrumentBook, Order

__all__ = ["Command", "ReferenceMatcher"]

_BUY = int(Side.BUY)
_SELL = int(Side.SELL)
_LIMIT = int(OrderType.LIMIT)
_MARKET = int(OrderType.MARKET)
_GTC = int(TimeInForce.GTC)
_IOC = int(TimeInForce.IOC)
_FOK = int(TimeInForce.FOK)
_POST_ONLY = int(TimeInForce.POST_ONLY)
_STP_NONE = int(SelfTrade.STP_NONE)
_CANCEL_NEWEST = int(SelfTrade.CANCEL_NEWEST)
_CANCEL_OLDEST = int(SelfTrade.CANCEL_OLDEST)
_CANCEL_BOTH = int(SelfTrade.CANCEL_BOTH)
_OPEN = int(TradingState.OPEN)
_HALTED = int(TradingState.HALTED)
_CLOSED = int(TradingState.CLOSED)

# What happens when an incoming order meets the next resting order of the walk.
_TRADE = "trade"
_ECHOES_ORDER_ID = (CommandKind.CANCEL, CommandKind.AMEND, CommandKind.CREDIT, CommandKind.SKIP_DEPOSIT)
_SKIP_CANCEL_MAKER = "cancel maker"  # CANCEL_OLDEST: cancel the own resting order, go on
_STOP_LIMIT = "limit"  # resting order beyond the limit price, or the book is empty
_STOP_BAND = "band"  # resting order outside the execution band
_STOP_SELF = "self"  # CANCEL_NEWEST: the incoming remainder is cancelled
_STOP_SELF_BOTH = "self both"  # CANCEL_BOTH: cancel the resting order, then the remainder


class Command(NamedTuple):
    """One command: the fields of COMMAND_DTYPE without the padding."""

    seq: int = 0
    ts: int = 0
    kind: int = 0
    side: int = 0
    order_type: int = 0
    tif: int = 0
    stp: int = 0
    state: int = 0
    instrument: int = 0
    asset: int = 0
    account: int = 0
    order_id: int = 0
    client_order_id: int = 0
    price: int = 0
    qty: int = 0

    @classmethod
    def from_record(cls, record) -> Command:
        """Build a Command from one COMMAND_DTYPE numpy record."""
        return cls(*(int(record[name]) for name in cls._fields))


# Positions of Command's fields in a COMMAND_DTYPE tuple (``ndarray.tolist()``).
_RECORD_POSITIONS = tuple(COMMAND_DTYPE.names.index(name) for name in Command._fields)


def _u8(value: int) -> int:
    """An enum argument of the keyword API as the uint8 record field holds it (255 if out of range)."""
    return value if 0 <= value <= 255 else 255


def _reaches(side: int, limit: int, price: int) -> bool:
    """Whether an order of `side` with limit price `limit` may trade at `price`."""
    return price <= limit if side == _BUY else price >= limit


def _price_reject(spec: InstrumentSpec, price: int) -> int:
    """The limit-price checks (positive, on tick, at most max_price): reject code or 0."""
    if price <= 0:
        return Reject.INVALID_PRICE
    if price % spec.tick_size:
        return Reject.PRICE_OFF_TICK
    if price > spec.max_price:
        return Reject.PRICE_ABOVE_MAX
    return 0


def _qty_reject(spec: InstrumentSpec, qty: int) -> int:
    """The quantity checks (positive, on lot, within [min_qty, max_qty]): reject code or 0."""
    if qty <= 0:
        return Reject.INVALID_QUANTITY
    if qty % spec.lot_size:
        return Reject.QUANTITY_OFF_LOT
    if qty < spec.min_qty:
        return Reject.QUANTITY_BELOW_MIN
    if qty > spec.max_qty:
        return Reject.QUANTITY_ABOVE_MAX
    return 0


def _state_reject(state: int) -> int:
    if state == _HALTED:
        return Reject.INSTRUMENT_HALTED
    if state == _CLOSED:
        return Reject.INSTRUMENT_CLOSED
    return 0


class ReferenceMatcher:
    """The matching rules of docs/matching.md in plain Python (same API as MatchingEngine).

    It is the pure matcher, like ``MatchingEngine(risk=False)``: every account
    below max_accounts trades, nothing is reserved, balance commands are
    rejected with ACCOUNTS_DISABLED. Commands return lists of `Event`; `process` takes a COMMAND_DTYPE array and
    returns an EVENT_DTYPE array. `max_orders` bounds the number of resting
    orders: a GTC or post-only order arriving when the book is full is
    rejected (`BOOK_FULL`); None means unbounded.
    """

    def __init__(self, max_accounts: int = 1 << 20, max_orders: int | None = None):
        self.max_accounts = max_accounts
        self.max_orders = max_orders
        self.last_seq = 0
        self._instruments: list[InstrumentBook] = []
        self._orders: dict[int, Order] = {}
        self._next_order_id = 1
        self._handlers = {
            CommandKind.NEW_ORDER: self._new_order,
            CommandKind.CANCEL: self._cancel,
            CommandKind.AMEND: self._amend,
            CommandKind.MASS_CANCEL: self._mass_cancel,
            CommandKind.SET_STATE: self._set_state,
            CommandKind.SET_REFERENCE: self._set_reference,
            CommandKind.SET_BANDS: self._set_bands,
            # Balances exist only in the Cython core's risk mode; this is the risk-off matcher.
            CommandKind.CREDIT: self._accounts_disabled,
            CommandKind.DEBIT: self._accounts_disabled,
            CommandKind.SET_ASSET_PRICE: self._accounts_disabled,
            CommandKind.SKIP_DEPOSIT: self._accounts_disabled,
            CommandKind.SET_HAIRCUT: self._accounts_disabled,
            # Freezes need accounts too: engine/reference/freeze.py models them for a risk engine.
            CommandKind.FREEZE_ACCOUNT: self._accounts_disabled,
        }

    # -- setup --

    def add_instrument(self, spec: InstrumentSpec) -> int:
        """Add an instrument (state OPEN, no reference, no trade); return its id."""
        instrument_id = len(self._instruments)
        self._instruments.append(InstrumentBook(instrument_id, spec))
        return instrument_id

    # -- commands --

    def new_order(self, instrument, account, side, qty, price=0, order_type=OrderType.LIMIT,
                  tif=TimeInForce.GTC, stp=SelfTrade.CANCEL_NEWEST, client_order_id=0, seq=0, ts=0):
        """Submit a new order; return its events."""
        return self._run(Command(seq=seq, ts=ts, kind=CommandKind.NEW_ORDER, side=_u8(side),
                                 order_type=_u8(order_type), tif=_u8(tif), stp=_u8(stp), instrument=instrument,
                                 account=account, client_order_id=client_order_id, price=price, qty=qty))

    def cancel(self, account, order_id, client_order_id=0, seq=0, ts=0):
        """Cancel a resting order; return its events."""
        return self._run(Command(seq=seq, ts=ts, kind=CommandKind.CANCEL, account=account, order_id=order_id,
                                 client_order_id=client_order_id))

    def amend(self, account, order_id, qty=0, price=0, client_order_id=0, seq=0, ts=0):
        """Amend a resting order's open quantity and/or price (0 = keep); return its events."""
        return self._run(Command(seq=seq, ts=ts, kind=CommandKind.AMEND, account=account, order_id=order_id,
                                 client_order_id=client_order_id, price=price, qty=qty))

    def mass_cancel(self, account, instrument=-1, seq=0, ts=0):
        """Cancel every resting order of an account (in one instrument, or all for -1)."""
        return self._run(Command(seq=seq, ts=ts, kind=CommandKind.MASS_CANCEL, account=account,
                                 instrument=instrument))

    def set_state(self, instrument, state, seq=0, ts=0):
        """Set an instrument's trading state; return its events."""
        return self._run(Command(seq=seq, ts=ts, kind=CommandKind.SET_STATE, instrument=instrument,
                                 state=_u8(state)))

    def set_reference_price(self, instrument, price, seq=0, ts=0):
        """Set an instrument's reference price, cancelling orders outside the new static band."""
        return self._run(Command(seq=seq, ts=ts, kind=CommandKind.SET_REFERENCE, instrument=instrument,
                                 price=price))

    def set_bands(self, instrument, static_bps, dynamic_bps, seq=0, ts=0):
        """Set an instrument's band widths in bps, cancelling orders outside the new static band."""
        return self._run(Command(seq=seq, ts=ts, kind=CommandKind.SET_BANDS, instrument=instrument,
                                 price=static_bps, qty=dynamic_bps))

    def submit(self, command) -> list[Event]:
        """Process one COMMAND_DTYPE record (or a `Command`); return its events."""
        if not isinstance(command, Command):
            command = Command.from_record(command)
        return self._run(command)

    def process(self, commands: np.ndarray) -> np.ndarray:
        """Process a COMMAND_DTYPE array; return every event as an EVENT_DTYPE array."""
        if commands.dtype != COMMAND_DTYPE:
            raise TypeError(f"commands must have COMMAND_DTYPE, not {commands.dtype}")
        rows = []
        for values in commands.tolist():
            command = Command(*(values[i] for i in _RECORD_POSITIONS))
            rows.extend(event.astuple() for event in self._run(command))
        events = np.zeros(len(rows), dtype=EVENT_DTYPE)
        if rows:
            # astuple() lists the EVENT_FIELDS in order; padding stays zero.
            for name, column in zip(EVENT_FIELDS, zip(*rows)):
                events[name] = column
        return events

    # -- queries --

    def best_bid(self, instrument):
        """(price, qty) of the best bid level, or None."""
        return self._best(self._instrument(instrument).bids)

    def best_ask(self, instrument):
        """(price, qty) of the best ask level, or None."""
        return self._best(self._instrument(instrument).asks)

    def depth(self, instrument, levels):
        """(bids, asks): up to `levels` levels per side as (price, qty, count), best first."""
        inst = self._instrument(instrument)
        return self._depth(inst.bids, levels), self._depth(inst.asks, levels)

    def orders_at(self, instrument, side, price):
        """The orders resting at one price level, first in first out."""
        inst = self._instrument(instrument)
        if side not in (_BUY, _SELL):
            raise ValueError(f"invalid side {side}")
        return [order.info() for order in inst.side(side).levels.get(price, ())]

    def open_orders(self, account, after_order_id=0, limit=-1):
        """The resting orders of an account with an id above ``after_order_id``, by
        order id, at most ``limit`` of them (all for a negative limit)."""
        if not self._known_account(account):
            raise ValueError(f"unknown account {account}")
        orders = [order.info() for order in sorted(self._orders.values(), key=lambda o: o.order_id)
                  if order.account == account and order.order_id > after_order_id]
        return orders if limit < 0 else orders[:limit]

    @property
    def next_order_id(self) -> int:
        """The id the next order will get: every id below it was issued."""
        return self._next_order_id

    def order(self, order_id):
        """A resting order's OrderInfo, or None."""
        order = self._orders.get(order_id)
        return None if order is None else order.info()

    def instrument_state(self, instrument):
        """(state, reference_price, last_trade_price); 0 means unset."""
        inst = self._instrument(instrument)
        return inst.state, inst.reference, inst.last_trade

    def band_widths(self, instrument):
        """(static band bps, dynamic band bps) now: the spec's, or what SET_BANDS set."""
        spec = self._instrument(instrument).spec
        return spec.static_band_bps, spec.dynamic_band_bps

    # -- replay / recovery --

    def seed_order(self, instrument, account, side, price, qty, at_front=False, client_order_id=0):
        """Place a resting GTC order without matching; return its new order id.

        The order must not cross the book and must lie inside the static band.
        Its quantity must be positive and on lot but may be below min_qty (a
        partly filled order). With `at_front` it is queued before the older
        orders at its price. Raises ValueError for an invalid order.
        """
        inst = self._instrument(instrument)
        if not 0 <= account < self.max_accounts:
            raise ValueError(f"unknown account {account}")
        if side not in (_BUY, _SELL):
            raise ValueError(f"invalid side {side}")
        if _price_reject(inst.spec, price):
            raise ValueError(f"invalid price {price}")
        if qty <= 0 or qty % inst.spec.lot_size or qty > inst.spec.max_qty:
            raise ValueError(f"invalid quantity {qty}")
        if not in_band(inst.static_band(), price):
            raise ValueError(f"price {price} outside the static band")
        best = inst.opposite(side).best_price()
        if best is not None and _reaches(side, price, best):
            raise ValueError(f"order at {price} would cross the book (best opposite {best})")
        if self._book_full():
            raise ValueError("order capacity exhausted")
        order = Order(self._take_order_id(), client_order_id, account, instrument, side, price, qty, _GTC,
                       _CANCEL_NEWEST)
        self._rest(inst, order, at_front)
        return order.order_id

    # -- state --

    def state_hash(self) -> str:
        """Hex SHA-256 of a canonical serialisation of the full state."""
        digest = hashlib.sha256()
        digest.update(f"next_order_id={self._next_order_id};last_seq={self.last_seq};".encode())
        for inst in self._instruments:
            digest.update(f"instrument={inst.instrument_id},{inst.state},{inst.reference},{inst.last_trade};".encode())
            if inst.spec != inst.listed_spec:
                digest.update(f"bands={inst.spec.static_band_bps},{inst.spec.dynamic_band_bps};".encode())
            for book in (inst.bids, inst.asks):
                for order in book.orders_best_first():
                    digest.update(
                        f"order={order.order_id},{order.client_order_id},{order.account},{order.side},"
                        f"{order.price},{order.leaves},{order.tif},{order.stp};".encode()
                    )
        return digest.hexdigest()

    def check_integrity(self) -> None:
        """Raise AssertionError naming the first broken invariant."""
        seen: set[int] = set()
        for inst in self._instruments:
            for book in (inst.bids, inst.asks):
                assert book.prices == sorted(set(book.prices)), f"{inst.instrument_id}: level prices not sorted/unique"
                assert set(book.prices) == set(book.levels), f"{inst.instrument_id}: price list != level dict"
                for price, level in book.levels.items():
                    assert level, f"{inst.instrument_id}: empty level at {price}"
                    for order in level:
                        assert order.order_id not in seen, f"order {order.order_id} queued twice"
                        seen.add(order.order_id)
                        assert self._orders.get(order.order_id) is order, f"order {order.order_id} not indexed"
                        assert order.price == price, f"order {order.order_id} in the wrong level"
                        assert order.side == book.side, f"order {order.order_id} on the wrong side"
                        assert order.instrument == inst.instrument_id, f"order {order.order_id} in the wrong book"
                        assert order.leaves > 0, f"order {order.order_id} rests with leaves {order.leaves}"
                        assert order.tif in (_GTC, _POST_ONLY), f"order {order.order_id} rests with tif {order.tif}"
                        assert 0 < order.order_id < self._next_order_id, f"order id {order.order_id} not issued"
            static = inst.static_band()
            for book in (inst.bids, inst.asks):
                assert all(in_band(static, price) for price in book.prices), (
                    f"{inst.instrument_id}: order resting outside the static band {static}")
            bid, ask = inst.bids.best_price(), inst.asks.best_price()
            assert bid is None or ask is None or bid < ask, f"{inst.instrument_id}: book crossed ({bid} >= {ask})"
        assert seen == set(self._orders), "order index holds orders that are not in any book"

    # -- internals: dispatch --

    def _run(self, command: Command) -> list[Event]:
        seq = command.seq or self.last_seq + 1
        self.last_seq = seq
        # Plain ints (not enum members) from here on; stamp the effective seq.
        command = Command(seq, *map(int, command[1:]))
        handler = self._handlers.get(command.kind)
        events: list[Event] = []
        if handler is None:
            events.append(self._reject(command, Reject.UNKNOWN_COMMAND))
        else:
            handler(command, events)
        return events

    def _instrument(self, instrument: int) -> InstrumentBook:
        if not 0 <= instrument < len(self._instruments):
            raise ValueError(f"unknown instrument {instrument}")
        return self._instruments[instrument]

    def _known_instrument(self, instrument: int) -> bool:
        return 0 <= instrument < len(self._instruments)

    def _known_account(self, account: int) -> bool:
        return 0 <= account < self.max_accounts

    def _book_full(self) -> bool:
        return self.max_orders is not None and len(self._orders) >= self.max_orders

    def _take_order_id(self) -> int:
        order_id = self._next_order_id
        self._next_order_id += 1
        return order_id

    # -- internals: commands --

    def _new_order(self, cmd: Command, events: list[Event]) -> None:
        reject, inst, band = self._validate_new_order(cmd)
        if reject:
            events.append(self._reject(cmd, reject))
            return
        # A market order is a limit order at the edge of the execution band.
        price = cmd.price if cmd.order_type == _LIMIT else (band[1] if cmd.side == _BUY else band[0])
        order = Order(self._take_order_id(), cmd.client_order_id, cmd.account, cmd.instrument, cmd.side, price,
                       cmd.qty, cmd.tif, cmd.stp)
        events.append(Event(seq=cmd.seq, ts=cmd.ts, kind=EventKind.ACCEPTED, side=order.side, aux=order.tif,
                            instrument=order.instrument, order_id=order.order_id,
                            client_order_id=order.client_order_id, account=order.account, price=price,
                            qty=order.leaves, leaves=order.leaves))
        market = cmd.order_type == _MARKET
        if order.tif == _FOK and self._fillable(inst, order, band, market) < order.leaves:
            events.append(self._cancelled(cmd, order, CancelReason.FOK_KILLED))
            return
        self._execute(cmd, inst, order, band, market, events)

    def _validate_new_order(self, cmd: Command):
        """(reject code or 0, instrument, execution band) for a NEW_ORDER."""
        if not self._known_instrument(cmd.instrument):
            return Reject.UNKNOWN_INSTRUMENT, None, None
        inst = self._instruments[cmd.instrument]
        spec = inst.spec
        if not self._known_account(cmd.account):
            return Reject.UNKNOWN_ACCOUNT, inst, None
        if cmd.side not in (_BUY, _SELL):
            return Reject.INVALID_SIDE, inst, None
        if cmd.order_type not in (_LIMIT, _MARKET):
            return Reject.INVALID_ORDER_TYPE, inst, None
        valid_tifs = (_GTC, _IOC, _FOK, _POST_ONLY) if cmd.order_type == _LIMIT else (_IOC, _FOK)
        if cmd.tif not in valid_tifs:
            return Reject.INVALID_TIF, inst, None
        if cmd.stp not in (_STP_NONE, _CANCEL_NEWEST, _CANCEL_OLDEST, _CANCEL_BOTH):
            return Reject.INVALID_STP, inst, None
        reject = _qty_reject(spec, cmd.qty)
        if not reject and cmd.order_type == _LIMIT:
            reject = _price_reject(spec, cmd.price)
        reject = reject or _state_reject(inst.state)
        if reject:
            return reject, inst, None
        band = inst.execution_band()
        if cmd.order_type == _LIMIT and not in_band(inst.static_band(), cmd.price):
            return Reject.PRICE_OUTSIDE_BAND, inst, band
        if cmd.order_type == _MARKET and band is None:
            return Reject.NO_REFERENCE_PRICE, inst, band
        if cmd.tif == _POST_ONLY and self._would_take(inst, cmd.side, cmd.price):
            return Reject.POST_ONLY_WOULD_TAKE, inst, band
        # Only an order that may rest needs room in the book.
        if cmd.tif in (_GTC, _POST_ONLY) and self._book_full():
            return Reject.BOOK_FULL, inst, band
        return 0, inst, band

    def _cancel(self, cmd: Command, events: list[Event]) -> None:
        order, reject = self._owned_order(cmd)
        if reject:
            events.append(self._reject(cmd, reject))
            return
        inst = self._instruments[order.instrument]
        self._unrest(inst, order)
        events.append(self._cancelled(cmd, order, CancelReason.USER))

    def _amend(self, cmd: Command, events: list[Event]) -> None:
        order, reject = self._owned_order(cmd)
        inst = None if reject else self._instruments[order.instrument]
        reject = reject or self._amend_reject(cmd, inst, order)
        if reject:
            events.append(self._reject(cmd, reject))
            return
        band = inst.execution_band()
        new_price = cmd.price or order.price
        new_qty = cmd.qty or order.leaves
        price_changed = new_price != order.price
        priority_lost = price_changed or new_qty > order.leaves
        if cmd.client_order_id:
            order.client_order_id = cmd.client_order_id
        if priority_lost:
            self._unrest(inst, order)
        order.price = new_price
        order.leaves = new_qty
        events.append(Event(seq=cmd.seq, ts=cmd.ts, kind=EventKind.AMENDED, side=order.side,
                            aux=int(priority_lost), instrument=order.instrument, order_id=order.order_id,
                            client_order_id=order.client_order_id, account=order.account, price=order.price,
                            qty=order.leaves, leaves=order.leaves))
        if price_changed:
            # Cancel/replace: the order meets the book again as an incoming limit order.
            self._execute(cmd, inst, order, band, False, events)
        elif priority_lost:
            self._rest(inst, order)

    def _amend_reject(self, cmd: Command, inst: InstrumentBook, order: Order) -> int:
        """Trading state, new quantity, new price and post-only checks of an AMEND: reject code or 0.

        Quantity before price, as for NEW_ORDER.
        """
        reject = _state_reject(inst.state)
        if not reject and cmd.qty:
            reject = _qty_reject(inst.spec, cmd.qty)
        if not reject and cmd.price:
            reject = _price_reject(inst.spec, cmd.price)
            if not reject and not in_band(inst.static_band(), cmd.price):
                reject = Reject.PRICE_OUTSIDE_BAND
        if not reject and cmd.price and order.tif == _POST_ONLY and self._would_take(inst, order.side, cmd.price):
            reject = Reject.POST_ONLY_WOULD_TAKE
        return reject

    def _owned_order(self, cmd: Command):
        """(order, reject code or 0) for a CANCEL or AMEND."""
        if not self._known_account(cmd.account):
            return None, Reject.UNKNOWN_ACCOUNT
        order = self._orders.get(cmd.order_id)
        if order is None:
            return None, Reject.UNKNOWN_ORDER
        if order.account != cmd.account:
            return None, Reject.NOT_ORDER_OWNER
        return order, 0

    def _mass_cancel(self, cmd: Command, events: list[Event]) -> None:
        if not self._known_account(cmd.account):
            events.append(self._reject(cmd, Reject.UNKNOWN_ACCOUNT))
            return
        if cmd.instrument != -1 and not self._known_instrument(cmd.instrument):
            events.append(self._reject(cmd, Reject.UNKNOWN_INSTRUMENT))
            return
        doomed = sorted((order for order in self._orders.values()
                         if order.account == cmd.account and cmd.instrument in (-1, order.instrument)),
                        key=lambda o: o.order_id)
        for order in doomed:
            self._unrest(self._instruments[order.instrument], order)
            events.append(self._cancelled(cmd, order, CancelReason.MASS))
        events.append(Event(seq=cmd.seq, ts=cmd.ts, kind=EventKind.MASS_CANCELLED, instrument=cmd.instrument,
                            account=cmd.account, qty=len(doomed)))

    def _set_state(self, cmd: Command, events: list[Event]) -> None:
        if not self._known_instrument(cmd.instrument):
            events.append(self._reject(cmd, Reject.UNKNOWN_INSTRUMENT))
            return
        if cmd.state not in (_OPEN, _HALTED, _CLOSED):
            events.append(self._reject(cmd, Reject.INVALID_STATE))
            return
        self._instruments[cmd.instrument].state = cmd.state
        events.append(Event(seq=cmd.seq, ts=cmd.ts, kind=EventKind.STATE_CHANGED, instrument=cmd.instrument,
                            aux=cmd.state))

    def _set_reference(self, cmd: Command, events: list[Event]) -> None:
        if not self._known_instrument(cmd.instrument):
            events.append(self._reject(cmd, Reject.UNKNOWN_INSTRUMENT))
            return
        inst = self._instruments[cmd.instrument]
        reject = _price_reject(inst.spec, cmd.price)
        if reject:
            events.append(self._reject(cmd, reject))
            return
        inst.reference = cmd.price
        self._cancel_outside_static(cmd, inst, events)
        events.append(Event(seq=cmd.seq, ts=cmd.ts, kind=EventKind.REFERENCE_SET, instrument=cmd.instrument,
                            price=cmd.price))

    def _set_bands(self, cmd: Command, events: list[Event]) -> None:
        # Static width in `price`, dynamic in `qty` (COMMAND_DTYPE has no bps field).
        if not self._known_instrument(cmd.instrument):
            events.append(self._reject(cmd, Reject.UNKNOWN_INSTRUMENT))
            return
        if not (0 <= cmd.price < BPS and 0 <= cmd.qty < BPS):
            events.append(self._reject(cmd, Reject.INVALID_BAND))
            return
        inst = self._instruments[cmd.instrument]
        inst.spec = msgspec.structs.replace(inst.spec, static_band_bps=cmd.price, dynamic_band_bps=cmd.qty)
        self._cancel_outside_static(cmd, inst, events)
        events.append(Event(seq=cmd.seq, ts=cmd.ts, kind=EventKind.BANDS_SET, instrument=cmd.instrument,
                            price=cmd.price, qty=cmd.qty))

    def _cancel_outside_static(self, cmd: Command, inst: InstrumentBook, events: list[Event]) -> None:
        """After the static band moved: cancel (BAND) the resting orders it leaves
        outside, and forget a last trade outside it."""
        band = inst.static_band()
        if band is None:
            return
        # Worst prices first (bids from the lowest, asks from the highest), FIFO within a level.
        for book in (inst.bids, inst.asks):
            for price in reversed(book.prices_best_first()):
                if in_band(band, price):
                    continue
                for order in list(book.levels[price]):
                    self._unrest(inst, order)
                    events.append(self._cancelled(cmd, order, CancelReason.BAND))
        if inst.last_trade and not in_band(band, inst.last_trade):
            inst.last_trade = 0  # stale: its dynamic band would not meet the new static band

    def _accounts_disabled(self, cmd: Command, events: list[Event]) -> None:
        events.append(self._reject(cmd, Reject.ACCOUNTS_DISABLED))

    # -- internals: matching --

    @staticmethod
    def _meet(taker: Order, maker: Order | None, band, market: bool) -> str:
        """What the walk does at the next resting order (None: that book side is empty).

        A market order's price is the band edge, so for it the band is the only
        limit: a walk it cannot continue stops because of the band.
        """
        if maker is None:
            return _STOP_LIMIT
        if not market and not _reaches(taker.side, taker.price, maker.price):
            return _STOP_LIMIT
        if not in_band(band, maker.price):
            return _STOP_BAND
        if maker.account == taker.account:
            if taker.stp == _CANCEL_NEWEST:
                return _STOP_SELF
            if taker.stp == _CANCEL_OLDEST:
                return _SKIP_CANCEL_MAKER
            if taker.stp == _CANCEL_BOTH:
                return _STOP_SELF_BOTH
        return _TRADE

    def _fillable(self, inst: InstrumentBook, taker: Order, band, market: bool) -> int:
        """The quantity a walk of the book would fill now, changing nothing (the FOK check)."""
        available = 0
        for maker in inst.opposite(taker.side).orders_best_first():
            if available >= taker.leaves:
                break
            action = self._meet(taker, maker, band, market)
            if action == _TRADE:
                available += maker.leaves
            elif action != _SKIP_CANCEL_MAKER:
                break
        return available

    def _execute(self, cmd: Command, inst: InstrumentBook, taker: Order, band, market: bool,
                 events: list[Event]) -> None:
        """Match an incoming order against the book, then rest or cancel its remainder."""
        book = inst.opposite(taker.side)
        stop = _STOP_LIMIT
        while taker.leaves > 0:
            maker = book.best_order()
            action = self._meet(taker, maker, band, market)
            if action == _TRADE:
                self._fill(cmd, inst, taker, maker, events)
                continue
            if action in (_SKIP_CANCEL_MAKER, _STOP_SELF_BOTH):
                self._unrest(inst, maker)
                events.append(self._cancelled(cmd, maker, CancelReason.SELF_TRADE))
                if action == _SKIP_CANCEL_MAKER:
                    continue
            stop = action
            break
        if taker.leaves == 0:
            return
        if stop in (_STOP_SELF, _STOP_SELF_BOTH):
            reason = CancelReason.SELF_TRADE
        elif stop == _STOP_BAND:
            # A limit order only stops at the band when its price reaches the
            # resting order, so resting it would cross the book.
            reason = CancelReason.BAND
        elif market or taker.tif in (_IOC, _FOK):
            reason = CancelReason.IOC_REMAINDER
        else:
            self._rest(inst, taker)
            return
        events.append(self._cancelled(cmd, taker, reason))

    def _fill(self, cmd: Command, inst: InstrumentBook, taker: Order, maker: Order, events: list[Event]) -> None:
        qty = min(taker.leaves, maker.leaves)
        taker.leaves -= qty
        maker.leaves -= qty
        inst.last_trade = maker.price
        events.append(Event(seq=cmd.seq, ts=cmd.ts, kind=EventKind.FILL, side=taker.side,
                            instrument=inst.instrument_id, order_id=taker.order_id,
                            client_order_id=taker.client_order_id, account=taker.account, price=maker.price,
                            qty=qty, leaves=taker.leaves, maker_order_id=maker.order_id,
                            maker_client_order_id=maker.client_order_id, maker_account=maker.account,
                            maker_leaves=maker.leaves))
        if maker.leaves == 0:
            self._unrest(inst, maker)

    @staticmethod
    def _would_take(inst: InstrumentBook, side: int, price: int) -> bool:
        """Whether a limit price reaches the best opposite price (the post-only check)."""
        best = inst.opposite(side).best_price()
        return best is not None and _reaches(side, price, best)

    def _rest(self, inst: InstrumentBook, order: Order, at_front: bool = False) -> None:
        inst.side(order.side).add(order, at_front)
        self._orders[order.order_id] = order

    def _unrest(self, inst: InstrumentBook, order: Order) -> None:
        inst.side(order.side).remove(order)
        del self._orders[order.order_id]

    # -- internals: events --

    @staticmethod
    def _reject(cmd: Command, reason: int) -> Event:
        """REJECTED echoing the command as sent; order_id only where it names something
        (the order of CANCEL and AMEND, the deposit of CREDIT and SKIP_DEPOSIT)."""
        order_id = cmd.order_id if cmd.kind in _ECHOES_ORDER_ID else 0
        return Event(seq=cmd.seq, ts=cmd.ts, kind=EventKind.REJECTED, reason=reason, side=cmd.side,
                     instrument=cmd.instrument, order_id=order_id, client_order_id=cmd.client_order_id,
                     account=cmd.account, price=cmd.price, qty=cmd.qty, asset=cmd.asset)

    @staticmethod
    def _cancelled(cmd: Command, order: Order, reason: int) -> Event:
        return Event(seq=cmd.seq, ts=cmd.ts, kind=EventKind.CANCELLED, reason=reason, side=order.side,
                     instrument=order.instrument, order_id=order.order_id, client_order_id=order.client_order_id,
                     account=order.account, price=order.price, qty=order.leaves)

    @staticmethod
    def _best(book: BookSide):
        price = book.best_price()
        if price is None:
            return None
        return price, sum(order.leaves for order in book.levels[price])

    @staticmethod
    def _depth(book: BookSide, levels: int):
        return [(price, sum(order.leaves for order in book.levels[price]), len(book.levels[price]))
                for price in book.prices_best_first()[:max(levels, 0)]]
