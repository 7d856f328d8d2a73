"""Building a venue: the engine made from a venue definition (``build_engine``)
and the first batch of a new journal (``genesis_commands``).

The gateway builds its engine here on a new journal, replay on every rebuild
from genesis; the genesis batch sets the configured reference prices, option
margins, asset prices and opening credits, so they are journaled and replayed
like every other command. Units come from engine/units.py.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import msgspec
import numpy as np

from engine.config import Config, ConfigError, VenueSpec
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind
from engine.units import margin_per_qty, usd_price_units


def build_engine(spec: VenueSpec):
    """A new MatchingEngine holding the venue definition (no commands run yet)."""
    from engine.core.matcher import MatchingEngine

    if spec.risk:
        engine = MatchingEngine(spec.max_accounts, spec.max_orders, True, spec.fee_account)
        for asset in spec.assets:
            engine.add_asset(asset)
        for account in spec.accounts:
            engine.open_account(account)
        if spec.main_pool is not None:
            t = spec.main_pool
            engine.set_main_pool(t.account, t.asset, t.share_asset, t.nav_window, t.cooldown_ns,
                                 t.withdrawal_fee_bps, t.equity_multiplier_bps, t.deposit_cooldown_ns)
        if spec.pools is not None:
            engine.set_pools(**msgspec.structs.asdict(spec.pools))
    else:
        engine = MatchingEngine(spec.max_accounts, spec.max_orders)
    for inst in spec.instruments:
        engine.add_instrument(inst)
    return engine


def genesis_commands(config: Config) -> np.ndarray:
    """The first batch of a new journal: reference prices, option margins, asset
    prices and opening credits from the config (seq and ts are stamped by the
    gateway). ConfigError names the file and the entry when a value is wrong."""
    file, spec = config.file, config.venue
    rows = []
    for iid, (entry, inst) in enumerate(zip(file.instruments, spec.instruments)):
        if entry.reference_price is not None:
            rows.append({"kind": CommandKind.SET_REFERENCE, "instrument": iid,
                         "price": _convert(config, "", inst.price_to_units, entry.reference_price)})
    if spec.risk:
        for iid, (entry, inst) in enumerate(zip(file.instruments, spec.instruments)):
            if entry.initial_margin is not None:
                initial, maintenance = (
                    _convert(config, f"{inst.symbol}: ", margin_per_qty,
                             _decimal(config, f"{inst.symbol}: margin", text), inst.qty_scale)
                    for text in (entry.initial_margin, entry.maintenance_margin))
                if maintenance > initial:
                    raise ConfigError(f"{config.path}: {inst.symbol}: maintenance_margin above initial_margin")
                rows.append({"kind": CommandKind.SET_OPTION_RISK, "instrument": iid, "qty": initial,
                             "price": maintenance})
        asset_ids = {a.symbol: i for i, a in enumerate(spec.assets)}
        for aid, entry in enumerate(file.assets):
            if entry.usd_price is not None:
                usd = _decimal(config, f"asset {entry.symbol}: usd_price", entry.usd_price)
                rows.append({"kind": CommandKind.SET_ASSET_PRICE, "asset": aid,
                             "price": _convert(config, f"asset {entry.symbol}: ", usd_price_units, usd)})
        for acct in file.accounts:
            for symbol, amount in acct.credit.items():
                if symbol not in asset_ids:
                    raise ConfigError(f"{config.path}: account {acct.id}: credit of unknown asset {symbol}")
                asset = spec.assets[asset_ids[symbol]]
                units = _decimal(config, f"account {acct.id}: credit", amount) * 10**asset.ledger_decimals
                if units != units.to_integral_value():
                    raise ConfigError(f"{config.path}: amount {amount} is finer than one ledger unit")
                rows.append({"kind": CommandKind.CREDIT, "account": acct.id, "asset": asset_ids[symbol],
                             "qty": int(units)})
    commands = np.zeros(len(rows), dtype=COMMAND_DTYPE)
    for i, row in enumerate(rows):
        for name, value in row.items():
            commands[name][i] = value
    return commands


def _decimal(config: Config, what: str, text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ConfigError(f"{config.path}: {what} {text!r} is not a decimal") from None


def _convert(config: Config, where: str, convert, *args) -> int:
    """``convert(*args)``, its ValueError or ArithmeticError a ConfigError naming the file and ``where``."""
    try:
        return convert(*args)
    except (ValueError, ArithmeticError) as err:
        raise ConfigError(f"{config.path}: {where}{err}") from err
