"""A dated series' expiry time of day (``OptionTerms.expiry_time``, UTC): a bad value is
refused, the default is 08:00 and leaves the genesis bytes (so an old journal's venue
encodes as it was written), a named time moves the expiry instant in the core, and a
series listed from a template keeps the template's time."""

from __future__ import annotations

import datetime

import msgspec
import pytest

from engine.chains import RIGHT_CALL, expiry_code
from engine.config import ConfigError, VenueSpec, decode_venue, encode_venue, load_config
from engine.core.matcher import MatchingEngine
from engine.core.types import EventKind, Reject, Side
from engine.defaults import DEFAULT_ASSETS, DEFAULT_INSTRUMENTS, DEFAULT_OPTIONS
from engine.instruments import OptionTerms, expiry_instant_ns
from engine.journal import FileJournal

from test_old_journal import DATA

ROOT = DATA.parents[2]
DATE = "2026-12-18"
AT_8 = int(datetime.datetime(2026, 12, 18, 8, tzinfo=datetime.UTC).timestamp()) * 10**9
PUT = len(DEFAULT_INSTRUMENTS) + [s.symbol for s in DEFAULT_OPTIONS].index("TSLA.M-20261218-250-P")


@pytest.mark.parametrize("text", ["8:00", "08:60", "24:00", "08:00:61", "08-00", "08:00:00:00", "0８:00", " 08:00"])
def test_a_bad_expiry_time_is_refused(text):
    with pytest.raises(ValueError, match="expiry_time"):
        OptionTerms(expiry=DATE, strike="250", right="P", expiry_time=text)


def test_a_perpetual_series_takes_no_expiry_time():
    with pytest.raises(ValueError, match="no expiry"):
        OptionTerms(strike="250", right="C", funding_period_s=3_600, expiry_time="08:00")


def test_a_bad_expiry_time_in_a_venue_config_is_a_config_error(tmp_path):
    path = tmp_path / "venue.toml"
    path.write_text((ROOT / "configs" / "venue.toml").read_text().replace(
        'option = { expiry = "2026-12-18", strike = "250", right = "P", contract_size = "1" }',
        'option = { expiry = "2026-12-18", strike = "250", right = "P", contract_size = "1", expiry_time = "8am" }'))
    with pytest.raises(ConfigError, match="expiry_time"):
        load_config(path)


def test_the_default_is_eight_utc_and_a_named_time_moves_the_instant():
    assert OptionTerms(expiry=DATE, strike="250", right="P").expiry_ns == AT_8
    assert OptionTerms(expiry=DATE, strike="250", right="P", expiry_time="08:00").expiry_ns == AT_8
    assert expiry_instant_ns(DATE, "14:30:15") == AT_8 + (6 * 3_600 + 30 * 60 + 15) * 10**9


def test_without_a_named_time_the_genesis_has_no_expiry_time_and_an_old_one_still_reads():
    spec = VenueSpec(max_accounts=8, max_orders=100, fee_account=0, risk=True, assets=list(DEFAULT_ASSETS),
                     instruments=[*DEFAULT_INSTRUMENTS, *DEFAULT_OPTIONS], accounts=[1, 2])
    assert any(i.option is not None and i.option.expiry for i in spec.instruments)
    assert b"expiry_time" not in encode_venue(spec) and decode_venue(encode_venue(spec)) == spec
    old = decode_venue(FileJournal.open_reader(DATA / "journal").genesis)   # written before the field existed
    assert all(i.option.expiry_time == "" for i in old.instruments if i.option is not None)


def test_a_named_expiry_time_is_kept_in_the_genesis():
    genesis = FileJournal.open_reader(DATA / "journal").genesis
    spec = decode_venue(genesis)
    dated = next(i for i, s in enumerate(spec.instruments) if s.option is not None and s.option.expiry)
    terms = msgspec.structs.replace(spec.instruments[dated].option, expiry_time="13:05")
    instruments = [*spec.instruments]
    instruments[dated] = msgspec.structs.replace(instruments[dated], option=terms)
    timed = msgspec.structs.replace(spec, instruments=instruments)
    assert encode_venue(timed) != genesis
    assert decode_venue(encode_venue(timed)) == timed


def _engine(put_terms: OptionTerms | None = None) -> MatchingEngine:
    eng = MatchingEngine(risk=True, fee_account=0)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    for spec in DEFAULT_INSTRUMENTS + DEFAULT_OPTIONS:
        if put_terms is not None and spec.symbol == "TSLA.M-20261218-250-P":
            spec = msgspec.structs.replace(spec, option=put_terms)
        eng.add_instrument(spec)
    eng.open_account(1)
    eng.credit(1, [s.symbol for s in DEFAULT_ASSETS].index("USDC"), 10**12)
    return eng


def _buy(eng, iid, ts):
    return eng.new_order(iid, 1, Side.BUY, 50, 90_000, ts=ts)[0]


def test_a_series_with_a_named_time_expires_then_and_its_listed_series_too():
    at = expiry_instant_ns(DATE, "02:30:05")
    eng = _engine(OptionTerms(expiry=DATE, strike="250", right="P", expiry_time="02:30:05"))
    listed = eng.list_series(PUT, RIGHT_CALL, expiry_code(datetime.date(2026, 12, 19)), 2_600_000, 10**6,
                             ts=at - 10**9)[0]
    assert listed.kind == EventKind.SERIES_LISTED
    assert eng.instruments[listed.instrument].option.expiry_time == "02:30:05"
    assert _buy(eng, PUT, at - 1).kind == EventKind.ACCEPTED
    assert _buy(eng, PUT, at).reason == Reject.SERIES_EXPIRED
    assert eng.settle_series(PUT, 2_600_000, ts=at - 1)[0].reason == Reject.NOT_EXPIRED
    assert eng.settle_series(PUT, 2_600_000, ts=at)[0].kind != EventKind.REJECTED
    day_later = at + 86_400 * 10**9
    assert _buy(eng, listed.instrument, day_later - 1).kind == EventKind.ACCEPTED
    assert _buy(eng, listed.instrument, day_later).reason == Reject.SERIES_EXPIRED


def test_without_a_named_time_the_series_expires_at_eight():
    eng = _engine()
    assert _buy(eng, PUT, AT_8 - 1).kind == EventKind.ACCEPTED
    assert _buy(eng, PUT, AT_8).reason == Reject.SERIES_EXPIRED
