"""The main pool settles on chain like any fill: each POOL_PAID (a deposit's or a
redemption's movement of one asset) goes from the journal through the batch job to
the vault as a payment between the provider and the pool account, so every wallet's
on-chain balance, the pool's treasury of pre-minted shares included, equals the
engine's, and the watchtower recomputes every batch. The share token here is the
vault's AAPLX (six ledger decimals, as USDC): every wallet deposited some; the others
withdraw theirs, and the pool account's deposit is its treasury."""

from __future__ import annotations

import numpy as np
from settlement_helpers import AAPLX, ACCOUNTS, INITIAL, USDC, WETH, make_job, settle_all
from test_deposit_watcher import chain_ledger, engine_for, engine_ledger

from engine.core.records import JOURNALED_EVENT_KINDS, empty_commands
from engine.core.types import CommandKind, EventKind
from engine.journal import FileJournal
from settlement.audit import Watchtower
from settlement.records import UnitTable
from settlement.source import JournalFillSource

POOL, LP1, LP2 = 6, 2, 3
USD = 10**8


def test_pool_deposits_and_redemptions_reach_the_vault_and_every_wallet_equals_the_engine(venue, tmp_path):
    eng = engine_for(venue)
    eng.set_main_pool(POOL, USDC, AAPLX, 4, 0, 25, 0)
    units = UnitTable.of_engine(eng)
    journal = FileJournal.create_or_open(tmp_path / "journal", b"pool venue")
    seq, all_events = 0, []

    def run(*rows):
        nonlocal seq
        commands = empty_commands(len(rows))
        for i, fields in enumerate(rows):
            seq += 1
            commands[i]["seq"], commands[i]["ts"] = seq, seq
            for name, value in fields.items():
                commands[i][name] = value
        events = eng.process(commands)
        journal.append(commands, events[np.isin(events["kind"], list(JOURNALED_EVENT_KINDS))])
        all_events.append(events)
        return events

    run(*[dict(kind=CommandKind.CREDIT, account=a, asset=x, qty=q) for a in ACCOUNTS for x, q in INITIAL.items()])
    # The pool account withdraws its own USDC and WETH, the others their AAPLX: the pool holds
    # only its treasury of shares, and no share is out.
    run(*[dict(kind=CommandKind.DEBIT, account=POOL, asset=x, qty=INITIAL[x]) for x in (USDC, WETH)],
        *[dict(kind=CommandKind.DEBIT, account=a, asset=AAPLX, qty=INITIAL[AAPLX]) for a in ACCOUNTS if a != POOL])
    run(dict(kind=CommandKind.SET_ASSET_PRICE, asset=USDC, price=USD))
    # LP1's deposit is the immediate POOL_DEPOSIT of older journals, LP2's a request executed when due.
    run(dict(kind=CommandKind.POOL_DEPOSIT, asset=AAPLX, account=LP1, qty=300_000_000))
    [request] = run(dict(kind=CommandKind.POOL_DEPOSIT_REQUEST, asset=AAPLX, account=LP2, qty=123_456_789))
    assert request["kind"] == EventKind.POOL_DEPOSIT_REQUESTED
    run(dict(kind=CommandKind.POOL_REDEEM, account=LP2, asset=AAPLX, order_id=int(request["order_id"])))
    requested = run(dict(kind=CommandKind.POOL_REDEEM, account=LP1, asset=AAPLX, qty=100_000_000))
    assert requested[0]["kind"] == EventKind.POOL_REDEEM_REQUESTED
    paid = run(dict(kind=CommandKind.POOL_REDEEM, account=LP1, asset=AAPLX, order_id=int(requested[0]["order_id"])))
    assert (paid["kind"] == EventKind.POOL_PAID).sum() == 2 and int(paid[1]["fee"]) == 250_000
    eng.check_integrity()
    journal.sync()

    job = make_job(venue, JournalFillSource(journal, units), tmp_path / "job", max_records=3)
    assert settle_all(job)
    assert chain_ledger(venue) == engine_ledger(eng)          # the LPs and the pool's treasury included
    events = np.concatenate(all_events)
    audits = Watchtower(venue.vault, venue.deployment.block).poll()
    assert audits and all(audit.ok for audit in audits)
    assert int((events["kind"] == EventKind.POOL_PAID).sum()) == 6
    assert sum(audit.fills for audit in audits) == 6
    journal.close()
