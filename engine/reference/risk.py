"""Pre-trade risk as plain Python: the notional of a fill, fees, what an order
reserves, the largest quantity a free balance affords, and the ledger model
that rebuilds balances and option positions from events alone
(docs/matching.md, "Accounts, balances and pre-trade risk" and "Options")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from engine.assets import AssetSpec
from engine.core.types import EventKind, Side
from engine.instruments import InstrumentSpec
from engine.reference.cost import add_position
from engine.units import BPS, InstrumentUnits, instrument_units

__all__ = [
    "InstrumentTerms",
    "LedgerModel",
    "affordable_qty",
    "fee",
    "fill_fees",
    "notional",
    "reservation",
    "reserve_bps",
]


class InstrumentTerms(NamedTuple):
    """An instrument's spec with its exact mapping to ledger units."""

    spec: InstrumentSpec
    units: InstrumentUnits

    @classmethod
    def of(cls, spec: InstrumentSpec, assets: Sequence[AssetSpec]) -> InstrumentTerms:
        """The terms of ``spec`` over the registered ``assets`` (indexed by asset id)."""
        return cls(spec, instrument_units(spec, assets))


def notional(terms: InstrumentTerms, price: int, qty: int) -> int:
    """Quote ledger units of ``qty`` at ``price``: ``(price / tick_size) x qty x
    quote_per_tick_qty``, the price floored to the tick (a spot fill's quote
    leg, an option fill's premium)."""
    return (price // terms.spec.tick_size) * qty * terms.units.quote_per_tick_qty


def fee(amount: int, bps: int) -> int:
    """A fee of ``bps`` on ``amount`` rounded towards zero; a negative rate is a
    rebate whose size is floored too, so it never exceeds the matching taker
    fee and no fill needs more than the reservation it releases."""
    return amount * bps // BPS if bps >= 0 else -(amount * -bps // BPS)


def fill_fees(terms: InstrumentTerms, price: int, qty: int) -> tuple[int, int]:
    """(taker fee, maker fee) of a fill of ``qty`` at ``price``: the ``fee`` and
    ``maker_fee`` fields of its FILL event."""
    n = notional(terms, price, qty)
    return fee(n, terms.spec.taker_fee_bps), fee(n, terms.spec.maker_fee_bps)


def reserve_bps(spec: InstrumentSpec) -> int:
    """The fee rate a buy reserves for: the larger of the maker and taker rates, at least 0."""
    return max(spec.maker_fee_bps, spec.taker_fee_bps, 0)


def reservation(terms: InstrumentTerms, side: int, price: int, leaves: int) -> int:
    """What an order with open quantity ``leaves`` at limit ``price`` reserves:
    a buy ``R = n + floor(n x reserve_bps / 10000)`` of quote with
    ``n = notional(price, leaves)``, a sell ``leaves x base_per_qty`` of base
    (0 for an option sell: it adds to open sells instead). Because fees round
    towards zero, ``R(L) - R(L - q)`` covers every fill of ``q`` at or inside
    the limit."""
    if side == Side.BUY:
        n = notional(terms, price, leaves)
        return n + fee(n, reserve_bps(terms.spec))
    return leaves * terms.units.base_per_qty


def affordable_qty(terms: InstrumentTerms, price: int, want: int, free: int) -> int:
    """The largest multiple of the lot, at most ``want``, whose buy reservation
    at ``price`` fits in ``free`` (a liquidation's buy-back, docs/matching.md,
    "Options"). The reservation grows with the quantity, so a bisection over
    the lot count finds it."""
    lot = terms.spec.lot_size
    fits, too_many = 0, want // lot + 1
    while too_many - fits > 1:
        middle = (fits + too_many) // 2
        if reservation(terms, Side.BUY, price, middle * lot) <= free:
            fits = middle
        else:
            too_many = middle
    return fits * lot


class LedgerModel:
    """Balance totals and option positions rebuilt from events alone.

    ``CREDITED`` and ``DEBITED`` move one balance; a ``FILL`` of ``q`` at ``p``
    moves ``n = notional(p, q)``: the buyer pays ``n`` plus its fee, the seller
    receives ``n`` less its fee, the fee account takes both fees; a spot fill
    moves ``q x base_per_qty`` of base from seller to buyer, an option fill
    moves the position instead (buyer ``+q``, seller ``-q``) and both cost bases
    (engine/reference/cost.py) by ``n``. A ``DELEVERAGED`` closes ``leaves`` of
    the long (``account``) against the short (``maker_account``) for ``qty``
    (balances as the transfer it is, positions and costs as a fill); a
    ``POSITION_SETTLED`` closes a position in cash (its balance moves are
    left out: the clearing counterparty's are not in the event). ``supply`` is
    credits minus debits per asset, which the totals must always sum to."""

    def __init__(self, terms: Sequence[InstrumentTerms], fee_account: int = 0):
        self.terms = list(terms)
        self.fee_account = fee_account
        self.balance: dict[tuple[int, int], int] = {}    # (account, asset) -> total
        self.position: dict[tuple[int, int], int] = {}   # (account, instrument) -> quantity, short < 0
        self.cost: dict[tuple[int, int], int] = {}       # (account, instrument) -> cost basis
        self.supply: dict[int, int] = {}                 # asset -> credits minus debits

    def total(self, account: int, asset: int) -> int:
        """The account's total balance of ``asset``."""
        return self.balance.get((account, asset), 0)

    def position_of(self, account: int, instrument: int) -> int:
        """The account's position in an option series (0 if none)."""
        return self.position.get((account, instrument), 0)

    def cost_of(self, account: int, instrument: int) -> int:
        """The cost basis of the account's position in an option series (0 if none)."""
        return self.cost.get((account, instrument), 0)

    def _trade(self, account: int, instrument: int, q: int, premium: int) -> None:
        key = (account, instrument)
        self.position[key], self.cost[key] = add_position(self.position_of(account, instrument),
                                                          self.cost_of(account, instrument), q, premium)

    def apply(self, event) -> None:
        """Account for one event; events that move no balance are ignored."""
        if event.kind == EventKind.CREDITED:
            self._add(event.account, event.asset, event.qty)
            self.supply[event.asset] = self.supply.get(event.asset, 0) + event.qty
        elif event.kind == EventKind.DEBITED:
            self._add(event.account, event.asset, -event.qty)
            self.supply[event.asset] = self.supply.get(event.asset, 0) - event.qty
        elif event.kind == EventKind.FILL:
            self._settle(event)
        elif event.kind == EventKind.DELEVERAGED:
            quote = self.terms[event.instrument].units.quote_asset
            self._add(event.maker_account, quote, -event.qty)
            self._add(event.account, quote, event.qty)
            self._trade(event.maker_account, event.instrument, event.leaves, event.qty)
            self._trade(event.account, event.instrument, -event.leaves, event.qty)
        elif event.kind == EventKind.POSITION_SETTLED:
            self.position[(event.account, event.instrument)] = 0
            self.cost[(event.account, event.instrument)] = 0

    def _add(self, account: int, asset: int, amount: int) -> None:
        self.balance[(account, asset)] = self.total(account, asset) + amount

    def _settle(self, e) -> None:
        terms = self.terms[e.instrument]
        units = terms.units
        n = notional(terms, e.price, e.qty)
        taker_buys = e.side == Side.BUY
        buyer, seller = (e.account, e.maker_account) if taker_buys else (e.maker_account, e.account)
        buyer_fee, seller_fee = (e.fee, e.maker_fee) if taker_buys else (e.maker_fee, e.fee)
        self._add(buyer, units.quote_asset, -(n + buyer_fee))
        self._add(seller, units.quote_asset, n - seller_fee)
        self._add(self.fee_account, units.quote_asset, e.fee + e.maker_fee)
        if terms.spec.option is not None:
            self._trade(buyer, e.instrument, e.qty, n)
            self._trade(seller, e.instrument, -e.qty, n)
        else:
            self._add(buyer, units.base_asset, e.qty * units.base_per_qty)
            self._add(seller, units.base_asset, -e.qty * units.base_per_qty)
