"""Issue 11, part 1, replayed end to end through a real gateway process: a
wallet requests an exit on chain, keeps trading through the gateway, and tries
to escape while a batch against it is pending. The exit watcher freezes its
account through the gateway's FreezeAccount (an operator key), the job reads
the freeze from the gateway's journal and serves the request in the batch that
settles everything up to it, the wallet then leaves with exactly its settled
balance, and settlement between everyone else goes on. On the code before the
forced-exit work (commit 2ff7132) the vault had no exit request to serve and
the gateway no freeze: the escape raced the operator.

Already covered elsewhere: the same attack against an in-process engine and
the exit protocol's edge cases (tests/settlement/test_forced_exit.py), the
freeze through a gateway process and its restarts
(tests/gateway/test_gateway_freeze.py); part 3, reorged and refused deposits
(tests/settlement/test_deposit_reorg.py, test_deposit_watcher.py) and id-less
credits (tests/gateway/test_gateway_credit_rule.py)."""

from __future__ import annotations

import pytest
from settlement_helpers import advance_time, make_job, settle_all
from test_gateway_settlement import (  # noqa: F401 - gateway_venue is a fixture
    AMZN,
    AMZNX,
    FUND,
    MM,
    PX,
    RETAIL,
    USDC,
    _assert_chain_equals_gateway,
    _chain_venue,
    gateway_venue,
)

from engine.config import load_config
from engine.core.types import CancelReason, Side
from engine.core.types import Reject as Code
from engine.journal import FileJournal
from engine.schemas import Ack, Cancelled, Reject
from settlement.chain import RevertError
from settlement.deposits import DepositWatcher
from settlement.exits import ExitQueue, ExitWatcher, GatewayFreezes
from settlement.gateway_link import GatewayDeposits, unit_table_from_config
from settlement.source import JournalFillSource

ATTACKER = RETAIL
EXIT_WINDOW = 24 * 3600   # _chain_venue's


def _trade(seller, buyer, qty: int) -> None:
    assert isinstance(seller.place(AMZN, Side.SELL, qty, PX), Ack)
    assert isinstance(buyer.place(AMZN, Side.BUY, qty, PX), Ack)


def test_exit_request_then_trading_then_escape_through_a_gateway_fails(gateway_venue, tmp_path):
    config_path, _gw, clients = gateway_venue
    ops, mm, attacker, fund = clients["ops"], clients["mm"], clients["retail"], clients["fund"]
    venue = _chain_venue(config_path)
    venue.deposit(MM, AMZNX, 50_000_000)
    venue.deposit(MM, USDC, 20_000_000_000)
    venue.deposit(ATTACKER, USDC, 5_000_000_000)
    venue.deposit(FUND, USDC, 5_000_000_000)
    assert DepositWatcher(venue.vault, venue.deployment, venue.book, GatewayDeposits(ops)).poll() == 4
    source = JournalFillSource(FileJournal.open_reader(load_config(config_path).journal_path),
                               unit_table_from_config(config_path))
    job = make_job(venue, source, tmp_path / "job", exits=ExitQueue(venue.vault, venue.book, venue.deployment.block),
                   max_records=1_000)
    _trade(mm, attacker, 2_000)
    assert settle_all(job) == [1]

    # The attack: request an exit, keep trading (a buy it will regret, a resting ask), escape.
    chain_attacker = venue.client(ATTACKER)
    vault = venue.vault.contract.functions
    chain_attacker.transact(vault.requestExit())
    _trade(mm, attacker, 5_000)
    ask = attacker.place(AMZN, Side.SELL, 1_000, PX + 5_000)
    assert isinstance(ask, Ack)

    watcher = ExitWatcher(venue.vault, venue.deployment.block, venue.book, GatewayFreezes(ops), confirmations=1)
    assert watcher.poll() == 1 and watcher.poll() == 0
    cancelled = [e for e in attacker.poll_events(1.0) if isinstance(e, Cancelled)]
    assert [(e.order_id, e.reason) for e in cancelled] == [(ask.order_id, CancelReason.FROZEN)]
    for refused in (attacker.place(AMZN, Side.BUY, 10, PX), attacker.debit(ATTACKER, USDC, 1)):
        assert isinstance(refused, Reject) and refused.code == Code.ACCOUNT_IS_FROZEN
    advance_time(venue.w3, EXIT_WINDOW - 10)
    with pytest.raises(RevertError, match="EscapeNotOpen"):    # no escape while the operator may serve
        chain_attacker.prepare(vault.escape([USDC, AMZNX]))

    # The next batch settles the fills up to the freeze and serves the request.
    assert settle_all(job) == [2]
    assert job.store.batch(2).served == [chain_attacker.address]
    _assert_chain_equals_gateway(venue, ops)
    owed = {asset: venue.vault.balance(chain_attacker.address, asset)[0] for asset in (USDC, AMZNX)}
    assert owed[AMZNX] == 7_000 * 1_000   # 7 AMZNX bought, the regretted buy included
    chain_attacker.transact(vault.escape([USDC, AMZNX]))
    totals = {b.asset: b.total for b in ops.balances(ATTACKER).balances}
    for asset, amount in owed.items():
        assert amount == totals[asset]
        assert venue.token(asset).functions.balanceOf(chain_attacker.address).call() == amount * venue.scale(asset)

    # Everyone else trades and settles on.
    _trade(mm, fund, 3_000)
    assert settle_all(job) == [3]
    assert venue.vault.balance(venue.book.wallet(FUND), AMZNX)[0] == 3_000 * 1_000
