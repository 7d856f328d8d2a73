"""``python -m feeds run --config FEEDS.toml``: the feed process against a gateway."""

from __future__ import annotations

import argparse
import logging
import sys

from feeds.clock import SystemClock
from feeds.config import FeedsConfigError, load_feeds_config
from feeds.process import from_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run command's options."""
    parser.add_argument("--config", required=True, help="the feeds config (configs/feeds.toml)")
    parser.add_argument("--steps", type=int, default=None, help="stop after this many polls (default: run forever)")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Run the feed process until stopped (or for ``--steps`` polls); 2 on a bad config."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config, base = load_feeds_config(args.config)
    except FeedsConfigError as err:
        print(err, file=sys.stderr)
        return 2
    process = from_config(config, base, SystemClock())
    try:
        process.run(steps=args.steps, interval_ns=config.feeds.poll_interval_ms * 1_000_000)
    except KeyboardInterrupt:
        pass
    finally:
        process.client.close()
    return 0
