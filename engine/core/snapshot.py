"""The serialised form of a full engine state (MatchingEngine.snapshot()).

Logical, not a memory dump: resting orders in book order (per instrument,
bids then asks, best price first, FIFO within a level), instrument trading
state, balances, option margins and positions. Restoring rebuilds the C structures, so the pool layout may
differ but every observable behaviour (ids, queues, balances) is the same.
"""

from __future__ import annotations

import msgspec
import numpy as np

from engine.assets import AssetSpec
from engine.instruments import InstrumentSpec

SNAPSHOT_VERSION = 6
SUPPORTED_VERSIONS = (1, 2, 3, 4, 5, 6)   # version 1 had no options: its option parts are empty;
# version 2 no operator band widths or haircuts: its instruments' and assets' specs hold them;
# version 3 no perpetual series (its funding section is empty), no settled or delisted
# series and no covered calls; version 4 no main pool (its main_pool section is None), no
# shard transfers (its transfers section is empty) and no insurance pool (its insurance section is empty);
# version 5 no cost bases (ledger.pyx read_costs: each position's cost is its value at the mark when it loads)
# and no pool deposit requests (its pool_deposits section is empty, its deposit cooldown 0)
# or penalties held across the steps of a liquidation (its penalties_held section is empty)

ORDER_DTYPE = np.dtype(
    [
        ("order_id", "<i8"),
        ("client_order_id", "<i8"),
        ("price", "<i8"),
        ("leaves", "<i8"),
        ("account", "<i8"),
        ("instrument", "<i4"),
        ("side", "u1"),
        ("tif", "u1"),
        ("stp", "u1"),
        ("pad", "u1"),
    ]
)

INSTRUMENT_STATE_DTYPE = np.dtype([("state", "<i8"), ("reference", "<i8"), ("last_trade", "<i8")])


class MainPoolState(msgspec.Struct, frozen=True, kw_only=True):
    """The main pool (pool.pyx write_part): its terms (account, asset, share asset,
    NAV window, cooldown ns, withdrawal fee bps, equity multiplier bps), its NAV
    per share samples, its next request id (redemptions and deposits), its pending
    redemption requests (id, account, shares, due ts) and the deposit cooldown (ns)."""

    terms: list[int]
    samples: list[int]
    next_request: int
    pending: list[tuple[int, int, int, int]]
    deposit_cooldown_ns: int = 0


class EngineSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to rebuild a MatchingEngine exactly."""

    version: int
    max_accounts: int
    max_orders: int
    risk: bool
    fee_account: int
    next_order_id: int
    last_seq: int
    assets: list[AssetSpec]
    instruments: list[InstrumentSpec]
    instrument_state: bytes   # INSTRUMENT_STATE_DTYPE per instrument
    orders: bytes             # ORDER_DTYPE in book order
    open_accounts: bytes      # int64 account ids
    totals: bytes             # int64 [len(open_accounts), len(assets)]
    reserved: bytes           # int64 [len(open_accounts), len(assets)]
    net_credits: bytes        # int64 per asset
    usd_prices: bytes         # int64 per asset
    last_deposit_id: int = 0
    option_risk: bytes = b""  # int64 [len(instruments), 2]: initial, maintenance per qty unit
    positions: bytes = b""    # int64 [len(open_accounts), option series, 3]: position, open sells, open buys
    margin_flags: bytes = b"" # uint8 per open account: has held option exposure
    frozen_accounts: list[int] = []  # accounts frozen by their wallet's exit request, sorted
    bands: list[tuple[int, int, int]] = []  # (instrument, static bps, dynamic bps) where they differ from its spec
    haircuts: list[tuple[int, int]] = []    # (asset, haircut bps) where it differs from its spec
    funding: bytes = b""      # perpetual series only (funding.pyx write_part): indexes, pools, entries, carries
    series_status: list[tuple[int, int, int]] = []  # (instrument, 1 settled / 2 delisted, settlement price)
    covered: list[tuple[int, int, int]] = []        # (account, instrument, covered quantity units) of covered calls
    covering: list[int] = []                        # accounts whose call sells are covered (COVER_CALLS), sorted
    main_pool: MainPoolState | None = None          # only with a main pool (pool.pyx write_part)
    transfers: bytes = b""   # shards only (transfers.pyx write_part): int64 [5, 16] transfer counters
    insurance: list[list] = []  # waterfall.pyx write_part: [settings, fee income, fees swept, step totals]; [] without pools
    costs: bytes = b""       # int64 [len(open_accounts), option series]: cost bases (ledger.pyx); b"" when all are 0
    pool_deposits: list[tuple[int, int, int, int]] = []  # pool.pyx write_deposits: pending deposit requests
    # (id, account, amount reserved, due ts); [] when there are none
    penalties_held: list[tuple[int, int, int]] = []  # waterfall.pyx write_held: (account, asset, penalty) of
    # liquidations in progress, reserved in the insurance pool; [] when none is


ENCODER = msgspec.msgpack.Encoder()
DECODER = msgspec.msgpack.Decoder(EngineSnapshot)
