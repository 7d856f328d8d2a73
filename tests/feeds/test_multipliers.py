"""Stock-token multipliers (feeds/multipliers.py): the token reference is the
share price times the multiplier in force, and a split halts the asset's
instruments around its activation until an adjusted price arrives, so bands,
collateral values and option margins do not jump."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest

from engine.assets import AssetSpec
from engine.instruments import InstrumentSpec, OptionTerms
from engine.reference.bands import static_band
from engine.reference.margin import asset_value
from feeds.multipliers import FeedAction, MultiplierRules, TokenMultiplier, token_reference
from feeds.options import instrument_option_risk

NEW_YORK = ZoneInfo("America/New_York")


def ny(*args):
    return datetime(*args, tzinfo=NEW_YORK)


AMZNX = AssetSpec(symbol="AMZNX", decimals=18, ledger_decimals=8, haircut_bps=3000)
SPOT = InstrumentSpec(symbol="AMZNX/USDC", base="AMZNX", quote="USDC", price_scale=100, qty_scale=1000,
                      static_band_bps=500, max_price=10**9)
PUT = InstrumentSpec(symbol="AMZNX-20261218-200-P", base="AMZNX", quote="USDC", price_scale=100, qty_scale=1,
                     max_price=10**9, option=OptionTerms(expiry="2026-12-18", strike="200", right="P"))
HOLDING = 10 * 10**AMZNX.ledger_decimals  # ten tokens


def engine_view(reference: Fraction, now: datetime):
    """What the engine derives from a token reference (USD per token): the spot
    pair's static band, the collateral value of ten tokens and a short put's
    initial margin per contract, in the core's integers."""
    usd_units = round(reference * 10**8)
    band = static_band(SPOT, round(reference * SPOT.price_scale))
    margin = instrument_option_risk(PUT, float(reference), 0.35, 0.04, now).initial_per_qty
    return band, asset_value(AMZNX, HOLDING, usd_units), int(margin)


def relative_change(old, new):
    return abs(new - old) / old


def test_two_for_one_split_walks_through_without_jumps():
    activation = ny(2026, 6, 8, 4, 0)  # Monday, before the pre-market
    state = TokenMultiplier(asset="AMZNX", current=Fraction(1))
    published = []  # (now, reference) the feed process sent to the engine

    def feed(share_price, price_time, now):
        nonlocal state
        answer = token_reference(state, Fraction(share_price), price_time, now)
        state = answer.state
        if answer.action is FeedAction.PUBLISH:
            published.append((now, answer.reference))
        return answer

    # Friday's close, before anything is staged.
    assert feed("200", ny(2026, 6, 5, 16), ny(2026, 6, 5, 16, 0, 5)).reference == 200
    state = state.stage(Fraction(2), activation)
    # A weekend heartbeat of Friday's close, well before the halt window: business as usual.
    assert feed("200", ny(2026, 6, 6, 12), ny(2026, 6, 6, 12)).action is FeedAction.PUBLISH
    # Five minutes before the activation the instruments halt.
    halted = feed("200", ny(2026, 6, 7, 12), activation - timedelta(minutes=5))
    assert halted.action is FeedAction.HALT and "waiting" in halted.reason
    # A heartbeat after the activation re-posting the unadjusted close: still halted.
    # Multiplied by the new multiplier it would have doubled the reference.
    stale = feed("200", activation + timedelta(seconds=10), activation + timedelta(seconds=30))
    assert stale.action is FeedAction.HALT and "not adjusted" in stale.reason
    assert state.current == 1 and state.staged is not None
    # The first adjusted price resumes trading with the new multiplier.
    resumed = feed("100.6", activation + timedelta(seconds=50), activation + timedelta(minutes=1))
    assert resumed.action is FeedAction.PUBLISH and resumed.reference == Fraction("201.2")
    assert state.current == 2 and state.staged is None
    feed("101", ny(2026, 6, 8, 9, 30), ny(2026, 6, 8, 9, 30, 1))
    assert [reference for _, reference in published] == [200, 200, Fraction("201.2"), 202]

    views = [engine_view(reference, now) for now, reference in published]
    for (band_a, value_a, margin_a), (band_b, value_b, margin_b) in zip(views, views[1:], strict=False):
        # The share moved 1% at most between updates: so do the engine's numbers.
        assert relative_change(band_a[0], band_b[0]) <= 0.01 and relative_change(band_a[1], band_b[1]) <= 0.01
        assert relative_change(value_a, value_b) <= 0.01
        # A short put's margin (premium plus 15% of spot less the out-of-the-money
        # amount) moves a few times faster than spot: 1% of spot is 3% of margin here.
        assert relative_change(margin_a, margin_b) <= 0.05
    # Without the halt, the unadjusted heartbeat at the new multiplier would have
    # moved all three by half or more.
    band_0, value_0, margin_0 = views[0]
    band_x, value_x, margin_x = engine_view(Fraction(200) * 2, activation + timedelta(seconds=30))
    assert band_x[0] > band_0[1] and value_x == 2 * value_0 and relative_change(margin_0, margin_x) > 0.5


def test_small_change_is_not_a_split_and_applies_by_observation_time():
    # A dividend reinvested: 1 token becomes 1.004 shares at the activation.
    activation = datetime(2026, 6, 8, 8, tzinfo=UTC)
    state = TokenMultiplier(asset="AAPLX", current=Fraction(1)).stage(Fraction("1.004"), activation)
    before = token_reference(state, Fraction(250), activation - timedelta(seconds=1), activation)
    assert before.action is FeedAction.PUBLISH and before.reference == 250  # observed before: old multiplier
    assert before.state.staged is not None
    after = token_reference(before.state, Fraction(249), activation, activation + timedelta(seconds=1))
    assert after.reference == Fraction(249) * Fraction("1.004")
    assert after.state.current == Fraction("1.004") and after.state.staged is None
    assert after.usd_units == 24_999_600_000
    assert token_reference(after.state, Fraction(1), activation, activation).state.last_reference == Fraction("1.004")


def test_split_threshold_and_halt_window_are_configurable():
    activation = datetime(2026, 6, 8, 8, tzinfo=UTC)
    state = TokenMultiplier(asset="X", current=Fraction(1), last_reference=Fraction(100)).stage(
        Fraction("1.05"), activation)
    price_time = activation - timedelta(hours=1)
    assert token_reference(state, Fraction(100), price_time, activation).action is FeedAction.PUBLISH
    strict = MultiplierRules(split_threshold_bps=400, halt_before=timedelta(minutes=30))
    assert token_reference(state, Fraction(100), price_time, activation - timedelta(minutes=31),
                           strict).action is FeedAction.PUBLISH
    assert token_reference(state, Fraction(100), price_time, activation - timedelta(minutes=30),
                           strict).action is FeedAction.HALT


def test_reverse_split_resumes_on_an_adjusted_price():
    activation = datetime(2026, 6, 8, 8, tzinfo=UTC)
    state = TokenMultiplier(asset="X", current=Fraction(10), last_reference=Fraction(50)).stage(
        Fraction(1), activation)  # 1:10 reverse split: a token holds one share instead of ten
    after = activation + timedelta(seconds=1)
    assert token_reference(state, Fraction(5), after, after).action is FeedAction.HALT
    resumed = token_reference(state, Fraction("50.5"), after, after)
    assert resumed.action is FeedAction.PUBLISH and resumed.reference == Fraction("50.5")


@pytest.mark.parametrize(("make", "match"), [
    (lambda: TokenMultiplier(asset="X", current=Fraction(0)), "positive"),
    (lambda: TokenMultiplier(asset="X", current=Fraction(1)).stage(Fraction(-2), datetime(2026, 1, 1, tzinfo=UTC)),
     "positive"),
    (lambda: TokenMultiplier(asset="X", current=Fraction(1)).stage(Fraction(2), datetime(2026, 1, 1)),
     "timezone-aware"),
    (lambda: MultiplierRules(split_threshold_bps=0), "positive"),
    (lambda: MultiplierRules(halt_before=timedelta(seconds=-1)), "negative"),
    (lambda: token_reference(TokenMultiplier(asset="X", current=Fraction(1)), Fraction(0),
                             datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)), "positive"),
    (lambda: token_reference(TokenMultiplier(asset="X", current=Fraction(1)), Fraction(1),
                             datetime(2026, 1, 1), datetime(2026, 1, 1, tzinfo=UTC)), "timezone-aware"),
])
def test_bad_input_is_rejected_with_a_reason(make, match):
    with pytest.raises(ValueError, match=match):
        make()
