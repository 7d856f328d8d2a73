"""Demo part 4: an option chain's whole life, settled on chain.

The operator lists a TSLA.M chain (three strikes, calls and puts) in one batch
of LIST_SERIES commands; the chain shows marks and greeks from the option-mark
feed (Black-Scholes, feeds/options.py) and its open interest. A TSLA.M holder
with no stablecoin sells covered calls (its shares are locked, not margined), a
market maker writes puts. At expiry trading stops, the feed's 30-minute TWAP
of TSLA.M settles the series in cash: in-the-money positions pay and receive
USDC exactly, the covered writer sells shares to pay, locks are released. The
batch job posts the payments to the vault on the embedded EVM like any fill,
and the watchtower recomputes the batch.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from decimal import Decimal
from pathlib import Path

import numpy as np

from engine.chains import RIGHT_CALL, RIGHT_PUT, chain_commands
from engine.core.matcher import MatchingEngine
from engine.core.records import COMMAND_DTYPE
from engine.core.types import (CANCEL_TEXT, REJECT_TEXT, CommandKind, EventKind, OrderType, SelfTrade, Side,
                               TimeInForce)
from engine.defaults import DEFAULT_ASSETS, option_series, stock_pair
from feeds.options import black_scholes, instrument_option_risk, years_to_expiry
from feeds.twap import DEFAULT_WINDOW_NS, ReferenceHistory, settlement_units
from settlement.accounts import dev_address_book, dev_private_key
from settlement.audit import Watchtower
from settlement.chain import ChainClient, connect, fund_dev_account
from settlement.deposits import DepositWatcher, InProcessDeposits
from settlement.job import SettlementJob
from settlement.records import UnitTable, settlement_records
from settlement.source import RecordFileSource
from settlement.vault import Vault, deploy, revert_decoder

FEE, MM, HOLDER, BUYER = 0, 1, 2, 3
NAMES = {FEE: "fee account", MM: "market-maker", HOLDER: "tsla-holder", BUYER: "call-buyer"}
ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY = 1_000_011, 1_000_012, 1_000_013
USDC, TSLA = 0, 3
SHARE = 10**6                                   # TSLA.M ledger units
EXPIRY = dt.datetime(2026, 12, 18, 8, tzinfo=dt.UTC)
EXPIRY_NS = int(EXPIRY.timestamp()) * 10**9
HOUR = 3_600 * 10**9
VOL, RATE = 0.60, 0.0


def _money(units: int, decimals: int = 6) -> str:
    return f"{Decimal(units) / 10**decimals:,.2f}"


def run(out=print) -> None:
    """Run the chain, expiry and settlement walk-through, printing what happens."""
    w3 = connect()
    book = dev_address_book(list(NAMES))
    for key in (ADMIN_KEY, OPERATOR_KEY, GUARDIAN_KEY, *NAMES):
        fund_dev_account(w3, ChainClient(w3, dev_private_key(key)).address, 10**21)
    admin = ChainClient(w3, dev_private_key(ADMIN_KEY), decoder=revert_decoder())
    operator = ChainClient(w3, dev_private_key(OPERATOR_KEY), decoder=revert_decoder())
    deployment = deploy(admin, operator=operator.address,
                        guardian=ChainClient(w3, dev_private_key(GUARDIAN_KEY)).address,
                        exit_window=86_400, challenge_window=0, assets=dict(enumerate(DEFAULT_ASSETS)))
    vault = Vault(w3, deployment.vault)

    eng = MatchingEngine(risk=True, fee_account=FEE)
    for spec in DEFAULT_ASSETS:
        eng.add_asset(spec)
    spot = eng.add_instrument(stock_pair("TSLA.M"))
    template = eng.add_instrument(option_series("TSLA.M", "TSLA.M", "2026-12-18", "250", "P"))
    for account in (MM, HOLDER, BUYER):
        eng.open_account(account)
    settled_events = []                          # what the batch job will read, as the journal keeps it

    def run_commands(*rows, ts=EXPIRY_NS - 2 * HOUR):
        commands = np.zeros(len(rows), dtype=COMMAND_DTYPE)
        for i, fields in enumerate(rows):
            commands[i]["seq"] = eng.last_seq + 1 + i
            commands[i]["ts"] = ts
            for name, value in fields.items():
                commands[i][name] = value
        events = eng.process(commands)
        settled_events.append(events)
        return events

    def order(instrument, account, side, qty, price, ts=EXPIRY_NS - 2 * HOUR):
        return run_commands(dict(kind=CommandKind.NEW_ORDER, instrument=instrument, account=account, side=side,
                                 order_type=OrderType.LIMIT, tif=TimeInForce.GTC, stp=SelfTrade.CANCEL_NEWEST,
                                 qty=qty, price=price), ts=ts)

    def deposit(account, asset, ledger_amount):
        user = ChainClient(w3, dev_private_key(account))
        info = deployment.assets[asset]
        amount = ledger_amount * 10 ** (info["decimals"] - info["ledger_decimals"])
        token = vault.token(info["token"])
        user.transact(token.functions.mint(user.address, amount))
        user.transact(token.functions.approve(vault.address, amount))
        user.transact(vault.contract.functions.deposit(asset, amount))

    out(f"  vault {vault.address} on the embedded EVM")
    out("\n== Deposits: the holder brings 3 TSLA.M and no stablecoin")
    deposit(MM, USDC, 200_000 * 10**6)
    deposit(MM, TSLA, 50 * SHARE)
    deposit(HOLDER, TSLA, 3 * SHARE)
    deposit(BUYER, USDC, 20_000 * 10**6)
    out(f"  {DepositWatcher(vault, deployment, book, InProcessDeposits(eng)).poll()} deposits credited")
    run_commands(dict(kind=CommandKind.SET_ASSET_PRICE, asset=USDC, price=10**8),
                 dict(kind=CommandKind.SET_ASSET_PRICE, asset=TSLA, price=250 * 10**8),
                 dict(kind=CommandKind.SET_REFERENCE, instrument=spot, price=2_500_000))

    out("\n== The operator lists a chain in one batch (one journaled LIST_SERIES per series)")
    commands = chain_commands(template, [20261218], [2_400_000, 2_500_000, 2_600_000], [RIGHT_CALL, RIGHT_PUT],
                              SHARE)
    events = run_commands(*({name: int(row[name]) for name in ("kind", "instrument", "side", "order_id", "price",
                                                               "qty")} for row in commands))
    listed = [int(i) for i in events["instrument"][events["kind"] == EventKind.SERIES_LISTED]]
    refused = [REJECT_TEXT[int(r)] for r in events["reason"][events["kind"] == EventKind.REJECTED]]
    out(f"  {len(listed)} series listed; refused: {refused}")
    now = EXPIRY - dt.timedelta(hours=2)
    years = years_to_expiry(EXPIRY.date(), now)
    chain = [template, *listed]
    for iid in chain:                            # the feed's re-mark: marks and short margins
        risk = instrument_option_risk(eng.instruments[iid], 250.0, VOL, RATE, now)
        run_commands(dict(kind=CommandKind.SET_REFERENCE, instrument=iid, price=int(risk.mark_price)),
                     dict(kind=CommandKind.SET_OPTION_RISK, instrument=iid, qty=int(risk.initial_per_qty),
                          price=int(risk.maintenance_per_qty)))
    call = next(i for i in chain if eng.instruments[i].symbol == "TSLA.M-20261218-250-C")
    put = next(i for i in chain if eng.instruments[i].symbol == "TSLA.M-20261218-240-P")

    out("\n== Trading: covered calls with no stablecoin, a written put")
    run_commands(dict(kind=CommandKind.COVER_CALLS, account=HOLDER, state=1))
    call_px, put_px = eng.instrument_state(call)[1], eng.instrument_state(put)[1]
    order(call, HOLDER, Side.SELL, 200, call_px)
    fills = order(call, BUYER, Side.BUY, 200, call_px)
    order(put, MM, Side.SELL, 300, put_px)
    fills = np.concatenate([fills, order(put, BUYER, Side.BUY, 300, put_px)])
    out(f"  {int(np.sum(fills['kind'] == EventKind.FILL))} fills: tsla-holder wrote 2 calls at "
        f"{_money(call_px, 4)}, market-maker 3 puts at {_money(put_px, 4)}")
    total, locked = eng.balances(HOLDER)[TSLA]
    out(f"  tsla-holder: {total / SHARE:g} TSLA.M, {locked / SHARE:g} locked by its covered calls; "
        f"margin needed {eng.margin(HOLDER).initial / 10**8:,.2f} USD")
    refused = run_commands(dict(kind=CommandKind.DEBIT, account=HOLDER, asset=TSLA, qty=2 * SHARE))
    out(f"  withdrawing 2 TSLA.M: {REJECT_TEXT[int(refused['reason'][0])]}")
    out(f"  {'series':<24}{'mark':>8}{'delta':>8}{'open interest':>15}")
    for iid in chain:
        spec = eng.instruments[iid]
        greeks = black_scholes(250.0, float(spec.option.strike), years, VOL, RATE, spec.option.is_call)
        out(f"  {spec.symbol:<24}{_money(eng.instrument_state(iid)[1], 4):>8}{float(greeks.delta):>8.2f}"
            f"{eng.open_interest(iid) / 100:>15g}")

    out("\n== Expiry: trading stops; the feed's 30-minute TWAP of TSLA.M settles the chain")
    late = order(call, BUYER, Side.BUY, 100, call_px, ts=EXPIRY_NS)
    out(f"  an order at 08:00 UTC: {REJECT_TEXT[int(late['reason'][0])]}")
    history = ReferenceHistory(DEFAULT_WINDOW_NS)
    for minute in range(40, -1, -1):             # TSLA.M climbs from $250 to $258 into expiry
        history.add(EXPIRY_NS - minute * 60 * 10**9, (250 * 10**8) + (40 - minute) * 20_000_000)
    twap = history.twap(EXPIRY_NS - DEFAULT_WINDOW_NS, EXPIRY_NS)
    out(f"  TWAP {float(twap) / 10**8:,.4f} USD")
    run_commands(dict(kind=CommandKind.SET_ASSET_PRICE, asset=TSLA, price=258 * 10**8),
                 dict(kind=CommandKind.SET_REFERENCE, instrument=spot, price=2_580_000), ts=EXPIRY_NS)
    order(spot, MM, Side.BUY, 5_000, 2_560_000, ts=EXPIRY_NS)      # a bid the covered writer can sell into
    for iid in chain:
        price = settlement_units(twap, 10**8, eng.instruments[iid].price_scale)
        events = run_commands(dict(kind=CommandKind.SETTLE_SERIES, instrument=iid, price=price), ts=EXPIRY_NS)
        worthless = int(np.sum((events["kind"] == EventKind.POSITION_SETTLED) & (events["qty"] == 0)))
        if worthless:
            out(f"  {eng.instruments[iid].symbol}: out of the money, {worthless} positions expire worthless")
        for ev in events:
            if ev["kind"] == EventKind.POSITION_SETTLED and ev["qty"]:
                out(f"  {eng.instruments[iid].symbol}: {NAMES[int(ev['account'])]} "
                    f"{'receives' if ev['side'] == Side.BUY else 'pays'} {_money(int(ev['qty']))} USDC")
            elif ev["kind"] == EventKind.FILL:
                out(f"  {eng.instruments[iid].symbol}: {NAMES[int(ev['account'])]} sells "
                    f"{ev['qty'] / 1_000:g} TSLA.M at {_money(int(ev['price']), 4)} to pay")
            elif ev["kind"] == EventKind.CANCELLED:
                out(f"  {eng.instruments[iid].symbol}: order #{ev['order_id']} {CANCEL_TEXT[int(ev['reason'])]}")
    total, locked = eng.balances(HOLDER)[TSLA]
    out(f"  tsla-holder now: {total / SHARE:g} TSLA.M ({locked} locked), {_money(eng.balances(HOLDER)[USDC][0])} "
        f"USDC; open interest left: {sum(eng.open_interest(i) for i in chain)}")

    out("\n== The payments reach the vault through the batch job, like any fill")
    state = Path(tempfile.mkdtemp(prefix="venue-expiry-demo-"))
    source = RecordFileSource(state / "records")
    fills, withdrawals = settlement_records(np.concatenate(settled_events), UnitTable.of_engine(eng))
    source.append(fills=fills, withdrawals=withdrawals)
    job = SettlementJob(source, operator, vault, book, state / "job", max_records=1_000, max_wait=0.0)
    batches = []
    while (batch_id := job.step()) is not None:
        batches.append(batch_id)
    out(f"  {len(fills)} records (trades, payments, the share sale) in batches {batches}")
    matches = [vault.balance(book.wallet(a), asset)[0] == eng.balances(a)[asset][0]
               for a in NAMES for asset in (USDC, TSLA)]
    out(f"  {sum(matches)} of {len(matches)} on-chain balances equal the engine's")
    audits = Watchtower(vault, deployment.block).poll()
    out(f"  watchtower: {sum(a.ok for a in audits)} of {len(audits)} batches recomputed from their published fills")
    eng.check_integrity()
