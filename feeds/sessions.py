"""US market sessions of a stock token's home market, from an exchange calendar.

Tokenized stocks trade around the clock; their home market does not. Every
instant falls in one of five sessions (times are the exchange's local time,
America/New_York for XNYS; opens, closes, early closes and holidays come from
``exchange_calendars``):

* ``pre``: a trading day from ``pre_open`` (04:00) to the regular open;
* ``regular``: the regular open to the close (13:00 on an early close);
* ``post``: the close to ``post_hours`` later (16:00-20:00, 13:00-17:00 on an
  early close), the extended-hours session of US brokers;
* ``overnight``: the night before a trading day, from ``overnight_start``
  (20:00) on the eve to ``pre_open``: the Sunday-to-Thursday nights on which
  overnight venues (Blue Ocean ATS) print prices for the next day;
* ``closed``: everything else: weekends and holidays, from the end of the last
  post session before them to 20:00 on the eve of the next trading day (and
  the gap between an early close's post session and 20:00, if a trading day
  follows).

The calendar is built for an explicit date range: nothing depends on when the
module was imported, and an instant outside the range is an error, not a guess.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

import exchange_calendars
import msgspec
import numpy as np
import pandas as pd

__all__ = ["ExtendedHours", "Session", "SessionCalendar", "SessionState"]


_FIRST_YEAR = 1900
"""Before standard time (1883) zoneinfo gives New York's local mean time, and
exchange_calendars' XNYS rules start in 1885: earlier sessions would be fiction."""


_PADDING = timedelta(days=14)
"""Trading days are loaded this far beyond the range asked for, so every instant
of the range lies between two known transitions: longer than any US market
closure since the 1933 bank holiday (after 9/11 the NYSE was shut
for four weekdays)."""


class Session(enum.StrEnum):
    """The session of the home market at an instant."""

    PRE = "pre"
    REGULAR = "regular"
    POST = "post"
    OVERNIGHT = "overnight"
    CLOSED = "closed"


class ExtendedHours(msgspec.Struct, frozen=True, kw_only=True):
    """Where the extended sessions lie around the calendar's regular hours
    (local wall-clock times of the exchange)."""

    pre_open: time = time(4, 0)
    post_hours: float = 4.0
    overnight_start: time = time(20, 0)

    def __post_init__(self) -> None:
        if not 0 < self.post_hours <= 8:
            raise ValueError("post_hours must be in (0, 8]")


class SessionState(NamedTuple):
    """The session at an instant: since when, and what comes next when."""

    session: Session
    since: datetime            # start of this session (UTC)
    next_change: datetime      # when the next session starts (UTC)
    next_session: Session

    def as_json(self) -> dict[str, str]:
        """The state as JSON-ready strings (ISO 8601 times in UTC)."""
        return {"session": self.session.value, "since": self.since.isoformat(),
                "next_change": self.next_change.isoformat(), "next_session": self.next_session.value}


class SessionCalendar:
    """The sessions of one exchange between two dates, as a sorted table of
    transitions that ``at`` searches."""

    def __init__(self, exchange: str, start: date, end: date, hours: ExtendedHours = ExtendedHours()) -> None:
        """Build the transitions around the days ``start`` to ``end`` (inclusive,
        padded by two weeks each side); ValueError if the range is not valid,
        exchange_calendars' errors if the exchange is not known."""
        if start.year < _FIRST_YEAR:
            raise ValueError(f"calendar range starts in {start.year}, before {_FIRST_YEAR}")
        if end < start:
            raise ValueError(f"calendar range ends ({end}) before it starts ({start})")
        calendar = exchange_calendars.get_calendar(
            exchange, start=pd.Timestamp(start - _PADDING), end=pd.Timestamp(end + _PADDING))
        self.exchange = exchange
        zone = ZoneInfo(str(calendar.tz))
        times: list[datetime] = []
        kinds: list[Session] = []

        def add(instant: datetime, session: Session) -> None:
            if times and instant < times[-1]:
                raise ValueError(f"{exchange}: sessions overlap at {instant.isoformat()}")
            # A post session that ends as the next night's overnight starts leaves no closed gap.
            if times and instant == times[-1]:
                times.pop()
                kinds.pop()
            times.append(instant)
            kinds.append(session)

        for day, row in calendar.schedule.iterrows():
            local_day = day.date()
            eve = datetime.combine(local_day - timedelta(days=1), hours.overnight_start, zone)
            opens = row["open"].to_pydatetime()
            closes = row["close"].to_pydatetime()
            add(eve.astimezone(UTC), Session.OVERNIGHT)
            add(datetime.combine(local_day, hours.pre_open, zone).astimezone(UTC), Session.PRE)
            add(opens, Session.REGULAR)
            add(closes, Session.POST)
            add(closes + timedelta(hours=hours.post_hours), Session.CLOSED)
        if not times:
            raise ValueError(f"{exchange} has no trading day between {start} and {end}")
        self._times_ns = np.array([_ns(t) for t in times], dtype=np.int64)
        self._times = times
        self._kinds = kinds

    @property
    def first(self) -> datetime:
        """The earliest instant ``at`` answers (the first overnight session's start)."""
        return self._times[0]

    @property
    def last(self) -> datetime:
        """The end of the last post session; ``at`` answers instants before it."""
        return self._times[-1]

    def at(self, instant: datetime) -> SessionState:
        """The session at the timezone-aware ``instant``; ValueError outside
        ``[first, last)``, where the next transition is unknown."""
        if instant.utcoffset() is None:
            raise ValueError("instant must be timezone-aware")
        if not self.first <= instant < self.last:
            raise ValueError(f"{instant.isoformat()} is outside the {self.exchange} calendar's range "
                             f"[{self.first.isoformat()}, {self.last.isoformat()})")
        i = int(np.searchsorted(self._times_ns, _ns(instant), side="right")) - 1
        return SessionState(self._kinds[i], self._times[i], self._times[i + 1], self._kinds[i + 1])


def _ns(instant: datetime) -> int:
    """Nanoseconds since the epoch, exactly (a float timestamp would round)."""
    delta = instant - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000

