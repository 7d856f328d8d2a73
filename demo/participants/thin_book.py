"""The seed's thin-book scenario: a $500 market buy of AMZNX against an almost empty book
(a small ask near the reference; a seller's ask at 100x the reference, which the band
refuses), and what the band made of it: the would-be print against what happened."""

from __future__ import annotations

from dataclasses import dataclass

from demo.participants.base import Participant, on_tick
from engine.core.types import OrderType, Side, TimeInForce
from engine.schemas import Cancelled, Fill, Reject

BUDGET_USD = 500
PRICE_UNITS_PER_USD = 10_000     # the stock pairs' price_scale


@dataclass
class ThinBookResult:
    """What the scenario saw, in price units and quantity units."""

    reference: int
    band: tuple[int, int]
    far_ask_refused: str | None
    would_be_price: int
    fills: list[tuple[int, int]]
    cancelled_qty: int

    @property
    def inside_band(self) -> bool:
        """Every fill within the static band."""
        return all(self.band[0] <= price <= self.band[1] for price, _qty in self.fills)

    def lines(self) -> list[str]:
        """The scenario told in a few lines."""
        usd = PRICE_UNITS_PER_USD
        filled = sum(qty for _p, qty in self.fills)
        fills = ", ".join(f"{qty / 1000:.3f} at ${price / usd:,.2f}" for price, qty in self.fills) or "nothing"
        return [f"reference ${self.reference / usd:,.2f}, static band ${self.band[0] / usd:,.2f} .. "
                f"${self.band[1] / usd:,.2f}",
                f"a seller's ask at 100x: {self.far_ask_refused or 'ACCEPTED (a band failure)'}",
                f"without bands the ${BUDGET_USD} market buy would print at ${self.would_be_price / usd:,.2f}",
                f"instead it bought {filled / 1000:.3f} AMZNX ({fills}); {self.cancelled_qty / 1000:.3f} "
                f"left unfilled at the band collar and cancelled"]


class ThinBookBuyer(Participant):
    """A retail buyer: a market buy of BUDGET_USD worth of ``symbol`` at its reference price."""

    def __init__(self, *args, symbol: str) -> None:
        super().__init__(*args)
        self.symbol = symbol

    def step(self) -> None:
        instrument = self.instruments[self.symbol]
        reference, _state = self.reference(instrument)
        qty = round(BUDGET_USD * PRICE_UNITS_PER_USD * instrument.qty_scale / reference)
        self.place(instrument, Side.BUY, qty, order_type=OrderType.MARKET, tif=TimeInForce.IOC)


def run_thin_book(seller: Participant, buyer: ThinBookBuyer) -> ThinBookResult:
    """Run the scenario on the buyer's instrument (an empty book); the seller's orders are cancelled after."""
    instrument = seller.instruments[buyer.symbol]
    reference, _state = seller.reference(instrument)
    info = next(i for i in seller.client.instruments().instruments if i.instrument == instrument.instrument)
    width = reference * info.static_band_bps // 10_000
    band = (reference - width, reference + width)
    small = round(0.2 * instrument.qty_scale)
    seller.place(instrument, Side.SELL, small, on_tick(reference * 1.001, instrument))
    far = seller.place(instrument, Side.SELL, 10 * instrument.qty_scale, on_tick(reference * 100, instrument))
    buyer.step()
    fills, cancelled = [], 0
    for event in buyer.drain(1.0) + buyer.drain(0.5):
        if isinstance(event, Fill):
            fills.append((event.price, event.qty))
        elif isinstance(event, Cancelled):
            cancelled += event.qty
    seller.client.mass_cancel(instrument.instrument)
    seller.drain(0.2)
    return ThinBookResult(reference, band, far.text if isinstance(far, Reject) else None,
                          on_tick(reference * 100, instrument), fills, cancelled)
