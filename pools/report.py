"""The main pool's profit and loss per UTC day, attributed to option premiums,
funding, fees and hedging (spot trades), from a journal (docs/pools.md).

The journal's commands are replayed through the core (they rebuild the state
bit for bit), so every event is seen, not only the ones the journal keeps; the
pool's equity is the core's NAV (USD x 1e8) before a day's first command and
after its last. Each movement is valued at its asset's USD price when it
happens, floored. Deposits and redemptions (and other credits and debits of the
pool account) are capital, not profit; the withdrawal fees the pool keeps are
fees. What is left, the mark-to-market of positions and holdings (and cash
settlement at expiry against the last mark), is shown as its own part, so the
parts sum exactly to the change in equity.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path


from engine.config import decode_venue
from engine.core.types import EventKind, Side
from engine.journal import FileJournal, JournalError
from engine.pools_config import load_pools
from engine.units import NS_PER_S, USD_PRICE_SCALE
from engine.venue import build_engine

DAY_NS = 86_400 * NS_PER_S
PARTS = ("capital", "premiums", "funding", "fees", "hedging")


@dataclass
class Day:
    """One UTC day of the pool, USD x 1e8: equity at its start and end, capital moved
    in (deposits less redemptions), and the attributed parts of its profit."""

    date: str
    equity_start: int
    equity_end: int = 0
    capital: int = 0
    premiums: int = 0
    funding: int = 0
    fees: int = 0
    hedging: int = 0

    @property
    def mark_to_market(self) -> int:
        """What the attributed parts leave of the change in equity."""
        return self.equity_end - self.equity_start - sum(getattr(self, p) for p in PARTS)


class ReportError(RuntimeError):
    """The journal cannot be reported on (no main pool, an unpriced NAV ...)."""


class _Pool:
    """The replayed engine and the pool's account, valuing movements as they happen."""

    def __init__(self, engine, account: int) -> None:
        self.engine = engine
        self.account = account
        self.share_asset = engine.pool_info().share_asset
        self.scale = [10**a.ledger_decimals for a in engine.assets]

    def usd(self, asset: int, amount: int) -> int:
        return amount * self.engine.asset_price(asset) // self.scale[asset]

    def equity(self, seq: int) -> int:
        nav = self.engine.pool_nav()
        if nav is not None:
            return nav[0]
        held = [total for a, (total, _r) in enumerate(self.engine.balances(self.account)) if a != self.share_asset]
        if any(held) or self.engine.positions(self.account):
            raise ReportError(f"the pool's NAV has no price after seq {seq}")
        return 0

    def book(self, day: Day, e) -> None:
        """Add one event's effect on the pool to the day's parts."""
        kind, pool = int(e["kind"]), self.account
        if kind == EventKind.FILL and pool in (int(e["account"]), int(e["maker_account"])):
            self._fill(day, e)
        elif kind == EventKind.FUNDING_SETTLED and int(e["account"]) == pool and int(e["maker_account"]) != pool:
            day.funding -= self.usd(int(e["asset"]), int(e["qty"]))
        elif kind == EventKind.POOL_PAID and int(e["asset"]) != self.share_asset:
            fee = self.usd(int(e["asset"]), int(e["fee"]))
            day.capital += self.usd(int(e["asset"]), int(e["qty"])) - fee
            day.fees += fee
        elif kind in (EventKind.CREDITED, EventKind.DEBITED) and int(e["account"]) == pool:
            if int(e["asset"]) != self.share_asset:
                sign = 1 if kind == EventKind.CREDITED else -1
                day.capital += sign * self.usd(int(e["asset"]), int(e["qty"]))

    def _fill(self, day: Day, e) -> None:
        base, quote, base_per_qty, quote_per_tick_qty, tick = self.engine.instrument_units(int(e["instrument"]))
        taker = int(e["account"]) == self.account
        pool_buys = (int(e["side"]) == Side.BUY) == taker
        sign = 1 if pool_buys else -1
        premium = self.usd(quote, int(e["price"]) // tick * int(e["qty"]) * quote_per_tick_qty)
        day.fees -= self.usd(quote, int(e["fee"] if taker else e["maker_fee"]))
        if base_per_qty == 0:
            day.premiums -= sign * premium
        else:
            day.hedging += sign * (self.usd(base, int(e["qty"]) * base_per_qty) - premium)


def report(journal_dir: Path, config: Path) -> list[Day]:
    """The pool's days, in order, from the journal at ``journal_dir`` of the venue
    configured in ``config`` (its ``[pools] main_account`` names the pool)."""
    pools = load_pools(config)
    journal = FileJournal.open_reader(journal_dir)
    spec = decode_venue(journal.genesis)
    if spec.main_pool is None:
        raise ReportError(f"{journal_dir}: the venue of this journal has no main pool")
    if pools.main_account is not None and pools.main_account != spec.main_pool.account:
        raise ReportError(f"{config}: [pools] main_account {pools.main_account} is not the journal's main pool "
                          f"account {spec.main_pool.account}")
    pool = _Pool(build_engine(spec), spec.main_pool.account)
    days: list[Day] = []
    for batch in journal.read(1):
        for i in range(len(batch.commands)):
            command = batch.commands[i:i + 1]
            seq, ts = int(command["seq"][0]), int(command["ts"][0])
            date = datetime.fromtimestamp(ts // DAY_NS * 86_400, UTC).date().isoformat()
            if not days or days[-1].date != date:
                equity = pool.equity(seq - 1)
                if days:
                    days[-1].equity_end = equity
                days.append(Day(date=date, equity_start=equity))
            for e in pool.engine.process(command):
                pool.book(days[-1], e)
            last_seq = seq
    if days:
        days[-1].equity_end = pool.equity(last_seq)
    return days


def _usd(value: int) -> str:
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), USD_PRICE_SCALE)
    return f"{sign}{whole:,}.{frac // 10**6:02d}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``python -m pools report``'s arguments."""
    parser.add_argument("--journal", type=Path, required=True, help="journal directory")
    parser.add_argument("--config", type=Path, required=True, help="venue.toml (its [pools] table)")
    parser.add_argument("--json", action="store_true", help="JSON: USD x 1e8 integers")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Print the report as a table or JSON (USD x 1e8 integers)."""
    try:
        days = report(args.journal, args.config)
    except (JournalError, ReportError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    rows = [{**asdict(d), "mark_to_market": d.mark_to_market} for d in days]
    if args.json:
        print(json.dumps({"usd_scale": USD_PRICE_SCALE, "days": rows}))
        return 0
    columns = ("date", "equity_start", "equity_end", "capital", *PARTS[1:], "mark_to_market")
    print("  ".join(f"{c:>16}" for c in columns))
    for row in rows:
        print("  ".join(f"{row[c]:>16}" if c == "date" else f"{_usd(row[c]):>16}" for c in columns))
    return 0
