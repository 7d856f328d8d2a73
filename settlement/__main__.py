"""``python -m settlement deploy|status|verify|prove|run|watch|exits|audit``: the settlement command line.

``run``, ``status``, ``verify`` and ``prove`` read the records from a record-file directory (``--source``), from the
gateway's journal (``--journal DIR --config venue.toml``, or ``--jetstream SERVERS --stream NAME --config venue.toml``),
or from the merge of a sharded venue's journals (``--shards shards.toml --merged DIR``, settlement/shard_merge.py).
``watch`` credits vault deposits to the engine through the gateway (an operator key: ``--key-file``, ``--server-key``) once they are
final (the node's ``finalized`` block, or ``--confirmations N`` on a chain without one), keeping
their block hashes in ``--state DIR``; it exits with status 1 if a reorg removes a deposit the
engine holds. ``exits`` freezes, the same way, the account of each wallet whose exit request is
final, and ``run`` serves those requests in its batches (settlement/exits.py). ``audit`` is the
watchtower (settlement/audit.py): it needs only an RPC URL and the vault's address.

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
from settlement.audit import Watchtower
from settlement.batch import BatchError
from settlement.chain import EMBEDDED, ChainClient, ChainError, connect, fund_dev_account
from settlement.deposit_log import DepositLog, DepositLogError
from settlement.deposits import DepositError, DepositWatcher
from settlement.exits import ExitError, ExitQueue, ExitWatcher, GatewayFreezes
from settlement.gateway_link import GatewayDeposits, GatewayError, unit_table_from_config
from settlement.job import JobError, JobStore, SettlementJob, rebuild_batch
from settlement.netting import NettingError
from settlement.shard_merge import ShardMerge
from settlement.source import CommittedStream, JournalFillSource, RecordFileSource
from settlement.vault import Deployment, Vault, deploy, revert_decoder


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run one command; exit status 1 on a settlement error."""
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (ChainError, JobError, BatchError, NettingError, KeyError, OSError, ConfigError, JournalError,
            DepositError, DepositLogError, ExitError, GatewayError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m settlement", description="On-chain settlement of the venue.")
    commands = parser.add_subparsers(required=True)

    def command(name: str, function, help_text: str, chain=True, key=False, state=False,
                gateway=False) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.set_defaults(command=function)
        if chain:
            sub.add_argument("--chain", default=EMBEDDED, help="JSON-RPC URL or 'embedded' (default)")
        if key:
            keys = sub.add_mutually_exclusive_group()
            keys.add_argument("--key-env", default="SETTLEMENT_KEY", help="env variable with the hex private key")
            keys.add_argument("--dev-key", type=int, help="use (and fund) deterministic dev key ID: local chains only")
            sub.add_argument("--confirmations", type=int, default=1)
            sub.add_argument("--max-fee-gwei", type=float,
                             help="fee cap: never pay more than this per gas, replacements included (default: none)")
        if state:
            sub.add_argument("--deployment", type=Path, required=True, help="file written by deploy")
            sub.add_argument("--state", type=Path, required=True, help="job state directory")
            sub.add_argument("--addressbook", type=Path, required=True, help='JSON {"account": "0xwallet"}')
            add_source(sub, required=True)
        if gateway:   # the watchers: an operator client of the gateway, reading the vault
            sub.add_argument("--config", type=Path, required=True, help="venue TOML (gateway endpoint, server key)")
            sub.add_argument("--deployment", type=Path, required=True, help="file written by deploy")
            sub.add_argument("--addressbook", type=Path, required=True, help='JSON {"account": "0xwallet"}')
            sub.add_argument("--key-file", type=Path, required=True, help="the operator's zmq secret key file")
            sub.add_argument("--server-key", type=Path, help="the gateway's public key file (default: from --config)")
            sub.add_argument("--orders", help="gateway orders endpoint (default: from --config)")
        return sub

    def add_source(sub: argparse.ArgumentParser, required: bool) -> None:
        sources = sub.add_mutually_exclusive_group(required=required)
        sources.add_argument("--source", type=Path, help="record file directory (fills, withdrawals)")
        sources.add_argument("--journal", type=Path, help="the gateway's journal directory (needs --config)")
        sources.add_argument("--jetstream", metavar="SERVERS",
                             help="the gateway's JetStream journal: comma-separated nats:// URLs (needs --config)")
        sources.add_argument("--shards", type=Path, help="a shards TOML: merge its shards' journals (needs --merged)")
        sub.add_argument("--config", type=Path, help="venue TOML (instrument units for --journal / --jetstream)")
        sub.add_argument("--stream", default="venue", help="the JetStream stream (with --jetstream)")
        sub.add_argument("--merged", type=Path, help="directory of the merged records and merge.json (with --shards)")

    sub = command("deploy", _deploy, "deploy the vault and the test tokens, write the deployment file", key=True)
    sub.add_argument("--out", type=Path, required=True, help="deployment JSON to write")
    sub.add_argument("--operator", help="operator address (default: the deployer)")
    sub.add_argument("--guardian", help="guardian address (default: the deployer)")
    sub.add_argument("--exit-window", type=int, default=7 * 24 * 3600,
                     help="seconds the operator has to serve an exit request before the vault may freeze (default 7 d)")
    sub.add_argument("--challenge-window", type=int, default=3600,
                     help="the vault's epoch: a batch is final, its withdrawals claimable, from the start of the "
                          "second epoch after its own (1 to 2 windows; default 1 h)")
    sub.add_argument("--share-asset", type=int, action="append", default=[], metavar="ID",
                     help="give asset ID a rebasing test token (MockRebasingToken), listed in shares (repeatable)")

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

    sub = command("watch", _watch, "credit final vault deposits to the engine through the gateway", gateway=True)
    sub.add_argument("--state", type=Path, required=True,
                     help="watcher state directory (deposits.jsonl: block hashes of what was credited)")
    sub.add_argument("--confirmations", type=int,
                     help="credit after N confirmations instead of at the node's 'finalized' block "
                          "(only for chains without finality)")
    sub.add_argument("--poll", type=float, default=1.0, help="seconds between polls")
    sub.add_argument("--once", action="store_true", help="credit what is final now, then exit")

    sub = command("exits", _exits, "freeze the engine account of each final exit request through the gateway",
                  gateway=True)
    sub.add_argument("--confirmations", type=int, help="blocks deep (default: the chain's finalized block)")
    sub.add_argument("--poll", type=float, default=5.0, help="seconds between polls")
    sub.add_argument("--once", action="store_true", help="freeze what is final now, then exit")

    sub = commands.add_parser("audit", help="watchtower: recompute every batch from its published fills")
    sub.set_defaults(command=_audit)
    sub.add_argument("--rpc-url", required=True, help="JSON-RPC URL of the chain")
    sub.add_argument("--vault", required=True, help="the vault's address")
    sub.add_argument("--from-block", type=int, default=0, help="first block to scan")
    sub.add_argument("--guardian-key-env", help="env variable with the guardian's hex key: pause on a mismatch")
    sub.add_argument("--poll", type=float, help="keep watching, polling every POLL seconds")
    return parser


def _client(args, w3) -> ChainClient:
    cap = None if args.max_fee_gwei is None else int(args.max_fee_gwei * 10**9)
    options = {"confirmations": args.confirmations, "max_fee_per_gas": cap, "decoder": revert_decoder()}
    if args.dev_key is not None:
        client = ChainClient(w3, dev_private_key(args.dev_key), **options)
        fund_dev_account(w3, client.address, 10**21)
        return client
    hex_key = os.environ.get(args.key_env)
    if not hex_key:
        raise ChainError(f"no private key: set {args.key_env} or use --dev-key on a local chain")
    return ChainClient(w3, bytes.fromhex(hex_key.removeprefix("0x")), **options)


def _deploy(args) -> int:
    w3 = connect(args.chain)
    client = _client(args, w3)
    deployment = deploy(client, operator=args.operator or client.address, guardian=args.guardian or client.address,
                        exit_window=args.exit_window, challenge_window=args.challenge_window,
                        shares=frozenset(args.share_asset))
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
        if any(getattr(args, name, None) is not None for name in ("source", "journal", "jetstream", "shards")):
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
    """The FillSource named on the command line: record files, the gateway's
    journal (a directory or a JetStream stream), or the merge of a shards file's journals."""
    if args.source is not None:
        return RecordFileSource(args.source)
    if getattr(args, "shards", None) is not None:  # callers that build the namespace may name the old options only
        if args.merged is None:
            raise JobError("--shards needs --merged DIR (where the merged records and merge.json are kept)")
        return ShardMerge.open(args.shards, args.merged, max_records=getattr(args, "max_records", 10_000))
    if args.config is None:
        raise JobError("--journal and --jetstream need --config (the venue's instruments)")
    if getattr(args, "jetstream", None) is not None:
        from engine.journal_jetstream import JetStreamJournal  # needs nats-py, for this source only

        journal = CommittedStream(JetStreamJournal.connect(args.jetstream.split(","), args.stream, None))
    else:
        journal = FileJournal.open_reader(args.journal)
    return JournalFillSource(journal, unit_table_from_config(args.config))


def _run(args) -> int:
    w3 = connect(args.chain)
    deployment = Deployment.load(args.deployment)
    vault, book = Vault(w3, deployment.vault), AddressBook.load(args.addressbook)
    job = SettlementJob(_source(args), _client(args, w3), vault, book, args.state, max_records=args.max_records,
                        max_wait=0.0 if args.once else args.max_wait, max_entries=args.max_entries,
                        exits=ExitQueue(vault, book, deployment.block))
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
        return _poll_until_stopped(watcher.poll, args, "deposit(s) credited or skipped")


def _poll_until_stopped(poll, args, what: str) -> int:
    """Call ``poll`` every ``args.poll`` seconds, printing how many it handled, until Ctrl-C
    (or once, with ``--once``)."""
    while True:
        done = poll()
        if done:
            print(f"{done} {what}", flush=True)
        if args.once:
            return 0
        try:
            time.sleep(args.poll)
        except KeyboardInterrupt:
            return 0


def _exits(args) -> int:
    config = load_config(args.config)
    server_key = args.server_key or config.server_key_file.with_suffix(".key")
    deployment = Deployment.load(args.deployment)
    w3 = connect(args.chain)
    with Client(args.orders or config.endpoints.orders, ClientKeys.from_files(args.key_file, server_key)) as client:
        watcher = ExitWatcher(Vault(w3, deployment.vault), deployment.block, AddressBook.load(args.addressbook),
                              GatewayFreezes(client), confirmations=args.confirmations)
        return _poll_until_stopped(watcher.poll, args, "account(s) frozen for their exit requests")


def _audit(args) -> int:
    w3 = connect(args.rpc_url)
    guardian = None
    if args.guardian_key_env:
        hex_key = os.environ.get(args.guardian_key_env)
        if not hex_key:
            raise ChainError(f"no guardian key in {args.guardian_key_env}")
        guardian = ChainClient(w3, bytes.fromhex(hex_key.removeprefix("0x")), decoder=revert_decoder())
    tower = Watchtower(Vault(w3, args.vault), args.from_block, guardian)
    mismatches = 0
    while True:
        for audit in tower.poll():
            mismatches += not audit.ok
            print(json.dumps({"batch_id": audit.batch_id, "tx": audit.tx_hash, "fills": audit.fills,
                              "match": audit.ok, "problem": audit.problem}), flush=True)
        if args.poll is None:
            return 1 if mismatches else 0
        try:
            time.sleep(args.poll)
        except KeyboardInterrupt:
            return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
