"""Per-session risk policy for instruments on tokenized stocks: the band width
and collateral haircut (or a halt) each home-market session asks for, and the
rule that keeps liquidations off stale or just-opened prices.

Outside regular hours the token's reference is a thinner or older price, so
the venue trades it in a wider band and lends less against it.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import NamedTuple

import msgspec

from engine.units import BPS
from feeds.sessions import Session, SessionCalendar, SessionState

__all__ = ["HoldBack", "LiquidationGate", "SessionPolicies", "SessionPolicy", "liquidation_gate", "policy_at"]


class SessionPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """What one session asks of instruments on a tokenized stock: the static
    band width and the collateral haircut in basis points, or a halt."""

    band_bps: int
    haircut_bps: int
    halt: bool = False

    def __post_init__(self) -> None:
        # The core takes bands in (0, 10000) and haircuts in [0, 10000].
        if not 0 < self.band_bps < BPS:
            raise ValueError(f"band_bps must be in (0, {BPS}), got {self.band_bps}")
        if not 0 <= self.haircut_bps <= BPS:
            raise ValueError(f"haircut_bps must be in [0, {BPS}], got {self.haircut_bps}")


class SessionPolicies(msgspec.Struct, frozen=True, kw_only=True):
    """The policy of every session (configuration). The defaults: 5% / 30% in
    regular hours, 7.5% / 35% pre- and post-market, 10% / 40% overnight and
    when the market is closed (weekends, holidays)."""

    pre: SessionPolicy = SessionPolicy(band_bps=750, haircut_bps=3500)
    regular: SessionPolicy = SessionPolicy(band_bps=500, haircut_bps=3000)
    post: SessionPolicy = SessionPolicy(band_bps=750, haircut_bps=3500)
    overnight: SessionPolicy = SessionPolicy(band_bps=1000, haircut_bps=4000)
    closed: SessionPolicy = SessionPolicy(band_bps=1000, haircut_bps=4000)

    def of(self, session: Session) -> SessionPolicy:
        """The policy of ``session``."""
        policy: SessionPolicy = getattr(self, session.value)
        return policy


def policy_at(calendar: SessionCalendar, policies: SessionPolicies, instant: datetime) -> SessionPolicy:
    """The policy in force at ``instant`` (timezone-aware, within the calendar's range)."""
    return policies.of(calendar.at(instant).session)


class HoldBack(enum.StrEnum):
    """Why a liquidation is held back (the liquidator counts them by this)."""

    STALE = "stale price"            # no usable price, or one older than its feed allows
    OPEN_GRACE = "open grace"        # the first seconds of the regular session
    HALTED = "halted"                # a split, a session or the home market halts the asset
    NO_FEED = "no feed"              # the feed process neither feeds nor fixes its price
    NOT_HELD = "price not held"      # the engine refused the current price: it values on an older one


class LiquidationGate(NamedTuple):
    """Whether a liquidation may run now, and if not, why (a readable reason and its kind)."""

    allowed: bool
    reason: str
    cause: HoldBack | None = None


def liquidation_gate(now: datetime, price_time: datetime, max_price_age: timedelta,
                     state: SessionState | None, open_grace: timedelta) -> LiquidationGate:
    """Whether liquidations on an asset may run at ``now``: not when its price
    (observed at ``price_time``) is older than ``max_price_age`` (its feed's
    heartbeat), and not in the first ``open_grace`` of the regular session
    (``state`` is the home market's session at ``now``; None for an asset
    without one, such as a crypto asset), when reference prices lag the
    opening auction. Pure: the liquidator (feeds/liquidator.py) supplies every input."""
    if now.utcoffset() is None or price_time.utcoffset() is None:
        raise ValueError("now and price_time must be timezone-aware")
    if max_price_age <= timedelta(0) or open_grace < timedelta(0):
        raise ValueError("max_price_age must be positive and open_grace not negative")
    age = now - price_time
    if age > max_price_age:
        return LiquidationGate(False, f"price is stale: {age.total_seconds():.0f} s old, "
                                      f"the feed allows {max_price_age.total_seconds():.0f} s", HoldBack.STALE)
    if state is None:
        return LiquidationGate(True, "")
    since_open = now - state.since
    if state.session is Session.REGULAR and since_open < open_grace:
        return LiquidationGate(False, f"{since_open.total_seconds():.0f} s after the open, within the "
                                      f"{open_grace.total_seconds():.0f} s grace period", HoldBack.OPEN_GRACE)
    return LiquidationGate(True, "")
