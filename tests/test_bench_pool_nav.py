"""bench/pool_nav.py on a small run: it checks the core's NAV against the reference
model before timing and reports both figures (no timing is asserted: figures come
from `python -m bench options`)."""

from bench import pool_nav
from bench.options import Sizes


def test_pool_nav_reports_the_core_and_its_baseline():
    results = pool_nav.measure(Sizes(tiny=True))
    assert results["pool_nav_positions"] == 1_000
    for key in ("pool_nav_per_s", "pool_nav_baseline_per_s"):
        assert results[key] > 0, key
