"""A market maker: every round, on each of its open instruments, replaces its quotes with
``levels`` bids and asks, the n-th ``n x spread_bps`` away from the current reference price."""

from __future__ import annotations

from demo.participants.base import Participant, on_tick
from engine.core.types import Side, TimeInForce, TradingState


class MarketMaker(Participant):
    """Two-sided quotes of ``size`` tokens a level on ``symbols`` around the reference."""

    def __init__(self, *args, symbols: list[str], size: float, spread_bps: int, levels: int = 3) -> None:
        super().__init__(*args)
        self.symbols = symbols
        self.size = size
        self.spread_bps = spread_bps
        self.levels = levels

    def step(self) -> None:
        for symbol in self.symbols:
            instrument = self.instruments[symbol]
            reference, state = self.reference(instrument)
            if state != TradingState.OPEN or reference <= 0:
                continue
            self.client.mass_cancel(instrument.instrument)
            qty = max(instrument.min_qty, round(self.size * instrument.qty_scale))
            for level in range(1, self.levels + 1):
                offset = reference * level * self.spread_bps / 10_000
                self.place(instrument, Side.BUY, qty, on_tick(reference - offset, instrument),
                           tif=TimeInForce.POST_ONLY)
                self.place(instrument, Side.SELL, qty, on_tick(reference + offset, instrument),
                           tif=TimeInForce.POST_ONLY)
