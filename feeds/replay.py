"""Replay sources: recorded prices played back at real or accelerated speed on the
injected clock: the mid of a LOBSTER order book (AMZN, AAPL as the reference of
AMZNX, AAPLX) or any CSV of timestamped prices.

A replay is a live feed of the past: the first row is due when the replay starts,
row i at ``start + (t_i - t_0) / speed``, and each update carries the time it
became due, so staleness rules apply to a replay as to a live source.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec

from feeds.update import NS_PER_SECOND, MarketStatus, PriceUpdate, usd_units

NEW_YORK = ZoneInfo("America/New_York")

LOBSTER_TO_USD_UNITS = 10_000
"""LOBSTER prices are USD x 1e4; USD x 1e8 is 1e4 times that."""

_LOBSTER_EMPTY = 9_999_999_999   # LOBSTER's price of an empty level (negated on the bid side)


class Tick(msgspec.Struct, frozen=True, array_like=True):
    """One recorded price: when (ns since the epoch), USD x 1e8, confidence, market status."""

    timestamp: int
    price: int
    confidence: int = 0
    market: MarketStatus = MarketStatus.UNKNOWN


class Replay:
    """A Source playing ``ticks`` (oldest first) from ``start`` (ns) at ``speed`` x real time."""

    def __init__(self, name: str, asset: str, ticks: Sequence[Tick], *, start: int, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"{name}: replay speed must be positive, not {speed}")
        if any(b.timestamp < a.timestamp for a, b in zip(ticks, ticks[1:])):
            raise ValueError(f"{name}: ticks are not in time order")
        self.name = name
        self.asset = asset
        self.ticks = list(ticks)
        self.start = start
        self.speed = Fraction(speed)
        self._next = 0

    def due(self, index: int) -> int:
        """When tick ``index`` is played, ns since the epoch."""
        return self.start + int((self.ticks[index].timestamp - self.ticks[0].timestamp) / self.speed)

    @property
    def exhausted(self) -> bool:
        """Whether every tick has been played."""
        return self._next >= len(self.ticks)

    def poll(self, now: int) -> list[PriceUpdate]:
        """The ticks due by ``now``, stamped with their due time."""
        out = []
        while self._next < len(self.ticks) and self.due(self._next) <= now:
            tick = self.ticks[self._next]
            out.append(PriceUpdate(asset=self.asset, price=tick.price, confidence=tick.confidence,
                                   timestamp=self.due(self._next), source=self.name, market=tick.market))
            self._next += 1
        return out


def _open_text(path: Path):
    return gzip.open(path, "rt", newline="") if path.suffix == ".gz" else open(path, newline="")  # noqa: SIM115


def lobster_mids(message_path: str | Path, orderbook_path: str | Path, day: date | None = None) -> list[Tick]:
    """The mid (confidence: half the spread) of a LOBSTER book after each message that
    changes it, timestamped in New York time on ``day`` (default: the date in the file
    name, as LOBSTER names its files). Rows with an empty side are skipped."""
    message_path, orderbook_path = Path(message_path), Path(orderbook_path)
    if day is None:
        found = re.search(r"_(\d{4}-\d{2}-\d{2})_", message_path.name)
        if found is None:
            raise ValueError(f"{message_path.name}: no date in the file name; pass day=")
        day = date.fromisoformat(found.group(1))
    midnight = datetime.combine(day, time(), NEW_YORK)
    midnight_ns = int(midnight.timestamp()) * NS_PER_SECOND
    ticks: list[Tick] = []
    with _open_text(message_path) as messages, _open_text(orderbook_path) as books:
        for message, book in zip(csv.reader(messages), csv.reader(books), strict=True):
            ask, bid = int(book[0]), int(book[2])
            if ask >= _LOBSTER_EMPTY or bid <= -_LOBSTER_EMPTY:
                continue
            price = (ask + bid) * LOBSTER_TO_USD_UNITS // 2
            if ticks and ticks[-1].price == price:
                continue
            seconds = Decimal(message[0])   # seconds after midnight, to the nanosecond
            ticks.append(Tick(midnight_ns + int(seconds * NS_PER_SECOND), price,
                              (ask - bid) * LOBSTER_TO_USD_UNITS // 2, MarketStatus.OPEN))
    return ticks


def csv_ticks(path: str | Path) -> list[Tick]:
    """Ticks of a CSV file with a header: ``timestamp`` (ISO 8601 with a zone, or Unix
    seconds), ``price`` (decimal USD), optionally ``confidence`` (decimal USD) and
    ``market`` (open / closed / halted / unknown)."""
    path = Path(path)
    ticks = []
    with _open_text(path) as stream:
        for line, row in enumerate(csv.DictReader(stream), start=2):
            try:
                ticks.append(Tick(_timestamp(row["timestamp"]), usd_units(row["price"]),
                                  usd_units(row["confidence"]) if row.get("confidence") else 0,
                                  MarketStatus(row.get("market") or "unknown")))
            except (KeyError, ValueError, ArithmeticError) as err:
                raise ValueError(f"{path}:{line}: {err}") from err
    return ticks


def _timestamp(text: str) -> int:
    try:
        return int(Decimal(text) * NS_PER_SECOND)
    except ArithmeticError:
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
