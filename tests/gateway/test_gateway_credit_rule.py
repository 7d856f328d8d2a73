"""An operator Credit must name the vault deposit that backs it: the gateway
refuses a Credit without a deposit id (issue 11, part 3), so no key, not even an
operator's, can create balance that nothing on chain backs."""

from __future__ import annotations

from gateway_harness import ACCOUNTS, USDC

from engine.schemas import Credited, GatewayReject, Reject, reject_text


def test_credit_without_a_deposit_id_is_refused(gateway, clients):
    ops = clients(gateway, "ops")
    before = ops.balances(account=ACCOUNTS["poor"]).balances
    last = ops.status().last_deposit_id
    for deposit_id in (0, -1):
        reply = ops.credit(ACCOUNTS["poor"], USDC, 10**12, deposit_id=deposit_id)
        assert isinstance(reply, Reject), reply
        assert reply.code == GatewayReject.NOT_AUTHORIZED
        assert reply.text.startswith(reject_text(GatewayReject.NOT_AUTHORIZED))
        assert "deposit id" in reply.text
        assert reply.seq == 0          # refused before the engine: nothing sequenced or journaled
    assert ops.balances(account=ACCOUNTS["poor"]).balances == before
    backed = ops.credit(ACCOUNTS["poor"], USDC, 5, deposit_id=last + 1)
    assert isinstance(backed, Credited) and backed.deposit_id == last + 1
