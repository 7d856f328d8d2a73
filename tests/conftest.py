"""Fixtures: every rule test runs against the pure-Python reference matcher and
against the Cython core."""

from __future__ import annotations

import os

import pytest
from helpers import CYTHON_MISSING, cython_engine_class, make_engine
from hypothesis import HealthCheck, settings

from engine.reference import ReferenceMatcher

ENGINE_NAMES = ("reference", "cython")

# Hypothesis under CI (CI=true): the same examples on every run and nothing
# replayed from a local example database, so a fresh clone and a rerun agree;
# a failure prints the blob that reproduces it (@reproduce_failure). Deadlines
# and the too_slow health check measure wall time, which on a loaded 2-core CI
# machine says more about the neighbours than about the code. Local runs keep
# the default profile: random exploration, failures saved and replayed.
# The profile is loaded here, before any test module builds its own
# settings(...): those inherit every field they do not set, and none of them
# sets derandomize or database.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
if os.environ.get("CI") == "true":
    settings.load_profile("ci")


def engine_class(name: str):
    """The engine class called `name`; skip the test if the Cython core is not built."""
    if name == "reference":
        return ReferenceMatcher
    cls = cython_engine_class()
    if cls is None:
        pytest.skip(CYTHON_MISSING)
    return cls


@pytest.fixture(params=ENGINE_NAMES)
def engine_cls(request):
    """The engine class under test: ReferenceMatcher or the Cython MatchingEngine."""
    return engine_class(request.param)


@pytest.fixture
def eng(engine_cls):
    """A fresh engine (integrity-checked after every call) with instruments
    BANDED (0), FREE (1) and NARROW (2) from tests/helpers.py, none with a reference price."""
    return make_engine(engine_cls)
