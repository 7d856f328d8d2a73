"""Hypothesis: random command sequences through the reference matcher and the
Cython core side by side; every event must agree. Plus reference-only invariants.

Prices cluster a few ticks around MID so that orders meet, bands bite and
reference changes cancel orders; a share of every field is invalid on purpose.
"""

from __future__ import annotations

import msgspec
import pytest
from helpers import CYTHON_MISSING, command_array, cython_engine_class, events_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from engine.core.types import CommandKind, EventKind, OrderType, SelfTrade, Side, TimeInForce, TradingState
from engine.instruments import InstrumentSpec
from engine.reference import ReferenceMatcher
from engine.reference.bands import execution_band, static_band

MatchingEngine = cython_engine_class()
requires_cython = pytest.mark.skipif(MatchingEngine is None, reason=CYTHON_MISSING)

TICK = 100
LOT = 10
MID = 1_000_000
MAX_ACCOUNTS = 8
ACCOUNTS = (0, 1, 2)
# Narrow bands (around MID: static +-20 ticks, dynamic +-5 or +-8 ticks) so that they bite.
SPECS = (
    InstrumentSpec(symbol="P0", base="P0", quote="USDC", tick_size=TICK, lot_size=LOT, min_qty=20, max_qty=1_000,
                   max_price=2_000_000, static_band_bps=20, dynamic_band_bps=5),
    InstrumentSpec(symbol="P1", base="P1", quote="USDC", tick_size=TICK, lot_size=LOT, min_qty=10, max_qty=1_000,
                   max_price=2_000_000),
    InstrumentSpec(symbol="P2", base="P2", quote="USDC", tick_size=TICK, lot_size=LOT, min_qty=10, max_qty=1_000,
                   max_price=2_000_000, dynamic_band_bps=8),
)
INSTRUMENTS = tuple(range(len(SPECS)))
PROFILE = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def new_engine(cls, max_orders=1 << 20):
    """An engine of cls with the property-test instruments."""
    engine = cls(max_accounts=MAX_ACCOUNTS, max_orders=max_orders)
    for spec in SPECS:
        engine.add_instrument(spec)
    return engine


# -- strategies: mostly valid, sometimes not --
#
# A command is decoded from a few random bytes (one byte per field): hypothesis
# draws bytes an order of magnitude faster than nested strategies, and a zero
# byte, where shrinking heads, decodes to the first (simplest) common value.


class Field:
    """The values of one command field: common ones, and rare (mostly invalid)
    ones for rare_percent of the bytes."""

    def __init__(self, common, rare=(), rare_percent=5):
        self.common = tuple(common)
        self.rare = tuple(rare)
        self.cut = 256 * (100 - rare_percent) // 100 if rare else 256

    def decode(self, byte: int):
        """The value one random byte stands for."""
        if byte < self.cut:
            return self.common[byte % len(self.common)]
        return self.rare[byte % len(self.rare)]

    def strategy(self):
        """A hypothesis strategy over the same values."""
        return st.integers(0, 255).map(self.decode)


def repeated(*pairs):
    """(value, weight), ... as a tuple holding each value weight times (for Field.common)."""
    return tuple(value for value, weight in pairs for _ in range(weight))


def ticks(n):
    """MID, MID+1 tick, MID-1 tick, ... out to n ticks either side."""
    return [MID + (k + 1) // 2 * (1 if k % 2 else -1) * TICK for k in range(2 * n + 1)]


BAD_PRICES = (0, -TICK, MID + 1, MID + 50, 2_000_100, 2 * MID, MID // 2, MID + 2_100, MID - 2_100)
# Kind 0 stands for the unknown kinds (UNKNOWN_KIND).
KIND = Field(repeated((CommandKind.NEW_ORDER, 60), (CommandKind.CANCEL, 10), (CommandKind.AMEND, 12),
                      (CommandKind.MASS_CANCEL, 3), (CommandKind.SET_STATE, 4), (CommandKind.SET_REFERENCE, 8),
                      (CommandKind.SET_BANDS, 3), (0, 3)))
# Balance commands and freezes are rejected by a risk-off engine (ACCOUNTS_DISABLED).
UNKNOWN_KIND = Field((0, 200, 255, CommandKind.CREDIT, CommandKind.DEBIT, CommandKind.SET_ASSET_PRICE,
                      CommandKind.SET_HAIRCUT, CommandKind.FREEZE_ACCOUNT))
INSTRUMENT = Field(INSTRUMENTS, (-1, 3, 100))
ACCOUNT = Field(ACCOUNTS, (-1, MAX_ACCOUNTS, 1 << 40))
SIDE = Field((Side.BUY, Side.SELL), (0, 3, 255))
ORDER_TYPE = Field((OrderType.LIMIT,) * 7 + (OrderType.MARKET,), (0, 3))
LIMIT_TIF = Field((TimeInForce.GTC,) * 4 + (TimeInForce.IOC,) * 2 + (TimeInForce.FOK, TimeInForce.POST_ONLY),
                  (0, 5, 255))
MARKET_TIF = Field((TimeInForce.IOC, TimeInForce.FOK), (TimeInForce.GTC, TimeInForce.POST_ONLY, 0), 10)
STP = Field(tuple(SelfTrade), (4, 255))
PRICE = Field(ticks(8), BAD_PRICES, 8)
REFERENCE_PRICE = Field(ticks(30), BAD_PRICES)  # moves the static band (+-20 ticks) past resting orders
# Band widths around the specs' (20 and 5 or 8 bps), 0 (no band), and out of bounds.
BAND_BPS = Field((0, 5, 8, 10, 20, 40, 100), (-1, 10_000, 10**6))
QTY = Field([n * LOT for n in range(2, 7)], (0, -LOT, LOT, 5, LOT + 1, 1_010, 10**9))  # LOT < min_qty of P0
ORDER_ID = Field(range(1, 13), (0, -1, 10**6))
CLIENT_ORDER_ID = Field((0, 0, 1, 2, 3, 2**40))
STATE = Field((TradingState.OPEN,) * 4 + (TradingState.HALTED, TradingState.CLOSED), (0, 4), 10)
MASS_INSTRUMENT = Field((-1,) + INSTRUMENTS, (-2, 3))
ASSET = Field((0, 1, 2, -1))
COMMAND_BYTES = 16


def decode_command(raw: bytes) -> dict:
    """A command's fields from COMMAND_BYTES random bytes."""
    kind = KIND.decode(raw[0])
    order_type = ORDER_TYPE.decode(raw[4])
    values = {
        "instrument": INSTRUMENT.decode(raw[1]), "account": ACCOUNT.decode(raw[2]), "side": SIDE.decode(raw[3]),
        "order_type": order_type,
        "tif": (MARKET_TIF if order_type == OrderType.MARKET else LIMIT_TIF).decode(raw[5]),
        "stp": STP.decode(raw[6]), "price": PRICE.decode(raw[7]), "qty": QTY.decode(raw[8]),
        "order_id": ORDER_ID.decode(raw[9]), "client_order_id": CLIENT_ORDER_ID.decode(raw[10]),
        "state": STATE.decode(raw[11]), "asset": ASSET.decode(raw[11]),
    }
    used = {
        CommandKind.NEW_ORDER: ("instrument", "account", "side", "order_type", "tif", "stp", "price", "qty",
                                "client_order_id"),
        CommandKind.CANCEL: ("account", "order_id", "client_order_id"),
        CommandKind.AMEND: ("account", "order_id", "price", "qty", "client_order_id"),
        CommandKind.MASS_CANCEL: ("account", "instrument"),
        CommandKind.SET_STATE: ("instrument", "state"),
        CommandKind.SET_REFERENCE: ("instrument", "price"),
        CommandKind.SET_BANDS: ("instrument", "price", "qty"),
    }.get(kind, ("instrument", "account", "asset", "qty", "price"))
    # Unused fields are usually zero; sometimes they carry noise that must change nothing.
    fields = dict(values) if raw[12] >= 230 else {name: values[name] for name in used}
    fields["kind"] = kind or UNKNOWN_KIND.decode(raw[13])
    if kind == CommandKind.AMEND:
        # 0 keeps the price or the quantity.
        fields["price"] = fields["price"] if raw[13] & 1 else 0
        fields["qty"] = fields["qty"] if raw[13] & 2 else 0
    elif kind == CommandKind.MASS_CANCEL:
        fields["instrument"] = MASS_INSTRUMENT.decode(raw[13])
    elif kind == CommandKind.SET_REFERENCE:
        fields["instrument"] = INSTRUMENT.decode(raw[1])
        fields["price"] = REFERENCE_PRICE.decode(raw[13])
    elif kind == CommandKind.SET_BANDS:
        # Static width in price, dynamic width in qty.
        fields["price"] = BAND_BPS.decode(raw[13])
        fields["qty"] = BAND_BPS.decode(raw[7])
    if raw[14] >= 230:
        fields["seq"] = 1 + int.from_bytes(raw[13:16], "little")
    if raw[15] >= 128:
        fields["ts"] = int.from_bytes(raw[12:16], "little")
    return fields


commands = st.binary(min_size=COMMAND_BYTES, max_size=COMMAND_BYTES).map(decode_command)
command_lists = st.lists(commands, min_size=30, max_size=100)
# Resting-order capacity: mostly ample, sometimes small enough for BOOK_FULL.
capacities = st.sampled_from([1 << 20, 1 << 20, 1 << 20, 6])


# -- comparison --


def assert_same_state(ref, cy):
    """The observable state of both engines agrees (the hashes differ by design)."""
    assert cy.last_seq == ref.last_seq
    for instrument in INSTRUMENTS:
        assert cy.depth(instrument, 10) == ref.depth(instrument, 10), f"depth of instrument {instrument}"
        assert cy.instrument_state(instrument) == ref.instrument_state(instrument)
        assert cy.band_widths(instrument) == ref.band_widths(instrument)
        assert cy.best_bid(instrument) == ref.best_bid(instrument)
        assert cy.best_ask(instrument) == ref.best_ask(instrument)
    assert cy.next_order_id == ref.next_order_id
    for account in ACCOUNTS:
        orders = ref.open_orders(account)
        assert cy.open_orders(account) == orders, f"open orders of account {account}"
        # Pages: from every cursor (issued ids, resting or not), of every size.
        for after in range(0, ref.next_order_id + 1, 3):
            for limit in (0, 1, 2, 5):
                page = [o for o in orders if o.order_id > after][:limit]
                assert cy.open_orders(account, after, limit) == ref.open_orders(account, after, limit) == page


@requires_cython
@PROFILE
@given(command_lists, capacities)
def test_cython_matches_reference(cmds, max_orders):
    ref, cy = new_engine(ReferenceMatcher, max_orders), new_engine(MatchingEngine, max_orders)
    records = command_array(cmds)
    all_events = []
    for i, record in enumerate(records):
        expected = ref.submit(record)
        actual = cy.submit(record)
        assert actual == expected, f"command {i}: {cmds[i]}"
        ref.check_integrity()
        cy.check_integrity()
        all_events += expected
    assert_same_state(ref, cy)
    for cls, engine in ((MatchingEngine, cy), (ReferenceMatcher, ref)):
        batch = new_engine(cls, max_orders)
        assert events_of(batch.process(records)) == all_events, f"{cls.__name__}.process differs from submit"
        assert batch.state_hash() == engine.state_hash()
        batch.check_integrity()


class EnginesSideBySide(RuleBasedStateMachine):
    """The per-command keyword API of both engines, one command at a time."""

    placed = Bundle("placed")

    def __init__(self):
        super().__init__()
        self.ref = new_engine(ReferenceMatcher)
        self.cy = new_engine(MatchingEngine)

    def run(self, method, *args, **kwargs):
        """Call method on both engines; compare events and check both books."""
        expected = getattr(self.ref, method)(*args, **kwargs)
        actual = getattr(self.cy, method)(*args, **kwargs)
        assert actual == expected, f"{method}{args}{kwargs}"
        self.ref.check_integrity()
        self.cy.check_integrity()
        return expected

    @initialize(instrument=st.sampled_from([0, 2]), price=st.sampled_from(ticks(5)))
    def reference(self, instrument, price):
        self.run("set_reference_price", instrument, price)

    @rule(target=placed, instrument=INSTRUMENT.strategy(), account=ACCOUNT.strategy(), side=SIDE.strategy(),
          qty=QTY.strategy(), price=PRICE.strategy(), order_type=ORDER_TYPE.strategy(),
          tif=st.one_of(LIMIT_TIF.strategy(), MARKET_TIF.strategy()), stp=STP.strategy(),
          client_order_id=CLIENT_ORDER_ID.strategy())
    def new_order(self, instrument, account, side, qty, price, order_type, tif, stp, client_order_id):
        events = self.run("new_order", instrument, account, side, qty, price=price, order_type=order_type, tif=tif,
                          stp=stp, client_order_id=client_order_id)
        return events[0].order_id

    @rule(order_id=placed | ORDER_ID.strategy(), account=ACCOUNT.strategy(),
          client_order_id=CLIENT_ORDER_ID.strategy())
    def cancel(self, order_id, account, client_order_id):
        self.run("cancel", account, order_id, client_order_id=client_order_id)

    @rule(order_id=placed | ORDER_ID.strategy(), account=ACCOUNT.strategy(), qty=st.just(0) | QTY.strategy(),
          price=st.just(0) | PRICE.strategy(), client_order_id=CLIENT_ORDER_ID.strategy())
    def amend(self, order_id, account, qty, price, client_order_id):
        self.run("amend", account, order_id, qty=qty, price=price, client_order_id=client_order_id)

    @rule(account=ACCOUNT.strategy(), instrument=MASS_INSTRUMENT.strategy())
    def mass_cancel(self, account, instrument):
        self.run("mass_cancel", account, instrument)

    @rule(instrument=INSTRUMENT.strategy(), state=STATE.strategy())
    def set_state(self, instrument, state):
        self.run("set_state", instrument, state)

    @rule(instrument=INSTRUMENT.strategy(), price=REFERENCE_PRICE.strategy())
    def set_reference(self, instrument, price):
        self.run("set_reference_price", instrument, price)

    @rule(instrument=INSTRUMENT.strategy(), static_bps=BAND_BPS.strategy(), dynamic_bps=BAND_BPS.strategy())
    def set_bands(self, instrument, static_bps, dynamic_bps):
        self.run("set_bands", instrument, static_bps, dynamic_bps)

    @invariant()
    def same_state(self):
        assert_same_state(self.ref, self.cy)


TestEnginesSideBySide = requires_cython(EnginesSideBySide.TestCase)
TestEnginesSideBySide.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)


# -- reference-only invariants --


def execution_band_now(engine, instrument):
    """The execution band of an instrument from its public state, or None."""
    _, reference, last_trade = engine.instrument_state(instrument)
    return execution_band(spec_now(engine, instrument), reference, last_trade)


def spec_now(engine, instrument):
    """The instrument's spec with the band widths it has now (SET_BANDS)."""
    static_bps, dynamic_bps = engine.band_widths(instrument)
    return msgspec.structs.replace(SPECS[instrument], static_band_bps=static_bps, dynamic_band_bps=dynamic_bps)


class OrderLedger:
    """Open quantity of every order from the events alone: ACCEPTED opens it,
    FILL and CANCELLED take from it, AMENDED resets it. Totals: what was
    accepted (amends included) is filled, cancelled or still resting."""

    def __init__(self):
        self.open: dict[int, int] = {}
        self.limit: dict[int, tuple[int, int]] = {}
        self.accepted = self.filled = self.cancelled = 0

    def apply(self, event, bands):
        """Account for one event; bands are the execution bands at the command's start."""
        if event.kind == EventKind.ACCEPTED:
            assert event.order_id not in self.open and event.qty == event.leaves > 0
            self.open[event.order_id] = event.qty
            self.limit[event.order_id] = (event.side, event.price)
            self.accepted += event.qty
        elif event.kind == EventKind.FILL:
            assert event.qty > 0
            side, limit = self.limit[event.order_id]
            assert side == event.side
            assert event.price <= limit if side == Side.BUY else event.price >= limit, "fill beyond the limit"
            lo_hi = bands[event.instrument]
            assert lo_hi is None or lo_hi[0] <= event.price <= lo_hi[1], "fill outside the execution band"
            self.open[event.order_id] -= event.qty
            self.open[event.maker_order_id] -= event.qty
            self.filled += 2 * event.qty  # taker and maker
            assert self.open[event.order_id] == event.leaves >= 0
            assert self.open[event.maker_order_id] == event.maker_leaves >= 0
        elif event.kind == EventKind.CANCELLED:
            assert event.qty == self.open[event.order_id] > 0, "cancelled quantity is not the open quantity"
            self.open[event.order_id] = 0
            self.cancelled += event.qty
        elif event.kind == EventKind.AMENDED:
            assert self.open[event.order_id] > 0 and event.qty == event.leaves > 0
            self.accepted += event.qty - self.open[event.order_id]
            self.open[event.order_id] = event.qty
            self.limit[event.order_id] = (event.side, event.price)

    def check_resting(self, engine):
        """Accepted = filled + cancelled + resting: what is open rests, nothing else does."""
        for order_id, qty in self.open.items():
            info = engine.order(order_id)
            assert (info.leaves if info else 0) == qty, f"order {order_id}"
        resting = [o for account in range(MAX_ACCOUNTS) for o in engine.open_orders(account)]
        assert all(self.open.get(o.order_id) == o.leaves for o in resting)
        assert self.accepted == self.filled + self.cancelled + sum(o.leaves for o in resting)


@PROFILE
@given(command_lists)
def test_reference_invariants(cmds):
    engine = new_engine(ReferenceMatcher)
    ledger = OrderLedger()
    for record in command_array(cmds):
        bands = {instrument: execution_band_now(engine, instrument) for instrument in INSTRUMENTS}
        for event in engine.submit(record):
            ledger.apply(event, bands)
        engine.check_integrity()
        ledger.check_resting(engine)
        for instrument in INSTRUMENTS:
            bid, ask = engine.best_bid(instrument), engine.best_ask(instrument)
            assert bid is None or ask is None or bid[0] < ask[0], "book crossed"
            static = static_band(spec_now(engine, instrument), engine.instrument_state(instrument)[1])
            if static:
                bids, asks = engine.depth(instrument, 1000)
                assert all(static[0] <= price <= static[1] for price, _, _ in bids + asks), "rests outside band"


@PROFILE
@given(command_lists)
def test_reference_is_deterministic(cmds):
    records = command_array(cmds)
    first, second = new_engine(ReferenceMatcher), new_engine(ReferenceMatcher)
    assert events_of(first.process(records)) == events_of(second.process(records))
    assert first.state_hash() == second.state_hash()


@PROFILE
@given(command_lists, command_lists)
def test_reference_rejects_change_nothing(setup, probes):
    engine = new_engine(ReferenceMatcher)
    engine.process(command_array(setup))
    for fields in probes:
        # Re-using the last seq keeps last_seq, so a reject must leave the hash as it was.
        record = command_array([fields | {"seq": engine.last_seq}])[0]
        before = engine.state_hash()
        events = engine.submit(record)
        if len(events) == 1 and events[0].kind == EventKind.REJECTED:
            assert engine.state_hash() == before, events
        assert all(e.kind != EventKind.REJECTED for e in events[1:]), "a reject is always alone"
