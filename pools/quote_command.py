"""``python -m pools quote --config POOLS.toml``: the main pool's quoting process."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from engine.client import Client, ClientKeys
from pools.quoter import Quoter
from pools.quoter_config import PoolsConfigError, load_pools_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The quote command's options."""
    parser.add_argument("--config", required=True, help="the pools config (configs/pools.toml)")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Quote until SIGTERM or SIGINT, then cancel every quote and return 0; 2 on a
    bad config or a venue that does not match it."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config, base = load_pools_config(args.config)
    except PoolsConfigError as err:
        print(err, file=sys.stderr)
        return 2
    try:
        keys = ClientKeys.from_files(base / config.gateway.key_file, base / config.gateway.server_key_file)
    except (OSError, ValueError) as err:
        print(f"{args.config}: gateway keys: {err}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with Client(config.gateway.endpoint, keys, timeout=config.gateway.timeout_ms / 1000) as client:
        quoter = Quoter(client, config)
        try:
            quoter.start()
        except (RuntimeError, TimeoutError) as err:    # QuoterError, a refused query, no gateway
            print(f"{args.config}: {err}", file=sys.stderr)
            return 2
        print("quoting", flush=True)
        quoter.run(stop)
    return 0
