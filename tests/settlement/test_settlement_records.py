"""Engine events -> settlement records -> netting reproduces the engine's ledger; the unit table."""

import shutil
from pathlib import Path

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.assets import AssetSpec
from engine.core.matcher import MatchingEngine
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, EventKind, OrderType, SelfTrade, Side, TimeInForce
from engine.defaults import option_series, stock_pair
from settlement.netting import check_conservation, net_fills
from settlement.records import FILLS_PER_SEQ, UnitTable, settlement_records

ACCOUNTS = (1, 2, 3, 4)
START = 10_000_000_000
PX = 2_200_000


def venue(funded=True):
    eng = MatchingEngine(risk=True, fee_account=0)
    for spec in (AssetSpec(symbol="USDC", decimals=6, ledger_decimals=6),
                 AssetSpec(symbol="AMZNX", decimals=18, ledger_decimals=6),
                 AssetSpec(symbol="TSLA.M", decimals=18, ledger_decimals=6)):
        eng.add_asset(spec)
    for sym in ("AMZNX", "TSLA.M"):
        eng.add_instrument(msgspec.structs.replace(stock_pair(sym), maker_fee_bps=-1, taker_fee_bps=4,
                                                   static_band_bps=0, dynamic_band_bps=0))
    for acct in ACCOUNTS:
        eng.open_account(acct)
        for asset in range(3):
            if funded:
                eng.credit(acct, asset, START)
    return eng


def funding_commands():
    """The credits venue() makes, as a command batch starting at seq 1."""
    c = np.zeros(len(ACCOUNTS) * 3, COMMAND_DTYPE)
    for i, (acct, asset) in enumerate((a, s) for a in ACCOUNTS for s in range(3)):
        c[i]["seq"] = i + 1
        c[i]["kind"] = CommandKind.CREDIT
        c[i]["account"] = acct
        c[i]["asset"] = asset
        c[i]["qty"] = START
    return c


def settle_and_compare(eng, settled, net):
    """Apply a netted batch to ``settled`` {(account, asset): amount} and check
    it conserves value and reproduces every engine balance."""
    check_conservation(net)
    for row in net:
        key = (int(row["account"]), int(row["asset"]))
        settled[key] = settled.get(key, 0) + int(row["delta"]) - int(row["withdrawn"])
    for acct in (0, *ACCOUNTS):
        for asset, (total, _reserved) in enumerate(eng.balances(acct)):
            assert settled.get((acct, asset), 0) == total, (acct, asset)


order = st.tuples(st.sampled_from([CommandKind.NEW_ORDER] * 6 + [CommandKind.DEBIT, CommandKind.CANCEL]),
                  st.integers(0, 1), st.sampled_from(ACCOUNTS), st.sampled_from([Side.BUY, Side.SELL]),
                  st.integers(-5, 5), st.integers(1, 3_000), st.booleans(), st.integers(1, 40))


def commands(rows, seq0):
    c = np.zeros(len(rows), COMMAND_DTYPE)
    for i, (kind, inst, acct, side, ticks, qty, ioc, target) in enumerate(rows):
        c[i]["seq"] = seq0 + i
        c[i]["kind"] = kind
        c[i]["account"] = acct
        if kind == CommandKind.NEW_ORDER:
            c[i]["instrument"] = inst
            c[i]["side"] = side
            c[i]["order_type"] = OrderType.LIMIT
            c[i]["tif"] = TimeInForce.IOC if ioc else TimeInForce.GTC
            c[i]["stp"] = SelfTrade.STP_NONE
            c[i]["price"] = PX + 100 * ticks
            c[i]["qty"] = qty
        elif kind == CommandKind.DEBIT:
            c[i]["asset"] = inst
            c[i]["qty"] = qty * 1_000
        else:
            c[i]["order_id"] = target
    return c


@given(st.lists(st.lists(order, min_size=1, max_size=40), min_size=1, max_size=5))
@settings(max_examples=60, deadline=None)
def test_netted_records_reproduce_the_engine_ledger(batches):
    eng = venue()
    units = UnitTable.of_engine(eng)
    before = {a: eng.balances(a) for a in (0, *ACCOUNTS)}
    settled = {(a, asset): total for a, rows in before.items() for asset, (total, _) in enumerate(rows)}
    seq = eng.last_seq + 1
    last_id = -1
    for rows in batches:
        events = eng.process(commands(rows, seq))
        seq += len(rows)
        fills, withdrawals = settlement_records(events, units)
        assert len(fills) == int(np.sum(events["kind"] == EventKind.FILL))
        assert len(withdrawals) == int(np.sum(events["kind"] == EventKind.DEBITED))
        ids = np.sort(np.concatenate([fills["fill_id"], withdrawals["withdrawal_id"]]).astype(np.int64))
        assert len(np.unique(ids)) == len(ids) and (len(ids) == 0 or ids[0] > last_id)
        if len(ids):
            last_id = ids[-1]
        settle_and_compare(eng, settled, net_fills(fills, withdrawals))


def test_option_fills_settle_only_their_premium():
    eng = venue()
    usdc, tsla = 0, 2
    put = eng.add_instrument(option_series("TSLA.M", "TSLA.M", "2026-12-18", "250", "P"))
    units = UnitTable.of_engine(eng)
    assert units.base_per_qty[put] == 0
    before = {(a, asset): total for a in (0, *ACCOUNTS) for asset, (total, _) in enumerate(eng.balances(a))}
    steps = [
        (CommandKind.SET_ASSET_PRICE, dict(asset=usdc, price=10**8)),
        (CommandKind.SET_ASSET_PRICE, dict(asset=tsla, price=250 * 10**8)),
        (CommandKind.SET_REFERENCE, dict(instrument=put, price=146_200)),
        (CommandKind.SET_OPTION_RISK, dict(instrument=put, qty=52_130_000, price=39_630_000)),
        (CommandKind.NEW_ORDER, dict(instrument=put, account=1, side=Side.SELL, qty=500, price=146_200)),
        (CommandKind.NEW_ORDER, dict(instrument=put, account=2, side=Side.BUY, qty=300, price=150_000)),
        (CommandKind.NEW_ORDER, dict(instrument=put, account=2, side=Side.SELL, qty=100, price=140_000)),
        (CommandKind.NEW_ORDER, dict(instrument=put, account=3, side=Side.BUY, qty=400, price=146_200)),
    ]
    rows = np.zeros(len(steps), COMMAND_DTYPE)
    for i, (kind, fields) in enumerate(steps):
        rows[i]["seq"], rows[i]["kind"] = eng.last_seq + 1 + i, kind
        for name, value in fields.items():
            rows[i][name] = value
        if kind == CommandKind.NEW_ORDER:
            rows[i]["order_type"], rows[i]["tif"], rows[i]["stp"] = OrderType.LIMIT, TimeInForce.GTC, SelfTrade.STP_NONE
    events = eng.process(rows)
    assert [p.position for p in eng.positions(1)] == [-500]
    fills, withdrawals = settlement_records(events, units)
    assert len(fills) == 3 and (fills["base_amount"] == 0).all() and (fills["quote_amount"] > 0).all()
    net = net_fills(fills, withdrawals)
    assert {int(a) for a in net["asset"]} == {usdc}  # premium and fees only: no TSLA.M moves
    settle_and_compare(eng, dict(before), net)


def test_ids_count_events_within_each_command():
    eng = venue()
    eng.new_order(0, 1, Side.SELL, 1_000, PX)
    eng.new_order(0, 2, Side.SELL, 1_000, PX)
    c = commands([(CommandKind.NEW_ORDER, 0, 3, Side.BUY, 0, 2_000, False, 0)], 100)
    events = eng.process(c)
    fills, _ = settlement_records(events, UnitTable.of_engine(eng))
    # events of seq 100: ACCEPTED (0), FILL (1), FILL (2)
    assert fills["fill_id"].tolist() == [100 * FILLS_PER_SEQ + 1, 100 * FILLS_PER_SEQ + 2]
    assert fills["buyer"].tolist() == [3, 3] and fills["seller"].tolist() == [1, 2]
    assert fills["quote_amount"].tolist() == [220_000_000, 220_000_000]
    assert fills["base_amount"].tolist() == [1_000_000, 1_000_000]


def test_journal_source_yields_the_journaled_fills_in_id_order(tmp_path):
    from engine.journal import FileJournal
    from settlement.source import JournalFillSource

    eng = venue(funded=False)
    units = UnitTable.of_engine(eng)
    journal = FileJournal.create_or_open(tmp_path / "journal", b"test venue")
    funding = funding_commands()
    events = eng.process(funding)
    journal.append(funding, events[events["kind"] == EventKind.CREDITED])
    rng = np.random.default_rng(7)
    seq = eng.last_seq + 1
    expected_fills, expected_withdrawals = [], []
    for _ in range(6):
        rows = [(CommandKind.NEW_ORDER if rng.random() < 0.85 else CommandKind.DEBIT, int(rng.integers(0, 2)),
                 int(rng.choice(ACCOUNTS)), Side(int(rng.integers(1, 3))), int(rng.integers(-3, 4)),
                 int(rng.integers(1, 2_000)), bool(rng.random() < 0.3), 0) for _ in range(50)]
        cmds = commands(rows, seq)
        seq += len(rows)
        events = eng.process(cmds)
        kept = events[np.isin(events["kind"], [EventKind.FILL, EventKind.CREDITED, EventKind.DEBITED])]
        journal.append(cmds, kept)
        f, w = settlement_records(kept, units)
        expected_fills.append(f)
        expected_withdrawals.append(w)
    journal.sync()
    all_fills, all_withdrawals = np.concatenate(expected_fills), np.concatenate(expected_withdrawals)
    assert len(all_fills) > 20 and len(all_withdrawals) > 0
    source = JournalFillSource(journal, units)
    got_f, got_w, after = [], [], 0
    while True:
        f, w = source.read(after, 17)
        if len(f) + len(w) == 0:
            break
        assert len(f) + len(w) <= 17
        got_f.append(f)
        got_w.append(w)
        after = int(max(f["fill_id"].max(initial=0), w["withdrawal_id"].max(initial=0)))
    assert np.array_equal(np.concatenate(got_f), all_fills)
    assert np.array_equal(np.concatenate(got_w), all_withdrawals)
    journal.close()


def test_unit_table_from_specs_equals_the_engines_for_the_venue_config(tmp_path, capsys):
    from engine.config import load_config
    from engine.venue import build_engine
    from engine.keys import main as keys_main

    config_path = tmp_path / "venue.toml"
    shutil.copy(Path(__file__).resolve().parents[2] / "configs" / "venue.toml", config_path)
    assert keys_main(["init", "--config", str(config_path)]) == 0
    capsys.readouterr()
    venue_spec = load_config(config_path).venue
    assert any(spec.option is not None for spec in venue_spec.instruments)
    from_specs = UnitTable.of_specs(venue_spec.instruments, venue_spec.assets)
    from_engine = UnitTable.of_engine(build_engine(venue_spec))
    assert len(from_specs.tick) == len(venue_spec.instruments)
    for column in ("base_asset", "quote_asset", "base_per_qty", "quote_per_tick_qty", "tick"):
        assert getattr(from_specs, column).tolist() == getattr(from_engine, column).tolist(), column
