"""Settlement records from engine events: FILL -> fill, DEBITED -> withdrawal.

Vectorised over a batch's EVENT_DTYPE array. Ids are `seq * 65536 + index of
the event within its command`, so fills and withdrawals share one increasing
id space (settlement/records.py).
"""

from __future__ import annotations

import numpy as np

from engine.core.types import EventKind, Side
from settlement.records import FILLS_PER_SEQ, SETTLEMENT_FILL_DTYPE, WITHDRAWAL_DTYPE


class InstrumentUnits:
    """Per instrument id: base/quote asset and the exact ledger-unit mapping."""

    def __init__(self, rows: list[tuple[int, int, int, int, int]]) -> None:
        table = np.asarray(rows, dtype=np.int64).reshape(-1, 5)
        self.base_asset, self.quote_asset, self.base_per_qty, self.quote_per_tick_qty, self.tick = table.T

    @classmethod
    def of_engine(cls, engine) -> "InstrumentUnits":
        """The mapping of every instrument of a risk-mode MatchingEngine."""
        return cls([engine.instrument_units(i) for i in range(len(engine.instruments))])


def _index_in_command(seq: np.ndarray) -> np.ndarray:
    """Position of each event among the events of its command (events of one
    command are contiguous and share its seq)."""
    starts = np.flatnonzero(np.r_[True, seq[1:] != seq[:-1]])
    counts = np.diff(np.r_[starts, len(seq)])
    return np.arange(len(seq)) - np.repeat(starts, counts)


def settlement_records(events: np.ndarray, units: InstrumentUnits) -> tuple[np.ndarray, np.ndarray]:
    """(fills, withdrawals) of one batch of engine events, in id order."""
    if len(events) == 0:
        return np.zeros(0, SETTLEMENT_FILL_DTYPE), np.zeros(0, WITHDRAWAL_DTYPE)
    index = _index_in_command(events["seq"])
    if index.max() >= FILLS_PER_SEQ:
        raise ValueError(f"a command produced more than {FILLS_PER_SEQ} events")
    ids = events["seq"].astype(np.uint64) * np.uint64(FILLS_PER_SEQ) + index.astype(np.uint64)

    is_fill = events["kind"] == EventKind.FILL
    f = events[is_fill]
    inst = f["instrument"]
    taker_buys = f["side"] == Side.BUY
    fills = np.zeros(len(f), SETTLEMENT_FILL_DTYPE)
    fills["fill_id"] = ids[is_fill]
    fills["buyer"] = np.where(taker_buys, f["account"], f["maker_account"])
    fills["seller"] = np.where(taker_buys, f["maker_account"], f["account"])
    fills["base_asset"] = units.base_asset[inst]
    fills["quote_asset"] = units.quote_asset[inst]
    fills["base_amount"] = f["qty"] * units.base_per_qty[inst]
    fills["quote_amount"] = f["price"] // units.tick[inst] * f["qty"] * units.quote_per_tick_qty[inst]
    fills["buyer_fee"] = np.where(taker_buys, f["fee"], f["maker_fee"])
    fills["seller_fee"] = np.where(taker_buys, f["maker_fee"], f["fee"])

    is_debit = events["kind"] == EventKind.DEBITED
    d = events[is_debit]
    withdrawals = np.zeros(len(d), WITHDRAWAL_DTYPE)
    withdrawals["withdrawal_id"] = ids[is_debit]
    withdrawals["account"] = d["account"]
    withdrawals["asset"] = d["asset"]
    withdrawals["amount"] = d["qty"]
    return fills, withdrawals
