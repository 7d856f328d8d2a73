"""The committed contract artifacts are exactly what solc-js produces from the sources."""

from __future__ import annotations

import pytest

from settlement.compile import compile_contracts, node_available, stale_artifacts


def test_artifacts_are_reproducible():
    if not node_available():
        pytest.skip("node or node_modules (solc, @openzeppelin/contracts) missing: run `npm ci`")
    assert stale_artifacts(compile_contracts()) == [], "run `python -m settlement.compile` and commit the artifacts"
