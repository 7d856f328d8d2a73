"""Units and numeric limits: the one home of every number the core, the config,
the feeds and settlement must agree on.

* Balances are int64 *ledger units* of an asset (``AssetSpec.ledger_decimals``).
  For a rebasing token the vault lists in shares (settlement/vault.py), they are
  units of its shares, not of its rebasing balance: a rebase changes neither.
* Prices are int64 price units, quantities int64 quantity units; an instrument
  fixes how one quantity unit and one tick map to base and quote ledger units
  (``instrument_units``), exactly, so every fill moves whole ledger units.
* USD values (asset reference prices, option margins) are USD x 1e8.

Nothing here needs an engine: settlement and feeds compute the same mapping the
core uses from the venue's specs alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from engine.assets import AssetSpec
    from engine.instruments import InstrumentSpec

BPS = 10_000
"""Fees, haircuts and band widths are in basis points of this."""

USD_PRICE_SCALE = 10**8
"""USD amounts (asset reference prices, option margins) are USD x 1e8 (Chainlink style)."""

MAX_LEDGER_DECIMALS = 18
"""Collateral values divide by 10**ledger_decimals, an int64: 18 is the most that fits."""

ORDER_AMOUNT_LIMIT = 1 << 60
"""One order's worst-case amount (notional plus fee, or base quantity) in ledger
units stays below this; checked when an instrument is added."""

VALUE_LIMIT = 1 << 62
"""Balances and each asset's supply stay below this (checked on credit), and
collateral values saturate here; with fills only moving value, nothing
overflows int64. Margin requirements are 128-bit products that saturate at the
int64 maximum instead (an unpayable requirement, whatever its size)."""

MAX_MARGIN_PER_QTY = 10**15
"""The largest option margin per quantity unit (USD x 1e8) SET_OPTION_RISK takes."""

MAX_USD_PRICE = 10**15
"""The largest asset reference price (USD x 1e8 per whole token) SET_ASSET_PRICE takes."""

FUNDING_INDEX_SCALE = 10**6
"""A perpetual series' cumulative funding index counts premium-asset ledger units
x 1e-6 per quantity unit, so the funding of a quantity unit worth less than one
ledger unit per funding tick still accrues (docs/funding.md)."""

NS_PER_S = 10**9
"""Command timestamps are nanoseconds; funding periods are configured in seconds."""

POOL_PPS_SCALE = 10**12
"""A pool's NAV per share is in pool-asset ledger units per share ledger unit x 1e12
(docs/pools.md): the first deposit mints one share unit per pool-asset unit, so a
share starts at 1e12 and may grow 9.2e6-fold before it leaves int64."""


class InstrumentUnits(NamedTuple):
    """How one instrument's integers map to ledger units."""

    base_asset: int
    quote_asset: int
    base_per_qty: int         # base ledger units per quantity unit (0 for an option series)
    quote_per_tick_qty: int   # quote ledger units per (tick x quantity unit)


def instrument_units(spec: InstrumentSpec, assets: Sequence[AssetSpec]) -> InstrumentUnits:
    """The exact ledger-unit mapping of ``spec`` over the registered ``assets``
    (indexed by asset id). ValueError if an asset is unknown, a lot or a tick is
    finer than one ledger unit, or one order could overflow.

    An option series moves no base asset (its base is the underlying): a fill
    moves the premium, and positions are kept per account."""
    ids = {a.symbol: i for i, a in enumerate(assets)}
    for symbol in (spec.base, spec.quote):
        if symbol not in ids:
            raise ValueError(f"unknown asset {symbol}")
    base_id, quote_id = ids[spec.base], ids[spec.quote]
    if spec.option is not None and base_id == quote_id:
        raise ValueError(f"{spec.symbol}: an option's underlying and premium asset must differ")
    base, quote = assets[base_id], assets[quote_id]
    # One quantity unit is 1/qty_scale base tokens; one tick is
    # tick_size/price_scale quote tokens per base token.
    bpq_num, bpq_den = 10**base.ledger_decimals, spec.qty_scale
    qpt_num = spec.tick_size * 10**quote.ledger_decimals
    qpt_den = spec.price_scale * spec.qty_scale
    if bpq_num % bpq_den or qpt_num % qpt_den:
        raise ValueError(f"{spec.symbol}: a lot or a tick is finer than one ledger unit "
                         f"of {base.symbol}/{quote.symbol}; raise ledger_decimals")
    bpq, qpt = bpq_num // bpq_den, qpt_num // qpt_den
    if spec.option is not None:
        bpq = 0
    worst = (spec.max_price // spec.tick_size) * spec.max_qty * qpt
    worst += worst * max(spec.maker_fee_bps, spec.taker_fee_bps, 0) // BPS
    if worst >= ORDER_AMOUNT_LIMIT or spec.max_qty * bpq >= ORDER_AMOUNT_LIMIT:
        raise ValueError(f"{spec.symbol}: max_price x max_qty could overflow; lower them")
    return InstrumentUnits(base_id, quote_id, bpq, qpt)


def margin_per_qty(usd_per_contract: Decimal | Fraction | int, qty_scale: int) -> int:
    """USD per contract (one whole quantity, ``qty_scale`` quantity units) to USD x
    1e8 per quantity unit, rounded up exactly so a margin is never understated.
    ValueError if not positive and finite or above ``MAX_MARGIN_PER_QTY``."""
    if isinstance(usd_per_contract, Decimal) and not usd_per_contract.is_finite():
        raise ValueError(f"margin {usd_per_contract} must be finite")
    exact = Fraction(usd_per_contract)
    if exact <= 0:
        raise ValueError(f"margin {usd_per_contract} must be positive")
    units = math.ceil(exact * USD_PRICE_SCALE / qty_scale)
    if units > MAX_MARGIN_PER_QTY:
        raise ValueError(f"margin {usd_per_contract} is above the engine's limit of 1e15 USD x 1e8 "
                         f"per quantity unit")
    return units


def usd_price_units(usd_per_token: Decimal | Fraction | int) -> int:
    """USD per whole token to USD x 1e8 (SET_ASSET_PRICE); ValueError unless exact,
    positive and at most ``MAX_USD_PRICE``."""
    exact = Fraction(usd_per_token) * USD_PRICE_SCALE
    if exact.denominator != 1:
        raise ValueError(f"price {usd_per_token} is finer than 1e-8 USD")
    if not 0 < exact <= MAX_USD_PRICE:
        raise ValueError(f"price {usd_per_token} outside (0, 1e7] USD")
    return int(exact)


class SeriesTerms(NamedTuple):
    """An option series' terms as the core's integers (cash settlement, covered calls)."""

    is_call: bool
    strike: int            # price units of the series per whole underlying token
    contract: int          # underlying ledger units per contract
    cover_per_qty: int     # underlying ledger units a covered call locks per quantity unit (0: cannot be covered)


def series_terms(spec: InstrumentSpec, assets: Sequence[AssetSpec]) -> SeriesTerms:
    """The integer terms of option series ``spec`` over the registered ``assets``;
    ValueError if the strike is finer than one price unit or the contract size
    finer than one ledger unit of the underlying. A put, or a call whose
    quantity unit is not a whole number of underlying ledger units, cannot be
    covered."""
    terms = spec.option
    if terms is None:
        raise ValueError(f"{spec.symbol} is not an option series")
    underlying = next((a for a in assets if a.symbol == spec.base), None)
    if underlying is None:
        raise ValueError(f"unknown asset {spec.base}")
    strike = Fraction(Decimal(terms.strike)) * spec.price_scale
    contract = Fraction(Decimal(terms.contract_size)) * 10**underlying.ledger_decimals
    if strike.denominator != 1 or contract.denominator != 1:
        raise ValueError(f"{spec.symbol}: strike finer than one price unit or contract size finer than one "
                         f"ledger unit of {spec.base}")
    if not 0 < strike <= spec.max_price or not 0 < contract < ORDER_AMOUNT_LIMIT:
        raise ValueError(f"{spec.symbol}: strike or contract size out of range")
    cover = int(contract) // spec.qty_scale if terms.is_call and int(contract) % spec.qty_scale == 0 else 0
    return SeriesTerms(terms.is_call, int(strike), int(contract), cover)


def settlement_value(terms: SeriesTerms, settle_price: int, unit_scale: int, quote_per_tick_qty: int,
                     tick: int) -> int:
    """Cash a long receives (a short pays) per quantity unit of an expiring series, in
    premium ledger units, at ``settle_price`` (price units per whole underlying token).

    The rounding rule: the intrinsic value per quantity unit, exactly
    ``max(S - K, 0)`` (call) or ``max(K - S, 0)`` (put) price units per token times
    ``contract / unit_scale`` tokens per contract times ``quote_per_tick_qty / tick``
    ledger units per price unit and quantity unit, is floored to a whole ledger
    unit. Every position then moves ``|position| x value``: longs receive exactly
    what shorts pay, and the fraction below one ledger unit per quantity unit is
    paid by no one (docs/options_expiry.md)."""
    intrinsic = settle_price - terms.strike if terms.is_call else terms.strike - settle_price
    if intrinsic <= 0:
        return 0
    return intrinsic * terms.contract * quote_per_tick_qty // (unit_scale * tick)
