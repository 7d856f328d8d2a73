"""``python -m pools report --journal DIR --config venue.toml [--json]``."""

import sys

from pools.report import main

if __name__ == "__main__":
    sys.exit(main())
