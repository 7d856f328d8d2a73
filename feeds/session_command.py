"""``python -m feeds session EXCHANGE --at ISO8601``: print the home market's
session at an instant and the next transition, as one JSON object."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from exchange_calendars.errors import CalendarError

from feeds.sessions import SessionCalendar


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of the ``session`` command."""
    parser.add_argument("exchange", help="exchange_calendars code, e.g. XNYS")
    parser.add_argument("--at", required=True, type=iso8601,
                        help="ISO 8601 instant; without an offset it is read as UTC")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Print the session at ``args.at`` as JSON; a bad exchange or instant is a usage error."""
    day = args.at.astimezone(UTC).date()
    try:
        calendar = SessionCalendar(args.exchange, day, day)
        state = calendar.at(args.at)
    except (ValueError, CalendarError) as err:
        parser.error(f"{type(err).__name__}: {err}")
    print(json.dumps({"exchange": args.exchange, "at": args.at.isoformat(), **state.as_json()}))
    return 0


def iso8601(text: str) -> datetime:
    """An ISO 8601 instant, read as UTC when it carries no offset."""
    instant = datetime.fromisoformat(text)
    return instant if instant.utcoffset() is not None else instant.replace(tzinfo=UTC)
