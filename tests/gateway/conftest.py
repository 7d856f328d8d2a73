"""Fixtures of the gateway integration tests: the gateway runs as a real
subprocess on loopback TCP, with CURVE keys generated per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import zmq
from gateway_harness import connect, make_keys, write_venue

from engine.gateway.process import GatewayProcess


@pytest.fixture(scope="session")
def keys(tmp_path_factory) -> Path:
    """A directory of key pairs (see gateway_harness.KEY_NAMES)."""
    return make_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, keys):
    """A gateway on a fresh journal, shared by the tests of one module."""
    directory = tmp_path_factory.mktemp("venue")
    with GatewayProcess(write_venue(directory, keys), directory / "gateway.log") as gw:
        yield gw


@pytest.fixture
def clients(keys):
    """connect(gateway, name) -> Client; closes them after the test."""
    opened = []

    def make(gw, name: str, timeout: float = 5.0):
        client = connect(gw.orders, keys, name, timeout)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.close()


@pytest.fixture(scope="session", autouse=True)
def _zmq_context():
    """Close the shared zmq context at the end (sockets a failed test left open too)."""
    yield
    zmq.Context.instance().destroy(linger=0)
