"""engine/units.py: the exact unit mapping and margin conversion, without an engine."""

from decimal import Decimal
from fractions import Fraction

import pytest

from engine.assets import AssetSpec
from engine.instruments import InstrumentSpec, OptionTerms
from engine.units import (
    MAX_MARGIN_PER_QTY,
    InstrumentUnits,
    instrument_units,
    margin_per_qty,
    usd_price_units,
)

ASSETS = (
    AssetSpec(symbol="AMZNX", decimals=18, ledger_decimals=8),
    AssetSpec(symbol="USDC", decimals=6, ledger_decimals=6),
    AssetSpec(symbol="BTC", decimals=8, ledger_decimals=8),
)


def spot(**over) -> InstrumentSpec:
    fields = dict(symbol="AMZNX/USDC", base="AMZNX", quote="USDC", tick_size=1, lot_size=1,
                  price_scale=100, qty_scale=100, max_price=10**6, max_qty=10**6)
    fields.update(over)
    return InstrumentSpec(**fields)


def test_spot_mapping_is_exact():
    # 1 qty unit = 0.01 AMZNX = 1e6 ledger units; 1 tick x 1 qty unit = $0.01 x 0.01 = 100 USDC units.
    assert instrument_units(spot(), ASSETS) == InstrumentUnits(0, 1, 10**6, 100)


def test_tick_finer_than_a_ledger_unit_is_refused():
    with pytest.raises(ValueError, match="finer than one ledger unit"):
        instrument_units(spot(price_scale=10**6, qty_scale=10**4), ASSETS)


def test_unknown_asset_and_overflow_are_refused():
    with pytest.raises(ValueError, match="unknown asset"):
        instrument_units(spot(quote="EUR"), ASSETS)
    with pytest.raises(ValueError, match="overflow"):
        instrument_units(spot(max_price=10**12, max_qty=10**12), ASSETS)


def test_option_series_moves_no_base():
    terms = OptionTerms(expiry="2026-12-31", strike="100000", right="C", contract_size="1")
    spec = spot(symbol="BTC-20261231-100000-C", base="BTC", option=terms)
    units = instrument_units(spec, ASSETS)
    assert units.base_asset == 2 and units.base_per_qty == 0


def test_margin_rounds_up_exactly():
    assert margin_per_qty(Decimal("1.5"), 100) == 1_500_000
    assert margin_per_qty(Fraction(1, 3), 1) == 33_333_334
    assert margin_per_qty(MAX_MARGIN_PER_QTY // 10**8, 1) == MAX_MARGIN_PER_QTY
    for bad in (Decimal(0), Decimal(-1), Decimal("NaN"), Decimal(10**8)):
        with pytest.raises(ValueError):
            margin_per_qty(bad, 1)


def test_usd_price_units_is_exact_and_bounded():
    assert usd_price_units(Decimal("245.12345678")) == 24_512_345_678
    for bad in (Decimal("0.000000001"), 0, 10**8):
        with pytest.raises(ValueError):
            usd_price_units(bad)
