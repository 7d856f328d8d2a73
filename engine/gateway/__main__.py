"""The gateway's command line: ``python -m engine serve --config venue.toml``
(or ``python -m engine.gateway``) runs it until SIGTERM / SIGINT and prints a
``ready`` line with its endpoints once it serves."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
from pathlib import Path

import zmq

from engine.config import ConfigError, load_config
from engine.gateway.server import Gateway
from engine.journal import JournalError, JournalFailure
from engine.replay import ReplayError
from engine.shards import load_shards, shard_config

log = logging.getLogger("engine.gateway")


def main(argv: list[str] | None = None) -> int:
    """Run the gateway until SIGTERM/SIGINT; 1 if it cannot start, 3 if its journal
    failed while serving (it stopped without acknowledging anything not on disk)."""
    parser = argparse.ArgumentParser(prog="python -m engine serve", description="Run the order gateway.")
    parser.add_argument("--config", type=Path, required=True, help="venue TOML file (a shards file with --shard)")
    parser.add_argument("--shard", help="serve this shard of the shards file given as --config")
    parser.add_argument("--replica", type=int, default=0,
                        help="with --shard: serve as this gateway of the shard (its orders / market_data "
                             "endpoints at this index; a JetStream shard's leader and standbys)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--log-file", type=Path, help="log here instead of stderr")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), filename=args.log_file,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = (shard_config(load_shards(args.config), args.shard, args.replica) if args.shard
                  else load_config(args.config))
        gateway = Gateway(config, on_standby=lambda seq: print(f"standby last_seq={seq}", flush=True))
    except (ConfigError, JournalError, ReplayError, zmq.ZMQError, OSError) as err:
        log.error("cannot start: %s", err)
        print(f"error: {err}", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, gateway.stop)
    signal.signal(signal.SIGINT, gateway.stop)
    # The loop's garbage is acyclic and freed by reference counting; full
    # collections over the start-up heap (modules, recovery) only add pauses.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    orders, md = gateway.endpoints
    print(f"ready orders={orders} market_data={md} last_seq={gateway.engine.last_seq}", flush=True)
    log.info("serving orders on %s, market data on %s", orders, md)
    try:
        gateway.run()
    except JournalFailure as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    log.info("stopped at seq %d", gateway.engine.last_seq)
    return 0


if __name__ == "__main__":
    sys.exit(main())
