"""The main pool through a real gateway process: a provider requests a deposit,
which PoolInfo shows pending with its amount reserved, and the gateway's pool
clock executes it after the deposit cooldown, paying shares from the pool's
pre-minted supply; a second request is cancelled before it is due; the provider
requests a redemption, is refused before the cooldown with a readable reason
and paid after it; bad requests are refused with the core's codes; another key
cannot act for the provider nor cancel its request; the gateway samples the NAV
on its clock; the journal keeps the POOL_PAID events and an offline replay
rebuilds the state."""

from __future__ import annotations

import time

from gateway_harness import ACCOUNTS, USDC, venue_doc, write_venue

from engine.core.types import CommandKind, EventKind
from engine.core.types import Reject as Code
from engine.gateway.process import GatewayProcess
from engine.journal import FileJournal
from engine.replay import rebuild
from engine.schemas import GatewayReject, Reject
from engine.schemas_pools import DepositRequested, PoolPaid, RedemptionRequested, RequestCancelled

POOL_ACCOUNT = 5
SHARE = 4                       # asset id: after the four assets of the test venue
COOLDOWN_S = 1
DEPOSIT_COOLDOWN_S = 3          # long enough for the test to cancel its second request before it is due


def _venue(tmp_path, keys):
    doc = venue_doc(keys, tmp_path / "journal")
    assets = [*doc["assets"], {"symbol": "MPS", "decimals": 6, "ledger_decimals": 6}]
    accounts = [*doc["accounts"], {"id": POOL_ACCOUNT, "name": "pool", "credit": {"MPS": "1000000000"}}]
    pools = {"main_account": POOL_ACCOUNT,
             "main": {"asset": "USDC", "share_asset": "MPS", "nav_window": 4, "cooldown_s": COOLDOWN_S,
                      "withdrawal_fee_bps": 10, "equity_multiplier_bps": 20_000, "nav_sample_s": 1,
                      "deposit_cooldown_s": DEPOSIT_COOLDOWN_S}}
    return write_venue(tmp_path, keys, assets=assets, accounts=accounts, pools=pools)


def test_a_provider_deposits_and_redeems_through_the_gateway(tmp_path, keys, clients):
    path = _venue(tmp_path, keys)
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        ops, fund, retail = (clients(gw, n) for n in ("ops", "fund", "retail"))
        request = fund.pool_deposit(SHARE, 1_000 * 10**6)
        assert isinstance(request, DepositRequested), request
        assert (request.account, request.asset, request.amount) == (ACCOUNTS["fund"], USDC, 1_000 * 10**6)
        info = ops.pool_info()
        assert (info.pending_deposits, info.pending_deposit_amount, info.deposit_cooldown_ns) == (
            1, 1_000 * 10**6, DEPOSIT_COOLDOWN_S * 10**9)
        assert fund.balances().balances[USDC].reserved == 1_000 * 10**6
        second = fund.pool_deposit(SHARE, 5 * 10**6)
        assert isinstance(second, Reject) and second.code == Code.POOL_REQUEST_PENDING, second
        theirs = retail.pool_cancel(SHARE, request.request)
        assert isinstance(theirs, Reject) and theirs.code == Code.NOT_ORDER_OWNER, theirs
        denied = retail.pool_cancel(SHARE, request.request, account=ACCOUNTS["fund"])
        assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED, denied

        # The pool's clock executes the request once due; the provider hears of it.
        paid = fund.pool_deposit_paid(request.request, timeout=DEPOSIT_COOLDOWN_S + 10)
        assert [type(p) for p in paid] == [PoolPaid, PoolPaid]
        assert [(p.asset, p.amount, p.redemption) for p in paid] == [(USDC, 1_000 * 10**6, request.request),
                                                                     (SHARE, -1_000 * 10**6, request.request)]
        assert paid[0].ts >= request.ts + DEPOSIT_COOLDOWN_S * 10**9
        assert fund.balances().balances[SHARE].total == 1_000 * 10**6
        assert fund.balances().balances[USDC].reserved == 0
        again = fund.pool_deposit(SHARE, 5 * 10**6)
        cancelled = fund.pool_cancel(SHARE, again.request)
        assert isinstance(cancelled, RequestCancelled) and (cancelled.request, cancelled.amount) == (
            again.request, 5 * 10**6), cancelled
        assert ops.pool_info().pending_deposits == 0

        for bad, code in ((fund.pool_deposit(SHARE, 0), Code.INVALID_AMOUNT),
                          (fund.pool_deposit(USDC, 10), Code.NOT_A_POOL),
                          (fund.pool_redeem(SHARE, 10**12), Code.INSUFFICIENT_BALANCE),
                          (fund.pool_execute(SHARE, 77), Code.UNKNOWN_REDEMPTION),
                          (fund.pool_cancel(SHARE, 77), Code.UNKNOWN_REDEMPTION)):
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
