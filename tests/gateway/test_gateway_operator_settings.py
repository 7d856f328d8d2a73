"""Operator SetBands and SetHaircut through a real gateway process: an
operator key changes an instrument's band widths and an asset's haircut, a
trader key cannot, bad values get the engine's reject code and text, and a
restart replays the journal to the same state."""

from __future__ import annotations

from gateway_harness import ACCOUNTS, AMZN, AMZNX_ASSET, write_venue

from engine.core.types import Reject as Code
from engine.core.types import Side
from engine.gateway.process import GatewayProcess
from engine.schemas import Ack, BandsSet, GatewayReject, HaircutSet, Reject

E8 = 10**8


def test_operator_sets_bands_and_haircut_a_trader_cannot(tmp_path, keys, clients):
    path = write_venue(tmp_path, keys)
    retail = ACCOUNTS["retail"]
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        ops, mm, trader = (clients(gw, n) for n in ("ops", "mm", "retail"))
        # AMZNX/USDC: reference $185.00, static band 10% = [166.50, 203.50].
        assert isinstance(mm.place(AMZN, Side.BUY, 100, 1_700_000), Ack)
        assert isinstance(mm.place(AMZN, Side.BUY, 100, 1_800_000), Ack)

        for denied in (trader.set_bands(AMZN, 100, 100), trader.set_haircut(AMZNX_ASSET, 0)):
            assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED
            assert "operator" in denied.text

        bands = ops.set_bands(AMZN, 500, 200)         # static [175.75, 194.25]
        assert isinstance(bands, BandsSet) and (bands.instrument, bands.static_bps, bands.dynamic_bps) == (
            AMZN, 500, 200)
        assert [o.price for o in mm.open_orders().orders] == [1_800_000]
        outside = mm.place(AMZN, Side.BUY, 100, 1_750_000)
        assert isinstance(outside, Reject) and outside.code == Code.PRICE_OUTSIDE_BAND
        # GetInstruments shows the widths now, not the spec's: a client clips its prices by them.
        listed = trader.instruments().instruments[AMZN]
        assert (listed.static_band_bps, listed.dynamic_band_bps) == (500, 200)
        bad = ops.set_bands(AMZN, 10_000, 0)
        assert isinstance(bad, Reject) and bad.code == Code.INVALID_BAND and "10000" in bad.text

        # retail holds 10,000 AMZNX at $185 with a 20% haircut; 40% takes another $370,000 off.
        before = trader.margin().collateral
        haircut = ops.set_haircut(AMZNX_ASSET, 4_000)
        assert isinstance(haircut, HaircutSet) and (haircut.asset, haircut.haircut_bps) == (AMZNX_ASSET, 4_000)
        assert before - trader.margin().collateral == 10_000 * 185 * E8 * 2_000 // 10_000
        bad = ops.set_haircut(AMZNX_ASSET, 10_001)
        assert isinstance(bad, Reject) and bad.code == Code.INVALID_HAIRCUT
        after = (ops.status().state_hash, trader.margin(retail).collateral)

    # The journal replays both settings: same state, same band, same collateral.
    with GatewayProcess(path, tmp_path / "gateway2.log") as gw:
        ops, mm, trader = (clients(gw, n) for n in ("ops", "mm", "retail"))
        assert (ops.status().state_hash, trader.margin(retail).collateral) == after
        outside = mm.place(AMZN, Side.BUY, 100, 1_750_000)
        assert isinstance(outside, Reject) and outside.code == Code.PRICE_OUTSIDE_BAND
