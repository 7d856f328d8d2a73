"""The dated series that expires during the venue demo (demo/venue_config.py lists it):
whether it has settled, and its part of the summary: the settlement price
the feed process's TWAP gave, each account's expiry payment (replayed from the
journal), and the check that it settled and its payments net to zero."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from demo.venue_report import Check
from engine.client import Client
from engine.config import decode_venue
from engine.core.types import EventKind, Side
from engine.journal import FileJournal
from engine.schemas import Reject
from engine.venue import build_engine

SERIES_STATUS_SETTLED = 1   # SeriesInfo.status (engine/schemas_options.py)


def settled(ops: Client, underlying: int, instrument: int) -> bool:
    """Whether the series has been settled (the feed process's CloseSeries ran)."""
    chain = ops.chain(underlying)
    return not isinstance(chain, Reject) and any(s.instrument == instrument and s.status == SERIES_STATUS_SETTLED
                                                 for s in chain.series)


@dataclass
class ExpirySummary:
    """The series' settlement: price (price units), payments (account name, premium
    ledger units received, negative: paid), and its check."""

    symbol: str
    price_scale: int
    settlement_price: int
    payments: list[tuple[str, int]]
    checks: list[Check] = field(default_factory=list)

    @classmethod
    def collect(cls, ops: Client, journal: Path, underlying: int, instrument, names: dict[int, str],
                unsettled: int) -> ExpirySummary:
        """Read the settlement from the gateway and the payments from the journal;
        ``unsettled`` journal records the settlement job has not settled yet."""
        chain = ops.chain(underlying)
        info = next((s for s in ([] if isinstance(chain, Reject) else chain.series)
                     if s.instrument == instrument.instrument), None)
        price = info.settlement_price if info is not None and info.status == SERIES_STATUS_SETTLED else 0
        payments = [(names.get(account, str(account)), amount)
                    for account, amount in _payments(journal, instrument.instrument)]
        summary = cls(instrument.symbol, instrument.price_scale, price, payments)
        total = sum(amount for _name, amount in payments)
        summary.checks = [Check(f"{instrument.symbol} expired during the run and settled at the feed's TWAP; its "
                                "payments net to zero and are settled on chain",
                                # Whether the taker reached the series before it expired depends on
                                # the machine's speed: with no position open there is nothing to pay.
                                price > 0 and total == 0 and unsettled == 0,
                                f"price {price / instrument.price_scale:,.4f}, {len(payments)} payment(s), net "
                                f"{total}, unsettled records {unsettled}"
                                + ("" if payments else " (no position was open at expiry)"))]
        return summary

    def lines(self) -> list[str]:
        """The series' lines of the summary."""
        paid = ", ".join(f"{name} {'received' if amount >= 0 else 'paid'} {abs(amount) / 1e6:,.6f} USDC"
                         for name, amount in self.payments) or "no position was open"
        return [f"expiry: {self.symbol} settled at {self.settlement_price / self.price_scale:,.4f}: {paid}"]

    def as_json(self) -> dict:
        """The summary.json entry."""
        return {"symbol": self.symbol, "settlement_price": self.settlement_price,
                "payments": [{"account": name, "amount": amount} for name, amount in self.payments]}


def _payments(journal: Path, instrument: int) -> list[tuple[int, int]]:
    """(account, amount received; negative: paid) of each POSITION_SETTLED of ``instrument``,
    replaying the journal through the core (the journal keeps commands, not every event)."""
    reader = FileJournal.open_reader(journal)
    engine = build_engine(decode_venue(reader.genesis))
    payments = []
    for batch in reader.read(1):
        events = engine.process(batch.commands)
        for e in events[(events["kind"] == EventKind.POSITION_SETTLED) & (events["instrument"] == instrument)]:
            amount = int(e["qty"])
            payments.append((int(e["account"]), -amount if int(e["side"]) == Side.SELL else amount))
    return payments
