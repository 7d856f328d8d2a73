"""Every reject path through a real gateway: the core's codes (reached through
the wire) and the gateway's own (malformed, unknown request, not authorized,
too large, too many requests). Each reject carries its code and
a readable reason."""

from __future__ import annotations

import msgspec
import pytest
from gateway_harness import ACCOUNTS, AMZN, NVDA, PX, TICK, TSLA, USDC, write_venue

from engine.core.types import OrderType, Side, TimeInForce, TradingState
from engine.core.types import Reject as Code
from engine.gateway.process import GatewayProcess
from engine.schemas import (
    Ack,
    DepositSkipped,
    GatewayReject,
    NewOrder,
    Reject,
    StateChanged,
    reject_text,
)


def _expect(reply, code: int) -> Reject:
    assert isinstance(reply, Reject), reply
    assert reply.code == code, (reply.code, reply.text)
    assert reply.text.startswith(reject_text(code))  # always a readable reason
    return reply


ORDER_REJECTS = [
    ("unknown instrument", dict(instrument=99, side=Side.BUY, qty=10, price=PX), Code.UNKNOWN_INSTRUMENT),
    ("invalid side", dict(instrument=AMZN, side=3, qty=10, price=PX), Code.INVALID_SIDE),
    ("invalid order type", dict(instrument=AMZN, side=Side.BUY, qty=10, price=PX, order_type=9),
     Code.INVALID_ORDER_TYPE),
    ("market GTC", dict(instrument=AMZN, side=Side.BUY, qty=10, order_type=OrderType.MARKET),
     Code.INVALID_TIF),
    ("invalid stp", dict(instrument=AMZN, side=Side.BUY, qty=10, price=PX, stp=7), Code.INVALID_STP),
    ("zero qty", dict(instrument=AMZN, side=Side.BUY, qty=0, price=PX), Code.INVALID_QUANTITY),
    ("off lot", dict(instrument=AMZN, side=Side.BUY, qty=15, price=PX), Code.QUANTITY_OFF_LOT),
    ("below min", dict(instrument=NVDA, side=Side.BUY, qty=10, price=PX), Code.QUANTITY_BELOW_MIN),
    ("above max", dict(instrument=AMZN, side=Side.BUY, qty=2_000_000_000, price=PX), Code.QUANTITY_ABOVE_MAX),
    ("negative price", dict(instrument=AMZN, side=Side.BUY, qty=10, price=-TICK), Code.INVALID_PRICE),
    ("off tick", dict(instrument=AMZN, side=Side.BUY, qty=10, price=PX + 1), Code.PRICE_OFF_TICK),
    ("above max price", dict(instrument=NVDA, side=Side.BUY, qty=20, price=2_000_000_000), Code.PRICE_ABOVE_MAX),
    ("outside band", dict(instrument=AMZN, side=Side.BUY, qty=10, price=2 * PX), Code.PRICE_OUTSIDE_BAND),
    ("no reference", dict(instrument=NVDA, side=Side.BUY, qty=20, order_type=OrderType.MARKET,
                          tif=TimeInForce.IOC), Code.NO_REFERENCE_PRICE),
    ("insufficient balance", dict(instrument=AMZN, side=Side.BUY, qty=1_000, price=PX), Code.INSUFFICIENT_BALANCE),
]


@pytest.mark.parametrize("name, order, code", ORDER_REJECTS, ids=[r[0] for r in ORDER_REJECTS])
def test_order_rejects(gateway, clients, name, order, code):
    client = clients(gateway, "poor" if code == Code.INSUFFICIENT_BALANCE else "retail")
    reply = client.place(**order)
    assert _expect(reply, code).client_order_id != 0
    assert reply.seq > 0  # the core rejected it: sequenced and journaled


def test_unknown_account_for_operator(gateway, clients):
    ops = clients(gateway, "ops")
    _expect(ops.place(AMZN, Side.BUY, 10, PX, account=50), Code.UNKNOWN_ACCOUNT)


def test_post_only_would_take(gateway, clients):
    mm, retail = clients(gateway, "mm"), clients(gateway, "retail")
    ask = mm.place(AMZN, Side.SELL, 100, PX + 5 * TICK)
    _expect(retail.place(AMZN, Side.BUY, 10, PX + 5 * TICK, tif=TimeInForce.POST_ONLY), Code.POST_ONLY_WOULD_TAKE)
    mm.cancel(ask.order_id)


def test_halted_and_closed(gateway, clients):
    ops, retail = clients(gateway, "ops"), clients(gateway, "retail")
    resting = retail.place(TSLA, Side.BUY, 10, 2_400_000)
    for state, code in ((TradingState.HALTED, Code.INSTRUMENT_HALTED), (TradingState.CLOSED, Code.INSTRUMENT_CLOSED)):
        changed = ops.set_state(TSLA, state)
        assert isinstance(changed, StateChanged) and changed.state == state
        _expect(retail.place(TSLA, Side.BUY, 10, 2_500_000), code)
        _expect(retail.amend(resting.order_id, qty=20), code)
    assert isinstance(ops.set_state(TSLA, TradingState.OPEN), StateChanged)
    assert isinstance(retail.place(TSLA, Side.BUY, 10, 2_400_000), Ack)
    retail.mass_cancel(TSLA)


def test_cancel_and_amend_rejects(gateway, clients):
    mm, retail = clients(gateway, "mm"), clients(gateway, "retail")
    mine = mm.place(AMZN, Side.BUY, 100, PX - 40 * TICK)
    _expect(retail.cancel(mine.order_id), Code.NOT_ORDER_OWNER)
    _expect(retail.amend(mine.order_id, qty=50), Code.NOT_ORDER_OWNER)
    _expect(mm.cancel(10**12), Code.UNKNOWN_ORDER)
    _expect(mm.amend(mine.order_id, qty=-10), Code.INVALID_QUANTITY)
    _expect(mm.amend(mine.order_id, price=PX + 3), Code.PRICE_OFF_TICK)
    mm.cancel(mine.order_id)


def test_operator_command_rejects(gateway, clients):
    ops = clients(gateway, "ops")
    _expect(ops.set_state(AMZN, 9), Code.INVALID_STATE)
    _expect(ops.set_state(99, TradingState.HALTED), Code.UNKNOWN_INSTRUMENT)
    _expect(ops.set_reference(AMZN, PX + 7), Code.PRICE_OFF_TICK)
    # credits name their vault deposit (a refused one does not use its id up)
    _expect(ops.credit(ACCOUNTS["retail"], 99, 1_000, deposit_id=1), Code.UNKNOWN_ASSET)
    _expect(ops.credit(ACCOUNTS["retail"], USDC, 0, deposit_id=1), Code.INVALID_AMOUNT)
    _expect(ops.credit(ACCOUNTS["retail"], USDC, 2**62, deposit_id=1), Code.AMOUNT_OVERFLOW)
    _expect(ops.credit(50, USDC, 1_000, deposit_id=1), Code.UNKNOWN_ACCOUNT)
    _expect(ops.debit(ACCOUNTS["poor"], USDC, 10**12), Code.INSUFFICIENT_BALANCE)
    _expect(ops.set_asset_price(USDC, -1), Code.INVALID_PRICE)
    credited = ops.credit(ACCOUNTS["poor"], USDC, 5, deposit_id=1)
    assert (credited.account, credited.asset, credited.amount) == (ACCOUNTS["poor"], USDC, 5)


def test_query_rejects(gateway, clients):
    retail, ops = clients(gateway, "retail"), clients(gateway, "ops")
    _expect(retail.snapshot(99), Code.UNKNOWN_INSTRUMENT)
    _expect(retail.snapshot(AMZN, levels=5_000), GatewayReject.MALFORMED)
    _expect(retail.balances(account=ACCOUNTS["mm"]), GatewayReject.NOT_AUTHORIZED)
    _expect(retail.open_orders(account=ACCOUNTS["mm"]), GatewayReject.NOT_AUTHORIZED)
    _expect(ops.balances(account=50), Code.UNKNOWN_ACCOUNT)
    _expect(ops.open_orders(account=10**6), Code.UNKNOWN_ACCOUNT)
    _expect(ops.balances(), GatewayReject.NOT_AUTHORIZED)  # an operator key without an account
    assert ops.balances(account=ACCOUNTS["mm"]).account == ACCOUNTS["mm"]


def test_not_authorized(gateway, clients):
    retail = clients(gateway, "retail")
    _expect(retail.place(AMZN, Side.BUY, 10, PX, account=ACCOUNTS["mm"]), GatewayReject.NOT_AUTHORIZED)
    _expect(retail.cancel(1, account=ACCOUNTS["mm"]), GatewayReject.NOT_AUTHORIZED)
    _expect(retail.mass_cancel(account=ACCOUNTS["mm"]), GatewayReject.NOT_AUTHORIZED)
    for call in (lambda: retail.set_state(AMZN, TradingState.HALTED), lambda: retail.set_reference(AMZN, PX),
                 lambda: retail.credit(ACCOUNTS["retail"], USDC, 10**9),
                 lambda: retail.set_asset_price(USDC, 10**8), retail.status):
        reply = _expect(call(), GatewayReject.NOT_AUTHORIZED)
        assert "operator" in reply.text and reply.seq == 0
    # withdrawals: a client may request them for its own account only
    reply = _expect(retail.debit(ACCOUNTS["mm"], USDC, 1), GatewayReject.NOT_AUTHORIZED)
    assert "acts for account" in reply.text


def test_client_requests_a_withdrawal_from_its_own_free_balance(gateway, clients):
    retail = clients(gateway, "retail")
    total = retail.balances().balances[USDC].total
    debited = retail.debit(ACCOUNTS["retail"], USDC, 1_000)
    assert type(debited).__name__ == "Debited" and debited.total == total - 1_000
    _expect(retail.debit(ACCOUNTS["retail"], USDC, total), Code.INSUFFICIENT_BALANCE)
    assert retail.balances().balances[USDC].total == total - 1_000


def _raw(client, *frames) -> list:
    client.send_raw(*frames)
    return client.recv(2.0)


def test_malformed_messages(gateway, clients):
    retail = clients(gateway, "retail")
    enc = msgspec.msgpack.encode
    cases = [
        (b"\xc1garbage", GatewayReject.MALFORMED),
        (enc({"not": "a list"}), GatewayReject.MALFORMED),
        (enc([]), GatewayReject.MALFORMED),
        (enc([[1, 5, AMZN, "BUY", 10, PX]]), GatewayReject.MALFORMED),     # wrong type
        (enc([[1, 5, AMZN, 300, 10, PX]]), GatewayReject.MALFORMED),       # side does not fit a byte
        (enc([[1, 5, AMZN, 1, 2**63, PX]]), GatewayReject.MALFORMED),      # qty does not fit int64
        (enc([[1, 5, 2**40, 1, 10, PX]]), GatewayReject.MALFORMED),        # instrument does not fit int32
        (enc([[1, 5, AMZN]]), GatewayReject.MALFORMED),                    # truncated request
        (enc([[1, 5, AMZN, 1, 10, PX, 1, 1, 1, -1, 99]]), GatewayReject.MALFORMED),  # extra field
        (enc([[99, 1, 2]]), GatewayReject.UNKNOWN_REQUEST),
        (enc([["NewOrder", 1]]), GatewayReject.MALFORMED),
        (enc([[11, 1]] * 300), GatewayReject.TOO_MANY_REQUESTS),
        (b"\x00" * 70_000, GatewayReject.MESSAGE_TOO_LARGE),
    ]
    for payload, code in cases:
        replies = _raw(retail, payload)
        assert len(replies) == 1, (payload[:40], replies)
        _expect(replies[0], code)
        assert replies[0].seq == 0
    _expect(_raw(retail, enc([[11, 1]]), b"second frame")[0], GatewayReject.MALFORMED)


def test_bad_request_does_not_spoil_its_neighbours(gateway, clients):
    retail = clients(gateway, "retail")
    good = NewOrder(retail.next_id(), AMZN, Side.BUY, 10, PX - 90 * TICK)
    payload = msgspec.msgpack.encode([msgspec.msgpack.decode(msgspec.msgpack.encode(good)), [99], [11, 7]])
    replies = []
    while len(replies) < 3:
        replies += _raw(retail, payload) if not replies else retail.recv(2.0)
    kinds = sorted(type(r).__name__ for r in replies)
    assert kinds == ["Ack", "Pong", "Reject"]
    reject = next(r for r in replies if isinstance(r, Reject))
    assert reject.code == GatewayReject.UNKNOWN_REQUEST and "request #1" in reject.text
    retail.mass_cancel()


def test_book_full_and_accounts_disabled(tmp_path, keys, clients):
    config = write_venue(tmp_path, keys, venue={"risk": False, "max_orders": 3})
    with GatewayProcess(config, tmp_path / "gateway.log") as gw:
        mm, ops = clients(gw, "mm"), clients(gw, "ops")
        for k in range(3):
            assert isinstance(mm.place(AMZN, Side.BUY, 10, PX - k * TICK), Ack)
        _expect(mm.place(AMZN, Side.BUY, 10, PX - 5 * TICK), Code.BOOK_FULL)
        _expect(ops.credit(ACCOUNTS["mm"], USDC, 100, deposit_id=1), Code.ACCOUNTS_DISABLED)
        _expect(mm.balances(), Code.UNKNOWN_ACCOUNT)


def test_every_request_type_has_a_route():
    """The dispatch table covers the whole protocol: no request falls through
    (the gateway no longer answers NOT_SUPPORTED for a core feature: the core has them all)."""
    from engine.gateway.dispatch import ROUTES, Rule
    from engine.schemas import REQUEST_TYPES

    assert set(ROUTES) == set(REQUEST_TYPES)
    operator_only = {t.__name__ for t, route in ROUTES.items() if route.rule is Rule.OPERATOR}
    assert operator_only == {"SetState", "SetReference", "Credit", "SetAssetPrice", "GetStatus", "SkipDeposit",
                             "SetOptionRisk", "Liquidate", "GetMarginCalls", "FreezeAccount", "SetBands",
                             "SetHaircut", "Fund", "ListChain", "CloseSeries", "PublishGreeks", "Transfer", "GetTransfers",
                             "SweepFees"}


def test_gateway_reject_codes_do_not_collide_with_the_core():
    # UNKNOWN_COMMAND (21) cannot be reached through the wire: the gateway only
    # builds command kinds it knows; an unknown request tag is UNKNOWN_REQUEST.
    assert min(GatewayReject) > max(Code)


def test_deposits_are_credited_exactly_once(tmp_path, keys, clients):
    """The deposit watcher's path through the gateway: credits carry the vault's
    deposit id; replays and gaps are refused; skipped ids are used up."""
    with GatewayProcess(write_venue(tmp_path, keys), tmp_path / "gateway.log") as gw:
        ops = clients(gw, "ops")
        assert ops.status().last_deposit_id == 0
        first = ops.credit(ACCOUNTS["retail"], USDC, 1_000, deposit_id=1)
        assert (first.deposit_id, first.amount) == (1, 1_000)
        _expect(ops.credit(ACCOUNTS["retail"], USDC, 1_000, deposit_id=1), Code.DUPLICATE_DEPOSIT)
        _expect(ops.credit(ACCOUNTS["retail"], USDC, 1_000, deposit_id=3), Code.DEPOSIT_GAP)
        skipped = ops.skip_deposit(2)
        assert isinstance(skipped, DepositSkipped) and skipped.deposit_id == 2
        _expect(ops.skip_deposit(2), Code.DUPLICATE_DEPOSIT)
        assert ops.credit(ACCOUNTS["retail"], USDC, 5, deposit_id=3).deposit_id == 3
        assert ops.status().last_deposit_id == 3
        _expect(clients(gw, "retail").skip_deposit(4), GatewayReject.NOT_AUTHORIZED)
