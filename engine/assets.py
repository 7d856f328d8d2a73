"""Asset registry entries: tokens the venue holds, with their on-chain decimals.

The engine keeps every balance as an int64 in *ledger units*
(10**-ledger_decimals of a token). ``ledger_decimals`` is at most the token's
``decimals``, so a ledger amount maps exactly to on-chain base units:
``chain = ledger * 10**(decimals - ledger_decimals)``. 18-decimal tokens
would overflow int64 at 9.2 tokens in base units; in ledger units they do not.
"""

from __future__ import annotations

import msgspec

from engine.units import USD_PRICE_SCALE

__all__ = ["USD_PRICE_SCALE", "AssetSpec"]


class AssetSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One token: symbol, decimals, ledger precision, haircut as collateral."""

    symbol: str
    decimals: int
    ledger_decimals: int
    haircut_bps: int = 0
    address: str = ""

    def __post_init__(self) -> None:
        if not self.symbol:
            raise ValueError("asset symbol must not be empty")
        if not 0 <= self.ledger_decimals <= self.decimals <= 36:
            raise ValueError(f"{self.symbol}: need 0 <= ledger_decimals <= decimals <= 36")
        if not 0 <= self.haircut_bps <= 10_000:
            raise ValueError(f"{self.symbol}: haircut_bps must be in [0, 10000]")

    def to_chain(self, ledger_amount: int) -> int:
        """Ledger units to the token's on-chain base units (exact)."""
        return ledger_amount * 10 ** (self.decimals - self.ledger_decimals)

    def from_chain(self, chain_amount: int) -> int:
        """On-chain base units to ledger units; raise if not a whole ledger unit."""
        unit = 10 ** (self.decimals - self.ledger_decimals)
        if chain_amount % unit:
            raise ValueError(f"{self.symbol}: {chain_amount} base units is not a whole ledger unit")
        return chain_amount // unit
