"""pytest-benchmark micro-benchmarks of the matching core, against the Cython core and the reference.

Not part of the default test run (pytest collects tests/ only). Run with::

    .venv/bin/pytest bench/test_micro_core.py --benchmark-only

Every benchmark builds its engine and book in ``setup`` (outside the timing)
and times only the commands; the asserts afterwards check what the last round
did, never how long it took.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from bench.core import load_engines, ready_engine
from bench.mix import TICK, MixSpec, generate_mix, instrument_specs
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, EventKind, OrderType, SelfTrade, Side, TimeInForce

CORE, REFERENCE = load_engines()
# A small mix: the book is built, warmed up, then one gateway batch is timed.
SMALL_MIX = replace(MixSpec(), seed_chunks=4, warmup_chunks=4, timed_chunks=1, target_resting=12_000)
PRICE = 250_000  # $25.00, the base price of instrument 0
SWEPT_LEVELS = 5
ORDERS_PER_LEVEL = 3
ROUNDS = {"core": 2_000, "reference": 200}


@pytest.fixture(params=["core", "reference"])
def engine(request):
    """(name, engine class); skips the core if it is not built."""
    cls = CORE if request.param == "core" else REFERENCE
    if cls is None:
        pytest.skip(f"{request.param} engine does not import")
    return request.param, cls


@pytest.fixture(scope="module")
def small_mix():
    """The small mix, generated once (through the core when it is built)."""
    return generate_mix(CORE or REFERENCE, SMALL_MIX)


def _one_instrument(cls):
    """A fresh engine with instrument 0 of the mix and its reference price."""
    engine = cls(max_accounts=SMALL_MIX.accounts)
    engine.add_instrument(instrument_specs(1)[0])
    engine.set_reference_price(0, PRICE)
    return engine


def _resting_book(cls):
    """Instrument 0 with 10 bid levels (below $25.00) of one order each, all of account 1."""
    engine = _one_instrument(cls)
    for level in range(1, 11):
        engine.new_order(0, 1, Side.BUY, 100, PRICE - level * TICK)
    return engine


def test_add_cancel_percommand(benchmark, engine):
    """new_order of a resting sell, then cancel it: the book ends as it began."""
    name, cls = engine
    book = _resting_book(cls)

    def add_cancel():
        accepted = book.new_order(0, 2, Side.SELL, 100, PRICE + TICK)[0]
        return book.cancel(2, accepted.order_id)

    events = benchmark.pedantic(add_cancel, rounds=ROUNDS[name], warmup_rounds=ROUNDS[name] // 10)
    assert events[0].kind == EventKind.CANCELLED


def test_add_cancel_batch(benchmark, engine):
    """The same pair as one 2-command process() call; the ids are predicted in setup."""
    name, cls = engine
    book = _resting_book(cls)
    next_id = [11]  # ten orders rest; the engine numbers accepted orders 1, 2, 3, ...

    def setup():
        pair = np.zeros(2, dtype=COMMAND_DTYPE)
        pair["kind"] = (CommandKind.NEW_ORDER, CommandKind.CANCEL)
        pair["account"] = 2
        pair["side"] = (Side.SELL, 0)
        pair["order_type"] = (OrderType.LIMIT, 0)
        pair["tif"] = (TimeInForce.GTC, 0)
        pair["stp"] = (SelfTrade.CANCEL_NEWEST, 0)
        pair["price"] = (PRICE + TICK, 0)
        pair["qty"] = (100, 0)
        pair["order_id"] = (0, next_id[0])
        next_id[0] += 1
        return (pair,), {}

    events = benchmark.pedantic(book.process, setup=setup, rounds=ROUNDS[name], warmup_rounds=ROUNDS[name] // 10)
    assert events["kind"].tolist() == [EventKind.ACCEPTED, EventKind.CANCELLED]


def test_sweep_five_levels(benchmark, engine):
    """One buy order that takes every order on five ask levels (three orders each)."""
    name, cls = engine

    def setup():
        book = _one_instrument(cls)
        for level in range(1, SWEPT_LEVELS + 1):
            for account in range(ORDERS_PER_LEVEL):
                book.new_order(0, 10 + account, Side.SELL, 100, PRICE + level * TICK)
        return (book,), {}

    def sweep(book):
        return book.new_order(0, 1, Side.BUY, 100 * SWEPT_LEVELS * ORDERS_PER_LEVEL, PRICE + SWEPT_LEVELS * TICK)

    events = benchmark.pedantic(sweep, setup=setup, rounds=ROUNDS[name] // 2, warmup_rounds=ROUNDS[name] // 20)
    fills = [e for e in events if e.kind == EventKind.FILL]
    assert len(fills) == SWEPT_LEVELS * ORDERS_PER_LEVEL and fills[-1].leaves == 0


def test_mix_batch_4096(benchmark, engine, small_mix):
    """One gateway batch of 4096 commands of the mix, on a book built by the mix's setup part."""
    name, cls = engine

    def setup():
        return (ready_engine(cls, small_mix), small_mix.timed), {}

    def process_batch(book, commands):
        return book.process(commands)

    rounds = 20 if name == "core" else 3
    events = benchmark.pedantic(process_batch, setup=setup, rounds=rounds, warmup_rounds=1)
    assert len(events) == small_mix.timed_events
