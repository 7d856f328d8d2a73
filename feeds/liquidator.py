"""The venue's liquidator, run by the feed process because the feed process knows
every price's age and the home market's session.

Every ``interval`` it asks the gateway for the accounts under their maintenance
margin (GetMarginCalls) and sends LIQUIDATE for each one whose valuation rests on
prices fit to liquidate on: every asset the account holds, and the underlying and
premium asset of every option series it has a position or orders in, must pass
its gate (``liquidation_gate`` in feeds/session_policy.py: a fresh price, not in
the first seconds of the regular session; and not halted, fed, held by the
engine). An account held back is logged with its reasons and counted by cause;
the next run looks at it again, so it is liquidated once the prices allow.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

import msgspec

from engine.schemas import AssetInfo, Balances, InstrumentInfo, Margin, MarginCalls, Reject
from feeds.session_policy import HoldBack, LiquidationGate
from feeds.update import NS_PER_SECOND

__all__ = ["LiquidationSettings", "Liquidator", "account_assets", "account_holds"]

log = logging.getLogger(__name__)


class LiquidationSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How often the liquidator looks, how long after the regular open it waits, and
    how many steps of a stepwise liquidation (the pools' step_lots, docs/pools.md) it
    sends an account in one run."""

    interval_ns: int = 5 * NS_PER_SECOND
    open_grace: timedelta = timedelta(seconds=60)
    steps_per_run: int = 1

    def __post_init__(self) -> None:
        if self.interval_ns <= 0 or self.open_grace < timedelta(0):
            raise ValueError("the liquidation interval must be positive and the open grace not negative")
        if self.steps_per_run < 1:
            raise ValueError("the liquidation steps per run must be positive")


def account_assets(margin: Margin, balances: Balances, instruments: Mapping[int, InstrumentInfo],
                   assets: Mapping[int, str]) -> set[str]:
    """The asset symbols an account's collateral and requirements depend on: every
    asset it has a balance of, and the underlying and premium asset of each option
    series it holds or has orders in."""
    held = {assets[b.asset] for b in balances.balances if b.total != 0}
    for position in margin.positions:
        inst = instruments[position.instrument]
        held |= {inst.base, inst.quote}
    return held


def account_holds(depends: Iterable[str], gates: Mapping[str, LiquidationGate]) -> list[tuple[str, LiquidationGate]]:
    """The assets (sorted) whose gate holds back a liquidation resting on ``depends``,
    each with its gate; empty when it may run. An asset without a gate has no price
    the feed process answers for."""
    held = []
    for asset in sorted(depends):
        gate = gates.get(asset, LiquidationGate(False, "the feed process has no price for it", HoldBack.NO_FEED))
        if not gate.allowed:
            held.append((asset, gate))
    return held


class Liquidator:
    """Sends LIQUIDATE through ``client`` (an operator) for the accounts under
    maintenance whose prices allow it. ``liquidated`` counts the accepted
    liquidations per account; ``held_back`` counts, per cause, the accounts held
    back (once per run and cause); ``last_held`` says why each account still under
    maintenance was last held back."""

    def __init__(self, client, settings: LiquidationSettings, instruments: Sequence[InstrumentInfo],
                 assets: Sequence[AssetInfo]) -> None:
        self.client = client
        self.settings = settings
        self.instruments = {i.instrument: i for i in instruments}
        self.assets = {a.asset: a.symbol for a in assets}
        self.next_run: int | None = None
        self.liquidated: Counter[int] = Counter()
        self.held_back: Counter[HoldBack] = Counter()
        self.last_held: dict[int, str] = {}

    def due(self, now: int) -> bool:
        """Whether a run is due at ``now`` (ns since the epoch)."""
        return self.next_run is None or now >= self.next_run

    def run(self, now: int, gates: Mapping[str, LiquidationGate]) -> None:
        """Liquidate every account under maintenance whose assets' ``gates`` allow it."""
        self.next_run = now + self.settings.interval_ns
        calls = self.client.margin_calls()
        if not isinstance(calls, MarginCalls):
            log.error("margin calls refused: code %d %s", calls.code, calls.text)
            return
        under = {call.account for call in calls.accounts}
        self.last_held = {account: why for account, why in self.last_held.items() if account in under}
        for call in calls.accounts:
            depends = self._depends(call.account)
            if depends is None:
                continue
            held = account_holds(depends, gates)
            if held:
                why = "; ".join(f"{asset}: {gate.reason}" for asset, gate in held)
                log.warning("account %d is under maintenance (collateral %d < %d) but not liquidated: %s",
                            call.account, call.collateral, call.maintenance, why)
                self.held_back.update({gate.cause for _, gate in held if gate.cause is not None})
                self.last_held[call.account] = why
                continue
            self._liquidate(call.account)

    def _liquidate(self, account: int) -> None:
        """Send LIQUIDATE for ``account`` step after step, at most steps_per_run
        times, while each step shrinks its maintenance margin and it stays under it:
        a stepwise liquidation closes a thin book's worth at a time."""
        before = None
        for step in range(self.settings.steps_per_run):
            reply = self.client.liquidate(account)
            if isinstance(reply, Reject):
                if step == 0:
                    log.error("liquidation of account %d refused: code %d %s", account, reply.code, reply.text)
                return   # after a step, a refusal says the account is back above its maintenance margin
            log.warning("account %d liquidated (collateral %d < maintenance %d): %d closing orders",
                        account, reply.collateral, reply.maintenance, reply.orders)
            self.liquidated[account] += 1
            self.last_held.pop(account, None)
            if reply.orders == 0 or (before is not None and reply.maintenance >= before):
                return   # no progress: the book is empty now, the next run tries again
            before = reply.maintenance

    def _depends(self, account: int) -> set[str] | None:
        """The assets ``account`` depends on; None (logged) if the gateway refuses the queries."""
        margin, balances = self.client.margin(account), self.client.balances(account)
        for reply in (margin, balances):
            if isinstance(reply, Reject):
                log.error("account %d: query refused: code %d %s", account, reply.code, reply.text)
                return None
        return account_assets(margin, balances, self.instruments, self.assets)
