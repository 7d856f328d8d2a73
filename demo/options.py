"""Demo part 2: tokenized stocks as margin for options, through to liquidation.

A TSLA.M holder pledges its tokens (30% haircut) and sells BTC calls against
them. Marks and margins come from the option-mark feed (Black-Scholes,
feeds/options.py) at a fixed valuation time, so the output is reproducible.
Then TSLA.M falls and BTC rallies: the account drops under its maintenance
margin, shows up in the margin-call query, and the operator liquidates it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from engine.assets import USD_PRICE_SCALE
from engine.core.matcher import MatchingEngine
from engine.core.types import CANCEL_TEXT, REJECT_TEXT, EventKind, Side, TimeInForce
from engine.defaults import DEFAULT_ASSETS, DEFAULT_INSTRUMENTS, DEFAULT_OPTIONS
from engine.instruments import InstrumentSpec
from feeds.options import instrument_option_risk

VALUATION_TIME = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)
BTC_VOL, TSLA_VOL, RATE = 0.55, 0.60, 0.04
MM, HOLDER = 1, 4
NAMES = {MM: "market-maker", HOLDER: "tsla-holder"}


def usd(e8: int) -> str:
    return f"${Decimal(e8) / USD_PRICE_SCALE:,.2f}"


class OptionsDemo:
    """One risk engine with the default assets, stock pairs and option series."""

    def __init__(self) -> None:
        self.engine = MatchingEngine(risk=True, fee_account=0)
        for asset in DEFAULT_ASSETS:
            self.engine.add_asset(asset)
        self.asset = {a.symbol: i for i, a in enumerate(DEFAULT_ASSETS)}
        self.specs: dict[str, tuple[int, InstrumentSpec]] = {}
        for spec in DEFAULT_INSTRUMENTS + DEFAULT_OPTIONS:
            self.specs[spec.symbol] = (self.engine.add_instrument(spec), spec)
        for account in NAMES:
            self.engine.open_account(account)
        self.call = DEFAULT_OPTIONS[0].symbol

    def spec_of(self, iid: int) -> InstrumentSpec:
        return self.engine.instruments[iid]

    def show(self, events: list) -> None:
        for ev in events:
            who = NAMES.get(ev.account, str(ev.account))
            if ev.kind in (EventKind.ACCEPTED, EventKind.FILL, EventKind.CANCELLED):
                spec = self.spec_of(ev.instrument)
                qty, price = spec.qty_from_units(ev.qty).normalize(), spec.price_from_units(ev.price)
            if ev.kind == EventKind.ACCEPTED:
                print(f"    accepted  #{ev.order_id} {who} {Side(ev.side).name} {qty:f} {spec.symbol} @ {price:,.2f}")
            elif ev.kind == EventKind.FILL:
                print(f"    FILL      {qty:f} {spec.symbol} @ {price:,.2f}  taker {who}, "
                      f"maker {NAMES.get(ev.maker_account, ev.maker_account)}")
            elif ev.kind == EventKind.CANCELLED:
                print(f"    cancelled #{ev.order_id} {qty:f} {spec.symbol}: {CANCEL_TEXT[ev.reason]}")
            elif ev.kind == EventKind.REJECTED:
                print(f"    REJECTED  {who}: {REJECT_TEXT[ev.reason]}")
            elif ev.kind == EventKind.LIQUIDATED:
                print(f"    LIQUIDATING {who}: collateral {usd(ev.leaves)} < maintenance {usd(ev.price)}")
        self.engine.check_integrity()

    def order(self, symbol: str, account: int, side: Side, qty: str, price: str,
              tif: TimeInForce = TimeInForce.GTC) -> None:
        iid, spec = self.specs[symbol]
        self.show(self.engine.new_order(iid, account, side, spec.qty_to_units(qty), spec.price_to_units(price),
                                        tif=tif))

    def prices(self, tsla: str, btc: str) -> None:
        """The reference-price and option-mark feeds: asset prices, the stock
        pair's band centre, each option's mark (band centre) and margins."""
        eng = self.engine
        eng.set_asset_price(self.asset["USDC"], USD_PRICE_SCALE)
        eng.set_asset_price(self.asset["TSLA.M"], int(Decimal(tsla) * USD_PRICE_SCALE))
        eng.set_asset_price(self.asset["WBTC"], int(Decimal(btc) * USD_PRICE_SCALE))
        iid, spec = self.specs["TSLA.M/USDC"]
        eng.set_reference_price(iid, spec.price_to_units(tsla))
        spots = {"WBTC": (float(btc), BTC_VOL), "TSLA.M": (float(tsla), TSLA_VOL)}
        for option in DEFAULT_OPTIONS:
            iid, spec = self.specs[option.symbol]
            spot, vol = spots[option.base]
            risk = instrument_option_risk(spec, spot, vol, RATE, VALUATION_TIME)
            eng.set_reference_price(iid, int(risk.mark_price))
            eng.set_option_risk(iid, int(risk.initial_per_qty), int(risk.maintenance_per_qty))
            print(f"    {option.symbol}: mark {spec.price_from_units(int(risk.mark_price)):,.2f}, short margin "
                  f"per contract {usd(int(risk.initial_per_qty) * spec.qty_scale)} initial / "
                  f"{usd(int(risk.maintenance_per_qty) * spec.qty_scale)} maintenance")

    def mark(self, symbol: str) -> Decimal:
        """An option's current mark (its reference price), in quote per contract."""
        iid, spec = self.specs[symbol]
        return spec.price_from_units(self.engine.instrument_state(iid)[1])

    def margin(self, account: int) -> None:
        m = self.engine.margin(account)
        held = ", ".join(f"{self.spec_of(p.instrument).qty_from_units(p.position).normalize():f} "
                         f"{self.spec_of(p.instrument).symbol}" for p in self.engine.positions(account))
        print(f"    {NAMES[account]}: collateral {usd(m.collateral)} (free {usd(m.free_collateral)}), "
              f"initial {usd(m.initial)}, maintenance {usd(m.maintenance)}; positions: {held or 'none'}")

    def run(self) -> None:
        eng = self.engine
        step = lambda text: print(f"\n== {text}")
        usdc, tsla = self.asset["USDC"], self.asset["TSLA.M"]

        step(f"Feeds at {VALUATION_TIME:%Y-%m-%d %H:%M} UTC: TSLA.M $250, BTC $90,000 (Black-Scholes marks)")
        self.prices("250", "90000")

        step("Deposits: the holder has 200 TSLA.M and no dollars; the market maker has USDC and TSLA.M")
        eng.credit(HOLDER, tsla, 200 * 10**6)
        eng.credit(MM, usdc, 1_000_000 * 10**6)
        eng.credit(MM, tsla, 1_000 * 10**6)
        self.margin(HOLDER)

        mark = self.mark(self.call)
        step("The market maker bids for BTC calls; the holder sells 2 at the mark, backed by TSLA.M")
        self.order(self.call, MM, Side.BUY, "4", f"{mark}")
        self.order(self.call, HOLDER, Side.SELL, "2", f"{mark}")
        self.margin(HOLDER)

        step("Two more calls would need more margin than the tokens carry; so would a withdrawal")
        self.order(self.call, HOLDER, Side.SELL, "2", f"{mark}")
        self.show(eng.debit(HOLDER, tsla, 100 * 10**6))

        step("TSLA.M falls to $150 and BTC rallies to $98,000: the feeds re-mark")
        self.prices("150", "98000")
        self.margin(HOLDER)
        calls = eng.under_maintenance()
        print(f"    margin calls: {[NAMES.get(a, a) for a, _ in calls]}")

        step("Liquidity: the market maker bids for TSLA.M and offers BTC calls inside the bands")
        self.order("TSLA.M/USDC", MM, Side.BUY, "100", "149.00")
        new_mark = self.mark(self.call)
        self.order(self.call, MM, Side.SELL, "2", f"{new_mark * Decimal('1.03'):.2f}")

        step("The operator liquidates: TSLA.M sold for dollars, the short calls bought back")
        self.show(eng.liquidate(HOLDER))
        self.margin(HOLDER)
        print(f"    margin calls: {[NAMES.get(a, a) for a, _ in eng.under_maintenance()]}")
        step("A liquidation of an account that is not under its maintenance margin is refused")
        self.show(eng.liquidate(MM))
        eng.check_integrity()
        print(f"\nstate hash {eng.state_hash()}")
