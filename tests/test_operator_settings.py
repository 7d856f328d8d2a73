"""Operator SET_BANDS and SET_HAIRCUT (issue 12, per-session settings): band
widths per instrument, run against both engines, and haircuts per asset on
the Cython core, checked against engine/reference/margin.py; both survive a
snapshot and leave the state hash of an engine that never used them alone.

Instruments as in tests/test_matching_rules.py: BANDED (static 10%, dynamic
5%), FREE (no bands), NARROW (static 1%); MID = 1_000_000.
"""

from __future__ import annotations

import msgspec
import pytest
from helpers import BANDED, FREE, MID, cancelled, command_array, events_of, make_engine, reference_set, rejected

from engine.assets import AssetSpec
from engine.core.events import Event
from engine.core.matcher import MatchingEngine
from engine.core.types import REJECT_TEXT, CancelReason, CommandKind, EventKind, Reject, Side, TradingState
from engine.reference.margin import collateral_value

A, B = 1, 2
BUY, SELL = Side.BUY, Side.SELL


def bands_set(*, seq, instrument, static_bps, dynamic_bps) -> Event:
    """A BANDS_SET event: static width in price, dynamic width in qty."""
    return Event(seq=seq, ts=0, kind=EventKind.BANDS_SET, instrument=instrument, price=static_bps, qty=dynamic_bps)


def rest(eng, account, side, price, qty=20, instrument=BANDED) -> int:
    """Place an order that must rest whole; return its order id."""
    events = eng.new_order(instrument, account, side, qty, price=price)
    assert [e.kind for e in events] == [EventKind.ACCEPTED], events
    return events[0].order_id


# -- bands (both engines) --


def test_narrower_static_band_cancels_orders_outside_it_worst_first(eng):
    eng.set_reference_price(BANDED, MID)               # static [900_000, 1_100_000]
    rest(eng, A, BUY, 950_000)                         # 1
    rest(eng, B, BUY, 910_000)                         # 2
    rest(eng, A, SELL, 1_090_000)                      # 3
    rest(eng, B, SELL, 1_040_000)                      # 4: inside the new band
    events = eng.set_bands(BANDED, 500, 200)           # static [950_000, 1_050_000]
    s = eng.last_seq
    assert events == [
        cancelled(seq=s, reason=CancelReason.BAND, order_id=2, account=B, side=BUY, price=910_000, qty=20),
        cancelled(seq=s, reason=CancelReason.BAND, order_id=3, account=A, side=SELL, price=1_090_000, qty=20),
        bands_set(seq=s, instrument=BANDED, static_bps=500, dynamic_bps=200),
    ]
    assert eng.band_widths(BANDED) == (500, 200)
    assert eng.depth(BANDED, 5) == ([(950_000, 20, 1)], [(1_040_000, 20, 1)])
    # The new band holds new orders too.
    assert eng.new_order(BANDED, A, BUY, 20, price=940_000)[0].reason == Reject.PRICE_OUTSIDE_BAND


def test_wider_band_admits_prices_the_old_one_refused(eng):
    eng.set_reference_price(BANDED, MID)
    assert eng.new_order(BANDED, A, BUY, 20, price=850_000)[0].reason == Reject.PRICE_OUTSIDE_BAND
    eng.set_bands(BANDED, 2_000, 500)                  # static [800_000, 1_200_000]
    rest(eng, A, BUY, 850_000)


def test_bands_on_an_instrument_without_bands_and_back_to_none(eng):
    eng.set_reference_price(FREE, MID)
    rest(eng, A, BUY, 500_000, instrument=FREE)
    events = eng.set_bands(FREE, 1_000, 0)             # static [900_000, 1_100_000], no dynamic band
    assert [e.kind for e in events] == [EventKind.CANCELLED, EventKind.BANDS_SET]
    eng.set_bands(FREE, 0, 0)
    rest(eng, A, BUY, 500_000, instrument=FREE)        # no band again


def test_dynamic_band_recentres_on_the_last_trade_with_the_new_width(eng):
    eng.set_reference_price(BANDED, MID)
    rest(eng, A, SELL, MID)
    eng.new_order(BANDED, B, BUY, 20, price=MID)       # last trade MID, dynamic [950_000, 1_050_000]
    rest(eng, A, SELL, 1_040_000)
    eng.set_bands(BANDED, 1_000, 100)                  # dynamic [990_000, 1_010_000]
    events = eng.new_order(BANDED, B, BUY, 20, price=1_040_000, tif=2)
    assert [(e.kind, e.reason) for e in events] == [(EventKind.ACCEPTED, 0), (EventKind.CANCELLED, CancelReason.BAND)]


def test_narrower_static_band_forgets_a_last_trade_outside_it(eng):
    eng.set_reference_price(BANDED, MID)
    rest(eng, A, SELL, 1_080_000)
    eng.new_order(BANDED, B, BUY, 20, price=1_080_000)
    assert eng.instrument_state(BANDED) == (TradingState.OPEN, MID, 1_080_000)
    eng.set_bands(BANDED, 500, 500)                    # static [950_000, 1_050_000]
    assert eng.instrument_state(BANDED) == (TradingState.OPEN, MID, 0)


def test_bands_without_a_reference_take_effect_when_it_comes(eng):
    rest(eng, A, BUY, 950_000)
    assert eng.set_bands(BANDED, 100, 50) == [bands_set(seq=eng.last_seq, instrument=BANDED, static_bps=100,
                                                         dynamic_bps=50)]
    events = eng.set_reference_price(BANDED, MID)      # static [990_000, 1_010_000]
    s = eng.last_seq
    assert events == [cancelled(seq=s, reason=CancelReason.BAND, order_id=1, account=A, side=BUY, price=950_000,
                                qty=20),
                      reference_set(seq=s, instrument=BANDED, price=MID)]


@pytest.mark.parametrize("instrument, static_bps, dynamic_bps, reason", [
    (3, 100, 100, Reject.UNKNOWN_INSTRUMENT), (-1, 100, 100, Reject.UNKNOWN_INSTRUMENT),
    (BANDED, -1, 100, Reject.INVALID_BAND), (BANDED, 10_000, 100, Reject.INVALID_BAND),
    (BANDED, 100, -5, Reject.INVALID_BAND), (BANDED, 100, 10_000, Reject.INVALID_BAND),
])
def test_set_bands_rejects_change_nothing(eng, instrument, static_bps, dynamic_bps, reason):
    eng.set_reference_price(BANDED, MID)
    rest(eng, A, BUY, 910_000)
    seq = eng.last_seq   # a reject under the current last seq must leave the whole state unchanged
    before = eng.state_hash()
    events = eng.set_bands(instrument, static_bps, dynamic_bps, seq=seq)
    assert events == [rejected(seq=seq, reason=reason, instrument=instrument, price=static_bps, qty=dynamic_bps)]
    assert REJECT_TEXT[reason]
    assert eng.state_hash() == before
    assert eng.band_widths(BANDED) == (1_000, 500)


def test_set_bands_as_a_record_equals_the_keyword_call(engine_cls):
    by_keyword, by_record = make_engine(engine_cls), make_engine(engine_cls)
    for eng in (by_keyword, by_record):
        eng.set_reference_price(BANDED, MID)
        rest(eng, A, BUY, 910_000)
    expected = by_keyword.set_bands(BANDED, 500, 100)
    batch = command_array([dict(kind=CommandKind.SET_BANDS, instrument=BANDED, price=500, qty=100)])
    assert events_of(by_record.process(batch)) == expected
    assert by_record.band_widths(BANDED) == by_keyword.band_widths(BANDED) == (500, 100)


def test_changed_bands_survive_a_snapshot_and_other_states_hash_as_before():
    eng = make_engine(MatchingEngine)
    eng.set_reference_price(BANDED, MID)
    rest(eng, A, BUY, 960_000)
    untouched = eng.state_hash()
    same = MatchingEngine.from_snapshot(eng.snapshot())
    assert same.state_hash() == untouched and same.band_widths(BANDED) == (1_000, 500)
    eng.set_bands(BANDED, 500, 100, seq=eng.last_seq)
    changed = eng.state_hash()
    assert changed != untouched
    copy = MatchingEngine.from_snapshot(eng.snapshot())
    assert copy.state_hash() == changed and copy.band_widths(BANDED) == (500, 100)
    for engine in (eng, copy):
        events = engine.new_order(BANDED, B, BUY, 20, price=940_000, seq=engine.last_seq)
        assert events[0].reason == Reject.PRICE_OUTSIDE_BAND
    # Back to the spec's widths: the state hashes as if they had never changed.
    eng.set_bands(BANDED, 1_000, 500, seq=eng.last_seq)
    copy.set_bands(BANDED, 1_000, 500, seq=copy.last_seq)
    assert eng.state_hash() == copy.state_hash() == untouched


# -- haircuts (Cython core: the reference matcher has no accounts) --

USDC = AssetSpec(symbol="USDC", decimals=6, ledger_decimals=6)
TSLA = AssetSpec(symbol="TSLA.M", decimals=18, ledger_decimals=6, haircut_bps=3_000)
ASSETS = (USDC, TSLA)
PRICES = (100_000_000, 400 * 100_000_000 + 33)   # USD x 1e8 per whole token


def priced_engine():
    """A risk engine with USDC and TSLA.M priced, account 1 holding both."""
    eng = MatchingEngine(risk=True)
    for asset in ASSETS:
        eng.add_asset(asset)
    eng.open_account(1)
    eng.credit(1, 0, 1_000_000_007)        # 1,000.000007 USDC
    eng.credit(1, 1, 3_333_333)            # 3.333333 TSLA.M
    for asset, price in enumerate(PRICES):
        eng.set_asset_price(asset, price)
    return eng


@pytest.mark.parametrize("haircut_bps", [0, 1, 3_000, 4_000, 9_999, 10_000])
def test_haircut_change_moves_collateral_value_as_the_reference_says(haircut_bps):
    eng = priced_engine()
    amounts = [total for total, _ in eng.balances(1)]
    assert eng.collateral_value(1) == collateral_value(ASSETS, amounts, PRICES)
    events = eng.set_haircut(1, haircut_bps)
    assert events == [Event(seq=eng.last_seq, ts=0, kind=EventKind.HAIRCUT_SET, asset=1, price=haircut_bps)]
    assert eng.haircut(1) == haircut_bps
    now = (USDC, msgspec.structs.replace(TSLA, haircut_bps=haircut_bps))
    assert eng.collateral_value(1) == collateral_value(now, amounts, PRICES)


@pytest.mark.parametrize("asset, haircut_bps, reason", [
    (2, 100, Reject.UNKNOWN_ASSET), (-1, 100, Reject.UNKNOWN_ASSET),
    (1, -1, Reject.INVALID_HAIRCUT), (1, 10_001, Reject.INVALID_HAIRCUT),
])
def test_set_haircut_rejects_change_nothing(asset, haircut_bps, reason):
    eng = priced_engine()
    seq = eng.last_seq
    before = eng.state_hash()
    events = eng.set_haircut(asset, haircut_bps, seq=seq)
    assert events == [Event(seq=seq, ts=0, kind=EventKind.REJECTED, reason=reason, asset=asset, price=haircut_bps)]
    assert REJECT_TEXT[reason] and eng.state_hash() == before and eng.haircut(1) == 3_000


def test_set_haircut_needs_accounts():
    eng = MatchingEngine()
    eng.add_asset(USDC)
    assert eng.set_haircut(0, 100)[0].reason == Reject.ACCOUNTS_DISABLED


def test_changed_haircut_survives_a_snapshot_and_other_states_hash_as_before():
    eng = priced_engine()
    untouched = eng.state_hash()
    assert MatchingEngine.from_snapshot(eng.snapshot()).state_hash() == untouched
    eng.set_haircut(1, 4_000, seq=eng.last_seq)
    changed = eng.state_hash()
    assert changed != untouched
    copy = MatchingEngine.from_snapshot(eng.snapshot())
    assert copy.state_hash() == changed and copy.haircut(1) == 4_000
    assert copy.collateral_value(1) == eng.collateral_value(1)
    eng.set_haircut(1, 3_000, seq=eng.last_seq)
    assert eng.state_hash() == untouched
