"""The order book of the reference matcher: orders, one FIFO per price level,
the two sides of an instrument's book and its trading state (docs/matching.md,
"Matching")."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque

from engine.core.order_info import OrderInfo
from engine.core.types import Side, TradingState
from engine.instruments import InstrumentSpec
from engine.reference.bands import Band, execution_band, static_band

__all__ = ["BookSide", "InstrumentBook", "Order"]

_BUY = int(Side.BUY)
_SELL = int(Side.SELL)
_OPEN = int(TradingState.OPEN)


class Order:
    """A resting (or incoming) order; `leaves` is its open quantity."""

    __slots__ = ("order_id", "client_order_id", "account", "instrument", "side", "price", "leaves", "tif", "stp")

    def __init__(self, order_id, client_order_id, account, instrument, side, price, leaves, tif, stp):
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.account = account
        self.instrument = instrument
        self.side = side
        self.price = price
        self.leaves = leaves
        self.tif = tif
        self.stp = stp

    def info(self) -> OrderInfo:
        """This order as the query API reports it."""
        return OrderInfo(
            order_id=self.order_id,
            client_order_id=self.client_order_id,
            account=self.account,
            instrument=self.instrument,
            side=self.side,
            price=self.price,
            leaves=self.leaves,
            tif=self.tif,
            stp=self.stp,
        )


class BookSide:
    """One side of a book: price -> FIFO of orders, plus the prices kept sorted."""

    def __init__(self, side: int):
        self.side = side
        self.levels: dict[int, deque[Order]] = {}
        self.prices: list[int] = []  # ascending; the best bid is last, the best ask first

    def best_price(self) -> int | None:
        """The best price on this side, or None if it is empty."""
        if not self.prices:
            return None
        return self.prices[-1] if self.side == _BUY else self.prices[0]

    def best_order(self) -> Order | None:
        """The first order in time at the best price, or None."""
        price = self.best_price()
        return None if price is None else self.levels[price][0]

    def prices_best_first(self) -> list[int]:
        """The level prices, best first."""
        return self.prices[::-1] if self.side == _BUY else list(self.prices)

    def orders_best_first(self):
        """Iterate over every order of this side in matching order (do not mutate meanwhile)."""
        for price in self.prices_best_first():
            yield from self.levels[price]

    def add(self, order: Order, at_front: bool = False) -> None:
        """Queue an order at its price level (at the back unless at_front)."""
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = deque()
            insort(self.prices, order.price)
        if at_front:
            level.appendleft(order)
        else:
            level.append(order)

    def remove(self, order: Order) -> None:
        """Take an order out of its level; drop the level once it is empty."""
        level = self.levels[order.price]
        if level[0] is order:
            level.popleft()
        else:
            level.remove(order)
        if not level:
            del self.levels[order.price]
            del self.prices[bisect_left(self.prices, order.price)]


class InstrumentBook:
    """One instrument: its spec, trading state, reference and last trade, and book."""

    def __init__(self, instrument_id: int, spec: InstrumentSpec):
        self.instrument_id = instrument_id
        self.listed_spec = spec  # as set up; `spec` carries the band widths an operator set since
        self.spec = spec
        self.state = _OPEN
        self.reference = 0
        self.last_trade = 0
        self.bids = BookSide(_BUY)
        self.asks = BookSide(_SELL)

    def side(self, side: int) -> BookSide:
        """The book side holding orders of `side`."""
        return self.bids if side == _BUY else self.asks

    def opposite(self, side: int) -> BookSide:
        """The book side an order of `side` trades against."""
        return self.asks if side == _BUY else self.bids

    def static_band(self) -> Band | None:
        """[lo, hi] around the reference price, or None if there is none."""
        return static_band(self.spec, self.reference)

    def execution_band(self) -> Band | None:
        """Intersection of the bands that exist, or None if neither exists."""
        return execution_band(self.spec, self.reference, self.last_trade)
