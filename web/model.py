"""The view's data model: what the gateway, the settlement job and the pools said,
turned into the JSON document the page renders (prices and quantities as decimal
strings, band edges from engine/reference/bands.py, ages in seconds).

Everything here is pure: the sources (web/sources.py) collect, this module shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from engine.reference.bands import Band, band_around
from engine.schemas import AssetInfo, InstrumentInfo, Trade
from engine.units import NS_PER_S, POOL_PPS_SCALE, USD_PRICE_SCALE

STATE_NAMES = {0: "unset", 1: "open", 2: "halted", 3: "closed"}
SIDE_NAMES = {1: "buy", 2: "sell"}
SERIES_STATUS = {0: "live", 1: "settled", 2: "delisted"}
MAX_DEPTH = 20
"""Levels per side the document carries (a client may ask for fewer)."""
MAX_TRADES = 50
"""Recent trades per instrument the document carries (a client may ask for fewer)."""


def decimal_text(units: int, scale: int) -> str:
    """``units / scale`` as an exact decimal string without trailing zeros ("185.5")."""
    if scale <= 0:
        return str(units)
    text = format(Decimal(units) / Decimal(scale), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass
class InstrumentFeed:
    """What the view knows of one instrument: its specification and state (from
    GetInstruments), its published book (bids / asks as (price, qty, count), best
    first), the trades seen with the gateway's ns timestamps, and when (gateway ns)
    its reference last changed while the view watched (0: no change seen)."""

    info: InstrumentInfo
    bids: list[tuple[int, int, int]] = field(default_factory=list)
    asks: list[tuple[int, int, int]] = field(default_factory=list)
    state: int = 0
    reference: int = 0
    last_trade: int = 0
    trades: list[tuple[int, Trade]] = field(default_factory=list)  # (ts ns, trade), oldest first
    reference_ts: int = 0
    synced: bool = False


def bands(info: InstrumentInfo, reference: int, last_trade: int) -> dict:
    """The static band (around the reference), the dynamic band (around the last
    trade) and the execution band (their intersection), each [lo, hi] price units
    or None; the execution band is None when neither exists."""
    static = band_around(reference, info.static_band_bps, info.tick_size)
    dynamic = band_around(last_trade, info.dynamic_band_bps, info.tick_size)
    present = [b for b in (static, dynamic) if b is not None]
    execution: Band | None = (max(lo for lo, _ in present), min(hi for _, hi in present)) if present else None
    return {"static": static, "dynamic": dynamic, "execution": execution}


def _price(info: InstrumentInfo, price: int) -> str | None:
    return decimal_text(price, info.price_scale) if price else None


def _band_text(info: InstrumentInfo, band: Band | None) -> list[str] | None:
    return None if band is None else [decimal_text(band[0], info.price_scale), decimal_text(band[1], info.price_scale)]


def _levels(info: InstrumentInfo, levels: list[tuple[int, int, int]], execution: Band | None) -> list[dict]:
    return [{"price": decimal_text(p, info.price_scale), "qty": decimal_text(q, info.qty_scale), "orders": c,
             "outside_band": execution is not None and not execution[0] <= p <= execution[1]}
            for p, q, c in levels[:MAX_DEPTH]]


def instrument_view(feed: InstrumentFeed, now_ns: int) -> dict:
    """One instrument's panel: state, reference and its age, bands, ladder, recent trades."""
    info = feed.info
    band = bands(info, feed.reference, feed.last_trade)
    return {
        "symbol": info.symbol,
        "instrument": info.instrument,
        "option": bool(info.strike),
        "state": STATE_NAMES.get(feed.state, str(feed.state)),
        "synced": feed.synced,
        "reference": _price(info, feed.reference),
        "reference_age_s": round((now_ns - feed.reference_ts) / 1e9, 1) if feed.reference_ts else None,
        "last_trade": _price(info, feed.last_trade),
        "band_bps": {"static": info.static_band_bps, "dynamic": info.dynamic_band_bps},
        "bands": {name: _band_text(info, value) for name, value in band.items()},
        "bids": _levels(info, feed.bids, band["execution"]),
        "asks": _levels(info, feed.asks, band["execution"]),
        "trades": [{"ts": ts, "price": decimal_text(t.price, info.price_scale),
                    "qty": decimal_text(t.qty, info.qty_scale), "side": SIDE_NAMES.get(t.side, str(t.side))}
                   for ts, t in reversed(feed.trades[-MAX_TRADES:])],
    }


def chain_view(underlying: str, series: list, price_scale: dict[int, int]) -> dict:
    """An option chain: per series its terms, mark, last trade, open interest and status
    (``price_scale``: instrument id -> its price scale, to write marks as decimals)."""
    rows = []
    for s in series:
        scale = price_scale.get(s.instrument, 1)
        rows.append({"symbol": s.symbol, "expiry": s.expiry or "perpetual", "strike": s.strike, "right": s.right,
                     "mark": decimal_text(s.mark, scale) if s.mark else None,
                     "last_trade": decimal_text(s.last_trade, scale) if s.last_trade else None,
                     "open_interest": s.open_interest, "status": SERIES_STATUS.get(s.status, str(s.status))})
    return {"underlying": underlying, "series": rows}


def pool_row(info, share: AssetInfo, asset: AssetInfo) -> dict:
    """The pools panel's row of a PoolInfo answer (engine/schemas_pools.py): NAV in
    USD and in the pool asset, NAV per share (spot and time-weighted, pool asset
    per share), shares outstanding, pending redemptions, cooldown and fee, pending
    deposit requests and their cooldown; the NAV figures are None while the NAV is
    unset (an unpriced holding)."""
    shares = 10 ** share.ledger_decimals
    pending = f"{info.pending_redemptions} ({decimal_text(info.pending_shares, shares)} {share.symbol})"
    deposits = (f"{info.pending_deposits} "
                f"({decimal_text(info.pending_deposit_amount, 10 ** asset.ledger_decimals)} {asset.symbol})")
    nav = info.nav_ok
    return {"pool": share.symbol, "nav_usd": decimal_text(info.nav_usd, USD_PRICE_SCALE) if nav else None,
            "equity": f"{decimal_text(info.equity, 10 ** asset.ledger_decimals)} {asset.symbol}" if nav else None,
            "nav_per_share": decimal_text(info.nav_per_share, POOL_PPS_SCALE) if nav else None,
            "twap_nav_per_share": decimal_text(info.twap_nav_per_share, POOL_PPS_SCALE) if info.samples else None,
            "shares": decimal_text(info.shares, shares), "pending_redemptions": pending,
            "cooldown_s": info.cooldown_ns // NS_PER_S, "fee_bps": info.withdrawal_fee_bps,
            "pending_deposits": deposits, "deposit_cooldown_s": info.deposit_cooldown_ns // NS_PER_S}


def trim(document: dict, depth: int, trades: int) -> dict:
    """The document with at most ``depth`` levels per side and ``trades`` trades per instrument."""
    instruments = [{**i, "bids": i["bids"][:depth], "asks": i["asks"][:depth], "trades": i["trades"][:trades]}
                   for i in document.get("instruments", [])]
    return {**document, "instruments": instruments}
