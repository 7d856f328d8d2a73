"""GetPoolInfo on the wire: the request and its PoolInfo answer round-trip, a
real gateway answers them from the engine's main pool, and a venue without a
main pool refuses with NO_POOL; the web view's pools panel shows its figures."""

from __future__ import annotations

import time
import tomllib

import msgspec
from quoter_harness import client, write_venue

from engine.client import ClientKeys
from engine.config import to_toml
from engine.gateway.process import GatewayProcess
from engine.schemas import REPLY_DECODER, REPLY_ENCODER, REQUEST_DECODER, GatewayReject, Reject
from engine.schemas_pools import GetPoolInfo, PoolInfo
from engine.units import NS_PER_S, POOL_PPS_SCALE
from web.sources import GatewayPools, GatewayView

COOLDOWN_S, FEE_BPS = 30, 25
SHARE = 2                            # the share asset's id after USDC and TSLA.M


def test_the_query_and_its_answer_round_trip():
    query = GetPoolInfo(7)
    assert REQUEST_DECODER.decode(msgspec.msgpack.encode([query])) == [query]
    answer = PoolInfo(7, SHARE, 1, 0, True, 10**11, 10**9, 10**9, POOL_PPS_SCALE, POOL_PPS_SCALE - 1, 3,
                      POOL_PPS_SCALE, POOL_PPS_SCALE - 1, 1, 5 * 10**8, 30 * NS_PER_S, 25, 20_000, 0)
    assert REPLY_DECODER.decode(REPLY_ENCODER.encode([answer])) == [answer]


def _pool_venue(directory):
    """The quoter tests' venue with a main pool on account 1 holding only its
    share treasury (so the first deposit mints one share unit per USDC unit)."""
    path, keys = write_venue(directory, pool_credit={"MPS": "1000000"})
    doc = tomllib.loads(path.read_text())
    doc["assets"].append({"symbol": "MPS", "decimals": 6, "ledger_decimals": 6})
    doc["pools"] = {"main_account": 1, "main": {"asset": "USDC", "share_asset": "MPS", "cooldown_s": COOLDOWN_S,
                                               "withdrawal_fee_bps": FEE_BPS, "nav_sample_s": 0,
                                               "deposit_cooldown_s": 0}}
    path.write_text(to_toml(doc))
    return path, keys


def test_a_gateway_answers_the_pools_figures(tmp_path):
    path, keys = _pool_venue(tmp_path)
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        trader = client(gw.orders, keys, "trader")
        try:
            before = trader.pool_info()
            assert isinstance(before, PoolInfo), before
            assert (before.pool, before.account, before.asset, before.shares, before.nav_per_share) == (SHARE, 1, 0, 0, 0)
            assert (before.cooldown_ns, before.withdrawal_fee_bps) == (COOLDOWN_S * NS_PER_S, FEE_BPS)
            deposit = trader.pool_deposit(SHARE, 1_000 * 10**6)
            assert not isinstance(deposit, Reject), deposit
            trader.pool_deposit_paid(deposit.request)     # the pool's clock executes it at once
            requested = trader.pool_redeem(SHARE, 100 * 10**6)
            assert not isinstance(requested, Reject), requested
            info = trader.pool_info()
        finally:
            trader.close()
    assert info.nav_ok
    assert (info.equity, info.shares, info.nav_usd) == (1_000 * 10**6, 1_000 * 10**6, 1_000 * 10**8)
    assert info.nav_per_share == info.deposit_pps == info.redeem_pps == POOL_PPS_SCALE
    assert (info.pending_redemptions, info.pending_shares) == (1, 100 * 10**6)
    assert (info.pending_deposits, info.pending_deposit_amount, info.deposit_cooldown_ns) == (0, 0, 0)


def test_a_venue_without_a_main_pool_refuses_with_no_pool(tmp_path):
    path, keys = write_venue(tmp_path)
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        trader = client(gw.orders, keys, "trader")
        try:
            answer = trader.pool_info()
        finally:
            trader.close()
    assert isinstance(answer, Reject)
    assert answer.code == GatewayReject.NO_POOL
    assert answer.text.startswith("this venue has no main pool") and "no main pool is configured" in answer.text


def test_the_web_views_pools_panel_shows_the_gateways_nav(tmp_path):
    path, keys = _pool_venue(tmp_path)
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        trader = client(gw.orders, keys, "trader")
        view = GatewayView(gw.orders, gw.market_data, ClientKeys.from_files(keys / "trader.key_secret",
                                                                            keys / "server.key"), GatewayPools())
        try:
            empty = view.poll(0.1)["pools"]["pools"]
            assert not isinstance(trader.pool_deposit(SHARE, 2_500 * 10**6), Reject)
            deadline = time.monotonic() + 10    # the view asks again once a second
            while (pools := view.poll(0.1)["pools"])["pools"][0]["shares"] == "0" and time.monotonic() < deadline:
                pass
        finally:
            view.close()
            trader.close()
    assert empty[0]["shares"] == "0" and empty[0]["nav_per_share"] == "0"
    assert pools["message"] is None
    row = pools["pools"][0]
    assert (row["pool"], row["nav_usd"], row["equity"], row["nav_per_share"], row["shares"]) == (
        "MPS", "2500", "2500 USDC", "1", "2500")
    assert (row["cooldown_s"], row["fee_bps"], row["pending_redemptions"]) == (COOLDOWN_S, FEE_BPS, "0 (0 MPS)")
    assert (row["pending_deposits"], row["deposit_cooldown_s"]) == ("0 (0 USDC)", 0)
