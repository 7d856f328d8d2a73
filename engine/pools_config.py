"""The ``[pools]`` table of venue.toml: which accounts are the main pool and the
insurance pool, the main pool's terms (``[pools.main]``) and the insurance pool's
settings (``[pools.insurance]``: liquidation penalty, the insurance pool's shares
of penalties and fees, the liquidation step).

Both are engine state, so ``MainPoolTerms`` and ``PoolsSpec`` go into the venue
definition that the journal's genesis holds; engine/venue.py hands them to the
engine.
"""

from __future__ import annotations

import msgspec

from pathlib import Path

from engine.units import BPS, NS_PER_S


class MainPoolSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """``[pools.main]``: the main pool's assets and rules (docs/pools.md)."""

    asset: str = "USDC"              # what providers deposit and are paid in
    share_asset: str                 # the pool share, a listed asset with the pool asset's ledger decimals
    nav_window: int = 12             # POOL_MARK samples the time-weighted NAV averages (0: spot NAV only)
    cooldown_s: int = 86_400         # a redemption request executes no earlier than this after it
    deposit_cooldown_s: int = 3_600  # a deposit request executes no earlier than this after it (docs/pools.md)
    withdrawal_fee_bps: int = 10     # of each redemption, kept by the pool
    equity_multiplier_bps: int = 20_000  # redemptions keep equity >= initial margin x this / 10000
    nav_sample_s: int = 60           # the gateway runs a POOL_MARK this often (0: never; a runtime setting)


class InsuranceSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """`[pools.insurance]`: the insurance pool and the loss waterfall (docs/pools.md)."""

    penalty_bps: int = 0            # liquidation penalty, bps of the premium notional a liquidation buys back
    penalty_share_bps: int = BPS    # of a penalty, to the insurance pool (the rest to the fee account)
    fee_share_bps: int = 0          # of trading fees, to the insurance pool (SweepFees)
    step_lots: int = 0              # lots a liquidation closes per series and command; 0: all at once


class PoolsSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """``[pools]``: the pool accounts (listed accounts of the venue), the main pool's
    terms and the insurance pool's settings."""

    main_account: int | None = None
    insurance_account: int | None = None    # None: no insurance pool and no loss waterfall
    main: MainPoolSection | None = None
    insurance: InsuranceSection = InsuranceSection()


class MainPoolTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The main pool as the engine holds it: account, asset ids and integer rules."""

    account: int
    asset: int
    share_asset: int
    nav_window: int
    cooldown_ns: int
    withdrawal_fee_bps: int
    equity_multiplier_bps: int
    deposit_cooldown_ns: int = 0     # a genesis written before deposit requests has none


class PoolsSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The pools as the engine takes them (MatchingEngine.set_pools's arguments)."""

    insurance_account: int
    main_account: int
    penalty_bps: int
    penalty_share_bps: int
    fee_share_bps: int
    step_lots: int
    # A liquidation's penalty held across its steps (docs/pools.md): True for every venue this build
    # defines; False (the default) in a genesis written before, whose journals replay by that rule.
    hold_penalty: bool = False


def pools_spec(path: Path, section: PoolsSection | None, accounts: list[int], risk: bool) -> PoolsSpec | None:
    """The PoolsSpec of a `[pools]` section (None without an insurance account); ValueError
    naming the file and the key when a value is wrong."""
    if section is None or section.insurance_account is None:
        if section is not None and section.main_account is not None and section.main is None:
            raise ValueError(f"{path}: [pools] main_account needs [pools.main] or insurance_account")
        return None
    if not risk:
        raise ValueError(f"{path}: [pools] needs a venue with accounts (risk = true)")
    # The fee account is never a listed account (engine/config.py), so never a pool.
    if section.insurance_account not in accounts:
        raise ValueError(f"{path}: [pools] insurance_account {section.insurance_account} is not a listed account")
    main_account = -1 if section.main_account is None else section.main_account
    if main_account != -1 and main_account not in accounts:
        raise ValueError(f"{path}: [pools] main_account {section.main_account} is not a listed account")
    if main_account == section.insurance_account:
        raise ValueError(f"{path}: [pools] main_account and insurance_account must differ")
    ins = section.insurance
    for name in ("penalty_bps", "penalty_share_bps", "fee_share_bps"):
        if not 0 <= getattr(ins, name) <= BPS:
            raise ValueError(f"{path}: [pools.insurance] {name} must be in [0, {BPS}]")
    if not 0 <= ins.step_lots <= 1 << 31:
        raise ValueError(f"{path}: [pools.insurance] step_lots must be in [0, 2**31] (0: close all at once)")
    return PoolsSpec(insurance_account=section.insurance_account, main_account=main_account,
                     **msgspec.structs.asdict(ins), hold_penalty=True)


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
    for name in ("cooldown_s", "deposit_cooldown_s"):
        if not 0 <= getattr(main, name) <= 365 * 86_400:
            raise ValueError(f"[pools.main] {name} must be in [0, one year]")
    if not 0 <= main.withdrawal_fee_bps < BPS:
        raise ValueError(f"[pools.main] withdrawal_fee_bps must be in [0, {BPS})")
    if main.nav_sample_s < 0:
        raise ValueError("[pools.main] nav_sample_s must be >= 0")
    if not 0 <= main.equity_multiplier_bps <= 100 * BPS:
        raise ValueError(f"[pools.main] equity_multiplier_bps must be in [0, {100 * BPS}]")
    return MainPoolTerms(account=pools.main_account, asset=ids[main.asset], share_asset=ids[main.share_asset],
                         nav_window=main.nav_window, cooldown_ns=main.cooldown_s * NS_PER_S,
                         withdrawal_fee_bps=main.withdrawal_fee_bps,
                         equity_multiplier_bps=main.equity_multiplier_bps,
                         deposit_cooldown_ns=main.deposit_cooldown_s * NS_PER_S)


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
