"""Command line of the feeds: ``python -m feeds run --config FEEDS.toml`` runs the
feed process against a gateway."""

from __future__ import annotations

import argparse
import logging
import sys

from feeds.clock import SystemClock
from feeds.config import FeedsConfigError, load_feeds_config
from feeds.process import from_config


def _run(args: argparse.Namespace) -> int:
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


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the chosen command."""
    parser = argparse.ArgumentParser(prog="python -m feeds", description="Feeds of the venue.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the feed process against a gateway")
    run.add_argument("--config", required=True, help="the feeds config (configs/feeds.toml)")
    run.add_argument("--steps", type=int, default=None, help="stop after this many polls (default: run forever)")
    run.set_defaults(handler=_run)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
