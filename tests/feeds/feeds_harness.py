"""Shared set-up of the feed tests: a small venue (AMZNX and AAPLX against USDC,
a WBTC option series) behind a real gateway process, the operator's keys, a
MockAggregator deployed on a chain, and a recording operator client that stands in
for the gateway."""

from __future__ import annotations

from pathlib import Path

import msgspec

from engine.client import Client, ClientKeys
from engine.config import to_toml
from engine.schemas import (
    AssetInfo,
    AssetPriceSet,
    BandsSet,
    HaircutSet,
    InstrumentInfo,
    Instruments,
    OptionRiskSet,
    ReferenceSet,
    Reject,
    StateChanged,
)
from engine.keys import generate
from engine.schemas_greeks import GreeksPublished, SeriesGreeks
from engine.schemas_options import SeriesClosed
from engine.schemas_perpetual import Funded
from settlement.accounts import dev_private_key
from settlement.chain import ChainClient, fund_dev_account
from settlement.vault import load_artifact

AMZN, AAPL, BTC_CALL = 0, 1, 2      # instrument ids
USDC, AMZNX, AAPLX, WBTC = 0, 1, 2, 3  # asset ids
DEPLOYER = -1                       # the dev key (settlement/accounts.py) that deploys mock aggregators
UPDATED = 1_800_000_000             # a round's updatedAt in the tests, Unix seconds


def _stock(symbol: str, reference: str) -> dict:
    return {"symbol": f"{symbol}/USDC", "base": symbol, "quote": "USDC", "tick_size": 100, "lot_size": 1,
            "min_qty": 1, "max_qty": 1_000_000_000, "max_price": 1_000_000_000, "static_band_bps": 1_000,
            "dynamic_band_bps": 500, "price_scale": 10_000, "qty_scale": 1_000, "maker_fee_bps": 0,
            "taker_fee_bps": 5, "reference_price": reference}


def write_feed_venue(directory: Path, accounts: dict[str, dict[str, str]] | None = None,
                     more_instruments: list[dict] = ()) -> tuple[Path, Path]:
    """Keys (server, ops, and one per account) and a venue config in ``directory``;
    ``accounts`` maps each trading account's name to its genesis credit (ids from 1,
    in order); ``more_instruments`` are listed after the three of every test
    (ids from 3). Returns (config, keys dir)."""
    accounts = accounts or {}
    keys = directory / "keys"
    keys.mkdir(parents=True)
    for name in ("server", "ops", *accounts):
        generate(keys, name)
    call = {"symbol": "BTC-20261231-100000-C", "base": "WBTC", "quote": "USDC",
            "option": {"expiry": "2026-12-31", "strike": "100000", "right": "C"},
            "tick_size": 100, "lot_size": 1, "min_qty": 1, "max_qty": 1_000_000, "max_price": 10_000_000_000,
            "static_band_bps": 2_000, "dynamic_band_bps": 1_000, "price_scale": 10_000, "qty_scale": 100,
            "maker_fee_bps": 0, "taker_fee_bps": 3, "reference_price": "5000",
            "initial_margin": "20000", "maintenance_margin": "15000"}
    doc = {
        "venue": {"name": "feeds-test", "max_accounts": 16, "max_orders": 10_000, "fee_account": 0},
        "endpoints": {"orders": "tcp://127.0.0.1:*", "market_data": "tcp://127.0.0.1:*"},
        "server": {"secret_key_file": str(keys / "server.key_secret")},
        "journal": {"path": str(directory / "journal"), "fsync": "batch", "snapshot_every": 0},
        "assets": [
            {"symbol": "USDC", "decimals": 6, "ledger_decimals": 6, "usd_price": "1"},
            {"symbol": "AMZNX", "decimals": 18, "ledger_decimals": 6, "haircut_bps": 2_000, "usd_price": "185"},
            {"symbol": "AAPLX", "decimals": 18, "ledger_decimals": 6, "haircut_bps": 2_000, "usd_price": "190"},
            {"symbol": "WBTC", "decimals": 8, "ledger_decimals": 8, "haircut_bps": 1_000, "usd_price": "90000"},
        ],
        "instruments": [_stock("AMZNX", "185.00"), _stock("AAPLX", "190.00"), call, *more_instruments],
        "accounts": [{"id": i, "name": name, "key_files": [str(keys / f"{name}.key")], "credit": credit}
                     for i, (name, credit) in enumerate(accounts.items(), start=1)],
        "operators": [{"name": "ops", "key_files": [str(keys / "ops.key")]}],
    }
    path = directory / "venue.toml"
    path.write_text(to_toml(doc))
    return path, keys


def operator(endpoint: str, keys: Path, name: str = "ops") -> Client:
    """An operator client (the feed process's identity), or the named account's client."""
    return Client(endpoint, ClientKeys.from_files(keys / f"{name}.key_secret", keys / "server.key"), timeout=10)


def deploy_aggregator(w3, decimals: int, description: str):
    """Deploy a MockAggregator with a dev key; returns (address, push(answer, updated_at[, answered_in]))."""
    client = ChainClient(w3, dev_private_key(DEPLOYER))
    fund_dev_account(w3, client.address, 10**20)
    artifact = load_artifact("MockAggregator")
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    address = client.transact(factory.constructor(decimals, description))["contractAddress"]
    aggregator = w3.eth.contract(address=address, abi=artifact["abi"])

    def push(answer: int, updated_at: int, answered_in: int | None = None) -> None:
        round_id = aggregator.functions.latestRound().call() + 1
        client.transact(aggregator.functions.pushRound(answer, updated_at, updated_at,
                                                       round_id if answered_in is None else answered_in))
    return address, push


class RecordingClient:
    """The operator Client surface the feed process uses, over a fixed listing;
    records every command as (kind, id, values...) in ``sent``."""

    def __init__(self, instruments: list[InstrumentInfo], assets: list[AssetInfo],
                 refuse_prices_above: int | None = None) -> None:
        self.events: list = []
        self.sent: list[tuple] = []
        self.infos = instruments
        self.assets = assets
        self.states = {i.instrument: i.state for i in instruments}
        self.refuse_above = refuse_prices_above

    def instruments(self) -> Instruments:
        infos = [msgspec.structs.replace(i, state=self.states[i.instrument]) for i in self.infos]
        return Instruments(1, infos, self.assets, 5)

    def set_asset_price(self, asset: int, price: int):
        self.sent.append(("asset", asset, price))
        if self.refuse_above is not None and price > self.refuse_above:
            return Reject(0, 0, 7, "price above the limit")
        return AssetPriceSet(0, 0, 0, asset, price)

    def set_reference(self, instrument: int, price: int):
        self.sent.append(("reference", instrument, price))
        return ReferenceSet(0, 0, 0, instrument, price)

    def set_option_risk(self, instrument: int, initial: int, maintenance: int):
        self.sent.append(("option_risk", instrument, initial, maintenance))
        return OptionRiskSet(0, 0, 0, instrument, initial, maintenance)

    def set_state(self, instrument: int, state: int):
        self.sent.append(("state", instrument, state))
        self.states[instrument] = state
        return StateChanged(0, 0, 0, instrument, state)

    def fund(self, instrument: int, mark: int, payoff: int):
        self.sent.append(("fund", instrument, mark, payoff))
        return Funded(0, 0, 0, instrument, mark, payoff)

    def publish_greeks(self, series: list[SeriesGreeks]):
        self.sent.append(("greeks", *series))
        return GreeksPublished(0, 0, len(series))

    def set_bands(self, instrument: int, static_bps: int, dynamic_bps: int):
        self.sent.append(("bands", instrument, static_bps, dynamic_bps))
        return BandsSet(0, 0, 0, instrument, static_bps, dynamic_bps)

    def set_haircut(self, asset: int, haircut_bps: int):
        self.sent.append(("haircut", asset, haircut_bps))
        return HaircutSet(0, 0, 0, asset, haircut_bps)

    def close_series(self, instrument: int, settlement_price: int = 0):
        self.sent.append(("close", instrument, settlement_price))
        self.states[instrument] = 3
        return SeriesClosed(0, 0, 0, instrument, 1 if settlement_price else 2, settlement_price, 0, 0)

    def of_kind(self, kind: str) -> list[tuple]:
        """The recorded commands of ``kind``, without the kind."""
        return [c[1:] for c in self.sent if c[0] == kind]
