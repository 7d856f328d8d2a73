"""The feed process's configuration (TOML): how it reaches the gateway, its
polling and outlier rules, and its sources, each with the feed's own heartbeat and
confidence threshold. See configs/feeds.toml for a commented example.

Relative paths are relative to the config file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from feeds.rules import FeedRule
from feeds.update import NS_PER_SECOND


def _section(**kw):
    return {"kw_only": True, "forbid_unknown_fields": True, "frozen": True, **kw}


class GatewaySection(msgspec.Struct, **_section()):
    """The gateway's order endpoint and the operator key the feed process uses."""

    endpoint: str
    key_file: str              # the operator's secret key file (python -m engine keys init)
    server_key_file: str       # the gateway's public key file
    timeout_ms: int = 5000


class FeedsSection(msgspec.Struct, **_section()):
    """Polling, combination and stale-price policy."""

    poll_interval_ms: int = 1000
    outlier_bps: int = 200             # a source further than this from the median is left out
    stale_state: Literal["halt"] = "halt"   # what dependents of a stale asset become (the core's SET_STATE)
    fixed_prices: dict[str, str] = {}  # USD prices of quote assets without a feed, e.g. {"USDC": "1"}


class _SourceBase(msgspec.Struct, **_section(tag_field="kind")):
    name: str
    asset: str
    heartbeat_s: float                 # this feed's own staleness limit
    max_confidence_bps: int = 0        # 0: no confidence rule

    def rule(self) -> FeedRule:
        """The acceptance rule of this feed."""
        return FeedRule(heartbeat_ns=int(self.heartbeat_s * NS_PER_SECOND), max_confidence_bps=self.max_confidence_bps)


class LobsterSourceConfig(_SourceBase, tag="lobster"):
    """Replay of a LOBSTER book's mid (message and orderbook files)."""

    messages: str
    orderbook: str
    speed: float = 1.0


class CsvSourceConfig(_SourceBase, tag="csv"):
    """Replay of a CSV of timestamped prices (feeds/replay.py describes the columns)."""

    path: str
    speed: float = 1.0


class ChainlinkSourceConfig(_SourceBase, tag="chainlink"):
    """A Chainlink AggregatorV3 feed on a JSON-RPC chain."""

    rpc: str
    address: str
    interval_s: float = 10.0


class GbmSourceConfig(_SourceBase, tag="gbm"):
    """Synthetic geometric Brownian motion (per-year mu and sigma)."""

    initial: str
    sigma: float
    seed: int
    mu: float = 0.0
    step_ms: int = 1000
    confidence_bps: int = 0


SourceConfig = LobsterSourceConfig | CsvSourceConfig | ChainlinkSourceConfig | GbmSourceConfig


class FeedsConfig(msgspec.Struct, **_section()):
    """The whole file."""

    gateway: GatewaySection
    feeds: FeedsSection = FeedsSection()
    sources: list[SourceConfig] = []


class FeedsConfigError(ValueError):
    """The feeds config is invalid; the message says where and why."""


def load_feeds_config(path: str | Path) -> tuple[FeedsConfig, Path]:
    """The parsed config and the directory its relative paths start from."""
    path = Path(path)
    try:
        config = msgspec.convert(tomllib.loads(path.read_text()), FeedsConfig)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as err:
        raise FeedsConfigError(f"{path}: {err}") from err
    names = [s.name for s in config.sources]
    if len(set(names)) != len(names):
        raise FeedsConfigError(f"{path}: source names must be unique")
    if config.feeds.poll_interval_ms <= 0 or config.feeds.outlier_bps < 0:
        raise FeedsConfigError(f"{path}: poll_interval_ms must be positive and outlier_bps not negative")
    for source in config.sources:
        if source.heartbeat_s <= 0 or source.max_confidence_bps < 0:
            raise FeedsConfigError(f"{path}: source {source.name}: heartbeat_s must be positive")
    return config, path.resolve().parent
