"""``python -m pools COMMAND ...``: the pools' command line.

Each command is a module with ``add_arguments(parser)`` and ``run(parser, args) -> int``,
imported only when it is the one asked for. A new command is one line in ``COMMANDS``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from engine.tools.subcommands import run_subcommand

COMMANDS: dict[str, tuple[str, str]] = {
    "quote": ("pools.quote_command", "run the main pool's quoting process against a gateway"),
    "report": ("pools.report", "the main pool's P&L per UTC day, by source"),
}
"""command -> (module, one-line help)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command asked for and return its exit status."""
    return run_subcommand("python -m pools", "Pools of the venue.", COMMANDS, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
