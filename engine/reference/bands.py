"""Price bands: the edges of the static, dynamic and execution bands
(docs/matching.md, "Numbers" and "Bands")."""

from __future__ import annotations

from engine.instruments import InstrumentSpec
from engine.units import BPS

Band = tuple[int, int]
"""[lo, hi], both inclusive, in price units."""


def band_around(centre: int, bps: int, tick: int) -> Band | None:
    """The band of width ``bps`` around ``centre``, edges rounded inwards to the
    tick grid: ``lo = ceil(c (10000 - bps) / 10000 / tick) x tick``,
    ``hi = floor(c (10000 + bps) / 10000 / tick) x tick``. None if the centre
    is unset (0) or the band is disabled (``bps = 0``)."""
    if centre <= 0 or bps <= 0:
        return None
    lo = -(-centre * (BPS - bps) // (BPS * tick)) * tick
    hi = centre * (BPS + bps) // (BPS * tick) * tick
    return lo, hi


def static_band(spec: InstrumentSpec, reference: int) -> Band | None:
    """The static band around the reference price (0 = unset), or None."""
    return band_around(reference, spec.static_band_bps, spec.tick_size)


def dynamic_band(spec: InstrumentSpec, last_trade: int) -> Band | None:
    """The dynamic band around the last trade price (0 = none yet), or None."""
    return band_around(last_trade, spec.dynamic_band_bps, spec.tick_size)


def execution_band(spec: InstrumentSpec, reference: int, last_trade: int) -> Band | None:
    """The band an order may trade in: the intersection of the static and the
    dynamic band where they exist; None if neither does. It may be empty
    (lo > hi): then nothing trades."""
    bands = [band for band in (static_band(spec, reference), dynamic_band(spec, last_trade)) if band is not None]
    if not bands:
        return None
    return max(lo for lo, _ in bands), min(hi for _, hi in bands)


def in_band(band: Band | None, price: int) -> bool:
    """Whether ``price`` lies inside ``band``; every price does when there is no band."""
    return band is None or band[0] <= price <= band[1]
