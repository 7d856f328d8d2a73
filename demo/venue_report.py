"""The venue demo's record and report: book samples while it trades, then the summary
(orders, fills, batches, gas, funding, on-chain against engine balances, the pool's part
from demo/venue_pool.py, the expiry's from demo/venue_expiry.py), its checks,
and the report folder (summary.json and PNG plots; matplotlib's Agg backend)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first

from demo.participants.base import Participant  # noqa: E402
from demo.participants.perpetual_writer import PerpetualWriter  # noqa: E402
from demo.participants.thin_book import ThinBookResult  # noqa: E402
from demo.venue_chain import DemoChain  # noqa: E402
from demo.venue_config import ACCOUNTS, BY_NAME  # noqa: E402
from demo.venue_settlement import Settlement  # noqa: E402
from engine.client import Client  # noqa: E402
from engine.schemas import Balances, BookSnapshot, InstrumentInfo  # noqa: E402

if TYPE_CHECKING:
    from demo.venue_expiry import ExpirySummary
    from demo.venue_pool import PoolSummary


class Recorder:
    """Samples the reference, the band edges, the best prices, the last trade and the depth
    of a few instruments through the operator's client."""

    def __init__(self, ops: Client, instruments: dict[str, InstrumentInfo], symbols: list[str]) -> None:
        self.ops = ops
        self.instruments = instruments
        self.symbols = symbols
        self.start = time.monotonic()
        self.rows: dict[str, list[tuple]] = {symbol: [] for symbol in symbols}
        self.depth: dict[str, BookSnapshot] = {}

    def sample(self) -> None:
        """One row per instrument: (t, reference, band low, band high, bid, ask, last trade)."""
        bands = {i.instrument: i.static_band_bps for i in self.ops.instruments().instruments}
        t = time.monotonic() - self.start
        for symbol in self.symbols:
            iid = self.instruments[symbol].instrument
            book = self.ops.snapshot(iid, 10)
            if not isinstance(book, BookSnapshot) or book.reference <= 0:
                continue
            width = book.reference * bands[iid] // 10_000
            self.rows[symbol].append((t, book.reference, book.reference - width, book.reference + width,
                                      book.bids[0].price if book.bids else None,
                                      book.asks[0].price if book.asks else None, book.last_trade or None))
            if book.bids or book.asks:
                self.depth[symbol] = book


@dataclass
class Check:
    """One line of the summary that must hold; a skipped one (what it needs is not
    installed here) says why in ``detail`` and does not fail the run."""

    name: str
    ok: bool
    detail: str
    skipped: bool = False


@dataclass
class Report:
    """Everything the summary states, and its checks."""

    chain_kind: str
    orders: int
    fills: int
    settlement_records: int
    batches: list[dict]
    funding: dict[str, int]
    funding_series: dict[str, list[tuple[int, int]]]
    thin_book: ThinBookResult
    checks: list[Check] = field(default_factory=list)
    recorder: Recorder | None = None
    pool: PoolSummary | None = None
    expiry: ExpirySummary | None = None

    @classmethod
    def collect(cls, chain: DemoChain, ops: Client, settlement: Settlement, recorder: Recorder,
                thin: ThinBookResult, writer: PerpetualWriter, long: Participant, participants: list[Participant],
                claim: tuple[int, int], perpetual_refused: str | None, pool: PoolSummary,
                web: Check, expiry: ExpirySummary) -> Report:
        """Read the final state from the engine, the chain and the job; evaluate the checks."""
        batches = chain.settled_batches()
        audits = settlement.audits()
        records = settlement.source.read(0, 1 << 40)
        funding = {p.name: p.funding_received() for p in (writer, long)}
        series = {p.name: [(e.ts, -e.amount) for e in p.funding] for p in (writer, long)}
        traded = {fill.instrument for p in participants for fill in p.fills}
        report = cls(chain.kind, sum(p.tally["orders"] for p in participants),
                     sum(p.tally["fills"] for p in participants), len(records[0]) + len(records[1]),
                     batches, funding, series, thin, recorder=recorder, pool=pool, expiry=expiry)
        deposits = sum(len(a.deposits) for a in ACCOUNTS)
        credited = ops.status().last_deposit_id
        compared, differing = _compare_balances(chain, ops)
        exit_served = chain.vault.wallet_state(chain.book.wallet(BY_NAME["exiter"].id))[1]
        instruments = recorder.instruments
        report.checks = [
            Check("deposits credited once by the watcher", credited == deposits, f"{credited} of {deposits}"),
            Check("every participant ran to the end", not any(p.error for p in participants),
                  "; ".join(f"{p.name}: {p.error}" for p in participants if p.error) or f"{len(participants)} ran"),
            Check("thin book: the 100x ask refused and every fill inside the band",
                  thin.far_ask_refused is not None and thin.inside_band and bool(thin.fills),
                  f"{len(thin.fills)} fill(s), refused: {thin.far_ask_refused}"),
            Check("trades on a stock pair and on TSLA.M/WBTC",
                  bool(traded & {instruments[s].instrument for s in instruments if s.endswith("/USDC")})
                  and instruments["TSLA.M/WBTC"].instrument in traded, f"{len(traded)} instrument(s) traded"),
            Check("a perpetual call written against TSLA.M only; its long pays the short funding",
                  perpetual_refused is None and funding[writer.name] > 0 and funding[long.name] < 0,
                  perpetual_refused or f"received {funding[writer.name] / 1e6:.6f} USDC"),
            Check("the forced exit served by a batch", exit_served, f"exited on chain: {exit_served}"),
            Check("the withdrawal claimed after the challenge window", claim[0] > 0 and claim[0] == claim[1],
                  f"expected {claim[0]}, received {claim[1]} token units"),
            Check("every journal record settled", settlement.unsettled() == 0,
                  f"{report.settlement_records} records in {len(batches)} batches"),
            Check("the watchtower recomputed every batch and found them equal",
                  len(audits) == len(batches) and all(a["match"] for a in audits),
                  f"{sum(a['match'] for a in audits)} of {len(batches)}"),
            Check("on-chain balances equal engine balances for every account and token", not differing,
                  f"{compared - len(differing)} of {compared} equal" + (f"; differ: {differing[:5]}" if differing
                                                                        else "")),
            *pool.checks,
            *expiry.checks,
            web,
        ]
        return report

    def summary_lines(self) -> list[str]:
        """The summary as printed."""
        gas = [b["gas"] for b in self.batches]
        lines = [f"orders {self.orders}, fills {self.fills} (both sides counted), settlement records "
                 f"{self.settlement_records}",
                 f"batches settled {len(self.batches)} on {self.chain_kind}, gas used {sum(gas):,}"
                 + (f" ({min(gas):,} .. {max(gas):,} a batch)" if gas else ""),
                 "funding: " + ", ".join(f"{name} {'received' if amount >= 0 else 'paid'} "
                                         f"{abs(amount) / 1e6:.6f} USDC" for name, amount in self.funding.items()),
                 *("thin book: " + line for line in self.thin_book.lines()),
                 *(self.pool.lines() if self.pool else []),
                 *(self.expiry.lines() if self.expiry else []),
                 "checks:"]
        lines += [f"  [{'skipped' if c.skipped else 'ok' if c.ok else 'FAILED'}] {c.name}: {c.detail}"
                  for c in self.checks]
        return lines

    def finish(self, folder: Path) -> int:
        """Print the summary, write the report folder; 0 if every check holds, else 1 with the failures listed."""
        lines = self.summary_lines()
        print("\n# Summary\n" + "\n".join(lines), flush=True)
        (folder / "summary.txt").write_text("\n".join(lines) + "\n")
        (folder / "summary.json").write_text(json.dumps({
            "chain": self.chain_kind, "orders": self.orders, "fills": self.fills,
            "settlement_records": self.settlement_records, "batches": self.batches, "funding": self.funding,
            "pool": self.pool.as_json() if self.pool else None,
            "expiry": self.expiry.as_json() if self.expiry else None,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail, "skipped": c.skipped}
                       for c in self.checks]}, indent=1))
        plots = self.plot(folder)
        print(f"report: {folder} ({', '.join(p.name for p in plots)})", flush=True)
        failed = [c.name for c in self.checks if not c.ok]
        if failed:
            print("FAILED checks:\n" + "\n".join(f"  {name}" for name in failed), flush=True)
            return 1
        return 0

    def plot(self, folder: Path) -> list[Path]:
        """PNG plots: price against reference with the band edges, depth, funding, gas per batch."""
        paths = []
        if self.recorder is not None:
            paths += [_price_plot(self.recorder, folder / "price.png"),
                      _depth_plot(self.recorder, folder / "depth.png")]
        paths.append(_funding_plot(self.funding_series, folder / "funding.png"))
        paths.append(_gas_plot(self.batches, folder / "gas.png"))
        return paths


def _compare_balances(chain: DemoChain, ops: Client) -> tuple[int, list[tuple[int, int, int, int]]]:
    """(pairs compared, [(account, asset, on chain, engine)] that differ) over every account and listed token."""
    compared, differing = 0, []
    for account, wallet in chain.book.items():
        reply = ops.balances(account)
        totals = {b.asset: b.total for b in reply.balances} if isinstance(reply, Balances) else {}
        for asset in chain.deployment.assets:
            settled, _claimable = chain.vault.balance(wallet, asset)
            compared += 1
            if settled != totals.get(asset, 0):
                differing.append((account, asset, settled, totals.get(asset, 0)))
    return compared, differing


def _price_plot(recorder: Recorder, path: Path) -> Path:
    figure, axes = plt.subplots(len(recorder.symbols), 1, figsize=(9, 3 * len(recorder.symbols)), squeeze=False)
    for ax, symbol in zip(axes[:, 0], recorder.symbols, strict=True):
        rows = recorder.rows[symbol]
        scale = recorder.instruments[symbol].price_scale
        t = [r[0] for r in rows]
        for column, label, style in ((1, "reference", "k-"), (2, "band low", "r--"), (3, "band high", "r--"),
                                     (4, "best bid", "g."), (5, "best ask", "b."), (6, "last trade", "mx")):
            points = [(x, r[column] / scale) for x, r in zip(t, rows, strict=True) if r[column] is not None]
            if points:
                ax.plot(*zip(*points), style, label=label, markersize=3)
        ax.set_title(symbol)
        ax.set_xlabel("seconds")
        if ax.get_legend_handles_labels()[0]:   # an instrument never priced has nothing to name
            ax.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _depth_plot(recorder: Recorder, path: Path) -> Path:
    figure, axes = plt.subplots(1, len(recorder.symbols), figsize=(4 * len(recorder.symbols), 3.5), squeeze=False)
    for ax, symbol in zip(axes[0], recorder.symbols, strict=True):
        book = recorder.depth.get(symbol)
        info = recorder.instruments[symbol]
        if book is not None:
            width = 0.8 * info.tick_size / info.price_scale
            for levels, color, label in ((book.bids, "g", "bids"), (book.asks, "r", "asks")):
                if levels:
                    ax.bar([level.price / info.price_scale for level in levels],
                           [level.qty / info.qty_scale for level in levels], width=max(width, _spacing(levels, info)),
                           color=color, label=label)
            ax.legend(fontsize=7)
        ax.set_title(f"{symbol} depth (last sample)")
        ax.set_xlabel("price")
        ax.set_ylabel("quantity at the level")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _spacing(levels, info: InstrumentInfo) -> float:
    """A bar width that keeps neighbouring levels apart: a third of their smallest gap."""
    prices = sorted(level.price for level in levels)
    gaps = [b - a for a, b in zip(prices, prices[1:])]
    return min(gaps, default=info.tick_size) / info.price_scale / 3


def _funding_plot(series: dict[str, list[tuple[int, int]]], path: Path) -> Path:
    figure, ax = plt.subplots(figsize=(7, 3.5))
    for name, events in series.items():
        if events:
            start, total, points = events[0][0], 0, []
            for ts, amount in events:
                total += amount
                points.append(((ts - start) / 1e9, total / 1e6))
            ax.step(*zip(*points), where="post", label=name)
    ax.set_title("perpetual funding, cumulative USDC received (+) or paid (-)")
    ax.set_xlabel("seconds since the first payment")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def _gas_plot(batches: list[dict], path: Path) -> Path:
    figure, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar([b["batch_id"] for b in batches], [b["gas"] for b in batches])
    ax.set_title("gas per settled batch")
    ax.set_xlabel("batch id")
    ax.set_ylabel("gas used")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path
