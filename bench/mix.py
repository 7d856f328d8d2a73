"""A deterministic, realistic synthetic command mix for the matching-core benchmarks.

The model
---------
* ``instruments`` books (8 by default) of spot stocks priced $25 to $400, in
  LOBSTER units ($0.0001), tick $0.01, lot 1 share, static band 10% around a
  reference price set at the start, dynamic band 5% around the last trade.
  Activity is skewed across instruments (weight 1/(i+1)).
* ``accounts`` accounts (5,000); the account of a new order is
  ``floor(accounts * u**2.5)`` for uniform ``u``: heavy-tailed, the most active
  1% of accounts send about 16% of the orders.
* Each instrument has a latent mid price (in ticks) that follows a
  mean-reverting random walk (one step of 1 tick s.d. per gateway batch).
  Passive prices sit ``d`` ticks from the mid on their own side, ``d``
  geometric with mean 25 ticks; aggressive prices reach ``a`` ticks through
  the mid, ``a`` geometric with mean 2. As the mid moves, passive orders also
  meet stale quotes on the other side, so fills come from both.
* New orders (the commands that are not cancels or amends) are 43 : 8 : 4 :
  1.5 : 2.5 passive GTC limits, marketable GTC limits, IOC limits, FOK limits
  and market orders (80% IOC, 20% FOK); 3% of the passive ones are post-only.
  Amends are 8% of every batch: half quantity down (keeping priority), half a
  re-quote at a new passive price. Quantities are round lots (100 shares):
  passive 1 to 10 lots, aggressive geometric with mean 2 lots, and 1% of the
  aggressive orders 10 to 50 lots, which sweep several levels. Self-trade
  prevention is CANCEL_NEWEST for 90% of the orders, then NONE (5%),
  CANCEL_OLDEST (3%) and CANCEL_BOTH (2%).
* Cancels target orders that were resting when the gateway batch was cut,
  every resting order equally likely: a constant cancel hazard per order, so
  the number of cancels in a batch is proportional to the book size (0.4 of
  the batch at ``target_resting`` orders, at most 1.25 times that). The book
  settles where cancels balance the orders that rest, at about 35,000 orders
  over 8 instruments with cancels about 35% of the commands. Amends target
  resting orders the same way. An order may fill within the batch before its
  cancel or amend arrives; that command is then rejected with UNKNOWN_ORDER,
  as at a real venue (about 0.1% of the commands).
* The benchmark prints the command shapes and the events the timed part
  produced (fills, cancels by reason, rejects by reason), so the mix can be
  judged; about 0.17 fills per command.

Order ids
---------
Order ids are engine-assigned (1, 2, 3, ... per accepted new order), so a
stream whose cancels name real orders has to know the engine's answers. The
generator runs a closed loop: it cuts one gateway batch (``chunk`` commands),
sends it through an engine's batch API, reads the ACCEPTED / FILL /
CANCELLED / AMENDED events to keep the set of resting orders (id, owner,
instrument, side, open quantity), and cuts the next batch from that set.
Cancels and amends therefore name only orders whose ids the client had been
told. Matching is deterministic and the Cython core and the reference matcher
produce identical events (docs/matching.md), so replaying the recorded stream
on a fresh engine of either kind reproduces exactly the same events; the
benchmark checks the replay against the generation run (number of events and
``state_hash()``). Generation is outside every timed region.

The stream starts with one SET_REFERENCE per instrument, then ``seed_chunks``
batches of passive orders that build the book to about its target size, then
``warmup_chunks`` batches of the full mix (untimed, to reach a steady state
of order ages), then ``timed_chunks`` batches that the benchmarks time.
Commands carry ``seq`` 1, 2, 3, ... and a synthetic ``ts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from engine.assets import AssetSpec
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CancelReason, CommandKind, EventKind, OrderType, Reject, SelfTrade, Side, TimeInForce
from engine.instruments import InstrumentSpec

PRICE_SCALE = 10_000  # LOBSTER price units: $0.0001
TICK = 100  # $0.01
BASE_PRICES = (25, 40, 60, 85, 120, 180, 250, 400)  # dollars, cycled for more instruments
# Ledger units of every asset credited to every account in risk mode: far more
# than any account of the mix reserves, while the sum over 5,000 accounts stays
# below the ledger's 2**62 limit per asset.
RISK_FUNDING = 2**48

# What a command of the mix is, before it becomes a COMMAND_DTYPE record.
PASSIVE, MARKETABLE, IOC_LIMIT, FOK_LIMIT, MARKET, CANCEL, AMEND = range(7)
SHAPE_NAMES = ("passive limit", "marketable limit", "IOC limit", "FOK limit", "market", "cancel", "amend")


@dataclass(frozen=True)
class MixSpec:
    """Parameters of the synthetic mix; see the module docstring for the model."""

    seed: int = 20120621
    instruments: int = 8
    accounts: int = 5_000
    chunk: int = 4096
    seed_chunks: int = 11
    warmup_chunks: int = 30
    timed_chunks: int = 480
    target_resting: int = 40_000
    cancel_share: float = 0.4
    amend_share: float = 0.08
    # shares of the commands that are neither cancels nor amends, at the target size
    new_shares: tuple[float, ...] = field(default=(0.43, 0.08, 0.04, 0.015, 0.025))
    post_only_share: float = 0.03
    large_share: float = 0.01
    passive_p: float = 0.04  # geometric parameter of the passive distance in ticks
    aggressive_p: float = 0.5
    mid_sigma: float = 1.0  # ticks per batch
    mid_reversion: float = 0.01  # per batch

    @property
    def first_timed_chunk(self) -> int:
        return self.seed_chunks + self.warmup_chunks


def instrument_specs(count: int, fees: bool = False) -> list[InstrumentSpec]:
    """The mix's instruments: SYN0, SYN1, ... with prices cycling through BASE_PRICES;
    with ``fees``, a 5 bps taker and 1 bps maker fee."""
    return [
        InstrumentSpec(
            symbol=f"SYN{i}",
            base=f"SYN{i}",
            quote="USD",
            tick_size=TICK,
            lot_size=1,
            min_qty=1,
            max_qty=1_000_000,
            max_price=10_000 * PRICE_SCALE,
            static_band_bps=1_000,
            dynamic_band_bps=500,
            price_scale=PRICE_SCALE,
            taker_fee_bps=5 if fees else 0,
            maker_fee_bps=1 if fees else 0,
        )
        for i in range(count)
    ]


def build_engine(engine_cls: type, spec: MixSpec, risk: bool = False):
    """A fresh engine of ``engine_cls`` with the mix's instruments added (no orders).

    With ``risk``, the engine runs pre-trade risk (``risk=True``, see
    docs/matching.md): USD and one asset per instrument are registered (6 ledger
    decimals), the instruments charge fees, every account is opened and credited
    with RISK_FUNDING of every asset (about $280 million and 280 million
    shares, so no order of the mix is short of balance) and the fees go to one
    more account.
    """
    if not risk:
        engine = engine_cls(max_accounts=spec.accounts)
        for instrument in instrument_specs(spec.instruments):
            engine.add_instrument(instrument)
        return engine
    engine = engine_cls(max_accounts=spec.accounts + 1, risk=True, fee_account=spec.accounts)
    instruments = instrument_specs(spec.instruments, fees=True)
    symbols = ["USD"] + [instrument.base for instrument in instruments]
    for symbol in symbols:
        engine.add_asset(AssetSpec(symbol=symbol, decimals=6 if symbol == "USD" else 18, ledger_decimals=6))
    for instrument in instruments:
        engine.add_instrument(instrument)
    for account in range(spec.accounts):
        engine.open_account(account)
        for asset in range(len(symbols)):
            events = engine.credit(account, asset, RISK_FUNDING)
            if events[0].kind != EventKind.CREDITED:
                raise RuntimeError(f"crediting account {account} failed: {events[0]}")
    return engine


class RestingOrders:
    """The resting orders a client-side observer knows of, kept from batch events.

    Arrays are indexed by order id (ids are dense: 1, 2, 3, ...). ``leaves``
    is the last open quantity an event reported.
    """

    def __init__(self, capacity: int) -> None:
        self.live = np.zeros(capacity + 1, dtype=bool)
        self.account = np.zeros(capacity + 1, dtype=np.int64)
        self.instrument = np.zeros(capacity + 1, dtype=np.int32)
        self.side = np.zeros(capacity + 1, dtype=np.uint8)
        self.leaves = np.zeros(capacity + 1, dtype=np.int64)

    def ids(self) -> np.ndarray:
        """Ids of the orders resting now, ascending."""
        return np.flatnonzero(self.live)

    def apply(self, commands: np.ndarray, events: np.ndarray) -> None:
        """Update from the events ``commands`` produced (events carry the command's seq)."""
        kind = events["kind"]
        accepted = events[kind == EventKind.ACCEPTED]
        ids = accepted["order_id"]
        self.live[ids] = True
        self.account[ids] = accepted["account"]
        self.side[ids] = accepted["side"]
        self.instrument[ids] = commands["instrument"][accepted["seq"] - commands["seq"][0]]
        self.leaves[ids] = accepted["leaves"]
        fills = events[kind == EventKind.FILL]
        self.leaves[fills["order_id"]] = fills["leaves"]
        self.leaves[fills["maker_order_id"]] = fills["maker_leaves"]
        amended = events[kind == EventKind.AMENDED]
        self.leaves[amended["order_id"]] = amended["leaves"]
        self.live[fills["order_id"][fills["leaves"] == 0]] = False
        self.live[fills["maker_order_id"][fills["maker_leaves"] == 0]] = False
        self.live[events["order_id"][kind == EventKind.CANCELLED]] = False


@dataclass
class EventTally:
    """What a stretch of the stream did: command shapes in, events out."""

    shapes: np.ndarray = field(default_factory=lambda: np.zeros(len(SHAPE_NAMES), dtype=np.int64))
    events: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))
    cancel_reasons: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))
    reject_reasons: np.ndarray = field(default_factory=lambda: np.zeros(256, dtype=np.int64))
    filled_qty: int = 0
    resting_before: int = 0
    resting_after: int = 0

    @property
    def commands(self) -> int:
        return int(self.shapes.sum())

    def add(self, shapes: np.ndarray, events: np.ndarray) -> None:
        """Count one batch: its command shapes and the events it produced."""
        kind = events["kind"]
        self.shapes += np.bincount(shapes, minlength=len(SHAPE_NAMES))
        self.events += np.bincount(kind, minlength=256)
        self.cancel_reasons += np.bincount(events["reason"][kind == EventKind.CANCELLED], minlength=256)
        self.reject_reasons += np.bincount(events["reason"][kind == EventKind.REJECTED], minlength=256)
        self.filled_qty += int(events["qty"][kind == EventKind.FILL].sum())

    def as_dict(self) -> dict:
        """Flat counts (commands by shape, events by kind, cancels and rejects by reason)."""
        out = {"commands": self.commands, "resting_before": self.resting_before,
               "resting_after": self.resting_after, "filled_qty": self.filled_qty}
        out.update({f"cmd_{name.replace(' ', '_')}": int(n) for name, n in zip(SHAPE_NAMES, self.shapes)})
        for prefix, counts, names in (("event", self.events, EventKind), ("cancelled", self.cancel_reasons, CancelReason),
                                      ("rejected", self.reject_reasons, Reject)):
            out.update({f"{prefix}_{member.name}": int(counts[member.value]) for member in names if counts[member.value]})
        return out


@dataclass
class Mix:
    """A generated stream: ``commands[:timed_start]`` set up the books, the rest is timed."""

    spec: MixSpec
    commands: np.ndarray
    timed_start: int
    tally: EventTally
    timed_events: int
    final_hash: str

    @property
    def setup(self) -> np.ndarray:
        return self.commands[: self.timed_start]

    @property
    def timed(self) -> np.ndarray:
        return self.commands[self.timed_start :]


class MixGenerator:
    """Cuts gateway batches of the mix from the resting orders an engine reports."""

    def __init__(self, spec: MixSpec) -> None:
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        n = spec.instruments
        self.base_ticks = np.array([BASE_PRICES[i % len(BASE_PRICES)] * PRICE_SCALE // TICK for i in range(n)])
        self.mid_ticks = self.base_ticks.astype(np.float64)
        weights = 1.0 / np.arange(1, n + 1)
        self.instrument_weights = weights / weights.sum()
        self.next_seq = 1

    def reference_commands(self) -> np.ndarray:
        """One SET_REFERENCE per instrument at its base price."""
        cmds = self._records(self.spec.instruments)
        cmds["kind"] = CommandKind.SET_REFERENCE
        cmds["instrument"] = np.arange(self.spec.instruments)
        cmds["price"] = self.base_ticks * TICK
        return cmds

    def batch(self, resting: RestingOrders, passive_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The next gateway batch and the shape code of each of its commands."""
        spec, rng = self.spec, self.rng
        n = spec.chunk
        self._move_mids()
        ids = resting.ids()
        if passive_only:
            n_cancel = n_amend = 0
        else:
            scale = min(len(ids) / spec.target_resting, 1.25)
            n_cancel = int(round(spec.cancel_share * n * scale))
            n_amend = min(int(round(spec.amend_share * n)), len(ids) - n_cancel)
        targets = rng.choice(ids, n_cancel + n_amend, replace=False)
        shares = np.array(spec.new_shares)
        if passive_only:
            shares = np.eye(len(shares))[PASSIVE]
        new_shapes = rng.choice(len(shares), n - n_cancel - n_amend, p=shares / shares.sum())
        order = rng.permutation(n)
        shapes = np.concatenate([new_shapes, np.full(n_cancel, CANCEL), np.full(n_amend, AMEND)])[order]
        target = np.concatenate([np.zeros(len(new_shapes), dtype=np.int64), targets])[order]
        cmds = self._records(n)
        self._fill_new_orders(cmds, shapes)
        self._fill_cancels_and_amends(cmds, shapes, target, resting)
        return cmds, shapes

    def _records(self, n: int) -> np.ndarray:
        cmds = np.zeros(n, dtype=COMMAND_DTYPE)
        cmds["seq"] = np.arange(self.next_seq, self.next_seq + n)
        cmds["ts"] = cmds["seq"] * 1_000
        cmds["client_order_id"] = cmds["seq"]
        self.next_seq += n
        return cmds

    def _move_mids(self) -> None:
        spec = self.spec
        step = self.rng.normal(0.0, spec.mid_sigma, len(self.mid_ticks))
        self.mid_ticks += spec.mid_reversion * (self.base_ticks - self.mid_ticks) + step

    def _passive_ticks(self, instrument: np.ndarray, side: np.ndarray) -> np.ndarray:
        mid = np.rint(self.mid_ticks[instrument]).astype(np.int64)
        away = self.rng.geometric(self.spec.passive_p, len(side))
        return np.where(side == Side.BUY, mid - away, mid + away)

    def _fill_new_orders(self, cmds: np.ndarray, shapes: np.ndarray) -> None:
        spec, rng = self.spec, self.rng
        new = shapes <= MARKET
        k = int(new.sum())
        shape = shapes[new]
        instrument = rng.choice(spec.instruments, k, p=self.instrument_weights)
        side = rng.integers(Side.BUY, Side.SELL + 1, k).astype(np.uint8)
        mid = np.rint(self.mid_ticks[instrument]).astype(np.int64)
        through = rng.geometric(spec.aggressive_p, k)
        aggressive_ticks = np.where(side == Side.BUY, mid + through, mid - through)
        passive = shape == PASSIVE
        ticks = np.where(passive, self._passive_ticks(instrument, side), aggressive_ticks)
        lots = np.where(passive, rng.choice([1, 2, 3, 5, 10], k, p=[0.4, 0.25, 0.15, 0.12, 0.08]), rng.geometric(0.5, k))
        large = ~passive & (rng.random(k) < spec.large_share)
        lots = np.where(large, rng.integers(10, 51, k), lots)
        tif = np.select(
            [shape == IOC_LIMIT, shape == FOK_LIMIT, shape == MARKET],
            [TimeInForce.IOC, TimeInForce.FOK, np.where(rng.random(k) < 0.8, TimeInForce.IOC, TimeInForce.FOK)],
            np.where(passive & (rng.random(k) < spec.post_only_share), TimeInForce.POST_ONLY, TimeInForce.GTC),
        )
        stp = rng.choice(
            [SelfTrade.CANCEL_NEWEST, SelfTrade.STP_NONE, SelfTrade.CANCEL_OLDEST, SelfTrade.CANCEL_BOTH],
            k,
            p=[0.9, 0.05, 0.03, 0.02],
        )
        market = shape == MARKET
        cmds["kind"][new] = CommandKind.NEW_ORDER
        cmds["instrument"][new] = instrument
        cmds["account"][new] = (spec.accounts * rng.random(k) ** 2.5).astype(np.int64)
        cmds["side"][new] = side
        cmds["order_type"][new] = np.where(market, OrderType.MARKET, OrderType.LIMIT)
        cmds["tif"][new] = tif
        cmds["stp"][new] = stp
        cmds["price"][new] = np.where(market, 0, ticks * TICK)
        cmds["qty"][new] = lots * 100

    def _fill_cancels_and_amends(self, cmds, shapes, target, resting: RestingOrders) -> None:
        rng = self.rng
        for kind, shape in ((CommandKind.CANCEL, CANCEL), (CommandKind.AMEND, AMEND)):
            mask = shapes == shape
            ids = target[mask]
            cmds["kind"][mask] = kind
            cmds["order_id"][mask] = ids
            cmds["account"][mask] = resting.account[ids]
            cmds["instrument"][mask] = resting.instrument[ids]
        amend = shapes == AMEND
        ids = target[amend]
        k = len(ids)
        requote = rng.random(k) < 0.5
        ticks = self._passive_ticks(resting.instrument[ids], resting.side[ids])
        smaller = np.maximum(1, (resting.leaves[ids] * rng.uniform(0.3, 0.9, k)).astype(np.int64))
        cmds["price"][amend] = np.where(requote, ticks * TICK, 0)
        cmds["qty"][amend] = np.where(requote, 0, smaller)


def generate_mix(engine_cls: type, spec: MixSpec, on_batch: Callable[[int], None] | None = None) -> Mix:
    """Generate the stream in a closed loop through a fresh ``engine_cls`` (see module docstring)."""
    total_chunks = spec.first_timed_chunk + spec.timed_chunks
    engine = build_engine(engine_cls, spec)
    generator = MixGenerator(spec)
    resting = RestingOrders(total_chunks * spec.chunk)
    parts = [generator.reference_commands()]
    engine.process(parts[0])
    tally = EventTally()
    timed_events = 0
    for index in range(total_chunks):
        timed = index >= spec.first_timed_chunk
        if index == spec.first_timed_chunk:
            tally.resting_before = int(resting.live.sum())
        cmds, shapes = generator.batch(resting, passive_only=index < spec.seed_chunks)
        events = engine.process(cmds)
        resting.apply(cmds, events)
        parts.append(cmds)
        if timed:
            tally.add(shapes, events)
            timed_events += len(events)
        if on_batch is not None:
            on_batch(index)
    tally.resting_after = int(resting.live.sum())
    commands = np.concatenate(parts)
    timed_start = len(commands) - spec.timed_chunks * spec.chunk
    return Mix(spec, commands, timed_start, tally, timed_events, engine.state_hash())
