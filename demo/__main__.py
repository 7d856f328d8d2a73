"""``python -m demo``: the venue end to end as real processes (demo/venue.py);
``python -m demo walkthrough``: the in-process walk-through of each part (demo/walkthrough.py)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Run the venue demo, or the walk-through when the first argument is ``walkthrough``."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["walkthrough"]:
        from demo.walkthrough import main as walkthrough

        return walkthrough(argv[1:])
    from demo.venue import main as venue

    return venue(argv)


if __name__ == "__main__":
    sys.exit(main())
