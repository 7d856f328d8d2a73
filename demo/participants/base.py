"""What every simulated participant shares: its own SDK client (a ZeroMQ socket belongs
to one thread), the instruments by symbol, prices on the instrument's tick, and the tally
of what it sent and received."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections import Counter
from pathlib import Path

from engine.client import Client, ClientKeys
from engine.schemas import Fill, InstrumentInfo, Reject
from engine.schemas_perpetual import FundingSettled


class Participant(ABC):
    """A client of the gateway acting for one account; ``run`` loops in its own thread
    until ``stop`` is set, and ``tally`` counts orders, fills, rejects and funding."""

    def __init__(self, name: str, orders: str, keys: Path, instruments: dict[str, InstrumentInfo]) -> None:
        self.name = name
        self.client = Client(orders, ClientKeys.from_files(keys / f"{name}.key_secret", keys / "server.key"))
        self.instruments = instruments
        self.tally: Counter[str] = Counter()
        self.fills: list[Fill] = []
        self.funding: list[FundingSettled] = []
        self.thread: threading.Thread | None = None
        self.error: str | None = None

    def place(self, instrument: InstrumentInfo, side: int, qty: int, price: int = 0, **options):
        """Place an order and count it (and its reject)."""
        reply = self.client.place(instrument.instrument, side, qty, price, **options)
        self.tally["orders"] += 1
        if isinstance(reply, Reject):
            self.tally["rejects"] += 1
        return reply

    def drain(self, timeout: float = 0.0) -> list:
        """Read pending events, keeping fills and funding payments."""
        events = self.client.poll_events(timeout)
        for event in events:
            if isinstance(event, Fill):
                self.fills.append(event)
                self.tally["fills"] += 1
            elif isinstance(event, FundingSettled):
                self.funding.append(event)
        return events

    def funding_received(self) -> int:
        """Perpetual funding received (+) or paid (-) so far, premium ledger units."""
        return -sum(event.amount for event in self.funding)

    def reference(self, instrument: InstrumentInfo) -> tuple[int, int]:
        """(reference price, trading state) of ``instrument`` from a book snapshot."""
        snapshot = self.client.snapshot(instrument.instrument, 1)
        return snapshot.reference, snapshot.state

    @abstractmethod
    def step(self) -> None:
        """One round of the participant's behaviour."""

    def run(self, stop: threading.Event, interval: float) -> None:
        """Call ``step`` every ``interval`` seconds until ``stop`` is set, then close the client; an
        error ends the loop and is kept in ``error`` for the summary's checks."""
        try:
            while not stop.is_set():
                self.step()
                self.drain()
                stop.wait(interval)
            self.drain(0.2)
        except Exception as err:   # noqa: BLE001 - any failure of a participant is reported, not lost in a thread
            self.error = f"{type(err).__name__}: {err}"
        finally:
            self.client.close()

    def start(self, stop: threading.Event, interval: float) -> None:
        """Run in a daemon thread."""
        self.thread = threading.Thread(target=self.run, args=(stop, interval), name=self.name, daemon=True)
        self.thread.start()


def on_tick(price: float, instrument: InstrumentInfo) -> int:
    """``price`` (price units) rounded to the instrument's tick."""
    return max(instrument.tick_size, round(price / instrument.tick_size) * instrument.tick_size)
