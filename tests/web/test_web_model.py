"""The web view's data model and settlement reader: band edges, ladders, trades,
chains, trimming, batch records (web/model.py, web/sources.py)."""

from __future__ import annotations

import json

import pytest

from engine.reference.bands import band_around
from settlement.anvil import Anvil, anvil_command
from engine.schemas import InstrumentInfo, Trade
from engine.schemas_options import SeriesInfo
from web.model import MAX_TRADES, InstrumentFeed, bands, chain_view, decimal_text, instrument_view, trim
from web.sources import SettlementBatches

INFO = InstrumentInfo(0, "AMZNX/USDC", "AMZNX", "USDC", tick_size=100, lot_size=10, min_qty=10, max_qty=10**9,
                      max_price=10**9, price_scale=10_000, qty_scale=1_000, static_band_bps=1_000,
                      dynamic_band_bps=500, maker_fee_bps=0, taker_fee_bps=5, state=1, reference=1_850_000,
                      last_trade=0)


@pytest.mark.parametrize(("units", "scale", "text"), [
    (1_850_000, 10_000, "185"), (1_757_500, 10_000, "175.75"), (50, 1_000, "0.05"), (0, 100, "0"),
    (-125, 100, "-1.25"), (123_456_789_123_456_789, 10**18, "0.123456789123456789"), (7, 1, "7")])
def test_decimal_text_is_exact(units, scale, text):
    assert decimal_text(units, scale) == text


def test_bands_are_the_engines_bands_and_intersect():
    band = bands(INFO, 1_850_000, 1_900_000)
    assert band["static"] == band_around(1_850_000, 1_000, 100) == (1_665_000, 2_035_000)
    assert band["dynamic"] == band_around(1_900_000, 500, 100) == (1_805_000, 1_995_000)
    assert band["execution"] == (1_805_000, 1_995_000)


def test_bands_round_inwards_and_vanish_without_centre():
    band = bands(INFO, 1_850_050, 0)
    assert band["static"] == (1_665_100, 2_035_000)  # 1_665_045 rounds up, 2_035_055 down
    assert band["dynamic"] is None and band["execution"] == band["static"]
    assert bands(INFO, 0, 0) == {"static": None, "dynamic": None, "execution": None}


def test_instrument_view_marks_levels_outside_the_band_and_lists_trades_newest_first():
    trades = [(1_000_000_000 * i, Trade(i, 1_850_000 + 100 * i, 50, 1 + i % 2)) for i in range(1, MAX_TRADES + 6)]
    feed = InstrumentFeed(INFO, bids=[(1_840_000, 100, 1), (1_600_000, 20, 2)], asks=[(1_860_000, 70, 1)],
                          state=1, reference=1_850_000, last_trade=1_850_500, trades=trades,
                          reference_ts=2_000_000_000, synced=True)
    view = instrument_view(feed, now_ns=4_500_000_000)
    assert view["bands"]["execution"] == ["175.8", "194.3"]  # 1_850_500 x (1 -/+ 5%), to the tick inwards
    assert [(b["price"], b["qty"], b["orders"], b["outside_band"]) for b in view["bids"]] == [
        ("184", "0.1", 1, False), ("160", "0.02", 2, True)]
    assert view["asks"][0]["outside_band"] is False
    assert len(view["trades"]) == MAX_TRADES
    assert view["trades"][0] == {"ts": trades[-1][0], "price": decimal_text(trades[-1][1].price, 10_000),
                                 "qty": "0.05", "side": "buy" if trades[-1][1].side == 1 else "sell"}
    assert view["reference_age_s"] == 2.5 and view["state"] == "open" and view["reference"] == "185"


def test_instrument_view_without_reference_or_trades():
    view = instrument_view(InstrumentFeed(INFO), now_ns=1)
    assert view["reference"] is None and view["reference_age_s"] is None and view["last_trade"] is None
    assert view["bands"] == {"static": None, "dynamic": None, "execution": None}
    assert view["state"] == "unset" and not view["synced"]


def test_chain_view_writes_marks_in_the_series_scale():
    series = [SeriesInfo(7, "BTC-20261231-100000-C", "2026-12-31", "100000", "C", "1", 1, 0, mark=12_345_600,
                         last_trade=0, initial=0, maintenance=0, open_interest=3, settlement_price=0),
              SeriesInfo(8, "BTC-PERP-100000-C", "", "100000", "C", "1", 1, 1, mark=0, last_trade=5_000,
                         initial=0, maintenance=0, open_interest=0, settlement_price=0)]
    view = chain_view("BTC", series, {7: 100, 8: 100})
    assert view["series"][0] == {"symbol": "BTC-20261231-100000-C", "expiry": "2026-12-31", "strike": "100000",
                               "right": "C", "mark": "123456", "last_trade": None, "open_interest": 3,
                               "status": "live"}
    assert view["series"][1]["expiry"] == "perpetual" and view["series"][1]["mark"] is None
    assert view["series"][1]["status"] == "settled" and view["series"][1]["last_trade"] == "50"


def test_trim_limits_levels_and_trades_without_touching_the_document():
    levels = [{"price": str(p)} for p in range(10)]
    document = {"instruments": [{"bids": levels, "asks": levels, "trades": levels}], "chains": []}
    trimmed = trim(document, depth=3, trades=0)
    assert trimmed["instruments"][0]["bids"] == levels[:3] and trimmed["instruments"][0]["trades"] == []
    assert len(document["instruments"][0]["bids"]) == 10


def _record(directory, batch_id, **extra):
    record = {"batch_id": batch_id, "prev_hash": "0x00", "after_id": 0, "last_id": batch_id, "record_count": 4,
              "fills_root": f"0x{batch_id:064x}", "batch_hash": "0x11", "txs": [], "served": [], **extra}
    (directory / "batches" / f"{batch_id:09d}.json").write_text(json.dumps(record))


def test_settlement_batches_read_the_job_state(tmp_path):
    (tmp_path / "batches").mkdir()
    for batch_id in (1, 2, 3):
        _record(tmp_path, batch_id, served=["0xabc"] if batch_id == 2 else [])
    (tmp_path / "checkpoint.json").write_text(json.dumps({"batch_id": 2}))
    view = SettlementBatches(tmp_path).read()
    assert view["message"] is None and view["checkpoint"] == 2
    assert [(b["batch_id"], b["settled"], b["served_exits"]) for b in view["batches"]] == [
        (3, False, 0), (2, True, 1), (1, True, 0)]
    assert view["batches"][0]["fills_root"] == "0x" + "0" * 63 + "3"
    assert all(b["gas_used"] is None for b in view["batches"])  # no --rpc: no gas, never a guess


def test_settlement_batches_say_why_there_are_none(tmp_path):
    assert "--settlement-state" in SettlementBatches(None).read()["message"]
    assert "does not exist" in SettlementBatches(tmp_path / "missing").read()["message"]
    (tmp_path / "batches").mkdir()
    assert SettlementBatches(tmp_path).read()["message"] == "no batch settled yet"
    (tmp_path / "batches" / "000000001.json").write_text("{not json")
    view = SettlementBatches(tmp_path).read()
    assert view["batches"] == [] and view["message"].startswith("cannot read the settlement state")


def test_settled_batches_show_the_gas_their_mined_transaction_used(tmp_path):
    """With --rpc the gas comes from the receipt of the batch's mined transaction (a
    replaced, never-mined hash first in the record is passed over); a batch the
    checkpoint does not cover shows none."""
    if anvil_command() is None:
        pytest.skip("anvil not installed: run `npm ci` (package @foundry-rs/anvil)")
    with Anvil() as node:
        sender = node.rpc("eth_accounts")[0]
        tx_hash = node.rpc("eth_sendTransaction", [{"from": sender, "to": sender, "value": "0x1"}])
        gas = int(node.wait_receipt(tx_hash)["gasUsed"], 16)
        (tmp_path / "batches").mkdir()
        never_mined = {"hash": "0x" + "ab" * 32}
        _record(tmp_path, 1, txs=[never_mined, {"hash": tx_hash}])
        _record(tmp_path, 2, txs=[{"hash": tx_hash}])
        (tmp_path / "checkpoint.json").write_text(json.dumps({"batch_id": 1}))
        batches = SettlementBatches(tmp_path, node.url).read()["batches"]
    assert gas == 21_000  # a plain transfer: the number is the chain's, not the view's
    assert [(b["batch_id"], b["gas_used"], b["tx"]) for b in batches] == [(2, None, None), (1, gas, tx_hash)]
