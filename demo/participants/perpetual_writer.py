"""An account holding only TSLA.M writes a perpetual BTC call against it (the BTC market
maker buys it at the feed's mark), then keeps it open, receiving the funding its long pays
every feed step, and watches its margin."""

from __future__ import annotations

from demo.participants.base import Participant
from engine.core.types import Side
from engine.schemas import Margin, Reject


class PerpetualWriter(Participant):
    """Sells ``contracts`` of ``symbol`` to ``buyer`` at the reference; then records its margin."""

    def __init__(self, *args, symbol: str) -> None:
        super().__init__(*args)
        self.symbol = symbol
        self.margins: list[Margin] = []

    def open_position(self, buyer: Participant, contracts: float) -> str | None:
        """Write the call into the buyer's bid at the mark; None, or why it did not trade."""
        instrument = self.instruments[self.symbol]
        reference, _state = self.reference(instrument)
        qty = round(contracts * instrument.qty_scale)
        bid = buyer.place(instrument, Side.BUY, qty, reference)
        if isinstance(bid, Reject):
            return f"the buyer's bid: {bid.text}"
        sell = self.place(instrument, Side.SELL, qty, reference)
        buyer.drain(0.5)
        if isinstance(sell, Reject):
            buyer.client.mass_cancel(instrument.instrument)
            return f"the writer's sell: {sell.text}"
        self.drain(0.5)
        return None

    def step(self) -> None:
        margin = self.client.margin()
        if isinstance(margin, Margin):
            self.margins.append(margin)
