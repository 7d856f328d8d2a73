"""Cancel-on-disconnect: a session that asked for it and stops heartbeating for
the configured timeout (600 ms in the test venue) has its account's orders
cancelled; other sessions are left alone."""

from __future__ import annotations

import time

from gateway_harness import ACCOUNTS, AMZN, PX, TICK

from engine.core.types import CancelReason, Side
from engine.schemas import Ack, Cancelled


def _resting(ops, name: str) -> set[int]:
    return {o.order_id for o in ops.open_orders(account=ACCOUNTS[name]).orders}


def test_silent_session_with_cod_is_cancelled(gateway, clients):
    mm, retail, fund, ops = (clients(gateway, n) for n in ("mm", "retail", "fund", "ops"))
    assert mm.logon(cancel_on_disconnect=True).cancel_on_disconnect
    assert retail.logon(cancel_on_disconnect=True).cancel_on_disconnect
    assert not fund.logon().cancel_on_disconnect
    placed = {}
    for name, client in (("mm", mm), ("retail", retail), ("fund", fund)):
        acks = [client.place(AMZN, Side.BUY, 10, PX - (10 + k) * TICK) for k in range(2)]
        assert all(isinstance(a, Ack) for a in acks)
        placed[name] = {a.order_id for a in acks}
    # mm goes silent; retail keeps heartbeating; fund is silent but did not ask for COD
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        retail.heartbeat()
        time.sleep(0.15)
    assert _resting(ops, "mm").isdisjoint(placed["mm"])
    assert placed["retail"] <= _resting(ops, "retail")
    assert placed["fund"] <= _resting(ops, "fund")
    # retail now stops as well
    time.sleep(1.2)
    assert _resting(ops, "retail").isdisjoint(placed["retail"])
    assert placed["fund"] <= _resting(ops, "fund")
    fund.mass_cancel()


def test_reconnected_session_learns_of_the_cancels(gateway, clients):
    mm = clients(gateway, "mm")
    mm.logon(cancel_on_disconnect=True)
    order = mm.place(AMZN, Side.SELL, 10, PX + 40 * TICK)
    time.sleep(1.2)
    watcher = clients(gateway, "mm")  # a new session of the same account sees the state
    assert order.order_id not in {o.order_id for o in watcher.open_orders().orders}
    # the old session comes back: its next request opens a fresh session without COD
    assert isinstance(mm.place(AMZN, Side.SELL, 10, PX + 41 * TICK), Ack)
    time.sleep(1.0)
    assert len(watcher.open_orders().orders) == 1
    mm.mass_cancel()


def test_cod_cancels_reach_the_accounts_other_sessions(gateway, clients):
    trader, monitor = clients(gateway, "fund"), clients(gateway, "fund")
    trader.logon(cancel_on_disconnect=True)
    order = trader.place(AMZN, Side.BUY, 10, PX - 50 * TICK)
    end = time.monotonic() + 1.5
    events = []
    while time.monotonic() < end:
        monitor.heartbeat()
        events += monitor.poll_events(0.1)
    cancels = [e for e in events if isinstance(e, Cancelled)]
    assert [(c.order_id, c.reason) for c in cancels] == [(order.order_id, CancelReason.MASS)]
