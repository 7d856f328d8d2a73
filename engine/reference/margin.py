"""Margin as plain Python: collateral value with haircuts, the initial and
maintenance requirements of option positions, the margin checks and the
closing orders a liquidation places (docs/matching.md, "Accounts, balances and
pre-trade risk" for collateral, "Options" for the rest)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import NamedTuple

from engine.assets import AssetSpec
from engine.core.order_info import MarginState
from engine.instruments import InstrumentSpec
from engine.reference.bands import Band
from engine.reference.risk import InstrumentTerms, affordable_qty, fee, notional
from engine.units import BPS, MAX_MARGIN_PER_QTY, VALUE_LIMIT

__all__ = [
    "Exposure",
    "asset_value",
    "buyback_price",
    "buyback_qty",
    "collateral_sale_qty",
    "collateral_value",
    "initial_met",
    "initial_requirement",
    "maintenance_requirement",
    "margin_state",
    "option_risk_valid",
    "under_maintenance",
]

# Requirements are int64 in the engine and saturate at its largest value
# (collateral, below 2**62, can never cover that).
_INT64_MAX = (1 << 63) - 1

Margins = Mapping[int, tuple[int, int]]
"""instrument -> (initial, maintenance) margin per quantity unit, USD x 1e8 (SET_OPTION_RISK)."""


class Exposure(NamedTuple):
    """An account's exposure in one option series: its position (short < 0)
    and the open quantity of its sell and buy orders there."""

    position: int
    open_sells: int
    open_buys: int


def asset_value(asset: AssetSpec, amount: int, usd_price: int) -> int:
    """Collateral value in USD x 1e8 of ``amount`` ledger units at ``usd_price``
    (USD x 1e8 per whole token): ``v = floor(amount x usd_price /
    10**ledger_decimals)``, capped at 2**62, then ``floor(v x (10000 -
    haircut_bps) / 10000)``. The value is floored before the haircut, and the
    haircut result is floored again. Nothing for a non-positive amount or an
    unpriced asset (price 0)."""
    if amount <= 0 or not usd_price:
        return 0
    value = min(amount * usd_price // 10**asset.ledger_decimals, VALUE_LIMIT)
    return value * (BPS - asset.haircut_bps) // BPS


def collateral_value(assets: Sequence[AssetSpec], amounts: Sequence[int], prices: Sequence[int]) -> int:
    """The sum of ``asset_value`` over the assets (indexed by asset id), capped at 2**62."""
    total = sum(asset_value(asset, amount, price) for asset, amount, price in zip(assets, amounts, prices))
    return min(total, VALUE_LIMIT)


def initial_requirement(exposures: Mapping[int, Exposure], margins: Margins,
                        perpetual: Collection[int] = (), unpaid: int = 0) -> int:
    """Sum over series of ``initial x max(0, open_sells - position)``: the short
    the account would hold if every open sell filled. Long options give no
    credit. In a ``perpetual`` series (longs pay funding) the exposure is the
    larger of that short and the long ``open_buys + position``; ``unpaid`` is
    the USD value of funding the account could not pay
    (engine.reference.funding.unpaid_value). Saturates at the int64 maximum."""
    total = unpaid + sum(margins[i][0] * max(0, e.open_sells - e.position,
                                             e.open_buys + e.position if i in perpetual else 0)
                         for i, e in exposures.items())
    return min(total, _INT64_MAX)


def maintenance_requirement(exposures: Mapping[int, Exposure], margins: Margins,
                            perpetual: Collection[int] = (), unpaid: int = 0) -> int:
    """Sum over series of ``maintenance x max(0, -position)``: the current short;
    in a ``perpetual`` series ``maintenance x |position|``; plus ``unpaid`` as
    in ``initial_requirement``. Saturates at the int64 maximum."""
    total = unpaid + sum(margins[i][1] * (abs(e.position) if i in perpetual else max(0, -e.position))
                         for i, e in exposures.items())
    return min(total, _INT64_MAX)


def margin_state(assets: Sequence[AssetSpec], balances: Sequence[tuple[int, int]],
                 exposures: Mapping[int, Exposure], prices: Sequence[int], margins: Margins,
                 perpetual: Collection[int] = (), unpaid: int = 0) -> MarginState:
    """An account's MarginState from its definition: ``balances`` are
    (total, reserved) per asset; collateral counts totals, free collateral
    ``total - reserved`` (reserved amounts are committed to orders)."""
    totals = [total for total, _ in balances]
    free = [total - reserved for total, reserved in balances]
    return MarginState(collateral_value(assets, totals, prices), collateral_value(assets, free, prices),
                       initial_requirement(exposures, margins, perpetual, unpaid),
                       maintenance_requirement(exposures, margins, perpetual, unpaid))


def initial_met(state: MarginState) -> bool:
    """The initial check: free collateral covers the initial requirement."""
    return state.initial == 0 or state.free_collateral >= state.initial


def under_maintenance(state: MarginState) -> bool:
    """Whether the account is a liquidation candidate: its collateral is below
    a non-zero maintenance requirement."""
    return state.maintenance > 0 and state.collateral < state.maintenance


def option_risk_valid(initial: int, maintenance: int) -> bool:
    """Whether SET_OPTION_RISK takes these margins: ``0 < maintenance <= initial <= 1e15``."""
    return 0 < maintenance <= initial <= MAX_MARGIN_PER_QTY


# -- liquidation --


def buyback_price(spec: InstrumentSpec, band: Band) -> int:
    """The limit of a liquidation's buy-back: the execution band's high edge,
    at most the highest price on the tick grid the instrument takes."""
    return min(band[1], spec.max_price // spec.tick_size * spec.tick_size)


def buyback_qty(terms: InstrumentTerms, short: int, price: int, free: int) -> int:
    """The quantity a liquidation buys back in a series: ``min(short, max_qty)``
    in whole lots, reduced to what ``free`` premium asset can reserve at
    ``price``; 0 if that is below ``min_qty`` (no order is placed)."""
    spec = terms.spec
    want = min(short, spec.max_qty) // spec.lot_size * spec.lot_size
    qty = affordable_qty(terms, price, want, free)
    return qty if qty >= spec.min_qty else 0


def collateral_sale_qty(terms: InstrumentTerms, low_edge: int, shortfall: int, free_base: int) -> int:
    """The quantity a liquidation sells on a spot book to raise ``shortfall`` of
    its quote asset with an IOC at the band's ``low_edge``: the lots whose
    proceeds after the taker fee cover the shortfall, plus two lots for
    rounding, at most ``max_qty`` and the free base. 0 when nothing would be
    placed (no proceeds per lot, no free base, or below ``min_qty``)."""
    spec, units = terms.spec, terms.units
    per_lot = notional(terms, low_edge, spec.lot_size)
    per_lot -= fee(per_lot, spec.taker_fee_bps)
    if free_base <= 0 or per_lot <= 0:
        return 0
    lots = min(shortfall // per_lot + 2, spec.max_qty // spec.lot_size,
               free_base // units.base_per_qty // spec.lot_size)
    qty = lots * spec.lot_size
    return qty if qty >= spec.min_qty else 0
