"""Stock-token multipliers: one token is ``multiplier`` shares, so the token's
reference is the share price times the multiplier.

Issuers reinvest dividends (a small change) and apply splits (a large one)
through the multiplier, announced ahead with an activation time. The feed keeps
the current and the staged multiplier per asset (``TokenMultiplier``) and asks
``token_reference`` what to do with each share price:

* a share price is multiplied by the multiplier in force when it was observed,
  so a price from before the activation keeps its pre-activation meaning;
* a change of more than ``split_threshold_bps`` is a split: the asset's
  instruments halt from ``halt_before`` ahead of the activation until a fresh
  price arrives, one observed at or after the activation that is within
  ``resume_tolerance_bps`` of the last reference divided by the split ratio.
  Around a split, sources disagree on whether a price is adjusted (a heartbeat
  re-posting Friday's close on Monday morning looks fresh); only an adjusted
  price lets trading resume without a jump in bands, collateral or margin.

A rebasing token listed in shares (settlement/vault.py ``SHARES``, xStocks) is
traded and held in its shares, the raw units before the token's own on-chain
multiplier (token units per share, ``multiplier() / 1e18``): the engine's
reference for it is the price of one whole share unit, which is the token
price times that on-chain multiplier. Give such an asset the multiplier
"stock shares per share unit" = stock shares per token x the on-chain
multiplier. A reinvested dividend raises the on-chain multiplier while the
stock goes ex-dividend, so the share unit's reference moves only by the
return; a split changes the multiplier by its ratio and the stock price by
its inverse, so the reference does not move, and the split halt above waits
for the adjusted stock price as for any token.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from fractions import Fraction
from typing import NamedTuple

import msgspec

from engine.units import BPS, USD_PRICE_SCALE

__all__ = ["FeedAction", "MultiplierRules", "StagedMultiplier", "TokenMultiplier", "TokenReference",
           "token_reference"]


class StagedMultiplier(msgspec.Struct, frozen=True):
    """A multiplier announced to take effect at ``activates_at`` (timezone-aware)."""

    multiplier: Fraction
    activates_at: datetime


class TokenMultiplier(msgspec.Struct, frozen=True, kw_only=True):
    """One asset's multiplier: the one in force, the staged one if any, and the
    last reference published (USD per token; 0 before the first)."""

    asset: str
    current: Fraction
    staged: StagedMultiplier | None = None
    last_reference: Fraction = Fraction(0)

    def __post_init__(self) -> None:
        if self.current <= 0 or (self.staged is not None and self.staged.multiplier <= 0):
            raise ValueError(f"{self.asset}: multipliers must be positive")
        if self.staged is not None and self.staged.activates_at.utcoffset() is None:
            raise ValueError(f"{self.asset}: activation time must be timezone-aware")

    def stage(self, multiplier: Fraction, activates_at: datetime) -> TokenMultiplier:
        """This asset with ``multiplier`` staged for ``activates_at`` (replacing any staged one)."""
        return msgspec.structs.replace(self, staged=StagedMultiplier(Fraction(multiplier), activates_at))

    def multiplier_at(self, instant: datetime) -> Fraction:
        """The multiplier in force at ``instant``."""
        if self.staged is not None and instant >= self.staged.activates_at:
            return self.staged.multiplier
        return self.current


class MultiplierRules(msgspec.Struct, frozen=True, kw_only=True):
    """When a multiplier change is a split, and how long its halt lasts."""

    split_threshold_bps: int = 1000
    halt_before: timedelta = timedelta(minutes=5)
    resume_tolerance_bps: int = 2000

    def __post_init__(self) -> None:
        if self.split_threshold_bps <= 0 or self.resume_tolerance_bps <= 0:
            raise ValueError("split_threshold_bps and resume_tolerance_bps must be positive")
        if self.halt_before < timedelta(0):
            raise ValueError("halt_before must not be negative")


class FeedAction(enum.StrEnum):
    """What the feed process does with the asset's instruments."""

    PUBLISH = "publish"  # send ``reference`` (and open the instruments if they were halted)
    HALT = "halt"        # halt the instruments; send no reference


class TokenReference(NamedTuple):
    """The answer of ``token_reference``: the action, the reference to send
    with PUBLISH (USD per token, exact; ``usd_units`` gives SET_ASSET_PRICE's
    integer) and the asset's updated state, which the feed keeps."""

    action: FeedAction
    reference: Fraction | None
    state: TokenMultiplier
    reason: str

    @property
    def usd_units(self) -> int | None:
        """The reference in USD x 1e8, rounded half to even (None with HALT)."""
        return None if self.reference is None else round(self.reference * USD_PRICE_SCALE)


def token_reference(state: TokenMultiplier, share_price: Fraction, price_time: datetime, now: datetime,
                    rules: MultiplierRules = MultiplierRules()) -> TokenReference:
    """What the feed process must do at ``now`` with a share price observed at
    ``price_time`` (both timezone-aware). Pure: the caller keeps the returned
    state. Once a staged multiplier is in force and its halt (if any) is over,
    it becomes the current one. Call it for every share price and, with the
    last one, on a timer: a split's halt starts at ``activates_at -
    halt_before`` whether or not a price arrives then."""
    if now.utcoffset() is None or price_time.utcoffset() is None:
        raise ValueError("now and price_time must be timezone-aware")
    share_price = Fraction(share_price)
    if share_price <= 0:
        raise ValueError(f"{state.asset}: share price must be positive")
    staged = state.staged
    if staged is not None and _is_split(state.current, staged.multiplier, rules):
        ratio = staged.multiplier / state.current
        if now >= staged.activates_at - rules.halt_before:
            if price_time < staged.activates_at:
                return TokenReference(FeedAction.HALT, None, state,
                                      f"split of {ratio} activates at {staged.activates_at.isoformat()}: "
                                      f"waiting for a price observed after it")
            expected = state.last_reference / staged.multiplier
            if state.last_reference and abs(share_price / expected - 1) * BPS > rules.resume_tolerance_bps:
                return TokenReference(FeedAction.HALT, None, state,
                                      f"split of {ratio}: share price {float(share_price):g} is not adjusted "
                                      f"(expected about {float(expected):g})")
    if staged is not None and price_time >= staged.activates_at:
        state = msgspec.structs.replace(state, current=staged.multiplier, staged=None)
    reference = share_price * state.multiplier_at(price_time)
    state = msgspec.structs.replace(state, last_reference=reference)
    return TokenReference(FeedAction.PUBLISH, reference, state, "")


def _is_split(current: Fraction, staged: Fraction, rules: MultiplierRules) -> bool:
    """Whether going from ``current`` to ``staged`` is a change above the split threshold."""
    return abs(staged / current - 1) * BPS > rules.split_threshold_bps
