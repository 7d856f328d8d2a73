"""Demo part 1, the matching core on the embedded defaults.

A thin AMZNX book, the price bands that stop a market order from printing far
from the real price, self-trade prevention, amend, cancel, halt and mass cancel.
"""

from __future__ import annotations

from engine.core.matcher import MatchingEngine
from engine.core.types import (
    REJECT_TEXT,
    CANCEL_TEXT,
    EventKind,
    OrderType,
    Side,
    TimeInForce,
    TradingState,
)
from engine.defaults import DEFAULT_INSTRUMENTS
from engine.instruments import InstrumentSpec

MM, RETAIL, FUND = 1, 2, 3
ACCOUNT_NAMES = {MM: "market-maker", RETAIL: "retail", FUND: "fund"}


class MatchingDemo:
    """Drives one engine and prints what happens in venue terms."""

    def __init__(self) -> None:
        self.engine = MatchingEngine()
        self.specs: dict[str, tuple[int, InstrumentSpec]] = {}
        for spec in DEFAULT_INSTRUMENTS:
            self.specs[spec.symbol] = (self.engine.add_instrument(spec), spec)
        self.fills = 0

    def price(self, spec: InstrumentSpec, units: int) -> str:
        return f"{spec.price_from_units(units):,.2f}"

    def qty(self, spec: InstrumentSpec, units: int) -> str:
        return f"{spec.qty_from_units(units).normalize():f}"

    def show(self, symbol: str, events: list) -> None:
        iid, spec = self.specs[symbol]
        for ev in events:
            who = ACCOUNT_NAMES.get(ev.account, str(ev.account))
            if ev.kind == EventKind.ACCEPTED:
                print(f"    accepted  #{ev.order_id} {who} {Side(ev.side).name} "
                      f"{self.qty(spec, ev.qty)} @ {self.price(spec, ev.price)}")
            elif ev.kind == EventKind.FILL:
                self.fills += 1
                print(f"    FILL      {self.qty(spec, ev.qty)} @ {self.price(spec, ev.price)}  "
                      f"taker #{ev.order_id} ({who}) maker #{ev.maker_order_id} "
                      f"({ACCOUNT_NAMES.get(ev.maker_account, ev.maker_account)})")
            elif ev.kind == EventKind.CANCELLED:
                print(f"    cancelled #{ev.order_id} {self.qty(spec, ev.qty)}: {CANCEL_TEXT[ev.reason]}")
            elif ev.kind == EventKind.REJECTED:
                print(f"    REJECTED  {who}: {REJECT_TEXT[ev.reason]}")
            elif ev.kind == EventKind.AMENDED:
                kept = "lost" if ev.aux else "kept"
                print(f"    amended   #{ev.order_id} now {self.qty(spec, ev.qty)} @ "
                      f"{self.price(spec, ev.price)} (queue priority {kept})")
            elif ev.kind == EventKind.MASS_CANCELLED:
                print(f"    mass cancel done: {ev.qty} orders")
            elif ev.kind == EventKind.REFERENCE_SET:
                print(f"    reference price {self.price(spec, ev.price)}")
            elif ev.kind == EventKind.STATE_CHANGED:
                print(f"    trading state {TradingState(ev.aux).name}")

    def order(self, symbol: str, account: int, side: Side, qty: str, price: str | None = None,
              tif: TimeInForce = TimeInForce.GTC, **kw) -> list:
        iid, spec = self.specs[symbol]
        if price is None:
            events = self.engine.new_order(iid, account, side, spec.qty_to_units(qty),
                                           order_type=OrderType.MARKET, tif=TimeInForce.IOC, **kw)
        else:
            events = self.engine.new_order(iid, account, side, spec.qty_to_units(qty),
                                           spec.price_to_units(price), tif=tif, **kw)
        self.show(symbol, events)
        self.engine.check_integrity()
        return events

    def book(self, symbol: str) -> None:
        iid, spec = self.specs[symbol]
        bids, asks = self.engine.depth(iid, 5)
        state, ref, last = self.engine.instrument_state(iid)
        print(f"  {symbol} book (reference {self.price(spec, ref) if ref else '-'}, "
              f"last {self.price(spec, last) if last else '-'}):")
        for price, qty, count in reversed(asks):
            print(f"      ask {self.price(spec, price):>10} x {self.qty(spec, qty):>8} ({count})")
        for price, qty, count in bids:
            print(f"      bid {self.price(spec, price):>10} x {self.qty(spec, qty):>8} ({count})")

    def run(self) -> None:
        eng = self.engine
        amzn, spec = self.specs["AMZNX/USDC"]
        step = lambda text: print(f"\n== {text}")

        step("Reference price from the feed: real Amazon trades at $220.00")
        self.show("AMZNX/USDC", eng.set_reference_price(amzn, spec.price_to_units("220.00")))

        step("A thin book: the market maker quotes a few shares")
        for side, qty, px in [(Side.SELL, "2", "220.10"), (Side.SELL, "3", "220.50"),
                              (Side.SELL, "1", "225.00"), (Side.SELL, "5", "240.00"),
                              (Side.BUY, "2", "219.90"), (Side.BUY, "4", "219.00")]:
            self.order("AMZNX/USDC", MM, side, qty, px)
        step("An ask at 100x the real price is refused by the static band")
        self.order("AMZNX/USDC", MM, Side.SELL, "1", "22000.00")
        self.book("AMZNX/USDC")

        step("Retail market buy of 6 shares: collared, fills inside the band")
        self.order("AMZNX/USDC", RETAIL, Side.BUY, "6")
        step("Another market buy: the next ask (240.00) lies outside the 5% band around "
             "the last trade, so nothing prints there")
        self.order("AMZNX/USDC", RETAIL, Side.BUY, "2")
        self.book("AMZNX/USDC")

        step("Self-trade prevention: the market maker's buy meets its own ask")
        self.order("AMZNX/USDC", MM, Side.SELL, "1", "226.00")
        self.order("AMZNX/USDC", MM, Side.BUY, "1", "226.00")

        step("Amend: quantity down keeps priority, a new price loses it")
        bid = eng.depth(amzn, 1)[0][0][0]
        first = eng.orders_at(amzn, Side.BUY, bid)[0].order_id
        self.show("AMZNX/USDC", eng.amend(MM, first, qty=spec.qty_to_units("1.5")))
        self.show("AMZNX/USDC", eng.amend(MM, first, price=spec.price_to_units("219.50")))

        step("A fund sweeps the bids with an IOC sell; the rest is cancelled")
        self.order("AMZNX/USDC", FUND, Side.SELL, "10", "219.00", tif=TimeInForce.IOC)

        step("Halt: new orders are refused, cancels still work")
        self.show("AMZNX/USDC", eng.set_state(amzn, TradingState.HALTED))
        self.order("AMZNX/USDC", RETAIL, Side.BUY, "1", "220.00")
        self.show("AMZNX/USDC", eng.mass_cancel(MM, amzn))
        self.show("AMZNX/USDC", eng.set_state(amzn, TradingState.OPEN))
        self.book("AMZNX/USDC")
        eng.check_integrity()
        print(f"\n{self.fills} fills; state hash {eng.state_hash()}")

