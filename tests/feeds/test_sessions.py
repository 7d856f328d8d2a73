"""US market sessions (feeds/sessions.py) and their policy (feeds/session_policy.py):
transitions at the exact times exchange_calendars gives, a holiday, an early
close, both DST changes, the policy table and the liquidation gate."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars
import pandas as pd
import pytest

from feeds.session_policy import HoldBack, SessionPolicies, SessionPolicy, liquidation_gate, policy_at
from feeds.sessions import ExtendedHours, Session, SessionCalendar

NEW_YORK = ZoneInfo("America/New_York")
START, END = date(2026, 1, 1), date(2026, 12, 31)


@pytest.fixture(scope="module")
def calendar():
    return SessionCalendar("XNYS", START, END)


@pytest.fixture(scope="module")
def xnys():
    """The library's own calendar, the source of truth for opens and closes."""
    return exchange_calendars.get_calendar("XNYS", start=pd.Timestamp(START), end=pd.Timestamp(END))


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def ny(*args):
    return datetime(*args, tzinfo=NEW_YORK)


def walk(calendar, start, end):
    """[(session, since)] of every session that starts in [start, end)."""
    out, t = [], start
    while t < end:
        state = calendar.at(t)
        out.append((state.session, state.since))
        t = state.next_change
    return out


def assert_transition(calendar, instant, before, after):
    """``before`` up to the microsecond before ``instant``, ``after`` from it on."""
    just_before = calendar.at(instant - timedelta(microseconds=1))
    assert just_before.session is before
    assert just_before.next_change == instant and just_before.next_session is after
    state = calendar.at(instant)
    assert state.session is after and state.since == instant


def test_ordinary_day_transitions_at_the_calendars_open_and_close(calendar, xnys):
    day = pd.Timestamp("2026-11-25")  # a Wednesday in EST
    opens, closes = xnys.session_open(day).to_pydatetime(), xnys.session_close(day).to_pydatetime()
    assert (opens, closes) == (utc(2026, 11, 25, 14, 30), utc(2026, 11, 25, 21, 0))
    assert_transition(calendar, ny(2026, 11, 24, 20), Session.POST, Session.OVERNIGHT)
    assert_transition(calendar, ny(2026, 11, 25, 4), Session.OVERNIGHT, Session.PRE)
    assert_transition(calendar, opens, Session.PRE, Session.REGULAR)
    assert_transition(calendar, closes, Session.REGULAR, Session.POST)


def test_thanksgiving_holiday_is_closed_then_early_close(calendar, xnys):
    assert not xnys.is_session(pd.Timestamp("2026-11-26"))
    early_close = xnys.session_close(pd.Timestamp("2026-11-27")).to_pydatetime()
    assert early_close == utc(2026, 11, 27, 18, 0)  # 13:00 New York
    assert walk(calendar, ny(2026, 11, 25, 16), ny(2026, 11, 30, 9, 30)) == [
        (Session.POST, ny(2026, 11, 25, 16)),
        (Session.CLOSED, ny(2026, 11, 25, 20)),       # Thanksgiving eve: no overnight session
        (Session.OVERNIGHT, ny(2026, 11, 26, 20)),    # the night before Friday's session
        (Session.PRE, ny(2026, 11, 27, 4)),
        (Session.REGULAR, ny(2026, 11, 27, 9, 30)),
        (Session.POST, early_close),
        (Session.CLOSED, ny(2026, 11, 27, 17)),       # post lasts four hours after the early close
        (Session.OVERNIGHT, ny(2026, 11, 29, 20)),    # Sunday night before Monday
        (Session.PRE, ny(2026, 11, 30, 4)),
    ]
    assert calendar.at(ny(2026, 11, 26, 12)).session is Session.CLOSED
    assert_transition(calendar, early_close, Session.REGULAR, Session.POST)


@pytest.mark.parametrize(("day", "open_utc_hour"), [
    (date(2026, 3, 6), 14), (date(2026, 3, 9), 13),    # DST starts Sunday 2026-03-08
    (date(2026, 10, 30), 13), (date(2026, 11, 2), 14),  # DST ends Sunday 2026-11-01
])
def test_regular_open_follows_new_york_across_dst(calendar, xnys, day, open_utc_hour):
    opens = xnys.session_open(pd.Timestamp(day)).to_pydatetime()
    assert opens == utc(day.year, day.month, day.day, open_utc_hour, 30)
    assert_transition(calendar, opens, Session.PRE, Session.REGULAR)


def test_dst_weekends_keep_local_times(calendar):
    # Spring: Sunday 20:00 EDT is 00:00 UTC Monday; the Friday before closed at 21:00 UTC (EST).
    assert_transition(calendar, utc(2026, 3, 9, 0), Session.CLOSED, Session.OVERNIGHT)
    assert_transition(calendar, utc(2026, 3, 7, 1), Session.POST, Session.CLOSED)
    assert_transition(calendar, utc(2026, 3, 9, 8), Session.OVERNIGHT, Session.PRE)
    # Autumn: Friday post ends at 20:00 EDT (00:00 UTC), Sunday night starts at 20:00 EST (01:00 UTC).
    assert_transition(calendar, utc(2026, 10, 31, 0), Session.POST, Session.CLOSED)
    assert_transition(calendar, utc(2026, 11, 2, 1), Session.CLOSED, Session.OVERNIGHT)


def test_every_trading_day_matches_the_calendar(calendar, xnys):
    for day in xnys.sessions:
        opens, closes = xnys.session_open(day).to_pydatetime(), xnys.session_close(day).to_pydatetime()
        assert calendar.at(opens).session is Session.REGULAR and calendar.at(opens).since == opens
        assert calendar.at(closes).session is Session.POST and calendar.at(closes).since == closes
    sessions = set(xnys.sessions)
    weekdays_off = [d for d in pd.bdate_range(START, END) if d not in sessions]
    assert len(weekdays_off) == 10  # the NYSE's 2026 holidays
    for day in weekdays_off:
        assert calendar.at(ny(day.year, day.month, day.day, 12)).session is Session.CLOSED


def test_extended_hours_are_configurable():
    calendar = SessionCalendar("XNYS", date(2026, 11, 23), date(2026, 11, 25),
                               ExtendedHours(post_hours=2.0, overnight_start=time(21, 0)))
    assert_transition(calendar, ny(2026, 11, 23, 18), Session.POST, Session.CLOSED)
    assert_transition(calendar, ny(2026, 11, 23, 21), Session.CLOSED, Session.OVERNIGHT)


def test_range_is_explicit_and_checked(calendar):
    with pytest.raises(ValueError, match="outside"):
        calendar.at(utc(2027, 6, 1))
    with pytest.raises(ValueError, match="outside"):
        calendar.at(utc(2025, 6, 1))
    assert calendar.first < utc(2026, 1, 1) and calendar.last > utc(2027, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        calendar.at(datetime(2026, 6, 1))
    with pytest.raises(ValueError, match="before"):
        SessionCalendar("XNYS", date(2026, 2, 1), date(2026, 1, 1))
    with pytest.raises(ValueError, match="1900"):
        SessionCalendar("XNYS", date(1800, 1, 1), date(1800, 2, 1))


# -- policy --


def test_policy_table_by_session(calendar):
    policies = SessionPolicies()
    assert policy_at(calendar, policies, ny(2026, 11, 25, 10)) == SessionPolicy(band_bps=500, haircut_bps=3000)
    assert policy_at(calendar, policies, ny(2026, 11, 25, 23)) == SessionPolicy(band_bps=1000, haircut_bps=4000)
    assert policy_at(calendar, policies, ny(2026, 11, 28, 12)).haircut_bps == 4000
    halted = SessionPolicies(closed=SessionPolicy(band_bps=1000, haircut_bps=4000, halt=True))
    assert policy_at(calendar, halted, ny(2026, 11, 26, 12)).halt
    assert not policy_at(calendar, halted, ny(2026, 11, 27, 3)).halt


@pytest.mark.parametrize(("fields", "match"), [({"band_bps": 0, "haircut_bps": 0}, "band_bps"),
                                                ({"band_bps": 10_000, "haircut_bps": 0}, "band_bps"),
                                                ({"band_bps": 500, "haircut_bps": 10_001}, "haircut_bps")])
def test_policy_rejects_values_the_core_does_not_take(fields, match):
    with pytest.raises(ValueError, match=match):
        SessionPolicy(**fields)


def test_liquidations_wait_for_a_fresh_price_and_the_open_grace(calendar):
    heartbeat, grace = timedelta(minutes=2), timedelta(seconds=60)
    opens = ny(2026, 11, 27, 9, 30)

    def gate(now, price_age=timedelta(seconds=5)):
        return liquidation_gate(now, now - price_age, heartbeat, calendar.at(now), grace)

    assert gate(opens - timedelta(seconds=1)).allowed  # pre-market, fresh price
    assert not gate(opens).allowed
    assert "grace" in gate(opens + timedelta(seconds=59)).reason
    assert gate(opens + grace).allowed
    stale = gate(opens + timedelta(hours=1), price_age=heartbeat + timedelta(seconds=1))
    assert not stale.allowed and "stale" in stale.reason
    assert gate(opens + timedelta(hours=1), price_age=heartbeat).allowed
    assert gate(opens).cause is HoldBack.OPEN_GRACE and stale.cause is HoldBack.STALE
    assert liquidation_gate(opens, opens, heartbeat, None, grace).allowed   # no home market: no grace
    with pytest.raises(ValueError, match="timezone-aware"):
        liquidation_gate(datetime(2026, 11, 27), opens, heartbeat, calendar.at(opens), grace)
