"""The core's numeric limits (C constants in engine/core/types.pxd) equal their
one home, engine/units.py."""

from engine import units
from engine.core.types import LIMITS


def test_core_limits_equal_engine_units():
    assert LIMITS == {name: getattr(units, name) for name in LIMITS}
    assert set(LIMITS) >= {"BPS", "VALUE_LIMIT", "ORDER_AMOUNT_LIMIT", "MAX_MARGIN_PER_QTY", "MAX_USD_PRICE"}
