"""The liquidator sends a stepwise liquidation (docs/pools.md, the pools'
step_lots) step after step in one run while each step makes progress."""

from __future__ import annotations

import pytest

from engine.schemas import Balances, Liquidated, Margin, MarginCall, MarginCalls, Reject
from feeds.liquidator import LiquidationSettings, Liquidator

SECOND = 10**9


class SteppingClient:
    """One account under maintenance; each LIQUIDATE closes one step of its
    ``steps`` (its maintenance falls by 10 a step), then it is refused, or
    makes no progress from ``stall_at`` on."""

    def __init__(self, steps: int, stall_at: int | None = None) -> None:
        self.maintenance = 10 * steps
        self.stall_at = stall_at
        self.sent = 0

    def margin_calls(self):
        return MarginCalls(1, [MarginCall(1, 0, self.maintenance)] if self.maintenance else [])

    def margin(self, account: int):
        return Margin(1, account, 0, 0, self.maintenance, self.maintenance, [])

    def balances(self, account: int):
        return Balances(1, account, [])

    def liquidate(self, account: int):
        self.sent += 1
        if self.maintenance == 0:
            return Reject(0, 0, 32, "account is not under its maintenance margin")
        reply = Liquidated(self.sent, 0, 1, account, 0, self.maintenance, 1)
        if self.stall_at is None or self.sent < self.stall_at:
            self.maintenance -= 10
        return reply


@pytest.mark.parametrize("steps, per_run, sent, left", [
    (3, 1, 1, 20),        # the default: one step a run, as before
    (3, 10, 4, 0),        # three steps, then the refusal says it is done
    (5, 3, 3, 20),        # at most steps_per_run a run; the next run goes on
])
def test_the_liquidator_keeps_stepping_while_each_step_makes_progress(steps, per_run, sent, left):
    client = SteppingClient(steps)
    liquidator = Liquidator(client, LiquidationSettings(interval_ns=SECOND, steps_per_run=per_run), [], [])
    liquidator.run(0, {})
    assert (client.sent, client.maintenance) == (sent, left)
    assert liquidator.liquidated[1] == min(sent, steps)


def test_the_liquidator_stops_a_run_when_a_step_makes_no_progress():
    client = SteppingClient(5, stall_at=2)
    liquidator = Liquidator(client, LiquidationSettings(interval_ns=SECOND, steps_per_run=10), [], [])
    liquidator.run(0, {})
    assert client.sent == 3 and client.maintenance == 40


def test_steps_per_run_must_be_positive():
    with pytest.raises(ValueError, match="steps per run"):
        LiquidationSettings(steps_per_run=0)
