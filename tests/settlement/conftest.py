"""Fixtures of the settlement tests: the venue on the embedded EVM (reset per test by snapshot)
and a fresh anvil node."""

from __future__ import annotations

import pytest
from settlement_helpers import Venue, setup_venue

from settlement.anvil import Anvil, anvil_command
from settlement.chain import connect


@pytest.fixture(scope="session")
def embedded_venue_snapshot():
    """One embedded chain with the venue set up, and the snapshot taken right after."""
    w3 = connect()
    venue = setup_venue(w3)
    return venue, w3.provider.ethereum_tester.take_snapshot()


@pytest.fixture
def venue(embedded_venue_snapshot) -> Venue:
    """The embedded venue, reset to its freshly set-up state."""
    base, snapshot = embedded_venue_snapshot
    base.w3.provider.ethereum_tester.revert_to_snapshot(snapshot)
    return Venue(base.w3, base.deployment, base.vault, base.book)


def requires_anvil() -> None:
    """Skip unless anvil is installed (npm ci)."""
    if anvil_command() is None:
        pytest.skip("anvil not installed: run `npm ci` (package @foundry-rs/anvil)")


@pytest.fixture
def anvil_node():
    """A fresh anvil on a free loopback port, stopped after the test."""
    requires_anvil()
    with Anvil() as node:
        yield node


@pytest.fixture(params=["embedded", "anvil"])
def chain_venue(request) -> Venue:
    """The venue on the embedded EVM, then on a fresh anvil node: for tests that
    must hold on a real node as well (crash and restart of the job)."""
    if request.param == "embedded":
        return request.getfixturevalue("venue")
    node = request.getfixturevalue("anvil_node")
    return setup_venue(connect(node.url))
