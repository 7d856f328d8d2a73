"""Whether one source's latest update may be used: staleness against the feed's own
heartbeat (feeds differ, from one hour to a day: there is no global age) and a
Pyth-style confidence rule (an interval too wide relative to the price, by a
threshold per feed, is not used)."""

from __future__ import annotations

import msgspec

from engine.units import BPS
from feeds.update import PriceUpdate


class FeedRule(msgspec.Struct, frozen=True, kw_only=True):
    """The acceptance rule of one (asset, source) feed."""

    heartbeat_ns: int            # an update older than this is stale
    max_confidence_bps: int = 0  # confidence / price above this is too wide; 0: no confidence rule


def rejection(update: PriceUpdate, rule: FeedRule, now: int) -> str | None:
    """Why ``update`` may not be used at ``now`` ("stale", "future", "confidence"), or None."""
    if now - update.timestamp > rule.heartbeat_ns:
        return "stale"
    if update.timestamp > now:
        return "future"   # a clock ahead of ours would otherwise stay fresh too long
    if rule.max_confidence_bps and update.confidence * BPS > rule.max_confidence_bps * update.price:
        return "confidence"
    return None
