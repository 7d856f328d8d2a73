"""``python -m feeds COMMAND ...``: the feeds' command line.

Each command is a module with ``add_arguments(parser)`` and ``run(parser, args) -> int``,
imported only when it is the one asked for (the session calendar loads pandas;
pricing should not wait for it). A new command is one line in ``COMMANDS``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from engine.tools.subcommands import run_subcommand

COMMANDS: dict[str, tuple[str, str]] = {
    "session": ("feeds.session_command", "the home market's session at an instant and the next transition"),
    "price": ("feeds.price_command", "an option's mark and greeks (dated or everlasting)"),
    "run": ("feeds.run_command", "run the feed process against a gateway"),
}
"""command -> (module, one-line help)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, run the command asked for and return its exit status."""
    return run_subcommand("python -m feeds", "Feeds of the venue.", COMMANDS, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
