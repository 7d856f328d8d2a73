"""Demo part 3: settlement on the embedded EVM (py-evm).

Users deposit tokens into the vault; the deposit watcher credits the engine;
they trade; the batch job nets the fills, settles them on chain with their
Merkle root, exactly once; a withdrawal becomes claimable and is claimed; a
fill is proved against the batch root on chain; on-chain balances equal the
engine's. AMZNX is a rebasing xStock held in shares: after a rebase the market
maker withdraws exactly the shares it is owed.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec
import numpy as np

from engine.core.matcher import MatchingEngine
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, EventKind, OrderType, SelfTrade, Side, TimeInForce
from engine.defaults import DEFAULT_ASSETS, stock_pair
from settlement.accounts import dev_address_book, dev_private_key
from settlement.chain import ChainClient, connect, fund_dev_account
from settlement.deposits import DepositWatcher, InProcessDeposits
from settlement.job import SettlementJob, rebuild_batch
from settlement.records import UnitTable, settlement_records
from settlement.source import RecordFileSource
from settlement.vault import SHARES, Vault, deploy, revert_decoder

FEE, MM, RETAIL, FUND = 0, 1, 2, 3
ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY = 1_000_001, 1_000_002, 1_000_003
USDC, AMZNX, TSLA = 0, 1, 3


def _order(seq, instrument, account, side, qty, price, tif=TimeInForce.GTC):
    c = np.zeros(1, COMMAND_DTYPE)[0]
    c["seq"], c["kind"], c["instrument"], c["account"] = seq, CommandKind.NEW_ORDER, instrument, account
    c["side"], c["order_type"], c["tif"], c["stp"] = side, OrderType.LIMIT, tif, SelfTrade.CANCEL_NEWEST
    c["qty"], c["price"] = qty, price
    return c


def run(out=print) -> None:
    """Run the settlement walk-through, printing what happens."""
    w3 = connect()
    book = dev_address_book([FEE, MM, RETAIL, FUND])
    for key in (ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY, FEE, MM, RETAIL, FUND):
        fund_dev_account(w3, ChainClient(w3, dev_private_key(key)).address, 10**21)
    admin = ChainClient(w3, dev_private_key(ADMIN_KEY), decoder=revert_decoder())
    operator = ChainClient(w3, dev_private_key(OPERATOR_KEY), decoder=revert_decoder())
    deployment = deploy(admin, operator=operator.address,
                        guardian=ChainClient(w3, dev_private_key(GUARDIAN_KEY)).address,
                        exit_window=86_400, challenge_window=0, assets=dict(enumerate(DEFAULT_ASSETS)),
                        shares=frozenset({AMZNX}))
    vault = Vault(w3, deployment.vault)
    out(f"  vault {vault.address} on the embedded EVM (chain id {deployment.chain_id}), "
        f"{len(deployment.assets)} listed tokens")

    engine = MatchingEngine(risk=True, fee_account=FEE)
    for spec in DEFAULT_ASSETS:
        engine.add_asset(spec)
    amzn = engine.add_instrument(msgspec.structs.replace(stock_pair("AMZNX"), maker_fee_bps=-1, taker_fee_bps=5))
    tsla = engine.add_instrument(msgspec.structs.replace(stock_pair("TSLA.M"), maker_fee_bps=-1, taker_fee_bps=5))
    for account in (MM, RETAIL, FUND):
        engine.open_account(account)

    def deposit(account, asset, ledger_amount):
        user = ChainClient(w3, dev_private_key(account))
        info = deployment.assets[asset]
        amount = ledger_amount * deployment.scale(asset)
        if deployment.kind(asset) == SHARES:
            token = vault.share_token(info["token"])
            user.transact(token.functions.mintShares(user.address, amount))
        else:
            token = vault.token(info["token"])
            user.transact(token.functions.mint(user.address, amount))
        user.transact(token.functions.approve(vault.address, token.functions.balanceOf(user.address).call()))
        user.transact(vault.contract.functions.deposit(asset, amount))

    out("\n== Deposits on chain, credited to the engine by the deposit watcher")
    deposit(MM, AMZNX, 50_000_000)          # 50 AMZNX
    deposit(MM, TSLA, 40_000_000)           # 40 TSLA.M
    deposit(MM, USDC, 20_000_000_000)       # 20,000 USDC
    deposit(RETAIL, USDC, 5_000_000_000)    # 5,000 USDC
    deposit(FUND, TSLA, 30_000_000)         # 30 TSLA.M
    watcher = DepositWatcher(vault, deployment, book, InProcessDeposits(engine))
    out(f"  {watcher.poll()} deposits credited; polling again credits {watcher.poll()}")

    out("\n== Trading (reference prices from the feed keep prints inside the bands)")
    seq = engine.last_seq
    for instrument, price in ((amzn, 2_200_000), (tsla, 3_400_000)):
        seq += 1
        engine.set_reference_price(instrument, price, seq=seq)
    rows = [
        (amzn, MM, Side.SELL, 5_000, 2_201_000), (amzn, MM, Side.BUY, 5_000, 2_199_000),
        (tsla, MM, Side.SELL, 10_000, 3_402_000), (tsla, MM, Side.BUY, 8_000, 3_398_000),
        (amzn, RETAIL, Side.BUY, 3_000, 2_202_000),        # takes 3 AMZNX
        (tsla, FUND, Side.SELL, 6_000, 3_390_000),         # sells 6 TSLA.M into the bid
        (tsla, RETAIL, Side.BUY, 2_500, 3_410_000),        # takes 2.5 TSLA.M
    ]
    commands = np.zeros(len(rows) + 1, COMMAND_DTYPE)
    for i, (instrument, account, side, qty, price) in enumerate(rows):
        seq += 1
        commands[i] = _order(seq, instrument, account, side, qty, price)
    # The fund withdraws 10 USDC: debited now, settled in the batch, then claimable.
    withdrawal = commands[len(rows)]
    withdrawal["seq"], withdrawal["kind"], withdrawal["account"] = seq + 1, CommandKind.DEBIT, FUND
    withdrawal["asset"], withdrawal["qty"] = USDC, 10_000_000
    events = engine.process(commands)
    out(f"  {int(np.sum(events['kind'] == EventKind.FILL))} fills; the fund withdraws 10 USDC "
        f"({EventKind(int(events['kind'][-1])).name})")

    state = Path(tempfile.mkdtemp(prefix="venue-demo-"))
    source = RecordFileSource(state / "records")
    fills, withdrawals = settlement_records(events, UnitTable.of_engine(engine))
    source.append(fills=fills, withdrawals=withdrawals)

    out("\n== Settlement: net per (account, token), Merkle root, one transaction per batch")
    job = SettlementJob(source, operator, vault, book, state / "job", max_records=1_000, max_wait=0.0)
    settled = []
    while (batch_id := job.step()) is not None:
        settled.append(batch_id)
        batch = rebuild_batch(job.store.batch(batch_id), source, book)
        out(f"  batch {batch_id}: {len(batch.fills)} fills, {len(batch.withdrawals)} withdrawal -> "
            f"{len(batch.deltas)} balance deltas, fills root {batch.fills_root.hex()[:16]}..")
    out(f"  running the job again settles nothing: {job.step()}")
    fill_id = int(fills["fill_id"][0])
    leaf, proof = batch.proof(fill_id)
    out(f"  fill {fill_id} proved against batch {settled[-1]}'s root on chain: "
        f"{vault.verify_fill(settled[-1], proof, leaf)}")

    out("\n== On-chain settled balances equal the engine's")
    rows = []
    for account in (FEE, MM, RETAIL, FUND):
        for asset in (USDC, AMZNX, TSLA):
            settled_amount, claimable = vault.balance(book.wallet(account), asset)
            rows.append(settled_amount == engine.balances(account)[asset][0])
    out(f"  {sum(rows)} of {len(rows)} (account, token) balances match")
    fund = ChainClient(w3, dev_private_key(FUND))
    fund.transact(vault.contract.functions.claim(USDC))
    usdc = vault.token(deployment.assets[USDC]["token"])
    out(f"  the fund claimed its withdrawal: {usdc.functions.balanceOf(fund.address).call() / 1e6:,.2f} USDC "
        "in its wallet")

    out("\n== AMZNX rebases (a dividend reinvested): the vault and the engine count its shares")
    amzn = vault.share_token(deployment.assets[AMZNX]["token"])
    admin.transact(amzn.functions.setMultiplier(1_004 * 10**15))
    total, reserved = engine.balances(MM)[AMZNX]
    command = np.zeros(1, COMMAND_DTYPE)
    command["seq"], command["kind"], command["account"] = engine.last_seq + 1, CommandKind.DEBIT, MM
    command["asset"], command["qty"] = AMZNX, total - reserved
    fills, withdrawals = settlement_records(engine.process(command), UnitTable.of_engine(engine))
    source.append(fills=fills, withdrawals=withdrawals)
    job.step()
    mm = ChainClient(w3, dev_private_key(MM))
    mm.transact(vault.contract.functions.claim(AMZNX))
    owed = sum(vault.balance(book.wallet(account), AMZNX)[0] for account in (FEE, MM, RETAIL, FUND))
    solvent = amzn.functions.sharesOf(vault.address).call() == owed * deployment.scale(AMZNX)
    out(f"  the market maker withdrew its free {(total - reserved) / 1e6:,.3f} AMZNX share units: "
        f"{amzn.functions.sharesOf(mm.address).call() / 1e18:,.3f} shares, "
        f"{amzn.functions.balanceOf(mm.address).call() / 1e18:,.4f} tokens after the rebase; the vault "
        f"holds exactly the shares it owes: {solvent}")
    engine.check_integrity()
