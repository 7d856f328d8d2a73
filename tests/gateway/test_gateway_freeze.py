"""FreezeAccount through a real gateway process: an operator freezes an account
with resting orders (the exit watcher's command when a wallet's exit request is
final); its orders are cancelled and its session told so, its new orders and
withdrawals are refused, a trader key cannot freeze anyone, everyone else keeps
trading, and the freeze survives a crash (journal replay) and a clean restart
(snapshot)."""

from __future__ import annotations

import re

from gateway_harness import ACCOUNTS, AMZN, PX, TICK, TSLA, USDC, write_venue

from engine.core.types import CancelReason, Side
from engine.core.types import Reject as Code
from engine.gateway.process import GatewayProcess
from engine.schemas import Ack, AccountFrozen, Cancelled, GatewayReject, Reject

RETAIL = ACCOUNTS["retail"]
TSLA_PX = 2_500_000


def _refused_as_frozen(reply) -> bool:
    return isinstance(reply, Reject) and reply.code == Code.ACCOUNT_IS_FROZEN and "exit" in reply.text


def _assert_frozen(gw, clients) -> tuple:
    """The frozen account can neither trade nor withdraw; another account still trades."""
    ops, mm, retail, fund = (clients(gw, n) for n in ("ops", "mm", "retail", "fund"))
    assert _refused_as_frozen(retail.place(AMZN, Side.BUY, 10, PX - 5 * TICK))
    assert _refused_as_frozen(ops.debit(RETAIL, USDC, 1))
    assert _refused_as_frozen(ops.freeze_account(RETAIL))
    assert ops.open_orders(account=RETAIL).orders == []
    maker = mm.place(TSLA, Side.SELL, 10, TSLA_PX + TICK)
    assert isinstance(maker, Ack)
    assert isinstance(fund.place(TSLA, Side.BUY, 10, TSLA_PX + TICK), Ack)
    assert maker.order_id not in {o.order_id for o in ops.open_orders(account=ACCOUNTS["mm"]).orders}  # filled
    status = ops.status()
    return status.last_seq, status.state_hash


def test_operator_freezes_an_account_and_the_freeze_survives_restarts(tmp_path, keys, clients):
    path = write_venue(tmp_path, keys)
    gw = GatewayProcess(path, tmp_path / "gateway.log")
    try:
        ops, mm, retail = (clients(gw, n) for n in ("ops", "mm", "retail"))
        resting = [retail.place(AMZN, Side.BUY, 10, PX - k * TICK) for k in (1, 2)]
        resting.append(retail.place(TSLA, Side.SELL, 10, TSLA_PX + 3 * TICK))
        assert all(isinstance(a, Ack) for a in resting)
        mm_order = mm.place(AMZN, Side.SELL, 10, PX + 4 * TICK)
        assert isinstance(mm_order, Ack)

        for denied in (retail.freeze_account(ACCOUNTS["mm"]), mm.freeze_account(RETAIL)):
            assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED
            assert "operator" in denied.text
        assert len(ops.open_orders(account=RETAIL).orders) == 3

        frozen = ops.freeze_account(RETAIL)
        assert isinstance(frozen, AccountFrozen) and (frozen.account, frozen.orders) == (RETAIL, 3)
        told = [e for e in retail.poll_events(1.0) if isinstance(e, Cancelled)]
        while len(told) < 3:
            more = [e for e in retail.poll_events(1.0) if isinstance(e, Cancelled)]
            assert more, f"the frozen account's session was told of {len(told)} cancels, not 3"
            told += more
        assert sorted((e.order_id, e.reason) for e in told) == sorted(
            (a.order_id, CancelReason.FROZEN) for a in resting)
        # The other account's order was not touched.
        assert [o.order_id for o in mm.open_orders().orders] == [mm_order.order_id]
        live = _assert_frozen(gw, clients)
    finally:
        gw.kill()   # a crash: the freeze comes back from the journal alone

    gw = GatewayProcess(path, tmp_path / "gateway.log")
    try:
        ops = clients(gw, "ops")
        status = ops.status()
        assert (status.last_seq, status.state_hash) == live
        live = _assert_frozen(gw, clients)
    finally:
        assert gw.stop() == 0   # clean: the snapshot written at shutdown carries the freeze

    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        status = clients(gw, "ops").status()
        assert (status.last_seq, status.state_hash) == live
        _assert_frozen(gw, clients)
    recoveries = re.findall(r"recovered seq (\d+) .*\(snapshot at (\d+)", (tmp_path / "gateway.log").read_text())
    assert [int(snap) > 0 for _seq, snap in recoveries] == [False, False, True]
