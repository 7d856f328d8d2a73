"""Fixtures: every rule test runs against the pure-Python reference matcher and
against the Cython core."""

from __future__ import annotations

import pytest
from helpers import CYTHON_MISSING, cython_engine_class, make_engine

from engine.reference import ReferenceMatcher

ENGINE_NAMES = ("reference", "cython")


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
