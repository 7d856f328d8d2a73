"""Settlement against a running gateway: the deposit watcher's engine link over an
operator ``engine.client.Client``, and the instrument -> ledger-unit mapping of a venue
config (what JournalFillSource needs to read the gateway's journal)."""

from __future__ import annotations

from pathlib import Path

from engine.client import Client
from engine.config import Config, load_config
from engine.venue import build_engine
from engine.core.types import Reject as CoreReject
from engine.schemas import GatewayReject, Reject, Status
from settlement.engine_records import InstrumentUnits


class GatewayError(Exception):
    """The gateway answered a query with a reject."""


def reject_name(code: int) -> str:
    """The name of a reject code: the core's below 100, the gateway's above."""
    codes = CoreReject if code < 100 else GatewayReject
    try:
        name = codes(code).name
    except ValueError:
        name = None
    return name or f"REJECT_{code}"


class GatewayDeposits:
    """EngineDeposits through the gateway, with an operator key's Client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def last_deposit_id(self) -> int:
        status = self.client.status()
        if not isinstance(status, Status):
            raise GatewayError(f"status refused by the gateway: {reject_name(status.code)} {status.text}")
        return status.last_deposit_id

    def credit_deposit(self, account: int, asset: int, amount: int, deposit_id: int) -> str | None:
        return _outcome(self.client.credit(account, asset, amount, deposit_id=deposit_id))

    def skip_deposit(self, deposit_id: int) -> str | None:
        return _outcome(self.client.skip_deposit(deposit_id))


def _outcome(reply) -> str | None:
    return reject_name(reply.code) if isinstance(reply, Reject) else None


def instrument_units_from_config(config: Config | str | Path) -> InstrumentUnits:
    """The exact fill -> ledger-unit mapping of the venue's instruments, from the engine the
    config's venue definition builds (the same definition the gateway's journal replays)."""
    if not isinstance(config, Config):
        config = load_config(config)
    if not config.venue.risk:
        raise ValueError("fills map to ledger units only for a venue with risk = true")
    return InstrumentUnits.of_engine(build_engine(config.venue))
