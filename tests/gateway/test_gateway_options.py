"""Options through a real gateway process: an option series in the config,
margin queries, the margin-call query and a liquidation by an operator, the
rejects of each new request, and recovery of positions after a restart."""

from __future__ import annotations

import pytest
from gateway_harness import ACCOUNTS, PUT_SPEC, TSLA, venue_doc, write_venue

from engine.core.order_info import PositionInfo
from engine.core.types import Reject as Code
from engine.core.types import Side
from engine.gateway.process import GatewayProcess
from engine.schemas import (
    Ack,
    Fill,
    GatewayReject,
    Instruments,
    Liquidated,
    Margin,
    MarginCall,
    MarginCalls,
    OptionRiskSet,
    Reject,
)

PUT = 3                    # instrument id of the option series below
TSLA_ASSET = 2
E8 = 10**8
PUT_MARK = 146_200         # $14.62 per contract in price units of $0.0001
PUT_IM, PUT_MM = 52_130_000, 39_630_000   # USD x 1e8 per 0.01 contract: $52.13 / $39.63 per contract
@pytest.fixture(scope="module")
def venue(tmp_path_factory, keys):
    """The test venue with TSLA.M priced ($250, 30% haircut) and the put added."""
    directory = tmp_path_factory.mktemp("options")
    base = venue_doc(keys, directory / "journal")
    base["assets"][TSLA_ASSET] = {**base["assets"][TSLA_ASSET], "haircut_bps": 3_000, "usd_price": "250"}
    return write_venue(directory, keys, assets=base["assets"], instruments=base["instruments"] + [PUT_SPEC]), directory


def test_option_series_margin_call_and_liquidation(venue, clients):
    path, directory = venue
    poor = ACCOUNTS["poor"]
    with GatewayProcess(path, directory / "gateway.log") as gw:
        ops, mm, retail, holder = (clients(gw, n) for n in ("ops", "mm", "retail", "poor"))
        info = ops.instruments()
        assert isinstance(info, Instruments)
        put = info.instruments[PUT]
        assert (put.symbol, put.expiry, put.strike, put.right, put.reference) == (
            "TSLA.M-20261218-250-P", "2026-12-18", "250", "P", PUT_MARK)
        assert info.instruments[TSLA].expiry == ""

        # The holder pledges 100 TSLA.M ($17,500 after the 30% haircut) and sells 100 puts.
        assert ops.credit(poor, TSLA_ASSET, 100 * 10**6, deposit_id=1).total == 100 * 10**6
        assert isinstance(mm.place(PUT, Side.BUY, 30_000, PUT_MARK), Ack)
        too_many = holder.place(PUT, Side.SELL, 40_000, PUT_MARK)        # $20,852 initial margin
        assert isinstance(too_many, Reject) and too_many.code == Code.INSUFFICIENT_MARGIN
        assert "initial margin" in too_many.text
        assert isinstance(holder.place(PUT, Side.SELL, 10_000, PUT_MARK), Ack)
        gross = 10_000 * (PUT_MARK // 100) * 100                        # USDC ledger units
        premium = gross - gross * 3 // 10_000                            # less the taker fee
        collateral = 17_501 * E8 + premium * 100                         # TSLA.M less haircut, USDC 1 + premium
        margin = holder.margin()
        assert margin == Margin(margin.request_id, poor, collateral, collateral, 10_000 * PUT_IM,
                                10_000 * PUT_MM, [PositionInfo(PUT, -10_000, 0, 0, -gross)])   # cost: received
        denied = retail.margin(poor)
        assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED
        assert ops.margin_calls().accounts == []
        early = ops.liquidate(poor)
        assert isinstance(early, Reject) and early.code == Code.NOT_UNDER_MAINTENANCE

        # TSLA.M falls and the feed re-marks the put: the holder is under maintenance.
        assert ops.set_asset_price(TSLA_ASSET, 150 * E8).price == 150 * E8
        assert ops.set_reference(TSLA, 1_500_000).price == 1_500_000
        assert ops.set_reference(PUT, 993_800).price == 993_800
        risk = ops.set_option_risk(PUT, 200_000_000, 150_000_000)
        assert isinstance(risk, OptionRiskSet) and (risk.initial, risk.maintenance) == (200_000_000, 150_000_000)
        calls = ops.margin_calls()
        assert isinstance(calls, MarginCalls)
        assert calls.accounts == [MarginCall(poor, 10_501 * E8 + premium * 100, 10_000 * 150_000_000)]
        for who in (retail, holder):
            denied = who.margin_calls()
            assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED
            denied = who.liquidate(poor)
            assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED

        # Liquidity inside the bands, then the operator liquidates.
        assert isinstance(mm.place(TSLA, Side.BUY, 100_000, 1_490_000), Ack)
        assert isinstance(mm.place(PUT, Side.SELL, 30_000, 1_000_000), Ack)
        holder.poll_events(0.2)
        done = ops.liquidate(poor)
        assert isinstance(done, Liquidated) and done.account == poor and done.orders == 2
        assert (done.maintenance, done.collateral) == (calls.accounts[0].maintenance, calls.accounts[0].collateral)
        heard = holder.poll_events(1.0)
        assert any(isinstance(e, Liquidated) for e in heard)            # the account hears of it
        fills = [e for e in heard if isinstance(e, Fill)]
        assert {f.instrument for f in fills} == {TSLA, PUT}
        assert all(1_350_000 <= f.price <= 1_650_000 for f in fills if f.instrument == TSLA)
        assert all(f.price <= 1_192_500 for f in fills if f.instrument == PUT)
        after = holder.margin()
        assert (after.maintenance, after.positions) == (0, [])
        assert ops.margin_calls().accounts == []
        refused = ops.liquidate(ACCOUNTS["retail"])
        assert isinstance(refused, Reject) and refused.code == Code.NOT_UNDER_MAINTENANCE

        for bad, code in (((TSLA, 2, 1), Code.NOT_AN_OPTION), ((PUT, 1, 2), Code.INVALID_MARGIN),
                          ((PUT, 0, 0), Code.INVALID_MARGIN), ((99, 2, 1), Code.UNKNOWN_INSTRUMENT)):
            rejected = ops.set_option_risk(*bad)
            assert isinstance(rejected, Reject) and rejected.code == code, bad
        denied = mm.set_option_risk(PUT, 2, 1)
        assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED
        mm_margin = mm.margin()
        assert mm_margin.positions == [PositionInfo(PUT, 0, 20_000, 0)]   # bought 100, sold them back, 200 offered
        state = ops.status().state_hash

    # A restart recovers positions and margins from the journal.
    with GatewayProcess(path, directory / "gateway2.log") as gw:
        ops, mm = clients(gw, "ops"), clients(gw, "mm")
        assert ops.status().state_hash == state
        again = mm.margin()
        assert (again.positions, again.initial, again.collateral) == (
            mm_margin.positions, mm_margin.initial, mm_margin.collateral)
