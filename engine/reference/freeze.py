"""Account freezes as plain Python: what FREEZE_ACCOUNT answers and emits, and
which later commands of a frozen account are refused (docs/matching.md,
FREEZE_ACCOUNT). A wallet's exit request on chain freezes its account for good:
its resting orders are cancelled, it places no order, withdraws nothing and is
not liquidated, so nothing of it is left to settle after the freeze; deposits
mined before the request are still credited."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from engine.core.events import Event, OrderInfo
from engine.core.types import CancelReason, CommandKind, EventKind, Reject

__all__ = ["REFUSED_WHEN_FROZEN", "FreezeModel"]

REFUSED_WHEN_FROZEN = frozenset({CommandKind.NEW_ORDER, CommandKind.DEBIT, CommandKind.LIQUIDATE,
                                 CommandKind.FREEZE_ACCOUNT})
"""Commands a frozen account's id refuses with ACCOUNT_IS_FROZEN, once the
command's instrument, account and asset are known to exist (those checks come
first). Cancels and amends find no order of it; credits go through."""


class FreezeModel:
    """The frozen accounts of a risk engine whose accounts are ``accounts``, and
    the events each FREEZE_ACCOUNT must produce."""

    def __init__(self, accounts: Iterable[int], fee_account: int) -> None:
        self.accounts = frozenset(accounts) | {fee_account}
        self.fee_account = fee_account
        self.frozen: set[int] = set()

    def refusal(self, kind: int, account: int) -> int:
        """ACCOUNT_IS_FROZEN if a command of ``kind`` for ``account`` is refused
        because the account is frozen, else 0 (the command goes on to its other checks)."""
        return Reject.ACCOUNT_IS_FROZEN if kind in REFUSED_WHEN_FROZEN and account in self.frozen else 0

    def freeze(self, account: int, open_orders: Sequence[OrderInfo], seq: int, ts: int) -> list[Event]:
        """The events of FREEZE_ACCOUNT for ``account`` whose resting orders are
        ``open_orders`` (by order id), stamped ``seq`` and ``ts``; the account is
        frozen from now on. An unknown account, the fee account (every fill pays
        it) or an account already frozen is refused, changing nothing."""
        if account not in self.accounts:
            reason = Reject.UNKNOWN_ACCOUNT
        elif account == self.fee_account:
            reason = Reject.FEE_ACCOUNT_NOT_FREEZABLE
        else:
            reason = self.refusal(CommandKind.FREEZE_ACCOUNT, account)
        if reason:
            return [Event(seq=seq, ts=ts, kind=EventKind.REJECTED, reason=reason, account=account)]
        self.frozen.add(account)
        # The head counts the cancels that follow it, in order id order.
        events = [Event(seq=seq, ts=ts, kind=EventKind.ACCOUNT_FROZEN, account=account, qty=len(open_orders))]
        events += [Event(seq=seq, ts=ts, kind=EventKind.CANCELLED, reason=CancelReason.FROZEN, side=o.side,
                         instrument=o.instrument, order_id=o.order_id, client_order_id=o.client_order_id,
                         account=account, price=o.price, qty=o.leaves)
                   for o in sorted(open_orders, key=lambda o: o.order_id)]
        return events

    def trades(self, event) -> bool:
        """Whether ``event`` moves a frozen account's balances in a way settlement
        would have to carry after the freeze (an order accepted, a fill, a
        withdrawal, a liquidation): the model says this never happens."""
        if event.kind == EventKind.FILL:
            return event.account in self.frozen or event.maker_account in self.frozen
        return (event.kind in (EventKind.ACCEPTED, EventKind.DEBITED, EventKind.LIQUIDATED)
                and event.account in self.frozen)
