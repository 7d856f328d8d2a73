"""What a stock token's sources say about its home market, checked against the
exchange calendar.

A source that prices a stock may also say whether its market trades it
(``PriceUpdate.market``). Among the updates a price is made of:

* any one reporting ``halted`` (a LULD pause, a regulatory or news halt of that
  stock) halts the token's instruments, as a halted session does, until none
  reports it any more: trading a token on the last price of a halted stock is
  the thin-book problem the bands exist for;
* ``closed`` while the calendar says the regular session is on is an unscheduled
  closure the calendar does not know (an exchange outage, a closure announced
  after the calendar library's release): the token gets the closed session's
  policy;
* ``open`` outside the regular session is logged, and the calendar's session
  stands: its policy is the wider band and haircut, the safe side.

A disagreement with the calendar is returned as a readable text for the caller
to log and count.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from feeds.sessions import Session
from feeds.update import MarketStatus, PriceUpdate

__all__ = ["MarketView", "market_view"]


class MarketView(NamedTuple):
    """The token's session once its sources are heard, why it halts (None: it does
    not), and how the sources disagree with the calendar (None: they do not)."""

    session: Session | None
    halt: str | None
    disagreement: str | None


def market_view(asset: str, calendar_session: Session | None, updates: Iterable[PriceUpdate]) -> MarketView:
    """The view of ``asset``'s home market from ``updates`` (those its price is made
    of) and the calendar's session (None without a calendar: nothing to check)."""
    said: dict[MarketStatus, list[str]] = {}
    for update in updates:
        said.setdefault(update.market, []).append(update.source)
    halt = None
    if MarketStatus.HALTED in said:
        halt = f"the home market halts {asset} (source {', '.join(sorted(said[MarketStatus.HALTED]))})"
    if calendar_session is None:
        return MarketView(None, halt, None)
    regular = calendar_session is Session.REGULAR
    if regular and MarketStatus.CLOSED in said:
        sources = ", ".join(sorted(said[MarketStatus.CLOSED]))
        return MarketView(Session.CLOSED, halt, f"{sources} report the market closed in the calendar's regular "
                                                f"session: {asset} takes the closed session's policy")
    if not regular and MarketStatus.OPEN in said:
        sources = ", ".join(sorted(said[MarketStatus.OPEN]))
        return MarketView(calendar_session, halt, f"{sources} report the market open in the calendar's "
                                                  f"{calendar_session.value} session: the calendar's stands")
    return MarketView(calendar_session, halt, None)
