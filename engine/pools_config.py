"""The ``[pools]`` table of venue.toml: which accounts are the main pool and the
insurance pool, and the main pool's terms (``[pools.main]``).

The main pool's terms are engine state (shares are minted and burnt by core
commands under them), so ``MainPoolTerms`` goes into the venue definition that
the journal's genesis holds; engine/venue.py hands it to the engine.
"""

from __future__ import annotations

import msgspec

from engine.units import BPS, NS_PER_S


class MainPoolSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """``[pools.main]``: the main pool's assets and rules (docs/pools.md)."""

    asset: str = "USDC"              # what providers deposit and are paid in
    share_asset: str                 # the pool share, a listed asset with the pool asset's ledger decimals
    nav_window: int = 12             # POOL_MARK samples the time-weighted NAV averages (0: spot NAV only)
    cooldown_s: int = 86_400         # a redemption request executes no earlier than this after it
    withdrawal_fee_bps: int = 10     # of each redemption, kept by the pool
    equity_multiplier_bps: int = 20_000  # redemptions keep equity >= initial margin x this / 10000
    nav_sample_s: int = 60           # the gateway runs a POOL_MARK this often (0: never; a runtime setting)


class PoolsSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """``[pools]``: the pool accounts, and the main pool's terms."""

    main_account: int | None = None
    insurance_account: int | None = None
    main: MainPoolSection | None = None


class MainPoolTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The main pool as the engine holds it: account, asset ids and integer rules."""

    account: int
    asset: int
    share_asset: int
    nav_window: int
    cooldown_ns: int
    withdrawal_fee_bps: int
    equity_multiplier_bps: int


MAX_NAV_WINDOW = 1024
"""At most this many NAV samples are averaged."""


def main_pool_terms(pools: PoolsSection | None, assets) -> MainPoolTerms | None:
    """The engine's terms of the main pool configured in ``pools`` over the venue's
    ``assets`` (AssetSpecs by id); None when no main pool is configured. The pool
    account is usually a listed account (its key runs the quoting process, its
    ``credit`` holds the pre-minted share supply). ValueError says what is wrong."""
    if pools is None or pools.main is None:
        return None
    main = pools.main
    if pools.main_account is None:
        raise ValueError("[pools.main] needs [pools] main_account")
    ids = {a.symbol: i for i, a in enumerate(assets)}
    for symbol in (main.asset, main.share_asset):
        if symbol not in ids:
            raise ValueError(f"[pools.main] asset {symbol} is not a listed asset")
    if main.asset == main.share_asset:
        raise ValueError("[pools.main] share_asset must differ from asset")
    pool_asset, share_asset = assets[ids[main.asset]], assets[ids[main.share_asset]]
    if pool_asset.ledger_decimals != share_asset.ledger_decimals:
        # The first deposit mints one share unit per pool-asset unit.
        raise ValueError(f"[pools.main] {main.share_asset} needs the ledger_decimals of {main.asset}")
    if not 0 <= main.nav_window <= MAX_NAV_WINDOW:
        raise ValueError(f"[pools.main] nav_window must be in [0, {MAX_NAV_WINDOW}]")
    if not 0 <= main.cooldown_s <= 365 * 86_400:
        raise ValueError("[pools.main] cooldown_s must be in [0, one year]")
    if not 0 <= main.withdrawal_fee_bps < BPS:
        raise ValueError(f"[pools.main] withdrawal_fee_bps must be in [0, {BPS})")
    if main.nav_sample_s < 0:
        raise ValueError("[pools.main] nav_sample_s must be >= 0")
    if not 0 <= main.equity_multiplier_bps <= 100 * BPS:
        raise ValueError(f"[pools.main] equity_multiplier_bps must be in [0, {100 * BPS}]")
    return MainPoolTerms(account=pools.main_account, asset=ids[main.asset], share_asset=ids[main.share_asset],
                         nav_window=main.nav_window, cooldown_ns=main.cooldown_s * NS_PER_S,
                         withdrawal_fee_bps=main.withdrawal_fee_bps,
                         equity_multiplier_bps=main.equity_multiplier_bps)


def load_pools(path) -> PoolsSection:
    """The ``[pools]`` table of a venue.toml alone (no keys or journal needed);
    an empty section when it has none. ValueError says what is wrong."""
    import tomllib

    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
        return msgspec.convert(raw.get("pools", {}), PoolsSection)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as err:
        raise ValueError(f"{path}: {err}") from err
