"""The `[pools]` section of a venue config: which accounts are the main pool and
the insurance pool, and the insurance pool's settings (`[pools.insurance]`:
liquidation penalty, the insurance pool's shares of penalties and fees, the
liquidation step), checked and turned into the ``PoolsSpec`` the journal's
genesis stores and engine/venue.py hands the engine."""

from __future__ import annotations

from pathlib import Path

import msgspec

BPS = 10_000


class InsuranceSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """`[pools.insurance]`: the insurance pool and the loss waterfall (docs/pools.md)."""

    penalty_bps: int = 0            # liquidation penalty, bps of the premium notional a liquidation buys back
    penalty_share_bps: int = BPS    # of a penalty, to the insurance pool (the rest to the fee account)
    fee_share_bps: int = 0          # of trading fees, to the insurance pool (SweepFees)
    step_lots: int = 0              # lots a liquidation closes per series and command; 0: all at once


class PoolsSection(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """`[pools]`: the pools' accounts (listed accounts of the venue)."""

    insurance_account: int
    main_account: int = -1          # -1: no main pool
    insurance: InsuranceSection = InsuranceSection()


class PoolsSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The pools as the engine takes them (MatchingEngine.set_pools's arguments)."""

    insurance_account: int
    main_account: int
    penalty_bps: int
    penalty_share_bps: int
    fee_share_bps: int
    step_lots: int


def pools_spec(path: Path, section: PoolsSection | None, accounts: list[int], risk: bool) -> PoolsSpec | None:
    """The PoolsSpec of a `[pools]` section (None without one); ValueError
    naming the file and the key when a value is wrong."""
    if section is None:
        return None
    if not risk:
        raise ValueError(f"{path}: [pools] needs a venue with accounts (risk = true)")
    # The fee account is never a listed account (engine/config.py), so never a pool.
    if section.insurance_account not in accounts:
        raise ValueError(f"{path}: [pools] insurance_account {section.insurance_account} is not a listed account")
    if section.main_account != -1 and section.main_account not in accounts:
        raise ValueError(f"{path}: [pools] main_account {section.main_account} is not a listed account")
    if section.main_account == section.insurance_account:
        raise ValueError(f"{path}: [pools] main_account and insurance_account must differ")
    ins = section.insurance
    for name in ("penalty_bps", "penalty_share_bps", "fee_share_bps"):
        if not 0 <= getattr(ins, name) <= BPS:
            raise ValueError(f"{path}: [pools.insurance] {name} must be in [0, {BPS}]")
    if not 0 <= ins.step_lots <= 1 << 31:
        raise ValueError(f"{path}: [pools.insurance] step_lots must be in [0, 2**31] (0: close all at once)")
    return PoolsSpec(insurance_account=section.insurance_account, main_account=section.main_account,
                     **msgspec.structs.asdict(ins))
