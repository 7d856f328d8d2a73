"""remark_chain: one vectorised pass over a chain gives, series by series, what the
scalar ``option_risk`` gives, across series of different sizes; the surface's
per-expiry overrides; bad surfaces are refused."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from engine.core.types import TradingState
from engine.schemas import InstrumentInfo
from feeds.options import MarginRates, SeriesName, option_risk
from feeds.remark import VolSurface, remark_chain

NOW = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)


def _series(iid: int, expiry: str, strike: str, right: str, qty_scale: int, contract_size: str) -> InstrumentInfo:
    return InstrumentInfo(iid, f"S{iid}", "WBTC", "USDC", 100, 1, 1, 10**6, 10**10, 10_000, qty_scale, 2_000, 1_000,
                          0, 3, TradingState.OPEN, 0, 0, expiry, strike, right, contract_size)


def test_the_chain_equals_the_scalar_path_series_by_series():
    chain = [_series(0, "2026-12-31", "100000", "C", 100, "1"), _series(1, "2027-03-26", "80000", "P", 1000, "0.1"),
             _series(2, "2026-12-31", "90000", "P", 100, "1"), _series(3, "2026-08-28", "120000", "C", 1000, "0.1")]
    surface = VolSurface(underlying="WBTC", vol=0.6, expiries={"2027-03-26": 0.7})
    vols = [surface.at(s.expiry) for s in chain]
    risks = remark_chain(chain, [95_000.0] * 4, [1.0] * 4, vols, 0.01, NOW, MarginRates())
    for inst, vol, risk in zip(chain, vols, risks, strict=True):
        series = SeriesName("WBTC", date.fromisoformat(inst.expiry), Decimal(inst.strike), inst.right == "C")
        units = option_risk(series, 95_000.0, vol, 0.01, NOW, MarginRates(), contract_size=Decimal(inst.contract_size),
                            price_scale=inst.price_scale, tick_size=inst.tick_size, qty_scale=inst.qty_scale,
                            max_price=inst.max_price)
        assert (risk.instrument, risk.mark, risk.initial, risk.maintenance) == (
            inst.instrument, int(units.mark_price), int(units.initial_per_qty), int(units.maintenance_per_qty))
    assert vols == [0.6, 0.7, 0.6, 0.6]
    assert remark_chain([], [], [], [], 0.0, NOW, MarginRates()) == []


@pytest.mark.parametrize(("kw", "match"), [({"vol": float("nan")}, "finite"),
                                          ({"vol": 0.5, "expiries": {"2026-02-30": 0.5}}, "ISO date")])
def test_bad_surfaces_are_refused(kw, match):
    with pytest.raises(ValueError, match=match):
        VolSurface(underlying="WBTC", **kw)
