"""Option chains: the series a LIST_SERIES command lists (a template series'
parameters with new terms, all integers on the wire), and a whole chain as one
LIST_SERIES record per (expiry, strike, right).

LIST_SERIES fields (engine/core/chain.pyx): ``instrument`` the template series
(its underlying, premium asset, tick, lot, bands, fees and scales are copied),
``side`` the right (RIGHT_CALL or RIGHT_PUT), ``order_id`` the expiry date as
the integer YYYYMMDD, ``price`` the strike in the template's price units per
whole underlying token, ``qty`` the contract size in underlying ledger units.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from decimal import Decimal

import msgspec
import numpy as np

from engine.assets import AssetSpec
from engine.core.records import empty_commands
from engine.core.types import CommandKind
from engine.instruments import InstrumentSpec, OptionTerms
from engine.units import instrument_units, series_terms

RIGHT_CALL = 1
RIGHT_PUT = 2
_RIGHTS = {RIGHT_CALL: "C", RIGHT_PUT: "P"}


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros (``100000``, ``0.5``)."""
    return format(value.normalize(), "f")


def expiry_code(expiry: datetime.date) -> int:
    """The YYYYMMDD integer LIST_SERIES carries for an expiry date."""
    return expiry.year * 10_000 + expiry.month * 100 + expiry.day


def listed_series(template: InstrumentSpec, assets: Sequence[AssetSpec], right: int, expiry: int, strike: int,
                  contract: int) -> InstrumentSpec:
    """The InstrumentSpec LIST_SERIES adds: ``template``'s parameters with the given
    right, expiry (YYYYMMDD), strike (price units per underlying token) and
    contract size (underlying ledger units), named ``UNDERLYING-YYYYMMDD-STRIKE-C|P``,
    expiring at the template's ``expiry_time`` of that date.
    ValueError (the command's INVALID_SERIES) if any is not valid."""
    if template.option is None:
        raise ValueError(f"{template.symbol} is not an option series")
    if right not in _RIGHTS:
        raise ValueError(f"right {right} is neither {RIGHT_CALL} (call) nor {RIGHT_PUT} (put)")
    try:
        date = datetime.date(expiry // 10_000, expiry // 100 % 100, expiry % 100)
    except ValueError:
        raise ValueError(f"expiry {expiry} is not a YYYYMMDD date") from None
    underlying = next((a for a in assets if a.symbol == template.base), None)
    if underlying is None or strike <= 0 or contract <= 0:
        raise ValueError("strike and contract size must be positive")
    strike_text = _plain(Decimal(strike) / template.price_scale)
    terms = OptionTerms(expiry=date.isoformat(), strike=strike_text, right=_RIGHTS[right],
                        contract_size=_plain(Decimal(contract) / 10**underlying.ledger_decimals),
                        expiry_time=template.option.expiry_time)
    spec = msgspec.structs.replace(template, symbol=f"{template.base}-{date:%Y%m%d}-{strike_text}-{_RIGHTS[right]}",
                                   option=terms)
    instrument_units(spec, assets)
    series_terms(spec, assets)
    return spec


def chain_commands(template: int, expiries: Iterable[int], strikes: Iterable[int], rights: Iterable[int],
                   contract: int) -> np.ndarray:
    """One LIST_SERIES record per (expiry, strike, right) of a chain on
    ``template``'s underlying, expiry-major (COMMAND_DTYPE, seq and ts unset)."""
    rows = [(e, k, r) for e in expiries for k in strikes for r in rights]
    commands = empty_commands(len(rows))
    commands["kind"] = CommandKind.LIST_SERIES
    commands["instrument"] = template
    if rows:
        commands["order_id"], commands["price"], commands["side"] = np.array(rows, dtype=np.int64).T
    commands["qty"] = contract
    return commands
