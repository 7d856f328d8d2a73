"""Command line of the engine: `python -m engine COMMAND ...`.

  serve            run the order gateway (--config venue.toml)
  route            run the shard router (--config shards.toml)
  rebalance        move collateral between shards (engine/rebalance.py)
  keys             generate CURVE key pairs (keys init --config venue.toml)
  replay           rebuild state from a journal offline and print the state hash
  replay-lobster   replay a LOBSTER day through the matcher (conformance)
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Dispatch to the sub-command's own main(argv)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {
        "serve": "engine.gateway.__main__",
        "route": "engine.router",
        "rebalance": "engine.rebalance",
        "keys": "engine.keys",
        "replay": "engine.replay",
        "replay-lobster": "engine.tools.lobster",
    }
    if not argv or argv[0] not in commands:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    module = __import__(commands[argv[0]], fromlist=["main"])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
