"""Command line of the engine: `python -m engine COMMAND ...`.

  demo             place, match and cancel orders on the embedded defaults
  replay-lobster   replay a LOBSTER day through the matcher (conformance)
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the sub-command's own main(argv)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "demo": "engine.demo",
        "replay-lobster": "engine.lobster",
    }
    if not argv or argv[0] not in commands:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    module = __import__(commands[argv[0]], fromlist=["main"])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
