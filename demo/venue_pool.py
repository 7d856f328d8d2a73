"""The main pool in the venue demo: the first provider's seed deposit, the pool's quoting
process, and the pool's part of the summary: NAV and NAV per share from the gateway
(GetPoolInfo), the P&L attribution of pools/report.py over the demo's journal, what
the redeeming provider was paid, and the checks on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from demo.participants.liquidity_provider import LiquidityProvider
from demo.processes import ProcessError, ProcessGroup
from demo.venue_report import Check
from engine.client import Client
from engine.schemas import Reject
from engine.units import POOL_PPS_SCALE, USD_PRICE_SCALE
from pools.report import PARTS, report

USDC_USD = USD_PRICE_SCALE // 10**6   # USD x 1e8 per USDC ledger unit (USDC at $1, 6 ledger decimals)


def start_quoter(group: ProcessGroup, pools_config: Path) -> None:
    """``python -m pools quote`` as a child process, ready once it says it is quoting."""
    log = group.log_path("pool-quoter")
    group.python("pool-quoter", ["pools", "quote", "--config", str(pools_config)],
                 lambda: log.exists() and "quoting" in log.read_text())


@dataclass
class PoolSummary:
    """The pool at the end of the run (USD x 1e8 and pps x 1e12 integers) and its checks."""

    nav_usd: int
    nav_per_share: int
    twap_nav_per_share: int
    shares: int
    attribution: dict[str, int]
    equity_change: int
    provider: str
    redemption: dict | None
    premium_share: int
    checks: list[Check] = field(default_factory=list)

    @classmethod
    def collect(cls, ops: Client, config: Path, journal: Path, seed: LiquidityProvider,
                provider: LiquidityProvider) -> PoolSummary:
        """Ask the gateway for the pool, replay the journal for its attribution, check both."""
        info = ops.pool_info()
        if isinstance(info, Reject):
            raise ProcessError(f"the gateway has no pool figures: {info.text}")
        days = report(journal, config)
        attribution = {part: sum(getattr(d, part) for d in days) for part in PARTS}
        attribution["mark_to_market"] = sum(d.mark_to_market for d in days)
        start, end = (days[0].equity_start, days[-1].equity_end) if days else (0, 0)
        held = provider.shares + seed.shares
        summary = cls(info.nav_usd, info.nav_per_share, info.twap_nav_per_share, info.shares, attribution,
                      end - start, provider.name, provider.redemption(),
                      attribution["premiums"] * provider.shares // held if held else 0)
        summary.checks = summary._checks(end, start, info.nav_usd, seed, provider)
        return summary

    def _checks(self, end: int, start: int, nav: int, seed: LiquidityProvider,
                provider: LiquidityProvider) -> list[Check]:
        r = self.redemption
        paid = r is not None and r["received"] == r["expected_received"] and r["fee"] == r["expected_fee"]
        capital = USDC_USD * (seed.amount + provider.amount - (r["received"] + r["fee"] if r else 0))
        parts = sum(self.attribution.values())
        return [
            Check(f"{self.provider}'s redemption paid at NAV per share less the fee", paid,
                  f"{r['received'] / 1e6:,.6f} USDC for {r['shares'] / 1e6:,.6f} shares at "
                  f"{r['nav_per_share'] / POOL_PPS_SCALE:.6f}, fee {r['fee'] / 1e6:.6f}; expected "
                  f"{r['expected_received'] / 1e6:,.6f}, fee {r['expected_fee'] / 1e6:.6f}" if r
                  else f"not redeemed: {'; '.join(provider.refusals) or 'the cooldown did not pass'}"),
            Check("the pool's attribution parts sum exactly to its equity change, from 0 to the gateway's NAV, "
                  "with the providers' capital", parts == end - start and start == 0 and end == nav
                  and self.attribution["capital"] == capital,
                  f"parts {_usd(parts)}, change {_usd(end - start)}, NAV {_usd(nav)}, capital "
                  f"{_usd(self.attribution['capital'])} of {_usd(capital)}"),
        ]

    def lines(self) -> list[str]:
        """The pool's lines of the summary."""
        r = self.redemption
        lines = [f"pool: NAV {_usd(self.nav_usd)} USD, NAV per share {self.nav_per_share / POOL_PPS_SCALE:.6f} "
                 f"(time-weighted {self.twap_nav_per_share / POOL_PPS_SCALE:.6f}), "
                 f"{self.shares / 1e6:,.6f} shares out",
                 "pool P&L attribution (USD): " + ", ".join(f"{part} {_usd(value)}"
                                                            for part, value in self.attribution.items())
                 + f"; equity change {_usd(self.equity_change)}"]
        if r is not None:
            lines.append(f"{self.provider}: deposited {r['deposited'] / 1e6:,.2f} USDC, redeemed after "
                         f"{r['held_s']:.1f} s for {r['received'] / 1e6:,.6f} USDC (fee {r['fee'] / 1e6:.6f}); "
                         f"its pro-rata share of the pool's premiums {_usd(self.premium_share)} USD")
        return lines

    def as_json(self) -> dict:
        """The summary.json entry (integers: USD x 1e8, pps x 1e12)."""
        return {"nav_usd": self.nav_usd, "nav_per_share": self.nav_per_share,
                "twap_nav_per_share": self.twap_nav_per_share, "shares": self.shares,
                "attribution": self.attribution, "equity_change": self.equity_change,
                "redemption": self.redemption, "premium_share": self.premium_share}


def _usd(value: int) -> str:
    return f"{value / USD_PRICE_SCALE:,.2f}"
