"""Option greeks as the gateway keeps them: derived market data, not engine
state. The feed process re-publishes them after every re-mark (PublishGreeks,
engine/schemas_greeks.py); they are never journaled nor in snapshots, so after
a gateway restart they are unknown (absent from GetChain) until the next
publication. Memory is bounded: at most one entry per listed series."""

from __future__ import annotations

import math

from engine.core.types import Reject as CoreReject
from engine.schemas import GatewayReject
from engine.schemas_greeks import MAX_GREEKS_ENTRIES, PublishGreeks, SeriesGreeks

_NUMBERS = ("delta", "gamma", "vega", "theta", "vol")


class GreeksBoard:
    """The last published greeks of each option series, with the gateway time
    they were published at."""

    def __init__(self) -> None:
        self._by_series: dict[int, tuple[SeriesGreeks, int]] = {}

    def publish(self, engine, req: PublishGreeks, ts: int) -> tuple[int, str] | None:
        """Take ``req``'s greeks, stamped ``ts``, or return (code, text) refusing
        the whole request and keep nothing of it."""
        refusal = greeks_refusal(engine, req)
        if refusal is None:
            for entry in req.series:
                self._by_series[entry.instrument] = (entry, ts)
        return refusal

    def of(self, instrument: int) -> tuple[SeriesGreeks | None, int]:
        """(greeks, publication ts) of a series; (None, 0) when never published."""
        return self._by_series.get(instrument, (None, 0))


def greeks_refusal(engine, req: PublishGreeks) -> tuple[int, str] | None:
    """(code, text) refusing a PublishGreeks, or None when every entry names a
    live option series of ``engine`` once, with finite numbers and a vol >= 0."""
    if len(req.series) > MAX_GREEKS_ENTRIES:
        return GatewayReject.CHAIN_TOO_LARGE, f"{len(req.series)} entries; at most {MAX_GREEKS_ENTRIES} a request"
    instruments = engine.instruments   # a copy per read: read once
    seen: set[int] = set()
    for index, entry in enumerate(req.series):
        refusal = _entry_refusal(engine, instruments, seen, entry)
        if refusal is not None:
            code, why = refusal
            return code, f"entry {index} (instrument {entry.instrument}){why}"
        seen.add(entry.instrument)
    return None


def _entry_refusal(engine, instruments, seen: set[int], entry: SeriesGreeks) -> tuple[int, str] | None:
    """(code, what is wrong) with one entry, or None."""
    iid = entry.instrument
    if not 0 <= iid < len(instruments):
        return CoreReject.UNKNOWN_INSTRUMENT, ""
    if iid in seen:
        return GatewayReject.MALFORMED, ": the instrument appears twice"
    if instruments[iid].option is None:
        return CoreReject.NOT_AN_OPTION, ""
    try:
        status, _ = engine.series_status(iid)
    except ValueError as err:   # an option listing in an engine without risk: no series kept
        return CoreReject.NOT_AN_OPTION, f": {err}"
    if status:
        return CoreReject.SERIES_FINAL, ": the series is closed"
    numbers = (entry.delta, entry.gamma, entry.vega, entry.theta, entry.vol)
    if not all(map(math.isfinite, numbers)):
        bad = [name for name, x in zip(_NUMBERS, numbers, strict=True) if not math.isfinite(x)]
        return GatewayReject.MALFORMED, f": {', '.join(bad)} not finite"
    if entry.vol < 0:
        return GatewayReject.MALFORMED, f": vol {entry.vol} is below 0"
    return None
