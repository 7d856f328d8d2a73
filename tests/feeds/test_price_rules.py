"""Staleness per feed heartbeat, the confidence rule, and the median with outliers,
against a plain model (Fractions over a sorted list)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.median import combine, median
from feeds.rules import FeedRule, rejection
from feeds.update import PriceUpdate

HOUR = 3600 * 10**9


def _update(price: int, source: str = "s", timestamp: int = 0, confidence: int = 0) -> PriceUpdate:
    return PriceUpdate(asset="AMZNX", price=price, confidence=confidence, timestamp=timestamp, source=source)


def test_staleness_is_per_feed_heartbeat():
    update = _update(100, timestamp=0)
    hourly, daily = FeedRule(heartbeat_ns=HOUR), FeedRule(heartbeat_ns=24 * HOUR)
    assert rejection(update, hourly, HOUR) is None          # exactly one heartbeat old: still fresh
    assert rejection(update, hourly, HOUR + 1) == "stale"
    assert rejection(update, daily, 2 * HOUR) is None
    assert rejection(update, daily, 24 * HOUR + 1) == "stale"
    assert rejection(_update(100, timestamp=5), hourly, 0) == "future"


def test_confidence_rule_threshold_per_feed():
    update = _update(10_000_00000000, confidence=50_00000000)    # $10,000 +- $50: 50 bps
    assert rejection(update, FeedRule(heartbeat_ns=HOUR, max_confidence_bps=50), 0) is None
    assert rejection(update, FeedRule(heartbeat_ns=HOUR, max_confidence_bps=49), 0) == "confidence"
    assert rejection(update, FeedRule(heartbeat_ns=HOUR), 0) is None     # no rule for this feed


def test_two_sources_far_apart_give_no_price():
    result = combine([_update(100, "a"), _update(200, "b")], outlier_bps=100)
    assert result.price is None and result.flagged == ("a", "b")


def _model(prices: list[int], outlier_bps: int) -> tuple[int | None, list[int]]:
    """Median as a Fraction, outliers by exact relative distance, median of the rest floored."""
    def exact_median(values):
        values = sorted(values)
        n = len(values)
        return Fraction(values[n // 2]) if n % 2 else Fraction(values[n // 2 - 1] + values[n // 2], 2)
    centre = int(exact_median(prices))
    kept = [i for i, p in enumerate(prices) if Fraction(abs(p - centre), centre) <= Fraction(outlier_bps, 10_000)]
    if not kept:
        return None, kept
    return int(exact_median([prices[i] for i in kept])), kept


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 10**15), min_size=1, max_size=9), st.integers(0, 5_000))
def test_combine_matches_the_model(prices, outlier_bps):
    updates = [_update(p, f"s{i}", timestamp=i) for i, p in enumerate(prices)]
    result = combine(updates, outlier_bps)
    price, kept = _model(prices, outlier_bps)
    assert result.price == price
    assert result.used == tuple(sorted(f"s{i}" for i in kept))
    assert set(result.used) | set(result.flagged) == {u.source for u in updates}
    if price is not None:
        assert min(prices[i] for i in kept) <= price <= max(prices[i] for i in kept)
        assert result.timestamp == min(kept)


@given(st.lists(st.integers(1, 10**15), min_size=1, max_size=9))
def test_median_is_order_free_and_a_middle_value(prices):
    assert median(prices) == median(list(reversed(prices)))
    below = sum(p <= median(prices) for p in prices)
    assert below >= len(prices) / 2
