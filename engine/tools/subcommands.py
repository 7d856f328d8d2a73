"""A command line of subcommands, each a module imported only when it is the one
asked for: ``python -m feeds`` and ``python -m pools`` run through it.

A command module has ``add_arguments(parser)`` and ``run(parser, args) -> int``."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping, Sequence


def run_subcommand(prog: str, description: str, commands: Mapping[str, tuple[str, str]],
                   argv: Sequence[str]) -> int:
    """Parse ``argv`` against ``commands`` (name -> (module, one-line help)), run the
    command asked for and return its exit status."""
    argv = list(argv)
    parser = argparse.ArgumentParser(prog=prog, description=description)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in commands.items():
        sub.add_parser(name, help=help_text, add_help=False)
    chosen, _ = parser.parse_known_args(argv[:1])
    module_name, help_text = commands[chosen.command]
    module = importlib.import_module(module_name)
    command_parser = argparse.ArgumentParser(prog=f"{prog} {chosen.command}", description=help_text)
    module.add_arguments(command_parser)
    return int(module.run(command_parser, command_parser.parse_args(argv[1:])))
