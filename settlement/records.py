"""Settlement records: their numpy layouts and how engine events become them.

* Layouts: ``SETTLEMENT_FILL_DTYPE`` (a fill), ``WITHDRAWAL_DTYPE`` (an approved debit),
  ``FREEZE_DTYPE`` (an account frozen by its wallet's exit request) and ``NET_DTYPE``
  (what netting returns). Every amount is an int64 in *ledger units* of
  its asset (engine/units.py; shares / scale for a rebasing token listed in shares, so records
  and the ``UnitTable`` need nothing of the token's multiplier); accounts are engine account
  ids (int64), assets engine asset ids (int32, < 65536 to fit the vault's uint16).
* Conversion: ``settlement_records`` turns a batch of engine events (FILL -> fill,
  POSITION_SETTLED, FUNDING_SETTLED, POOL_PAID and the loss waterfall's payments -> fill, DEBITED ->
  withdrawal) into those records,
  vectorised, with each instrument's exact
  ledger-unit mapping from a ``UnitTable``; ``freeze_records`` takes the ACCOUNT_FROZEN
  events. Ids are ``seq * FILLS_PER_SEQ + index of the event within its command``, so all
  records share one increasing id space.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine.core.types import EventKind, Side
from engine.units import instrument_units

if TYPE_CHECKING:
    from engine.assets import AssetSpec
    from engine.instruments import InstrumentSpec

FEE_ACCOUNT = 0
"""The venue's fee account: it receives buyer_fee + seller_fee of every fill."""

FILLS_PER_SEQ = 65536
"""fill_id = engine seq * FILLS_PER_SEQ + index of the fill within that command."""

SETTLEMENT_FILL_DTYPE = np.dtype(
    [
        ("fill_id", "<u8"),
        ("buyer", "<i8"),
        ("seller", "<i8"),
        ("base_asset", "<i4"),
        ("quote_asset", "<i4"),
        ("base_amount", "<i8"),
        ("quote_amount", "<i8"),
        ("buyer_fee", "<i8"),
        ("seller_fee", "<i8"),
    ]
)
"""One fill. Effect: buyer +base_amount base, -(quote_amount + buyer_fee) quote; seller
-base_amount base, +(quote_amount - seller_fee) quote; FEE_ACCOUNT +(buyer_fee + seller_fee)
quote. Fees may be negative (rebates); quote_amount is > 0, base_amount > 0 for a
spot fill and 0 for an option fill (only the premium moves; positions stay off chain).

A cash settlement payment of an expired option series (POSITION_SETTLED, engine/core/chain.pyx)
is a fill of no base and no fee between the account and the clearing counterparty (the fee
account): a short that pays is the buyer, a long that receives the seller; base_asset and
quote_asset are both the premium asset. Netting, the Merkle leaf, the published fills and the
watchtower's recomputation treat it as any fill.

A funding payment of a perpetual series (FUNDING_SETTLED, engine/core/funding.pyx) is the same
kind of fill between the account and the fee account, which holds the funding pools' money (the
event's `maker_account`): an account that pays is the buyer, one that receives the seller. The
fee account's own funding moves nothing and makes no record.

A main pool deposit or redemption (POOL_PAID, engine/core/pool_api.pyx, docs/pools.md) is two such
fills between the provider and the pool account (the event's `maker_account`), one per asset: a
deposit's provider pays the pool asset and receives shares from the pool's treasury, a redemption's
pays the shares back and receives the pool asset less the withdrawal fee, which stays in the pool.

The loss waterfall's payments (engine/core/losses.pyx: PENALTY_CHARGED, LOSS_COVERED, FEES_SWEPT,
whose `account` pays its `maker_account`; DELEVERAGED, whose `maker_account`, the bankrupt short,
pays its `account`, a deleveraged long) are the same kind of fill between the two accounts: the
payer is the buyer, the payee the seller."""

WITHDRAWAL_DTYPE = np.dtype(
    [
        ("withdrawal_id", "<u8"),
        ("account", "<i8"),
        ("asset", "<i4"),
        ("amount", "<i8"),
    ]
)
"""A debit the engine approved: `amount` > 0 leaves the account's settled balance and becomes
claimable on chain by its wallet."""

FREEZE_DTYPE = np.dtype([("freeze_id", "<u8"), ("account", "<i8")])
"""An account frozen by its wallet's exit request: no record of it has an id above freeze_id."""

NET_DTYPE = np.dtype(
    [
        ("account", "<i8"),
        ("asset", "<i4"),
        ("delta", "<i8"),
        ("withdrawn", "<i8"),
    ]
)
"""Netting result per (account, asset): `delta` is the fills' net change of the settled balance
(per asset the deltas sum to zero), `withdrawn` the total moved to claimable."""


def fill_id(seq: int, index: int) -> int:
    """The fill id of the `index`-th fill of engine command `seq`."""
    if not 0 <= index < FILLS_PER_SEQ:
        raise ValueError(f"fill index {index} outside [0, {FILLS_PER_SEQ})")
    return seq * FILLS_PER_SEQ + index


def empty_fills(n: int) -> np.ndarray:
    """A zeroed fill array of length n."""
    return np.zeros(n, dtype=SETTLEMENT_FILL_DTYPE)


def empty_withdrawals(n: int) -> np.ndarray:
    """A zeroed withdrawal array of length n."""
    return np.zeros(n, dtype=WITHDRAWAL_DTYPE)


class UnitTable:
    """The ledger-unit mapping of every instrument of a venue, as int64 columns indexed by
    instrument id: ``base_asset``, ``quote_asset``, ``base_per_qty``, ``quote_per_tick_qty``
    and ``tick`` (engine/units.py ``instrument_units``, plus the tick size)."""

    def __init__(self, rows: Sequence[tuple[int, int, int, int, int]]) -> None:
        table = np.asarray(rows, dtype=np.int64).reshape(-1, 5)
        self.base_asset, self.quote_asset, self.base_per_qty, self.quote_per_tick_qty, self.tick = table.T

    @classmethod
    def of_specs(cls, instruments: Sequence[InstrumentSpec], assets: Sequence[AssetSpec]) -> UnitTable:
        """The mapping of ``instruments`` (in instrument id order) over ``assets`` (in asset
        id order), computed from the specs alone: no engine is built."""
        return cls([(*instrument_units(spec, assets), spec.tick_size) for spec in instruments])

    def add_listings(self, commands: np.ndarray, events: np.ndarray) -> None:
        """Add the series a batch lists at run time (SERIES_LISTED events, the LIST_SERIES
        command of the same seq names the template): a listed series maps to ledger units
        as its template does. Listings already in the table are skipped, so a batch may
        be read twice."""
        for event in events[events["kind"] == EventKind.SERIES_LISTED]:
            instrument = int(event["instrument"])
            if instrument < len(self.tick):
                continue
            if instrument != len(self.tick):
                raise ValueError(f"listed instrument {instrument} skips an earlier listing")
            command = commands[commands["seq"] == event["seq"]]
            template = int(command["instrument"][0])
            for name in ("base_asset", "quote_asset", "base_per_qty", "quote_per_tick_qty", "tick"):
                column = getattr(self, name)
                setattr(self, name, np.append(column, column[template]))

    @classmethod
    def of_engine(cls, engine) -> UnitTable:
        """The mapping a risk-mode MatchingEngine holds for each of its instruments (for
        engines built in code rather than from specs; ``of_specs`` gives the same table)."""
        return cls([engine.instrument_units(i) for i in range(len(engine.instruments))])


def _index_in_command(seq: np.ndarray) -> np.ndarray:
    """Position of each event among the events of its command (events of one
    command are contiguous and share its seq)."""
    starts = np.flatnonzero(np.r_[True, seq[1:] != seq[:-1]])
    counts = np.diff(np.r_[starts, len(seq)])
    return np.arange(len(seq)) - np.repeat(starts, counts)


def _record_ids(events: np.ndarray) -> np.ndarray:
    """The record id of every event (seq * FILLS_PER_SEQ + index within its command)."""
    index = _index_in_command(events["seq"])
    if index.max() >= FILLS_PER_SEQ:
        raise ValueError(f"a command produced more than {FILLS_PER_SEQ} events")
    return events["seq"].astype(np.uint64) * np.uint64(FILLS_PER_SEQ) + index.astype(np.uint64)


def freeze_records(events: np.ndarray) -> np.ndarray:
    """The account freezes (FREEZE_DTYPE) of one batch of engine events, in id order."""
    frozen = np.zeros(0, dtype=FREEZE_DTYPE)
    if len(events) == 0:
        return frozen
    is_freeze = events["kind"] == EventKind.ACCOUNT_FROZEN
    frozen = np.zeros(int(is_freeze.sum()), dtype=FREEZE_DTYPE)
    frozen["freeze_id"] = _record_ids(events)[is_freeze]
    frozen["account"] = events["account"][is_freeze]
    return frozen


def settlement_records(events: np.ndarray, units: UnitTable) -> tuple[np.ndarray, np.ndarray]:
    """(fills, withdrawals) of one batch of engine events (EVENT_DTYPE), in id order."""
    if len(events) == 0:
        return empty_fills(0), empty_withdrawals(0)
    ids = _record_ids(events)

    is_fill = events["kind"] == EventKind.FILL
    f = events[is_fill]
    inst = f["instrument"]
    taker_buys = f["side"] == Side.BUY
    fills = empty_fills(len(f))
    fills["fill_id"] = ids[is_fill]
    fills["buyer"] = np.where(taker_buys, f["account"], f["maker_account"])
    fills["seller"] = np.where(taker_buys, f["maker_account"], f["account"])
    fills["base_asset"] = units.base_asset[inst]
    fills["quote_asset"] = units.quote_asset[inst]
    fills["base_amount"] = f["qty"] * units.base_per_qty[inst]
    fills["quote_amount"] = f["price"] // units.tick[inst] * f["qty"] * units.quote_per_tick_qty[inst]
    fills["buyer_fee"] = np.where(taker_buys, f["fee"], f["maker_fee"])
    fills["seller_fee"] = np.where(taker_buys, f["maker_fee"], f["fee"])

    fills = np.concatenate([fills, _payment_fills(events, ids)])
    fills.sort(order="fill_id", kind="stable")

    is_debit = events["kind"] == EventKind.DEBITED
    d = events[is_debit]
    withdrawals = empty_withdrawals(len(d))
    withdrawals["withdrawal_id"] = ids[is_debit]
    withdrawals["account"] = d["account"]
    withdrawals["asset"] = d["asset"]
    withdrawals["amount"] = d["qty"]
    return fills, withdrawals


_WATERFALL_KINDS = np.array([EventKind.PENALTY_CHARGED, EventKind.LOSS_COVERED, EventKind.DELEVERAGED,
                             EventKind.FEES_SWEPT], dtype=np.uint8)


def _payment_fills(events: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The payments between an account and the fee account or a pool as fills: cash
    settlement (POSITION_SETTLED with an amount; side SELL: the account pays), funding
    (FUNDING_SETTLED; qty > 0: the account pays, < 0: it receives), the legs of pool
    deposits and redemptions (POOL_PAID, the same sign rule, with the pool account) and
    the loss waterfall's transfers (the account pays, but a DELEVERAGED long receives)."""
    kind, qty = events["kind"], events["qty"]
    settles = (kind == EventKind.POSITION_SETTLED) & (qty > 0)
    funds = (((kind == EventKind.FUNDING_SETTLED) | (kind == EventKind.POOL_PAID))
             & (events["account"] != events["maker_account"]))
    losses = np.isin(kind, _WATERFALL_KINDS) & (qty > 0)
    is_payment = settles | funds | losses
    p = events[is_payment]
    pays = np.where(settles[is_payment], p["side"] == Side.SELL,
                    np.where(losses[is_payment], p["kind"] != EventKind.DELEVERAGED, p["qty"] > 0))
    fills = empty_fills(len(p))
    fills["fill_id"] = ids[is_payment]
    fills["buyer"] = np.where(pays, p["account"], p["maker_account"])
    fills["seller"] = np.where(pays, p["maker_account"], p["account"])
    fills["base_asset"] = p["asset"]
    fills["quote_asset"] = p["asset"]
    fills["quote_amount"] = np.abs(p["qty"])
    return fills
