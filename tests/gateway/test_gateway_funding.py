"""Fund through a real gateway process: the operator funds a perpetual series
from its config, the long pays and the short receives, a trader cannot send
Fund, a dated series or a spot book is refused with the engine's code, the
journal keeps the FUNDING_SETTLED events (the settlement job's input), and a
restart and an offline replay rebuild the same state from it."""

from __future__ import annotations

import time

from gateway_harness import ACCOUNTS, PUT_SPEC, TSLA, USDC, venue_doc, write_venue

from engine.core.types import Reject as Code
from engine.core.types import EventKind, Side
from engine.gateway.process import GatewayProcess
from engine.journal import FileJournal
from engine.replay import rebuild
from engine.schemas import Ack, GatewayReject, Reject
from engine.schemas_perpetual import Funded

PERP = 3                        # instrument id: after the three stock books
PERP_SPEC = {**PUT_SPEC, "symbol": "TSLA.M-PERP-250-P",
             "option": {"strike": "250", "right": "P", "funding_period_s": 3_600}}
MARK = 146_200                  # $14.62 a contract, price units


def test_operator_funds_a_perpetual_series_a_trader_cannot(tmp_path, keys, clients):
    doc = venue_doc(keys, tmp_path / "journal")
    path = write_venue(tmp_path, keys, instruments=[*doc["instruments"], PERP_SPEC])
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        ops, mm, trader = (clients(gw, n) for n in ("ops", "mm", "retail"))
        assert isinstance(mm.place(PERP, Side.SELL, 100, MARK), Ack)        # mm short one contract
        assert isinstance(trader.place(PERP, Side.BUY, 100, MARK), Ack)       # retail long it
        assert [p.position for p in trader.margin().positions] == [100]
        denied = trader.fund(PERP, MARK, 0)
        assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED
        for instrument in (TSLA, 99):
            bad = ops.fund(instrument, MARK, 0)
            assert isinstance(bad, Reject) and bad.code in (Code.NOT_PERPETUAL, Code.UNKNOWN_INSTRUMENT)
        bad = ops.fund(PERP, MARK, MARK + 1)
        assert isinstance(bad, Reject) and bad.code == Code.INVALID_FUNDING and "payoff" in bad.text

        assert isinstance(ops.fund(PERP, MARK, 0), Funded)                 # sets the rate
        before = {acct: ops.balances(ACCOUNTS[acct]).balances[USDC].total for acct in ("mm", "retail")}
        time.sleep(0.5)
        funded = ops.fund(PERP, MARK, 0)
        assert isinstance(funded, Funded) and (funded.instrument, funded.mark, funded.payoff) == (PERP, MARK, 0)
        after = {acct: ops.balances(ACCOUNTS[acct]).balances[USDC].total for acct in ("mm", "retail")}
        paid, received = before["retail"] - after["retail"], after["mm"] - before["mm"]
        # Half a second of $14.62 over an hour is about 2,030 units of 1e-6 USDC
        # (more: replies take time); rounding leaves at most one unit between them.
        assert paid > 2_000 and 0 <= paid - received <= 1
        state = ops.status().state_hash

    with GatewayProcess(path, tmp_path / "gateway2.log") as gw:
        assert clients(gw, "ops").status().state_hash == state

    reader = FileJournal.open_reader(tmp_path / "journal")
    stored = [e for batch in reader.read() for e in batch.events if e["kind"] == EventKind.FUNDING_SETTLED]
    assert {(int(e["account"]), int(e["qty"]) > 0) for e in stored} == {(ACCOUNTS["retail"], True),
                                                                       (ACCOUNTS["mm"], False)}
    assert all(e["maker_account"] == 0 for e in stored)          # the fee account: the pool's holder
    assert rebuild(reader, use_snapshot=False, verify=True).engine.state_hash() == state
