"""Rate limits of a session: token buckets over real time for messages, requests
and answered query items, so one client cannot take the loop from the others.
The buckets belong to the session's principal (engine/gateway/sessions.py)."""

from __future__ import annotations

import time

from engine.config import GatewaySection, RateOverrides
from engine.schemas import GetBook, GetOpenOrders, Heartbeat, Logon

UNMETERED_QUERIES = (Heartbeat, Logon)
"""Queries that cost no query items (they keep a session alive; the message rates bound them)."""


class Bucket:
    """A token bucket: ``rate`` tokens a second, holding at most one second's worth."""

    __slots__ = ("rate", "tokens", "at")

    def __init__(self, rate: int, now: float) -> None:
        self.rate = rate
        self.tokens = float(rate)
        self.at = now

    def _refill(self, now: float) -> float:
        self.tokens = min(float(self.rate), self.tokens + (now - self.at) * self.rate)
        self.at = now
        return self.tokens

    def take(self, n: int, now: float) -> bool:
        """Take ``n`` tokens if there are that many; False (taking none) otherwise."""
        if self._refill(now) < n:
            return False
        self.tokens -= n
        return True

    def spend(self, n: int, now: float) -> bool:
        """Take ``n`` tokens if the bucket is out of debt (it may go into debt
        doing so); False, taking none, if it is in debt."""
        if self._refill(now) <= 0:
            return False
        self.tokens -= n
        return True

    def charge(self, n: int, now: float) -> None:
        """Take ``n`` tokens after the fact (a cost known only once paid); the
        bucket may go into debt, which refusals then pay back."""
        self._refill(now)
        self.tokens -= n

    def has_credit(self, now: float) -> bool:
        """Whether the bucket is out of debt."""
        return self._refill(now) > 0


class SessionLimits:
    """The buckets of one principal's sessions: messages, requests, answered query
    items, at the [gateway] rates or the principal's account's own."""

    __slots__ = ("messages", "requests", "query_items", "max_book_levels", "max_page_orders")

    def __init__(self, limits: GatewaySection, overrides: RateOverrides = RateOverrides()) -> None:
        now = time.monotonic()
        rates = overrides.over(limits)
        self.messages = Bucket(rates["max_messages_per_s"], now)
        self.requests = Bucket(rates["max_requests_per_s"], now)
        self.query_items = Bucket(rates["max_query_items_per_s"], now)
        self.max_book_levels = limits.max_book_levels
        self.max_page_orders = limits.max_page_orders

    def query_cost(self, query) -> int:
        """What a query is charged when it is read: one item, and for a book the
        levels it asks for on both sides, for a page of open orders its size;
        its answer settles the difference."""
        if type(query) is GetBook:
            return 1 + 2 * min(max(query.levels, 0), self.max_book_levels)
        if type(query) is GetOpenOrders:
            return 1 + min(max(query.limit, 0), self.max_page_orders)
        return 1

    def query_refusal(self) -> str:
        """Why a query (or a message on the general path) is refused while the items are in debt."""
        return f"more than {self.query_items.rate} query items a second"

    def admit(self, requests: int, now: float) -> str:
        """Take one message of ``requests`` requests; "" if admitted, else why not."""
        if not self.messages.take(1, now):
            return f"more than {self.messages.rate} messages a second"
        if not self.requests.take(requests, now):
            return f"more than {self.requests.rate} requests a second"
        return ""
