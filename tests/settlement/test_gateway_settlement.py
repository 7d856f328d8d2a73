"""End to end through a real gateway: vault deposits credited by the watcher over an operator
client, trading through clients, the batch job settling the gateway's journal on the embedded
chain; after every batch the vault's settled balances equal the gateway's for every
(account, asset), and an operator debit becomes a claimable withdrawal."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import zmq
from settlement_helpers import ADMIN_KEY, GUARDIAN_KEY, OPERATOR_KEY, Venue, make_job

from engine.client import Client, ClientKeys
from engine.config import load_config, to_toml
from engine.core.types import Side
from engine.gateway.process import GatewayProcess
from engine.journal import FileJournal
from engine.keys import generate
from engine.schemas import Balances, Debited, Reject
from settlement.__main__ import _source
from settlement.__main__ import main as settlement_main
from settlement.accounts import dev_address_book, dev_private_key
from settlement.chain import ChainClient, connect, fund_dev_account
from settlement.deposits import DepositWatcher
from settlement.gateway_link import GatewayDeposits, reject_name, unit_table_from_config
from settlement.source import JournalFillSource
from settlement.vault import Vault, deploy, revert_decoder

FEE, MM, RETAIL, FUND = 0, 1, 2, 3
STRANGER = 9                         # a dev wallet the address book does not know
TRADERS = {"mm": MM, "retail": RETAIL, "fund": FUND}
USDC, AMZNX = 0, 1                   # engine asset ids = vault asset ids
AMZN = 0                             # instrument id
PX = 1_850_000                       # $185.00 (price_scale 10_000)


def _venue_doc(keys: Path, journal: Path) -> dict:
    return {
        "venue": {"name": "settle", "max_accounts": 16, "max_orders": 1_000, "fee_account": FEE},
        "endpoints": {"orders": "tcp://127.0.0.1:*", "market_data": "tcp://127.0.0.1:*"},
        "server": {"secret_key_file": str(keys / "server.key_secret")},
        "journal": {"path": str(journal), "fsync": "batch", "snapshot_every": 0},
        "assets": [
            {"symbol": "USDC", "decimals": 6, "ledger_decimals": 6, "usd_price": "1"},
            {"symbol": "AMZNX", "decimals": 18, "ledger_decimals": 6, "haircut_bps": 2_000, "usd_price": "185"},
        ],
        "instruments": [
            {"symbol": "AMZNX/USDC", "base": "AMZNX", "quote": "USDC", "tick_size": 100, "lot_size": 10,
             "min_qty": 10, "max_qty": 1_000_000_000, "max_price": 1_000_000_000, "static_band_bps": 1_000,
             "dynamic_band_bps": 500, "price_scale": 10_000, "qty_scale": 1_000, "maker_fee_bps": -1,
             "taker_fee_bps": 5, "reference_price": "185.00"},
        ],
        # no opening credits: every balance comes from a vault deposit
        "accounts": [{"id": account, "name": name, "key_files": [str(keys / f"{name}.key")]}
                     for name, account in TRADERS.items()],
        "operators": [{"name": "ops", "key_files": [str(keys / "ops.key")]}],
    }


@pytest.fixture
def gateway_venue(tmp_path):
    """(config path, running gateway, clients by name) on a fresh journal."""
    keys = tmp_path / "keys"
    for name in ("server", "ops", *TRADERS):
        generate(keys, name)
    config_path = tmp_path / "venue.toml"
    config_path.write_text(to_toml(_venue_doc(keys, tmp_path / "journal")))
    context = zmq.Context()
    with GatewayProcess(config_path, tmp_path / "gateway.log") as gw:
        clients = {name: Client(gw.orders, ClientKeys.from_files(keys / f"{name}.key_secret", keys / "server.key"),
                                context=context) for name in ("ops", *TRADERS)}
        try:
            yield config_path, gw, clients
        finally:
            for client in clients.values():
                client.close()
    context.destroy(linger=0)


def _chain_venue(config_path: Path, w3=None) -> Venue:
    """A vault (on a fresh embedded chain by default) listing the config's assets under their engine ids."""
    w3 = w3 or connect()
    for key_id in (ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY, FEE, *TRADERS.values(), STRANGER):
        fund_dev_account(w3, ChainClient(w3, dev_private_key(key_id)).address, 10**21)
    admin = ChainClient(w3, dev_private_key(ADMIN_KEY), decoder=revert_decoder())
    assets = dict(enumerate(load_config(config_path).venue.assets))
    deployment = deploy(admin, operator=ChainClient(w3, dev_private_key(OPERATOR_KEY)).address,
                        guardian=ChainClient(w3, dev_private_key(GUARDIAN_KEY)).address,
                        exit_window=24 * 3600, challenge_window=0, assets=assets)
    book = dev_address_book([FEE, *TRADERS.values()])
    return Venue(w3, deployment, Vault(w3, deployment.vault), book)


def _assert_chain_equals_gateway(venue: Venue, ops: Client) -> None:
    """Every (account, asset): settled on chain == the gateway's total."""
    compared = 0
    for account, wallet in venue.book.items():
        reply = ops.balances(account)
        assert isinstance(reply, Balances), reply
        totals = {b.asset: b.total for b in reply.balances}
        for asset in (USDC, AMZNX):
            settled, _claimable = venue.vault.balance(wallet, asset)
            assert settled == totals.get(asset, 0), (account, asset, settled, totals)
            compared += 1
    assert compared == 2 * len(venue.book)


def _fills_of(client: Client, timeout: float = 2.0) -> int:
    return sum(type(event).__name__ == "Fill" for event in client.poll_events(timeout))


def test_gateway_deposits_trades_and_settlement(gateway_venue, tmp_path):
    config_path, gw, clients = gateway_venue
    ops = clients["ops"]
    venue = _chain_venue(config_path)
    link = GatewayDeposits(ops)
    assert link.last_deposit_id() == 0

    # -- deposits, credited once through the gateway; an unknown wallet's deposit is skipped
    venue.deposit(MM, AMZNX, 50_000_000)          # 50 AMZNX
    venue.deposit(MM, USDC, 20_000_000_000)       # 20,000 USDC
    venue.deposit(RETAIL, USDC, 5_000_000_000)    # 5,000 USDC
    venue.deposit(STRANGER, USDC, 1_000_000)      # unknown wallet: skipped
    venue.deposit(FUND, AMZNX, 30_000_000)        # 30 AMZNX
    watcher = DepositWatcher(venue.vault, venue.deployment, venue.book, link)
    assert watcher.poll() == 5
    assert watcher.poll() == 0
    assert link.last_deposit_id() == 5
    # a fresh watcher (a restart) re-scans from the deployment block and credits nothing again
    assert DepositWatcher(venue.vault, venue.deployment, venue.book, link).poll() == 0
    assert link.credit_deposit(MM, USDC, 1, 5) == "DUPLICATE_DEPOSIT"
    assert link.credit_deposit(MM, USDC, 1, 7) == "DEPOSIT_GAP"
    _assert_chain_equals_gateway(venue, ops)

    units = unit_table_from_config(config_path)
    journal = FileJournal.open_reader(load_config(config_path).journal_path)
    source = JournalFillSource(journal, units)
    job = make_job(venue, source, tmp_path / "job", max_records=1_000)
    assert job.step() is None                     # deposits and genesis make no records

    # -- round 1: crossing orders -> fills; settle; chain == gateway
    mm, retail, fund = clients["mm"], clients["retail"], clients["fund"]
    assert not isinstance(mm.place(AMZN, Side.SELL, 5_000, PX + 1_000), Reject)
    assert not isinstance(mm.place(AMZN, Side.BUY, 5_000, PX - 1_000), Reject)
    assert not isinstance(retail.place(AMZN, Side.BUY, 3_000, PX + 2_000), Reject)   # takes 3 AMZNX
    assert not isinstance(fund.place(AMZN, Side.SELL, 2_000, PX - 2_000), Reject)    # sells 2 into the bid
    assert _fills_of(retail) >= 1 and _fills_of(fund) >= 1
    fills, withdrawals = source.read(0, 1_000)
    assert len(fills) == 2 and len(withdrawals) == 0
    assert job.step() == 1
    assert job.step() is None
    _assert_chain_equals_gateway(venue, ops)

    # -- round 2: more fills and an operator debit (a withdrawal) in one batch
    assert not isinstance(retail.place(AMZN, Side.BUY, 1_500, PX + 1_000), Reject)
    assert _fills_of(retail) >= 1
    debit = ops.debit(FUND, USDC, 100_000_000)    # the fund withdraws 100 USDC
    assert isinstance(debit, Debited), debit
    fills, withdrawals = source.read(job.store.checkpoint().last_id, 1_000)
    assert len(fills) == 1 and len(withdrawals) == 1
    assert job.step() == 2
    assert job.step() is None
    _assert_chain_equals_gateway(venue, ops)
    assert venue.vault.balance(venue.book.wallet(FUND), USDC)[1] == 100_000_000

    # the withdrawal is claimable on chain
    fund_chain = venue.client(FUND)
    usdc = venue.token(USDC)
    before = usdc.functions.balanceOf(fund_chain.address).call()
    fund_chain.transact(venue.vault.contract.functions.claim(USDC))
    assert usdc.functions.balanceOf(fund_chain.address).call() - before == 100_000_000 * venue.scale(USDC)
    assert venue.vault.balance(venue.book.wallet(FUND), USDC)[1] == 0

    # -- round 3: a later deposit is credited once and keeps the ledgers equal with no new batch
    venue.deposit(RETAIL, AMZNX, 2_000_000)
    assert watcher.poll() == 1
    assert watcher.poll() == 0
    credited = ops.credit(RETAIL, AMZNX, 2_000_000, deposit_id=6)
    assert isinstance(credited, Reject) and reject_name(credited.code) == "DUPLICATE_DEPOSIT"
    assert job.step() is None
    _assert_chain_equals_gateway(venue, ops)

    # `python -m settlement run --journal DIR --config venue.toml` reads the same records
    cli_source = _source(argparse.Namespace(source=None, journal=load_config(config_path).journal_path,
                                                config=config_path))
    assert isinstance(cli_source, JournalFillSource)
    for a, b in zip(cli_source.read(0, 1_000), source.read(0, 1_000), strict=True):
        assert a.tobytes() == b.tobytes()
    assert gw.process.poll() is None


def test_cli_watch_and_run_from_journal_on_anvil(gateway_venue, anvil_node, tmp_path, capsys):
    config_path, gw, clients = gateway_venue
    ops = clients["ops"]
    venue = _chain_venue(config_path, connect(anvil_node.url))
    venue.deployment.save(tmp_path / "deployment.json")
    venue.book.save(tmp_path / "book.json")
    keys = config_path.parent / "keys"
    watch = ["watch", "--chain", anvil_node.url, "--config", str(config_path),
             "--deployment", str(tmp_path / "deployment.json"), "--addressbook", str(tmp_path / "book.json"),
             "--key-file", str(keys / "ops.key_secret"), "--orders", gw.orders, "--state", str(tmp_path / "watch"),
             "--once"]
    venue.deposit(MM, AMZNX, 10_000_000)
    venue.deposit(RETAIL, USDC, 5_000_000_000)
    assert settlement_main(watch) == 0
    assert GatewayDeposits(ops).last_deposit_id() == 0   # not final yet (anvil finalizes 64 blocks back)
    anvil_node.rpc("anvil_mine", [hex(64)])
    assert settlement_main(watch) == 0
    assert settlement_main(watch) == 0            # nothing credited twice
    assert GatewayDeposits(ops).last_deposit_id() == 2
    _assert_chain_equals_gateway(venue, ops)

    assert not isinstance(clients["mm"].place(AMZN, Side.SELL, 2_000, PX), Reject)
    assert not isinstance(clients["retail"].place(AMZN, Side.BUY, 2_000, PX), Reject)
    assert _fills_of(clients["retail"]) == 1
    assert isinstance(ops.debit(MM, USDC, 1_000_000), Debited)
    run = ["run", "--chain", anvil_node.url, "--dev-key", str(OPERATOR_KEY),
           "--deployment", str(tmp_path / "deployment.json"), "--state", str(tmp_path / "job"),
           "--addressbook", str(tmp_path / "book.json"),
           "--journal", str(load_config(config_path).journal_path), "--config", str(config_path), "--once"]
    assert settlement_main(run) == 0
    assert venue.vault.last_batch()[0] == 1
    assert settlement_main(run) == 0              # settled once
    assert venue.vault.last_batch()[0] == 1
    _assert_chain_equals_gateway(venue, ops)
    assert venue.vault.balance(venue.book.wallet(MM), USDC)[1] == 1_000_000
    # --journal without --config is refused
    assert settlement_main(run[:-3] + ["--once"]) == 1

    # status, verify and prove read the same journal
    common = ["--chain", anvil_node.url, "--deployment", str(tmp_path / "deployment.json"),
              "--state", str(tmp_path / "job"), "--journal", str(load_config(config_path).journal_path),
              "--config", str(config_path)]
    book = ["--addressbook", str(tmp_path / "book.json")]
    capsys.readouterr()
    assert settlement_main(["status", *common]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["chain_batch_id"], status["in_sync"], status["unsettled_records"]) == (1, True, 0)
    assert settlement_main(["verify", "1", *common, *book]) == 0
    assert json.loads(capsys.readouterr().out)["match"] is True
    fills, _ = JournalFillSource(FileJournal.open_reader(load_config(config_path).journal_path),
                                 unit_table_from_config(config_path)).read(0, 1_000)
    fill_id = int(fills["fill_id"][0])
    assert settlement_main(["prove", str(fill_id), *common, *book]) == 0
    assert json.loads(capsys.readouterr().out)["verified_on_chain"] is True
