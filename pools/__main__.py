"""``python -m pools COMMAND ...``: the pools' command line.

Each command is a module with ``add_arguments(parser)`` and ``run(parser, args) -> int``,
imported only when it is the one asked for. A new command is one line in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "quote": ("pools.quote_command", "run the main pool's quoting process against a gateway"),
    "report": ("pools.report", "the main pool's P&L per UTC day, by source"),
}
"""command -> (module, one-line help)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command asked for and return its exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m pools", description="Pools of the venue.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        commands.add_parser(name, help=help_text, add_help=False)
    chosen, _ = parser.parse_known_args(argv[:1])
    module = importlib.import_module(COMMANDS[chosen.command][0])
    command_parser = argparse.ArgumentParser(prog=f"python -m pools {chosen.command}",
                                             description=COMMANDS[chosen.command][1])
    module.add_arguments(command_parser)
    return int(module.run(command_parser, command_parser.parse_args(argv[1:])))


if __name__ == "__main__":
    sys.exit(main())
