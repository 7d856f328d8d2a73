"""The operator's rebalance of an account's collateral between two shards
(docs/sharding.md, "Collateral"): ``python -m engine rebalance --config
shards.toml --key OPERATOR.key_secret --from A --to B --account N --asset SYMBOL
--amount DECIMAL`` (or ``--resume`` alone to finish crashed transfers).

A transfer is two journaled steps: leg OUT on the source shard (a debit of the
free balance, margin-checked there), then leg IN on the destination shard (a
credit). Its id ``src << 48 | dst << 40 | number`` is the source's next number
for that destination, so the shards apply each id once and in order. Before a
new transfer on a pair, and on ``--resume``, a transfer whose leg OUT applied
and leg IN did not is finished from what the source shard recorded; finishing
it twice is refused by the destination (TRANSFER_DUPLICATE), so it is credited
exactly once whoever finishes it.
"""

from __future__ import annotations

import argparse
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from engine.client import Client, ClientKeys
from engine.config import ConfigError
from engine.core.transfers import transfer_id
from engine.core.types import Reject as CoreReject
from engine.schemas import Reject
from engine.schemas_shards import TransferLeg, TransferredIn, TransferredOut
from engine.shards import load_shards


class RebalanceError(RuntimeError):
    """A transfer was refused or the shards' counters disagree; the text says how."""


def finish_pending(client: Client, src: int, dst: int) -> TransferredIn | None:
    """Credit on ``dst`` the last transfer ``src`` sent it, if ``dst`` has not
    (the crash between the two steps); None if nothing was pending or another
    operator finished it first."""
    sent, got = _counters(client, src), _counters(client, dst)
    number_out, number_in = sent.out_last[dst], got.in_last[src]
    if number_out == number_in:
        return None
    if number_out != number_in + 1:
        raise RebalanceError(f"shard {src} sent transfer {number_out} to shard {dst}, which received {number_in}: "
                             f"more than one transfer pending")
    record = sent.sent[dst]
    return _leg_in(client, transfer_id(src, dst, number_out), record.account, record.asset, record.amount)


def rebalance(client: Client, src: int, dst: int, account: int, asset: int, amount: int) -> TransferredIn:
    """Move ``amount`` ledger units of ``asset`` of ``account`` from shard ``src``'s
    ledger to shard ``dst``'s, after finishing any transfer pending on the pair."""
    finish_pending(client, src, dst)
    number = _counters(client, src).out_last[dst] + 1
    tid = transfer_id(src, dst, number)
    out = client.transfer(TransferLeg.OUT, tid, account, asset, amount)
    if isinstance(out, Reject):
        raise RebalanceError(f"shard {src} refused transfer {number} to shard {dst}: {out.text}")
    if not isinstance(out, TransferredOut):
        raise RebalanceError(f"unexpected answer to a transfer: {out!r}")
    credited = _leg_in(client, tid, account, asset, amount)
    if credited is None:
        raise RebalanceError(f"transfer {number} from shard {src} to shard {dst} was credited by another operator")
    return credited


def _leg_in(client: Client, tid: int, account: int, asset: int, amount: int) -> TransferredIn | None:
    reply = client.transfer(TransferLeg.IN, tid, account, asset, amount)
    if isinstance(reply, Reject):
        if reply.code == CoreReject.TRANSFER_DUPLICATE:
            return None
        raise RebalanceError(f"transfer {tid} not credited: {reply.text}")
    return reply


def _counters(client: Client, shard: int):
    reply = client.transfers(shard)
    if isinstance(reply, Reject):
        raise RebalanceError(f"shard {shard}: {reply.text}")
    return reply


def main(argv: list[str] | None = None) -> int:
    """Run one rebalance, or finish every pending transfer (``--resume``)."""
    parser = argparse.ArgumentParser(prog="python -m engine rebalance", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="shards TOML file")
    parser.add_argument("--key", type=Path, required=True, help="an operator's .key_secret file")
    parser.add_argument("--resume", action="store_true", help="only finish transfers pending on any pair")
    parser.add_argument("--from", dest="src")
    parser.add_argument("--to", dest="dst")
    parser.add_argument("--account", type=int)
    parser.add_argument("--asset")
    parser.add_argument("--amount", help="decimal tokens")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        shards = load_shards(args.config)
        keys = ClientKeys.from_files(args.key, shards.venue.server_key_file)
        with Client(shards.router.orders, keys) as client:
            if args.resume:
                for a in shards.shards:
                    for b in shards.shards:
                        if a.index != b.index and finish_pending(client, a.index, b.index):
                            print(f"finished a transfer from {a.name} to {b.name}")
                return 0
            if None in (args.src, args.dst, args.account, args.asset, args.amount):
                parser.error("give --from, --to, --account, --asset and --amount (or --resume)")
            assets = {a.symbol: (i, a) for i, a in enumerate(shards.venue.venue.assets)}
            if args.asset not in assets:
                raise ConfigError(f"unknown asset {args.asset}")
            aid, spec = assets[args.asset]
            units = Decimal(args.amount) * 10**spec.ledger_decimals
            if units != units.to_integral_value() or units <= 0:
                raise ConfigError(f"amount {args.amount} is not a positive number of ledger units")
            done = rebalance(client, shards.by_name(args.src).index, shards.by_name(args.dst).index,
                             args.account, aid, int(units))
            print(f"transfer {done.transfer_id}: {args.amount} {args.asset} of account {args.account} "
                  f"moved from {args.src} to {args.dst}")
    except (ConfigError, RebalanceError, InvalidOperation, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
