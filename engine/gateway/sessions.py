"""Client sessions: one per ROUTER identity, attributed to a principal by the
ZAP User-Id of its messages, found by identity, by id and by account; each with
the rate limits of its principal (shared by the principal's sessions, so more
connections do not buy more rate) and the replies ZeroMQ would not take yet;
which accounts have a cancel-on-disconnect session (``cod_accounts``, and
``cod_changed`` once that may have changed, for the registry of
engine/gateway/cod_registry.py).

``last_seen`` is on the gateway's observed clock (``Gateway.observed``), not
wall time: silence is measured only over time the loop spent reading input."""

from __future__ import annotations

import itertools
from collections import defaultdict, deque

import msgspec

from engine.config import GatewaySection, Principal
from engine.core.wire import NO_ACCOUNT
from engine.gateway.limits import SessionLimits


class Session:
    """One client connection (ROUTER identity) and what it is allowed to do."""

    __slots__ = ("id", "identity", "user_id", "principal", "last_seen", "cancel_on_disconnect", "limits",
                 "pending", "pending_bytes")

    def __init__(self, sid: int, identity: bytes, user_id: str, principal: Principal, now: float,
                 limits: SessionLimits) -> None:
        self.id = sid
        self.identity = identity
        self.user_id = user_id
        self.principal = principal
        self.last_seen = now
        self.cancel_on_disconnect = False
        self.limits = limits
        self.pending: deque[bytes] = deque()  # reply messages ZeroMQ refused (its queue was full)
        self.pending_bytes = 0

    @property
    def account(self) -> int:
        """The session's trading account, or NO_ACCOUNT."""
        return self.principal.account if self.principal.account is not None else NO_ACCOUNT


class Sessions:
    """The live sessions. ``by_account`` (account -> its sessions) is what the C
    reply router reads to tell an account about events it did not ask for."""

    def __init__(self, principals: list[Principal], limits: GatewaySection) -> None:
        self.principals = {p.user_id: p for p in principals}
        self.limits = limits
        self.limits_by_user: dict[str, SessionLimits] = {}
        self.by_identity: dict[bytes, Session] = {}
        self.by_id: dict[int, Session] = {}
        self.by_account: dict[int, list[Session]] = defaultdict(list)
        self.ids = itertools.count(1)
        self.cod_changed = False  # a session's cancel-on-disconnect was set, or such a session dropped

    def __len__(self) -> int:
        return len(self.by_identity)

    def attribute(self, identity: bytes, user_id: str | None, now: float) -> Session | None:
        """The session of a message from ``identity`` signed ``user_id`` by ZAP,
        opened anew when the identity is new or now speaks for another principal;
        None when the User-Id is not a configured principal."""
        session = self.by_identity.get(identity)
        if session is not None and session.user_id == user_id:
            session.last_seen = now
            return session
        principal = self.principals.get(user_id)
        if principal is None:
            return None
        if session is not None:
            self.drop(session)
        limits = self.limits_by_user.get(user_id)
        if limits is None:
            limits = self.limits_by_user[user_id] = SessionLimits(self.limits, principal.rates)
        session = Session(next(self.ids), identity, user_id, principal, now, limits)
        self.by_identity[identity] = session
        self.by_id[session.id] = session
        if principal.account is not None:
            self.by_account[principal.account].append(session)
        return session

    def act_as(self, session: Session, account: int) -> None:
        """Let an operator's session hear for ``account`` (Logon.account): its
        principal becomes the operator acting for that account."""
        if session.principal.account is not None:
            self.drop(session)
            self.by_identity[session.identity] = session
            self.by_id[session.id] = session
        session.principal = msgspec.structs.replace(session.principal, account=account)
        self.by_account[account].append(session)

    def set_cancel_on_disconnect(self, session: Session, cancel_on_disconnect: bool) -> None:
        """Set whether the session's silence cancels its account's orders (Logon)."""
        session.cancel_on_disconnect = cancel_on_disconnect
        self.cod_changed = True

    def cod_accounts(self) -> frozenset[int]:
        """The accounts with a live cancel-on-disconnect session."""
        return frozenset(s.principal.account for s in self.by_identity.values()
                         if s.cancel_on_disconnect and s.principal.account is not None)

    def drop(self, session: Session) -> None:
        """Forget a session."""
        if session.cancel_on_disconnect:
            self.cod_changed = True
        self.by_identity.pop(session.identity, None)
        self.by_id.pop(session.id, None)
        if session.principal.account is not None:
            peers = self.by_account[session.principal.account]
            if session in peers:
                peers.remove(session)

    def silent_peers(self, session: Session, now: float, silence_s: float) -> list[Session]:
        """The other sessions of ``session``'s principal (an operator acting as an
        account: as that account) with cancel-on-disconnect
        that have sent nothing for more than ``silence_s``."""
        return [s for s in self.by_identity.values()
                if s is not session and s.principal == session.principal and s.cancel_on_disconnect
                and now - s.last_seen > silence_s]

    def expired(self, now: float, timeout_s: float, idle_s: float) -> list[Session]:
        """Sessions silent too long: past ``timeout_s`` with cancel-on-disconnect,
        past ``idle_s`` in any case."""
        return [s for s in self.by_identity.values()
                if (s.cancel_on_disconnect and now - s.last_seen > timeout_s) or now - s.last_seen > idle_s]
