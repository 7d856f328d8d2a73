"""``python -m settlement deploy|status|verify|prove|run|watch``: the settlement command line.

``run``, ``status``, ``verify`` and ``prove`` read the records from a record-file directory (``--source``) or from the
gateway's journal (``--journal DIR --config venue.toml``). ``watch`` credits vault deposits to
the engine through the gateway (an operator key: ``--key-file``, ``--server-key``) once they are
final (the node's ``finalized`` block, or ``--confirmations N`` on a chain without one), keeping
their block hashes in ``--state DIR``; it exits with status 1 if a reorg removes a deposit the
engine holds.

Keys: ``--key-env NAME`` names an environment variable holding the hex private key; on local
chains ``--dev-key ID`` uses the deterministic dev key ID (settlement.accounts.dev_private_key)
and funds it. ``--chain`` is a JSON-RPC URL, or ``embedded`` (in-process, gone on exit).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

from engine.client import Client, ClientKeys
from engine.config import ConfigError, load_config
from engine.journal import FileJournal, JournalError
from settlement.accounts import AddressBook, dev_private_key
from settlement.batch import BatchError
from settlement.chain import EMBEDDED, ChainClient, ChainError, connect, fund_dev_account
from settlement.deposit_log import DepositLog, DepositLogError
from settlement.deposits import DepositError, DepositWatcher
from settlement.gateway_link import GatewayDeposits, GatewayError, unit_table_from_config
from settlement.job import JobError, JobStore, SettlementJob, rebuild_batch
from settlement.netting import NettingError
from settlement.source import JournalFillSource, RecordFileSource
from settlement.vault import Deployment, Vault, deploy, revert_decoder


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; exit status 1 on a settlement error."""
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (ChainError, JobError, BatchError, NettingError, KeyError, OSError, ConfigError, JournalError,
            DepositError, DepositLogError, GatewayError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m settlement", description="On-chain settlement of the venue.")
    commands = parser.add_subparsers(required=True)

    def command(name: str, function, help_text: str, chain=True, key=False, state=False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(command=function)
        if chain:
            sub.add_argument("--chain", default=EMBEDDED, help="JSON-RPC URL or 'embedded' (default)")
        if key:
            keys = sub.add_mutually_exclusive_group()
            keys.add_argument("--key-env", default="SETTLEMENT_KEY", help="env variable with the hex private key")
            keys.add_argument("--dev-key", type=int, help="use (and fund) deterministic dev key ID: local chains only")
            sub.add_argument("--confirmations", type=int, default=1)
        if state:
            sub.add_argument("--deployment", type=Path, required=True, help="file written by deploy")
            sub.add_argument("--state", type=Path, required=True, help="job state directory")
            sub.add_argument("--addressbook", type=Path, required=True, help='JSON {"account": "0xwallet"}')
            add_source(sub, required=True)
        return sub

    def add_source(sub: argparse.ArgumentParser, required: bool) -> None:
        sources = sub.add_mutually_exclusive_group(required=required)
        sources.add_argument("--source", type=Path, help="record file directory (fills, withdrawals)")
        sources.add_argument("--journal", type=Path, help="the gateway's journal directory (needs --config)")
        sub.add_argument("--config", type=Path, help="venue TOML (instrument units for --journal)")

    sub = command("deploy", _deploy, "deploy the vault and the test tokens, write the deployment file", key=True)
    sub.add_argument("--out", type=Path, required=True, help="deployment JSON to write")
    sub.add_argument("--operator", help="operator address (default: the deployer)")
    sub.add_argument("--guardian", help="guardian address (default: the deployer)")
    sub.add_argument("--escape-delay", type=int, default=7 * 24 * 3600, help="seconds without a batch (default 7 d)")
    sub.add_argument("--exit-delay", type=int, default=24 * 3600, help="seconds after an exit request (default 1 d)")

    sub = command("status", _status, "last batch on chain vs the job's checkpoint and the source")
    sub.add_argument("--deployment", type=Path, required=True)
    sub.add_argument("--state", type=Path, help="job state directory")
    add_source(sub, required=False)

    sub = command("verify", _verify, "recompute a batch from the source and compare it with the chain", state=True)
    sub.add_argument("batch", type=int)

    sub = command("prove", _prove, "print the Merkle proof of a fill (checked on chain with --chain)", state=True)
    sub.add_argument("fill", type=int)

    sub = command("run", _run, "the batch job: settle the source's records", key=True, state=True)
    sub.add_argument("--max-records", type=int, default=10_000, help="records per batch (cut by count)")
    sub.add_argument("--max-wait", type=float, default=5.0, help="seconds before a smaller batch is cut")
    sub.add_argument("--max-entries", type=int, default=3_000, help="deltas + withdrawals per batch (gas bound)")
    sub.add_argument("--poll", type=float, default=0.5, help="seconds between polls")
    sub.add_argument("--once", action="store_true", help="settle what is due now, then exit")

    sub = command("watch", _watch, "credit final vault deposits to the engine through the gateway")
    sub.add_argument("--config", type=Path, required=True, help="venue TOML (gateway endpoint, server key)")
    sub.add_argument("--deployment", type=Path, required=True, help="file written by deploy")
    sub.add_argument("--addressbook", type=Path, required=True, help='JSON {"account": "0xwallet"}')
    sub.add_argument("--key-file", type=Path, required=True, help="the operator's zmq secret key file")
    sub.add_argument("--server-key", type=Path, help="the gateway's public key file (default: from --config)")
    sub.add_argument("--orders", help="gateway orders endpoint (default: from --config)")
    sub.add_argument("--state", type=Path, required=True,
                     help="watcher state directory (deposits.jsonl: block hashes of what was credited)")
    sub.add_argument("--confirmations", type=int,
                     help="credit after N confirmations instead of at the node's 'finalized' block "
                          "(only for chains without finality)")
    sub.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    sub.add_argument("--once", action="store_true", help="credit what is final now, then exit")
    return parser


def _client(args, w3) -> ChainClient:
    if args.dev_key is not None:
        key = dev_private_key(args.dev_key)
        client = ChainClient(w3, key, confirmations=args.confirmations, decoder=revert_decoder())
        fund_dev_account(w3, client.address, 10**21)
        return client
    hex_key = os.environ.get(args.key_env)
    if not hex_key:
        raise ChainError(f"no private key: set {args.key_env} or use --dev-key on a local chain")
    return ChainClient(w3, bytes.fromhex(hex_key.removeprefix("0x")), confirmations=args.confirmations,
                       decoder=revert_decoder())


def _deploy(args) -> int:
    w3 = connect(args.chain)
    client = _client(args, w3)
    deployment = deploy(client, operator=args.operator or client.address, guardian=args.guardian or client.address,
                        escape_delay=args.escape_delay, exit_delay=args.exit_delay)
    deployment.save(args.out)
    print(f"vault {deployment.vault} on chain {deployment.chain_id}; wrote {args.out}")
    return 0


def _status(args) -> int:
    w3 = connect(args.chain)
    vault = Vault(w3, Deployment.load(args.deployment).vault)
    batch_id, batch_hash = vault.last_batch()
    status = {"chain_batch_id": batch_id, "chain_batch_hash": "0x" + batch_hash.hex(),
              "last_settled_at": vault.contract.functions.lastSettledAt().call()}
    if args.state is not None:
        checkpoint = JobStore(args.state).checkpoint()
        status["checkpoint_batch_id"] = checkpoint.batch_id
        status["checkpoint_last_id"] = checkpoint.last_id
        status["in_sync"] = checkpoint.batch_id == batch_id and checkpoint.batch_hash == status["chain_batch_hash"]
        if args.source is not None or args.journal is not None:
            fills, withdrawals = _source(args).read(checkpoint.last_id, 1 << 40)
            status["unsettled_records"] = len(fills) + len(withdrawals)
    print(json.dumps(status, indent=1))
    return 0


def _verify(args) -> int:
    store = JobStore(args.state)
    record = store.batch(args.batch)
    if record is None:
        raise JobError(f"no record of batch {args.batch} in {args.state}")
    batch = rebuild_batch(record, _source(args), AddressBook.load(args.addressbook))
    vault = Vault(connect(args.chain), Deployment.load(args.deployment).vault)
    logs = vault.contract.events.BatchSettled().get_logs(argument_filters={"batchId": args.batch},
                                                         from_block=Deployment.load(args.deployment).block)
    chain_hash = bytes(logs[0]["args"]["batchHash"]) if logs else None
    ok = chain_hash == batch.batch_hash and vault.fills_root(args.batch) == batch.fills_root
    print(json.dumps({"batch_id": args.batch, "batch_hash": "0x" + batch.batch_hash.hex(),
                      "chain_batch_hash": None if chain_hash is None else "0x" + chain_hash.hex(),
                      "fills_root": "0x" + batch.fills_root.hex(), "deltas": len(batch.deltas),
                      "withdrawals": len(batch.withdrawal_words), "match": ok}, indent=1))
    return 0 if ok else 1


def _prove(args) -> int:
    store = JobStore(args.state)
    batch_id = 1
    while (record := store.batch(batch_id)) is not None and not record.after_id < args.fill <= record.last_id:
        batch_id += 1
    if record is None:
        raise JobError(f"fill {args.fill} is in no recorded batch")
    batch = rebuild_batch(record, _source(args), AddressBook.load(args.addressbook))
    leaf, proof = batch.proof(args.fill)
    vault = Vault(connect(args.chain), Deployment.load(args.deployment).vault)
    print(json.dumps({"batch_id": batch_id, "fills_root": "0x" + batch.fills_root.hex(), "leaf": list(leaf),
                      "proof": ["0x" + p.hex() for p in proof],
                      "verified_on_chain": vault.verify_fill(batch_id, proof, leaf)}, indent=1))
    return 0


def _source(args):
    """The FillSource named on the command line: record files or the gateway's journal."""
    if args.source is not None:
        return RecordFileSource(args.source)
    if args.config is None:
        raise JobError("--journal needs --config (the venue's instruments)")
    return JournalFillSource(FileJournal.open_reader(args.journal), unit_table_from_config(args.config))


def _run(args) -> int:
    w3 = connect(args.chain)
    job = SettlementJob(_source(args), _client(args, w3), Vault(w3, Deployment.load(args.deployment).vault),
                        AddressBook.load(args.addressbook), args.state, max_records=args.max_records,
                        max_wait=0.0 if args.once else args.max_wait, max_entries=args.max_entries)
    if args.once:
        while job.step() is not None:
            pass
        return 0
    stop = threading.Event()
    try:
        job.run(stop, args.poll)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _watch(args) -> int:
    config = load_config(args.config)
    server_key = args.server_key or config.server_key_file.with_suffix(".key")
    orders = args.orders or config.endpoints.orders
    deployment = Deployment.load(args.deployment)
    w3 = connect(args.chain)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    args.state.mkdir(parents=True, exist_ok=True)
    with Client(orders, ClientKeys.from_files(args.key_file, server_key)) as client:
        watcher = DepositWatcher(Vault(w3, deployment.vault), deployment, AddressBook.load(args.addressbook),
                                 GatewayDeposits(client), confirmations=args.confirmations,
                                 record=DepositLog(args.state / "deposits.jsonl"))
        while True:
            done = watcher.poll()
            if done:
                print(f"{done} deposit(s) credited or skipped", flush=True)
            if args.once:
                return 0
            try:
                time.sleep(args.poll)
            except KeyboardInterrupt:
                return 0


if __name__ == "__main__":
    sys.exit(main())
