"""PublishGreeks' validation and the gateway's greeks board, against a core
engine with the default options: every refusal names its entry and keeps
nothing of the request; a taken request replaces each series' greeks; the
largest request fits the default message bound; a GetChain answer with greeks
still decodes as the SeriesInfo clients knew before greeks existed."""

from __future__ import annotations

import math

import msgspec
import pytest

from engine.config import GatewaySection
from engine.core.matcher import MatchingEngine
from engine.core.types import EventKind
from engine.core.types import Reject as Code
from engine.defaults import DEFAULT_ASSETS, DEFAULT_INSTRUMENTS, DEFAULT_OPTIONS
from engine.gateway.greeks import GreeksBoard, greeks_refusal
from engine.schemas import REQUEST_ENCODER, GatewayReject
from engine.schemas_greeks import MAX_GREEKS_ENTRIES, PublishGreeks, SeriesGreeks
from engine.schemas_options import SeriesInfo

SPECS = DEFAULT_INSTRUMENTS + DEFAULT_OPTIONS
INSTRUMENT = {spec.symbol: i for i, spec in enumerate(SPECS)}
SPOT = INSTRUMENT["TSLA.M/USDC"]
PUT = INSTRUMENT["TSLA.M-20261218-250-P"]
CALL = next(i for i, spec in enumerate(SPECS) if spec.option is not None and i != PUT)


@pytest.fixture
def engine():
    eng = MatchingEngine(risk=True, fee_account=0)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    for spec in SPECS:
        eng.add_instrument(spec)
    return eng


def _greeks(instrument: int, **numbers: float) -> SeriesGreeks:
    values = {"delta": -0.4, "gamma": 0.01, "vega": 60.0, "theta": -30.0, "vol": 0.55} | numbers
    return SeriesGreeks(instrument, **values)


def _publish(*entries: SeriesGreeks) -> PublishGreeks:
    return PublishGreeks(7, list(entries))


@pytest.mark.parametrize(("entries", "code", "says"), [
    ([_greeks(len(SPECS))], Code.UNKNOWN_INSTRUMENT, f"entry 1 (instrument {len(SPECS)})"),
    ([_greeks(PUT), _greeks(-1)], Code.UNKNOWN_INSTRUMENT, "entry 2 (instrument -1)"),
    ([_greeks(SPOT)], Code.NOT_AN_OPTION, f"instrument {SPOT}"),
    ([_greeks(PUT), _greeks(PUT)], GatewayReject.MALFORMED, "appears twice"),
    ([_greeks(PUT, delta=math.nan)], GatewayReject.MALFORMED, "delta not finite"),
    ([_greeks(PUT, gamma=math.inf, theta=-math.inf)], GatewayReject.MALFORMED, "gamma, theta not finite"),
    ([_greeks(PUT, vega=math.nan, vol=math.inf)], GatewayReject.MALFORMED, "vega, vol not finite"),
    ([_greeks(PUT, vol=-0.1)], GatewayReject.MALFORMED, "vol -0.1 is below 0"),
])
def test_a_bad_entry_refuses_the_whole_request_and_keeps_nothing(engine, entries, code, says):
    board = GreeksBoard()
    refusal = board.publish(engine, _publish(_greeks(CALL), *entries), ts=5)
    assert refusal is not None
    assert refusal[0] == code and says in refusal[1]
    assert board.of(CALL) == (None, 0)


def test_too_many_entries_are_refused_before_any_is_read(engine):
    entries = [_greeks(len(SPECS) + i) for i in range(MAX_GREEKS_ENTRIES + 1)]
    code, text = greeks_refusal(engine, _publish(*entries))
    assert code == GatewayReject.CHAIN_TOO_LARGE and f"{MAX_GREEKS_ENTRIES + 1} entries" in text


def test_a_closed_series_takes_no_greeks(engine):
    assert engine.delist_series(CALL)[0].kind == EventKind.SERIES_CLOSED
    assert engine.series_status(CALL)[0] == 2   # delisted
    code, text = greeks_refusal(engine, _publish(_greeks(CALL)))
    assert code == Code.SERIES_FINAL and "closed" in text


def test_a_publication_replaces_each_series_greeks(engine):
    board = GreeksBoard()
    first, put = _greeks(CALL), _greeks(PUT, delta=-0.2)
    assert board.publish(engine, _publish(first, put), ts=10) is None
    later = _greeks(CALL, delta=0.7, vol=0.0)
    assert board.publish(engine, _publish(later), ts=20) is None
    assert board.of(CALL) == (later, 20) and board.of(PUT) == (put, 10)
    assert board.publish(engine, _publish(), ts=30) is None      # nothing to publish: nothing changes
    assert board.of(CALL) == (later, 20)


def test_the_largest_request_fits_the_default_message_bound():
    entries = [SeriesGreeks(2**31 - 1, -0.123456789, 1e-5, 12_345.678, -23_456.7, 0.6)
               for _ in range(MAX_GREEKS_ENTRIES)]
    assert len(REQUEST_ENCODER.encode([_publish(*entries)])) < GatewaySection().max_message_bytes


class _SeriesInfoBeforeGreeks(msgspec.Struct, array_like=True, frozen=True):
    """SeriesInfo's fields as clients built before greeks decode it."""

    instrument: int
    symbol: str
    expiry: str
    strike: str
    right: str
    contract_size: str
    state: int
    status: int
    mark: int
    last_trade: int
    initial: int
    maintenance: int
    open_interest: int
    settlement_price: int


def test_old_clients_still_decode_a_series_with_greeks():
    terms = (PUT, "TSLA.M-20261218-250-P", "2026-12-18", "250", "P", "1", 1, 0, 146_200, 0, 5, 4, 200, 0)
    encoded = msgspec.msgpack.encode(SeriesInfo(*terms, _greeks(PUT), 123))
    assert msgspec.msgpack.decode(encoded, type=_SeriesInfoBeforeGreeks) == _SeriesInfoBeforeGreeks(*terms)
    unknown = msgspec.msgpack.decode(msgspec.msgpack.encode(_SeriesInfoBeforeGreeks(*terms)), type=SeriesInfo)
    assert (unknown.greeks, unknown.greeks_ts) == (None, 0)
