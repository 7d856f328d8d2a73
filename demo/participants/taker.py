"""A taker: every round, an IOC order on one of its instruments, on a seeded random side,
priced through the market maker's quote so it crosses the spread."""

from __future__ import annotations

import random

from demo.participants.base import Participant, on_tick
from engine.core.types import Side, TimeInForce, TradingState


class Taker(Participant):
    """IOC orders of ``size`` tokens crossing the spread on ``symbols``."""

    def __init__(self, *args, symbols: list[str], size: float, cross_bps: int, seed: int) -> None:
        super().__init__(*args)
        self.symbols = symbols
        self.size = size
        self.cross_bps = cross_bps
        self.random = random.Random(seed)

    def step(self) -> None:
        instrument = self.instruments[self.random.choice(self.symbols)]
        reference, state = self.reference(instrument)
        if state != TradingState.OPEN or reference <= 0:
            return
        side = self.random.choice((Side.BUY, Side.SELL))
        offset = reference * self.cross_bps / 10_000
        price = reference + offset if side == Side.BUY else reference - offset
        qty = max(instrument.min_qty, round(self.size * instrument.qty_scale))
        self.place(instrument, side, qty, on_tick(price, instrument), tif=TimeInForce.IOC)
