"""The feed process's configuration (TOML): how it reaches the gateway, its
polling and outlier rules, its sources (each with the feed's own heartbeat and
confidence threshold), the option re-marking inputs (rate, margin rates,
volatility surfaces), the stock tokens' multipliers, the home-market session
policy, the liquidator and the file the process remembers its halts in. See configs/feeds.toml for a commented example.

Relative paths are relative to the config file.
"""

from __future__ import annotations

import tomllib
from datetime import date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Literal

import exchange_calendars
import msgspec

from feeds.liquidator import LiquidationSettings
from feeds.multipliers import MultiplierRules, StagedMultiplier, TokenMultiplier
from feeds.options import MarginRates
from feeds.remark import VolSurface
from feeds.rules import FeedRule
from feeds.session_policy import SessionPolicies
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
    stale_state: Literal["halt"] = "halt"   # what dependents of a stale, split or session-halted asset become
    fixed_prices: dict[str, str] = {}  # USD prices of quote assets without a feed, e.g. {"USDC": "1"}
    state_file: str | None = None      # what it remembers across restarts (feeds/feed_state.py); none: nothing


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


class OptionsSection(msgspec.Struct, **_section()):
    """Inputs of option re-marking: a series is re-marked only when its underlying has a surface."""

    rate: float = 0.0                  # risk-free rate, per year
    margin: MarginRates = MarginRates()
    surfaces: list[VolSurface] = []
    settlement_window_s: float = 1800.0   # dated series settle at the underlying's TWAP over this window


class MultipliersSection(msgspec.Struct, **_section()):
    """When a multiplier change is a split, and how long its halt lasts (feeds/multipliers.py)."""

    split_threshold_bps: int = 1000
    halt_before_s: float = 300.0
    resume_tolerance_bps: int = 2000

    def rules(self) -> MultiplierRules:
        """These settings as MultiplierRules."""
        return MultiplierRules(split_threshold_bps=self.split_threshold_bps,
                               halt_before=timedelta(seconds=self.halt_before_s),
                               resume_tolerance_bps=self.resume_tolerance_bps)


class StockTokenConfig(msgspec.Struct, **_section()):
    """A stock token: its sources give the share price; its reference is the share
    price times the multiplier (one token = ``multiplier`` shares)."""

    asset: str
    multiplier: str = "1"                    # decimal, in force now
    staged_multiplier: str | None = None     # decimal, announced ...
    activates_at: datetime | None = None     # ... to take effect then (with an offset)

    def token(self) -> TokenMultiplier:
        """The asset's multiplier state; ValueError if the entry is inconsistent."""
        if (self.staged_multiplier is None) != (self.activates_at is None):
            raise ValueError(f"{self.asset}: staged_multiplier and activates_at go together")
        staged = None
        if self.staged_multiplier is not None and self.activates_at is not None:
            staged = StagedMultiplier(_fraction(self.staged_multiplier), self.activates_at)
        return TokenMultiplier(asset=self.asset, current=_fraction(self.multiplier), staged=staged)


class SessionsSection(msgspec.Struct, **_section()):
    """The stock tokens' home-market calendar (its date range explicit) and per-session policy."""

    exchange: str = "XNYS"
    start: date
    end: date
    policies: SessionPolicies = SessionPolicies()


class LiquidationsSection(msgspec.Struct, **_section()):
    """The liquidator (feeds/liquidator.py): off unless enabled."""

    enabled: bool = False
    interval_ms: int = 5000
    open_grace_s: float = 60.0         # no liquidation this long after the regular open
    steps_per_run: int = 1             # LIQUIDATE steps per account and run (stepwise liquidation, docs/pools.md)

    def settings(self) -> LiquidationSettings | None:
        """The liquidator's settings, None when it is off."""
        if not self.enabled:
            return None
        return LiquidationSettings(interval_ns=self.interval_ms * 1_000_000,
                                   open_grace=timedelta(seconds=self.open_grace_s),
                                   steps_per_run=self.steps_per_run)


class FeedsConfig(msgspec.Struct, **_section()):
    """The whole file."""

    gateway: GatewaySection
    feeds: FeedsSection = FeedsSection()
    sources: list[SourceConfig] = []
    options: OptionsSection = OptionsSection()
    multipliers: MultipliersSection = MultipliersSection()
    stock_tokens: list[StockTokenConfig] = []
    sessions: SessionsSection | None = None
    liquidations: LiquidationsSection = LiquidationsSection()


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
    tokens = [t.asset for t in config.stock_tokens]
    underlyings = [s.underlying for s in config.options.surfaces]
    for names, what in ((tokens, "stock_tokens"), (underlyings, "options.surfaces")):
        if len(set(names)) != len(names):
            raise FeedsConfigError(f"{path}: {what} lists an asset twice")
    sessions = config.sessions
    if sessions is not None and sessions.exchange not in exchange_calendars.get_calendar_names():
        raise FeedsConfigError(f"{path}: sessions: {sessions.exchange!r} is not an exchange_calendars code")
    if sessions is not None and sessions.end < sessions.start:
        raise FeedsConfigError(f"{path}: sessions: end ({sessions.end}) is before start ({sessions.start})")
    try:
        config.multipliers.rules()
        config.liquidations.settings()
        for token in config.stock_tokens:
            token.token()
    except ValueError as err:
        raise FeedsConfigError(f"{path}: {err}") from err
    return config, path.resolve().parent


def _fraction(text: str) -> Fraction:
    """A decimal string as an exact Fraction; ValueError names it."""
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{text!r} is not a decimal number") from None
