"""The main pool through a real gateway process: a provider deposits and is paid
shares from the pool's pre-minted supply, requests a redemption, is refused
before the cooldown with a readable reason and paid after it; bad requests are
refused with the core's codes; another key cannot act for the provider; the
gateway samples the NAV on its clock; the journal keeps the POOL_PAID events
and an offline replay rebuilds the state."""

from __future__ import annotations

import time

from gateway_harness import ACCOUNTS, USDC, venue_doc, write_venue

from engine.core.types import CommandKind, EventKind
from engine.core.types import Reject as Code
from engine.gateway.process import GatewayProcess
from engine.journal import FileJournal
from engine.replay import rebuild
from engine.schemas import GatewayReject, Reject
from engine.schemas_pools import PoolPaid, RedemptionRequested

POOL_ACCOUNT = 5
SHARE = 4                       # asset id: after the four assets of the test venue
COOLDOWN_S = 1


def _venue(tmp_path, keys):
    doc = venue_doc(keys, tmp_path / "journal")
    assets = [*doc["assets"], {"symbol": "MPS", "decimals": 6, "ledger_decimals": 6}]
    accounts = [*doc["accounts"], {"id": POOL_ACCOUNT, "name": "pool", "credit": {"MPS": "1000000000"}}]
    pools = {"main_account": POOL_ACCOUNT,
             "main": {"asset": "USDC", "share_asset": "MPS", "nav_window": 4, "cooldown_s": COOLDOWN_S,
                      "withdrawal_fee_bps": 10, "equity_multiplier_bps": 20_000, "nav_sample_s": 1}}
    return write_venue(tmp_path, keys, assets=assets, accounts=accounts, pools=pools)


def test_a_provider_deposits_and_redeems_through_the_gateway(tmp_path, keys, clients):
    path = _venue(tmp_path, keys)
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        ops, fund, retail = (clients(gw, n) for n in ("ops", "fund", "retail"))
        paid = fund.pool_deposit(SHARE, 1_000 * 10**6)
        assert [type(p) for p in paid] == [PoolPaid, PoolPaid]
        assert [(p.asset, p.amount) for p in paid] == [(USDC, 1_000 * 10**6), (SHARE, -1_000 * 10**6)]
        assert fund.balances().balances[SHARE].total == 1_000 * 10**6

        for bad, code in ((fund.pool_deposit(SHARE, 0), Code.INVALID_AMOUNT),
                          (fund.pool_deposit(USDC, 10), Code.NOT_A_POOL),
                          (fund.pool_redeem(SHARE, 10**12), Code.INSUFFICIENT_BALANCE),
                          (fund.pool_execute(SHARE, 77), Code.UNKNOWN_REDEMPTION)):
            assert isinstance(bad, Reject) and bad.code == code, bad
        denied = retail.pool_redeem(SHARE, 10, account=ACCOUNTS["fund"])
        assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED

        request = fund.pool_redeem(SHARE, 400 * 10**6)
        assert isinstance(request, RedemptionRequested) and request.shares == 400 * 10**6
        early = fund.pool_execute(SHARE, request.redemption)
        assert isinstance(early, Reject) and early.code == Code.POOL_COOLDOWN and "cooldown" in early.text
        time.sleep(COOLDOWN_S + 0.2)
        done = fund.pool_execute(SHARE, request.redemption)
        assert [(p.asset, p.amount, p.fee) for p in done] == [(SHARE, 400 * 10**6, 0),
                                                              (USDC, -(400 * 10**6 - 400_000), 400_000)]
        state = ops.status().state_hash

    reader = FileJournal.open_reader(tmp_path / "journal")
    # The gateway sampled the NAV on its clock (once at start, then every second), as journaled commands.
    marks = [c for batch in reader.read() for c in batch.commands if c["kind"] == CommandKind.POOL_MARK]
    assert len(marks) >= 2 and all(int(c["asset"]) == SHARE for c in marks)
    stored = [e for batch in reader.read() for e in batch.events if e["kind"] == EventKind.POOL_PAID]
    assert len(stored) == 4 and all(int(e["maker_account"]) == POOL_ACCOUNT for e in stored)
    assert rebuild(reader, use_snapshot=False, verify=True).engine.state_hash() == state
