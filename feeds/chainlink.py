"""On-chain oracle source: a Chainlink AggregatorV3 feed read with web3 from any
JSON-RPC chain (``latestRoundData``, ``decimals``).

A new round becomes one update stamped with its ``updatedAt``; staleness is then
judged per feed against its own heartbeat (feeds/rules.py), never one global age.
Rounds that are incomplete (``updatedAt == 0``), carried over (``answeredInRound <
roundId``) or not positive are not prices and are skipped.
"""

from __future__ import annotations

import logging
from fractions import Fraction

from web3 import Web3
from web3.exceptions import Web3Exception

from feeds.update import NS_PER_SECOND, MarketStatus, PriceUpdate, usd_units_rounded

log = logging.getLogger(__name__)

AGGREGATOR_V3_ABI = [
    {"type": "function", "name": "decimals", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "uint8"}]},
    {"type": "function", "name": "description", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "", "type": "string"}]},
    {"type": "function", "name": "latestRoundData", "stateMutability": "view", "inputs": [],
     "outputs": [{"name": "roundId", "type": "uint80"}, {"name": "answer", "type": "int256"},
                 {"name": "startedAt", "type": "uint256"}, {"name": "updatedAt", "type": "uint256"},
                 {"name": "answeredInRound", "type": "uint80"}]},
]
"""The part of Chainlink's AggregatorV3Interface the source reads."""


class OracleError(Exception):
    """The feed could not be read (node unreachable, not an aggregator)."""


class ChainlinkSource:
    """A Source reading one aggregator every ``interval_ns`` (at most)."""

    def __init__(self, name: str, asset: str, w3: Web3, address: str, *, interval_ns: int = 0) -> None:
        self.name = name
        self.asset = asset
        self.contract = w3.eth.contract(address=Web3.to_checksum_address(address), abi=AGGREGATOR_V3_ABI)
        self.interval_ns = interval_ns
        self._decimals: int | None = None
        self._last_round = -1
        self._last_read: int | None = None

    def poll(self, now: int) -> list[PriceUpdate]:
        """The latest round if it is new and a price; [] between reads or on a read error
        (logged: a silent feed goes stale by its heartbeat)."""
        if self._last_read is not None and now - self._last_read < self.interval_ns:
            return []
        self._last_read = now
        try:
            update = self.read()
        except OracleError as err:
            log.warning("%s: %s", self.name, err)
            return []
        return [] if update is None else [update]

    def read(self) -> PriceUpdate | None:
        """The latest round as an update, or None if it is not new or not a usable price."""
        functions = self.contract.functions
        try:
            if self._decimals is None:
                self._decimals = functions.decimals().call()
            round_id, answer, _started, updated_at, answered_in = functions.latestRoundData().call()
        except (OSError, ValueError, Web3Exception) as err:
            raise OracleError(f"cannot read {self.contract.address}: {err}") from err
        if round_id == self._last_round:
            return None
        self._last_round = round_id
        if answer <= 0 or updated_at == 0 or answered_in < round_id:
            log.warning("%s: round %d is not a price (answer %d, updatedAt %d, answeredInRound %d)",
                        self.name, round_id, answer, updated_at, answered_in)
            return None
        return PriceUpdate(asset=self.asset, price=usd_units_rounded(Fraction(answer, 10**self._decimals)),
                           confidence=0, timestamp=updated_at * NS_PER_SECOND, source=self.name,
                           market=MarketStatus.UNKNOWN)
