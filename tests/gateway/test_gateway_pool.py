"""The main pool through a real gateway process: a provider requests a deposit,
which PoolInfo shows pending with its amount reserved, and the gateway's pool
clock executes it after the deposit cooldown, paying shares from the pool's
pre-minted supply; a second request is cancelled before it is due; the provider
requests a redemption, is refused executing it before the cooldown with a
readable reason, and the clock pays it after the cooldown without being asked;
a provider holding a due redemption cannot wait for a better NAV; bad requests
are refused with the core's codes; another key cannot act for the provider nor
cancel its request; the gateway samples the NAV on its clock; the journal keeps
the POOL_PAID events and an offline replay rebuilds the state."""

from __future__ import annotations

import time

from gateway_harness import ACCOUNTS, AMZNX_ASSET, PUT_SPEC, USDC, venue_doc, write_venue

from engine.core.types import CommandKind, EventKind, Side, TimeInForce
from engine.core.types import Reject as Code
from engine.gateway.process import GatewayProcess
from engine.journal import FileJournal
from engine.replay import rebuild
from engine.schemas import Ack, GatewayReject, Reject
from engine.schemas_pools import DepositRequested, PoolPaid, RedemptionRequested, RequestCancelled
from engine.units import POOL_PPS_SCALE

POOL_ACCOUNT = 5
SHARE = 4                       # asset id: after the four assets of the test venue
COOLDOWN_S = 1
DEPOSIT_COOLDOWN_S = 3          # long enough for the test to cancel its second request before it is due
TSLA_ASSET, PUT = 2, 3          # asset and instrument ids of the test venue with its put series
PUT_MARK = 146_200              # the put's mark in its spec


def _venue(tmp_path, keys, holdings=None, nav_window=4, deposit_cooldown_s=DEPOSIT_COOLDOWN_S, options=False):
    doc = venue_doc(keys, tmp_path / "journal")
    assets = [*doc["assets"], {"symbol": "MPS", "decimals": 6, "ledger_decimals": 6}]
    instruments = [*doc["instruments"], PUT_SPEC] if options else doc["instruments"]
    if options:     # the put's margin needs TSLA.M's price
        assets[TSLA_ASSET] = {**assets[TSLA_ASSET], "usd_price": "250"}
    credit = {"MPS": "1000000000", **(holdings or {})}
    accounts = [*doc["accounts"], {"id": POOL_ACCOUNT, "name": "pool", "credit": credit}]
    pools = {"main_account": POOL_ACCOUNT,
             "main": {"asset": "USDC", "share_asset": "MPS", "nav_window": nav_window, "cooldown_s": COOLDOWN_S,
                      "withdrawal_fee_bps": 10, "equity_multiplier_bps": 20_000, "nav_sample_s": 1,
                      "deposit_cooldown_s": deposit_cooldown_s}}
    return write_venue(tmp_path, keys, assets=assets, instruments=instruments, accounts=accounts, pools=pools)


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
        done = fund.pool_redeem_paid(request.redemption, timeout=COOLDOWN_S + 10)
        assert done[0].ts >= request.ts + COOLDOWN_S * 10**9
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


def test_a_provider_holding_a_due_redemption_cannot_wait_for_a_better_nav(tmp_path, keys, clients):
    """The attack: a provider files a redemption, lets it fall due, waits for a NAV it
    likes (here the pool's AMZNX rising; the same as waiting to exit just before a drop
    it sees coming) and then executes. The clock has paid it at the NAV when it fell
    due: its own execution finds nothing to execute. On the build where only the owner
    executed redemptions, it was paid at the higher NAV it chose (checked)."""
    path = _venue(tmp_path, keys, holdings={"AMZNX": "10"}, nav_window=0, deposit_cooldown_s=0)
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        ops, fund, mm = (clients(gw, n) for n in ("ops", "fund", "mm"))
        for provider in (mm, fund):        # mm first: the pool's 10 AMZNX ($1,850) are its seed
            request = provider.pool_deposit(SHARE, 1_000 * 10**6)
            provider.pool_deposit_paid(request.request, timeout=10)
        shares = fund.balances().balances[SHARE].total
        request = fund.pool_redeem(SHARE, shares)
        assert isinstance(request, RedemptionRequested), request
        due_pps = ops.pool_info().redeem_pps           # spot NAV per share (nav_window 0): nothing moves it
        time.sleep(COOLDOWN_S + 0.5)                   # the redemption is due; the provider holds it
        rise = ops.set_asset_price(AMZNX_ASSET, 2 * 185 * 10**8)
        assert ops.pool_info().redeem_pps > due_pps    # the NAV it was waiting for
        chosen = fund.pool_execute(SHARE, request.redemption)
        assert isinstance(chosen, Reject) and chosen.code == Code.UNKNOWN_REDEMPTION, chosen
        paid = fund.pool_redeem_paid(request.redemption, timeout=10)
        gross = shares * due_pps // POOL_PPS_SCALE
        fee = -(-gross * 10 // 10_000)
        assert [(p.asset, p.amount, p.nav_per_share, p.fee) for p in paid] == [
            (SHARE, shares, due_pps, 0), (USDC, -(gross - fee), due_pps, fee)]
        assert request.ts + COOLDOWN_S * 10**9 <= paid[0].ts < rise.ts


def test_the_clock_retries_a_redemption_the_equity_guard_refuses_until_new_capital_allows_it(tmp_path, keys, clients):
    path = _venue(tmp_path, keys, deposit_cooldown_s=0, options=True)
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        ops, fund, mm = (clients(gw, n) for n in ("ops", "fund", "mm"))
        for provider in (mm, fund):
            request = provider.pool_deposit(SHARE, 1_000 * 10**6)
            provider.pool_deposit_paid(request.request, timeout=10)
        # The pool sells 10 puts: about $521 initial margin, so $1,043 of equity must stay.
        assert isinstance(mm.place(PUT, Side.BUY, 1_000, PUT_MARK), Ack)
        assert isinstance(ops.place(PUT, Side.SELL, 1_000, PUT_MARK, tif=TimeInForce.IOC, account=POOL_ACCOUNT), Ack)
        info = ops.pool_info()
        assert 500 * 10**8 < info.initial_margin < 550 * 10**8
        request = fund.pool_redeem(SHARE, fund.balances().balances[SHARE].total)   # about $1,000 of $2,000
        time.sleep(COOLDOWN_S + 1.5)                       # due, and refused at least once by now
        assert ops.pool_info().pending_redemptions == 1
        assert not [e for e in fund.poll_events() if isinstance(e, PoolPaid)]
        more = mm.pool_deposit(SHARE, 600 * 10**6)         # new capital: the guard allows it now
        deposited = mm.pool_deposit_paid(more.request, timeout=10)
        paid = fund.pool_redeem_paid(request.redemption, timeout=10)
        assert [p.asset for p in paid] == [SHARE, USDC] and paid[0].ts > deposited[0].ts
        assert ops.pool_info().pending_redemptions == 0
