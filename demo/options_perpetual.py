"""Demo part 2b: a perpetual (everlasting) BTC call margined with TSLA.M, paying
funding hour by hour.

A TSLA.M holder with no dollars sells perpetual BTC calls (funding period 3
days) to a market maker; its tokens, at a 30% haircut, are the margin. Each
simulated hour the option-mark feed re-marks the series with the everlasting
closed form (feeds/perpetual.py) and sends FUND with the mark and the payoff:
the long pays the short (mark - payoff) / T for the hour, in USDC, exactly
(docs/funding.md). The BTC path is fixed, so the output is reproducible.
"""

from __future__ import annotations

from decimal import Decimal

from engine.assets import USD_PRICE_SCALE
from engine.core.matcher import MatchingEngine
from engine.core.types import EventKind, Side
from engine.defaults import DEFAULT_ASSETS, perpetual_series, stock_pair
from engine.units import NS_PER_S
from feeds.perpetual import series_perpetual_risk

HOUR = 3_600 * NS_PER_S
BTC_VOL = 0.55
BTC_PATH = (90_000, 90_800, 91_500, 90_200, 89_400, 92_600, 94_000)   # BTC at each hour
MM, HOLDER = 1, 4
NAMES = {MM: "market-maker", HOLDER: "tsla-holder"}
CALL = perpetual_series("WBTC", "BTC", "100000", "C", funding_period_s=3 * 86_400)


def usd(e8: int) -> str:
    return f"${Decimal(e8) / USD_PRICE_SCALE:,.2f}"


class PerpetualDemo:
    """One risk engine: the default assets, TSLA.M/USDC and the perpetual call."""

    def __init__(self) -> None:
        self.engine = MatchingEngine(risk=True, fee_account=0)
        for asset in DEFAULT_ASSETS:
            self.engine.add_asset(asset)
        self.asset = {a.symbol: i for i, a in enumerate(DEFAULT_ASSETS)}
        self.engine.add_instrument(stock_pair("TSLA.M"))
        self.call = self.engine.add_instrument(CALL)
        for account in NAMES:
            self.engine.open_account(account)

    def remark(self, btc: int, hour: int) -> None:
        """The feed: asset prices, the call's mark and margins, and FUND."""
        eng = self.engine
        eng.set_asset_price(self.asset["USDC"], USD_PRICE_SCALE, ts=hour * HOUR)
        eng.set_asset_price(self.asset["TSLA.M"], 250 * USD_PRICE_SCALE, ts=hour * HOUR)
        eng.set_asset_price(self.asset["WBTC"], btc * USD_PRICE_SCALE, ts=hour * HOUR)
        risk = series_perpetual_risk(CALL, float(btc), BTC_VOL)
        eng.set_reference_price(self.call, int(risk.mark_price), ts=hour * HOUR)
        eng.set_option_risk(self.call, int(risk.initial_per_qty), int(risk.maintenance_per_qty), ts=hour * HOUR)
        events = eng.fund(self.call, int(risk.mark_price), int(risk.payoff_price), ts=hour * HOUR)
        assert events[0].kind == EventKind.FUNDED, events[0]
        paid = {e.account: e.qty for e in events if e.kind == EventKind.FUNDING_SETTLED}
        mark = CALL.price_from_units(int(risk.mark_price))
        payoff = CALL.price_from_units(int(risk.payoff_price))
        flows = ", ".join(f"{NAMES[a]} {'pays' if q > 0 else 'receives'} ${Decimal(abs(q)) / 10**6:,.6f}"
                          for a, q in paid.items())
        print(f"    hour {hour}: BTC ${btc:,}, mark {mark:,.2f}, payoff {payoff:,.2f}, margin per contract "
              f"{usd(int(risk.initial_per_qty) * CALL.qty_scale)}" + (f"; {flows}" if flows else ""))
        eng.check_integrity()

    def run(self) -> None:
        eng = self.engine
        usdc, tsla = self.asset["USDC"], self.asset["TSLA.M"]
        print(f"\n== {CALL.symbol}: no expiry, funding period 3 days; the feed marks it (everlasting closed form)")
        self.remark(BTC_PATH[0], 0)
        eng.credit(HOLDER, tsla, 200 * 10**6)
        eng.credit(MM, usdc, 1_000_000 * 10**6)
        start = {acct: eng.balances(acct)[usdc][0] for acct in NAMES}
        mark = eng.instrument_state(self.call)[1]
        print("\n== The holder (200 TSLA.M, no dollars) sells 2 perpetual calls to the market maker at the mark")
        eng.new_order(self.call, MM, Side.BUY, 2 * CALL.qty_scale, mark, ts=1)
        fill = [e for e in eng.new_order(self.call, HOLDER, Side.SELL, 2 * CALL.qty_scale, mark, ts=1)
                if e.kind == EventKind.FILL]
        print(f"    FILL 2 {CALL.symbol} @ {CALL.price_from_units(fill[0].price):,.2f}; holder margin: "
              f"initial {usd(eng.margin(HOLDER).initial)} against TSLA.M collateral "
              f"{usd(eng.margin(HOLDER).collateral)} (30% haircut)")
        print("\n== Each hour the feed re-marks the call and sends FUND: the long pays the short")
        for hour, btc in enumerate(BTC_PATH[1:], start=1):
            self.remark(btc, hour)
        premium = fill[0].qty * (fill[0].price // CALL.tick_size) * eng.instrument_units(self.call)[3]
        moved = {acct: eng.balances(acct)[usdc][0] - start[acct] for acct in NAMES}
        state = eng.funding_state(self.call)
        print(f"    after {len(BTC_PATH) - 1} hours: the holder received ${Decimal(moved[HOLDER] - premium) / 10**6:,.6f} "
              f"of funding on top of the ${Decimal(premium) / 10**6:,.2f} premium; the market maker paid "
              f"${Decimal(-moved[MM] - premium - fill[0].fee) / 10**6:,.6f}; "
              f"left in the funding pool by rounding: {state.pool} unit(s) of 1e-6 USDC")
        eng.check_integrity()
