"""The quoting process's configuration (TOML): the gateway and the pool's keys,
the pool account, which series to quote, the spread and skew parameters, the
hedge of each underlying and the staleness limit. See configs/pools.toml for a
commented example. Relative paths are relative to the config file.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Literal

import msgspec

from pools.quote_model import QuoteParams


def _section(**kw):
    return {"kw_only": True, "forbid_unknown_fields": True, "frozen": True, **kw}


class GatewaySection(msgspec.Struct, **_section()):
    """The gateway's order endpoint and the pool's CURVE keys."""

    endpoint: str
    key_file: str                       # the pool account's secret key file (python -m engine keys init)
    server_key_file: str                # the gateway's public key file
    timeout_ms: int = 5000
    max_requests_per_message: int = 256  # a refresh is sent in messages of at most this many requests


class QuoterSection(msgspec.Struct, **_section()):
    """The pool account and the refresh loop."""

    account: int                        # the pool's account id: the key must be bound to it
    interval_ms: int = 500              # one refresh (chains, margin, quotes, hedges) per interval
    stale_after_ms: int = 10_000        # a series whose greeks are older than this is not quoted
    amend: bool = True                  # move a quote with Amend; false: cancel and place again


class QuotesSection(msgspec.Struct, **_section()):
    """Quote sizes and the spread and skew model (docs/quoter.md)."""

    size: float = 1.0                   # contracts per side
    half_spread_bps: float = 200.0
    min_half_ticks: int = 1
    impact: float = 0.1                 # k in k S^2 / theo |delta| (n / l)
    max_position: float = 100.0         # underlying tokens per series

    def params(self) -> QuoteParams:
        """The model's parameters."""
        return QuoteParams(self.half_spread_bps, self.min_half_ticks, self.impact, self.max_position)


class UnderlyingConfig(msgspec.Struct, **_section()):
    """One underlying: its option series to quote, its spot book (the S of the
    model, and where its delta is hedged) and the hedge rule."""

    asset: str                          # e.g. "TSLA.M"
    spot: str                           # its spot book, e.g. "TSLA.M/USDC"
    series: Literal["all", "perpetual", "dated"] = "all"
    hedge: bool = True
    hedge_threshold: float = 1.0        # underlying tokens of net delta tolerated before hedging
    hedge_max_order: float = 10.0       # underlying tokens per hedge order at most
    hedge_slippage_bps: float = 50.0    # the IOC limit, this far through the spot reference
    inventory: float = 0.0              # underlying tokens the pool holds as neutral (not hedged away)


class PoolsConfig(msgspec.Struct, **_section()):
    """The whole file."""

    gateway: GatewaySection
    quoter: QuoterSection
    quotes: QuotesSection = QuotesSection()
    underlyings: list[UnderlyingConfig] = []


class PoolsConfigError(ValueError):
    """The pools config is invalid; the message says where and why."""


def _check(config: PoolsConfig) -> list[str]:
    """What is wrong with a parsed config, as readable sentences."""
    problems = []
    g, q, s = config.gateway, config.quoter, config.quotes
    if g.timeout_ms <= 0 or not 0 < g.max_requests_per_message:
        problems.append("gateway: timeout_ms and max_requests_per_message must be positive")
    if q.account < 0:
        problems.append("quoter: account must be an account id (0 or more)")
    if q.interval_ms <= 0 or q.stale_after_ms <= 0:
        problems.append("quoter: interval_ms and stale_after_ms must be positive")
    for name in ("size", "max_position"):
        if not 0 < getattr(s, name) < math.inf:
            problems.append(f"quotes: {name} must be a finite number above 0")
    for name in ("half_spread_bps", "impact"):
        if not 0 <= getattr(s, name) < math.inf:
            problems.append(f"quotes: {name} must be a finite number, 0 or more")
    if s.min_half_ticks < 1:
        problems.append("quotes: min_half_ticks must be at least 1 (a bid below the ask)")
    if not config.underlyings:
        problems.append("underlyings: name at least one underlying to quote")
    assets = [u.asset for u in config.underlyings]
    if len(set(assets)) != len(assets):
        problems.append("underlyings: an asset is listed twice")
    for u in config.underlyings:
        for name in ("hedge_threshold", "hedge_max_order", "hedge_slippage_bps"):
            if not 0 <= getattr(u, name) < math.inf:
                problems.append(f"underlyings {u.asset}: {name} must be a finite number, 0 or more")
        if not math.isfinite(u.inventory):
            problems.append(f"underlyings {u.asset}: inventory must be a finite number")
        if u.hedge_max_order == 0 and u.hedge:
            problems.append(f"underlyings {u.asset}: hedge_max_order must be above 0 when hedging")
    return problems


def load_pools_config(path: str | Path) -> tuple[PoolsConfig, Path]:
    """The parsed, checked config and the directory its relative paths start
    from; PoolsConfigError with every problem found otherwise."""
    path = Path(path)
    try:
        config = msgspec.convert(tomllib.loads(path.read_text()), PoolsConfig)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as err:
        raise PoolsConfigError(f"{path}: {err}") from err
    problems = _check(config)
    if problems:
        raise PoolsConfigError(f"{path}: " + "; ".join(problems))
    return config, path.resolve().parent
