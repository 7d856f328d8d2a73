"""Embedded default instruments: what the demo and the tests start from."""

import msgspec

from engine.assets import AssetSpec
from engine.instruments import InstrumentSpec, OptionTerms

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


# Option premiums in the stock price units ($0.0001, tick $0.01) per contract;
# quantities in hundredths of a contract.
OPTION_QTY_SCALE = 100


def option_series(underlying: str, series: str, expiry: str, strike: str, right: str,
                  quote: str = "USDC", contract_size: str = "1") -> InstrumentSpec:
    """A cash-premium option series on ``underlying`` (an asset), named like
    ``BTC-20261231-100000-C``; 20% static band around its mark, 10% dynamic."""
    return InstrumentSpec(
        symbol=f"{series}-{expiry.replace('-', '')}-{strike}-{right}",
        base=underlying,
        quote=quote,
        tick_size=100,
        lot_size=1,
        min_qty=1,
        max_qty=10_000 * OPTION_QTY_SCALE,
        max_price=1_000_000 * STOCK_PRICE_SCALE,
        static_band_bps=2_000,
        dynamic_band_bps=1_000,
        price_scale=STOCK_PRICE_SCALE,
        qty_scale=OPTION_QTY_SCALE,
        maker_fee_bps=0,
        taker_fee_bps=3,
        option=OptionTerms(expiry=expiry, strike=strike, right=right, contract_size=contract_size),
    )


def perpetual_series(underlying: str, series: str, strike: str, right: str, funding_period_s: int,
                     quote: str = "USDC", contract_size: str = "1") -> InstrumentSpec:
    """A perpetual (everlasting) series like ``option_series``, named like
    ``BTC-PERP-100000-C``: no expiry, its longs pay its shorts funding over a
    period of ``funding_period_s`` seconds (docs/funding.md)."""
    dated = option_series(underlying, series, "2000-01-01", strike, right, quote, contract_size)
    return msgspec.structs.replace(
        dated, symbol=f"{series}-PERP-{strike}-{right}",
        option=OptionTerms(strike=strike, right=right, contract_size=contract_size,
                           funding_period_s=funding_period_s))


DEFAULT_OPTIONS = (
    option_series("WBTC", "BTC", "2026-12-31", "100000", "C"),
    option_series("TSLA.M", "TSLA.M", "2026-12-18", "250", "P"),
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
    AssetSpec(symbol="WBTC", decimals=8, ledger_decimals=8, haircut_bps=1_000),
)
