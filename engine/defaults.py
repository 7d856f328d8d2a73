"""Embedded default instruments: what the demo and the tests start from."""

from engine.assets import AssetSpec
from engine.instruments import InstrumentSpec

# Prices in units of $0.0001 (as LOBSTER files), tick $0.01; quantities in
# thousandths of a share (lot 0.001), so fractional token amounts trade.
STOCK_PRICE_SCALE = 10_000
STOCK_QTY_SCALE = 1_000


def stock_pair(symbol: str, quote: str = "USDC") -> InstrumentSpec:
    """A tokenized stock against a stablecoin, 10% static and 5% dynamic band."""
    return InstrumentSpec(
        symbol=f"{symbol}/{quote}",
        base=symbol,
        quote=quote,
        tick_size=100,
        lot_size=1,
        min_qty=1,
        max_qty=1_000_000 * STOCK_QTY_SCALE,
        max_price=100_000 * STOCK_PRICE_SCALE,
        static_band_bps=1_000,
        dynamic_band_bps=500,
        price_scale=STOCK_PRICE_SCALE,
        qty_scale=STOCK_QTY_SCALE,
    )


DEFAULT_INSTRUMENTS = (
    stock_pair("AMZNX"),
    stock_pair("AAPLX"),
    stock_pair("TSLA.M"),
    stock_pair("NVDA.M"),
)


# The default assets, in engine asset-id order (USDC = 0), as configs/venue.toml lists them.
DEFAULT_ASSETS = (
    AssetSpec(symbol="USDC", decimals=6, ledger_decimals=6),
    AssetSpec(symbol="AMZNX", decimals=18, ledger_decimals=6, haircut_bps=2_000),
    AssetSpec(symbol="AAPLX", decimals=18, ledger_decimals=6, haircut_bps=2_000),
    AssetSpec(symbol="TSLA.M", decimals=18, ledger_decimals=6, haircut_bps=3_000),
    AssetSpec(symbol="NVDA.M", decimals=18, ledger_decimals=6, haircut_bps=2_500),
)
