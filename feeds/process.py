"""The feed process: polls its sources, combines each asset's usable updates, and
turns the result into operator commands through the gateway (SET_ASSET_PRICE per
asset, SET_REFERENCE per spot instrument whose base or quote it prices), so they are
sequenced and journaled like any command.

Stale-price protection: when an asset has no usable update (every source is older
than its own heartbeat, too unsure, or an outlier), the instruments that depend on
it (spot pairs with it as base or quote, option series on it) are moved to the
configured state with SET_STATE (HALTED: the core has no per-instrument band-width
command to widen bands instead), and reopened once a fresh price has been sent.
The process halts only open instruments and reopens only those it halted itself, so
an operator's halt stands (and one a previous run of the process left stays until an
operator reopens it).

Option re-marking: every option series whose underlying has a volatility surface is
re-marked each step from the underlying's price, the whole chain in one vectorised
pass (feeds/remark.py): SET_REFERENCE with the mark (which centres the series' band)
and SET_OPTION_RISK with its short margins, each only when it changed. A series
whose underlying has no price is not re-marked (and is halted as above).

Expiry: the process keeps each fed asset's price history (feeds/twap.py) and,
once a dated series' expiry instant has passed, sends CloseSeries with the
settlement price: the underlying's time-weighted average over the settlement
window before expiry (default 30 minutes) in the series' price units. A series
whose underlying's history does not cover the window is left to an operator.
The listing is read again every step, so series listed at run time are
re-marked and settled too.

Stock tokens: their sources give the share price; the asset's price is the share
price times the multiplier (feeds/multipliers.py), and while a split halts the
token, its instruments are halted the same way and no price is sent. Where the
session policy (feeds/session_policy.py) halts a home-market session, the
instruments on stock tokens are halted for that session and reopened after it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from web3 import Web3

from engine.client import Client, ClientKeys
from engine.core.types import Reject as CoreReject
from engine.core.types import TradingState
from engine.instruments import expiry_instant_ns
from engine.schemas import InstrumentInfo, Instruments, Reject
from engine.units import USD_PRICE_SCALE
from feeds.chainlink import ChainlinkSource
from feeds.clock import Clock
from feeds.config import (
    ChainlinkSourceConfig,
    CsvSourceConfig,
    FeedsConfig,
    GbmSourceConfig,
    LobsterSourceConfig,
    SourceConfig,
)
from feeds.median import Combined, combine
from feeds.multipliers import FeedAction, MultiplierRules, TokenMultiplier, token_reference
from feeds.options import MarginRates
from feeds.remark import VolSurface, remark_chain
from feeds.replay import Replay, csv_ticks, lobster_mids
from feeds.rules import FeedRule, rejection
from feeds.session_policy import SessionPolicies
from feeds.sessions import SessionCalendar
from feeds.synthetic import GbmSource
from feeds.twap import DEFAULT_WINDOW_NS, ReferenceHistory, settlement_units
from feeds.update import NS_PER_SECOND, PriceUpdate, Source, usd_units

log = logging.getLogger(__name__)

STALE_STATES = {"halt": TradingState.HALTED}


class FeedProcess:
    """One gateway client driving reference and asset prices from ``sources``.
    ``rules`` holds each source's FeedRule by source name; ``fixed_prices`` the USD x 1e8
    price of assets without a feed that quote instruments (e.g. USDC). Option series on
    an underlying in ``surfaces`` are re-marked with ``option_rate`` and ``margin_rates``;
    the assets in ``tokens`` are stock tokens, priced through their multipliers under
    ``multiplier_rules`` and halted in the sessions of ``calendar`` that ``policies``
    halts. Dated series settle at the TWAP of the ``settlement_window_ns`` before expiry."""

    def __init__(self, client: Client, sources: Sequence[Source], rules: dict[str, FeedRule], clock: Clock, *,
                 outlier_bps: int = 200, fixed_prices: dict[str, int] | None = None,
                 stale_state: str = "halt", surfaces: Sequence[VolSurface] = (), option_rate: float = 0.0,
                 margin_rates: MarginRates = MarginRates(), tokens: Sequence[TokenMultiplier] = (),
                 multiplier_rules: MultiplierRules = MultiplierRules(), calendar: SessionCalendar | None = None,
                 policies: SessionPolicies = SessionPolicies(),
                 settlement_window_ns: int = DEFAULT_WINDOW_NS) -> None:
        missing = sorted({s.name for s in sources} - set(rules))
        if missing:
            raise ValueError(f"no FeedRule for the sources {', '.join(missing)}")
        self.client = client
        self.sources = list(sources)
        self.rules = rules
        self.clock = clock
        self.outlier_bps = outlier_bps
        self.fixed_prices = dict(fixed_prices or {})
        self.stale_state = STALE_STATES[stale_state]
        self.surfaces = {surface.underlying: surface for surface in surfaces}
        self.option_rate = option_rate
        self.margin_rates = margin_rates
        self.tokens = {token.asset: token for token in tokens}   # kept up to date by token_reference
        self.multiplier_rules = multiplier_rules
        self.calendar = calendar
        self.policies = policies
        listing = client.instruments()
        if not isinstance(listing, Instruments):
            raise RuntimeError(f"the gateway refused the instrument list: {listing.code} {listing.text}")
        self.asset_ids = {a.symbol: a.asset for a in listing.assets}
        self.instruments = listing.instruments
        self.latest: dict[tuple[str, str], PriceUpdate] = {}   # (asset, source) -> newest update
        self.fed_assets = sorted({source.asset for source in self.sources})
        self.usd: dict[str, int | None] = {}                    # this step's USD x 1e8 price per fed asset
        self.prices: dict[str, int] = {}                      # last sent USD x 1e8 per asset
        self.references: dict[int, int] = {}                  # last sent reference (option: mark) per instrument
        self.option_margins: dict[int, tuple[int, int]] = {}  # last sent (initial, maintenance) per series
        self.halted: set[int] = set()                         # instruments this process halted
        self.combined: dict[str, Combined] = {}
        self.session_settings: dict[tuple[str, int], int] = {}  # last sent band / haircut per (kind, id)
        self.settlement_window_ns = settlement_window_ns
        self.history = {asset: ReferenceHistory(settlement_window_ns) for asset in self.fed_assets}
        self.settled: set[int] = set()                        # series closed (by this process or before)

    # -- one step ------------------------------------------------------------------------

    def step(self) -> None:
        """Poll every source once and send what changed."""
        now = self.clock.now()
        for source in self.sources:
            for update in source.poll(now):
                key = (update.asset, update.source)
                if key not in self.latest or update.timestamp >= self.latest[key].timestamp:
                    self.latest[key] = update
        self.client.events.clear()
        self._refresh_listing()
        instant = utc_instant(now)
        halts: dict[str, str] = {}     # asset -> why the instruments on it halt
        for asset in self.fed_assets:
            usable = [u for (a, source), u in self.latest.items()
                      if a == asset and rejection(u, self.rules[source], now) is None]
            self.combined[asset] = combined = combine(usable, self.outlier_bps)
            if combined.flagged:
                log.warning("%s: outliers left out: %s", asset, ", ".join(combined.flagged))
            self.usd[asset] = price = self._asset_price(asset, combined, instant, halts)
            if price is not None:
                self.history[asset].add(now, price)
            if price is not None and price != self.prices.get(asset):
                self._send_asset_price(asset, price)
        halts.update(self._session_halts(instant))
        self._apply_session_policy(instant)
        priced = {a for a in self.fed_assets if self.usd[a] is not None}
        for inst in self.instruments:
            if inst.expiry == "" and {inst.base, inst.quote} & priced:
                self._send_reference(inst)
        self._settle_expired(now)
        self._remark_options(instant)
        for inst in self.instruments:
            depends = {inst.base} if inst.expiry else {inst.base, inst.quote}
            blocked = sorted(depends & set(halts))
            if blocked:
                self._halt(inst.instrument, "; ".join(f"{asset}: {halts[asset]}" for asset in blocked))
            elif inst.instrument in self.halted and self._reference_sent(inst):
                self._reopen(inst.instrument)

    def run(self, steps: int | None = None, interval_ns: int = 1_000_000_000) -> None:
        """Step every ``interval_ns`` on the clock, ``steps`` times or forever."""
        done = 0
        while steps is None or done < steps:
            started = self.clock.now()
            self.step()
            done += 1
            if steps is None or done < steps:
                self.clock.sleep_until(started + interval_ns)

    # -- commands --------------------------------------------------------------------------

    def usd_price(self, asset: str) -> int | None:
        """The asset's current USD x 1e8 price: its fresh feed, else its fixed price."""
        if asset in self.usd:
            return self.usd[asset]
        return self.fixed_prices.get(asset)

    def reference_units(self, inst) -> int | None:
        """The spot instrument's reference in its price units (nearest tick), or None
        when base or quote has no price."""
        base, quote = self.usd_price(inst.base), self.usd_price(inst.quote)
        if base is None or quote is None:
            return None
        ticks = round(Fraction(base, quote) * inst.price_scale / inst.tick_size)
        return ticks * inst.tick_size if ticks > 0 else None

    def _reference_sent(self, inst: InstrumentInfo) -> bool:
        """Whether the instrument may reopen: its reference (an option's mark) has been
        sent, or it is an option series the process does not re-mark."""
        return inst.instrument in self.references or (inst.expiry != "" and inst.base not in self.surfaces)

    def _asset_price(self, asset: str, combined: Combined, instant: datetime, halts: dict[str, str]) -> int | None:
        """The asset's USD x 1e8 price this step: the combined price, times the
        multiplier for a stock token; None (with the reason in ``halts``) when it
        has no usable price or a split halts it."""
        if combined.price is None:
            halts[asset] = "stale price"
            return None
        token = self.tokens.get(asset)
        if token is None:
            return combined.price
        decision = token_reference(token, Fraction(combined.price, USD_PRICE_SCALE), utc_instant(combined.timestamp),
                                   instant, self.multiplier_rules)
        self.tokens[asset] = decision.state
        if decision.action is FeedAction.HALT:
            halts[asset] = decision.reason
            return None
        return decision.usd_units

    def _session_halts(self, instant: datetime) -> dict[str, str]:
        """Why each stock token halts in the home market's current session (none when
        the session policy trades it, or no calendar is configured)."""
        if self.calendar is None or not self.tokens:
            return {}
        try:
            session = self.calendar.at(instant).session
        except ValueError as err:   # outside the configured range: no session is known
            return dict.fromkeys(self.tokens, str(err))
        if not self.policies.of(session).halt:
            return {}
        return dict.fromkeys(self.tokens, f"the {session.value} session halts stock tokens")

    def _apply_session_policy(self, instant: datetime) -> None:
        """Send the current session's static band width of each spot pair on a stock token
        and the token's collateral haircut, once per change (dynamic widths stay as listed)."""
        if self.calendar is None or not self.tokens:
            return
        try:
            policy = self.policies.of(self.calendar.at(instant).session)
        except ValueError:          # outside the configured range: the tokens halt instead
            return
        for token in self.tokens:
            asset = self.asset_ids[token]
            if self.session_settings.get(("haircut", asset)) != policy.haircut_bps:
                if self._accepted(self.client.set_haircut(asset, policy.haircut_bps), f"haircut of {token}"):
                    self.session_settings[("haircut", asset)] = policy.haircut_bps
            for inst in self.instruments:
                if inst.expiry or inst.base != token:
                    continue
                if self.session_settings.get(("band", inst.instrument)) != policy.band_bps:
                    reply = self.client.set_bands(inst.instrument, policy.band_bps, inst.dynamic_band_bps)
                    if self._accepted(reply, f"bands of {inst.symbol}"):
                        self.session_settings[("band", inst.instrument)] = policy.band_bps

    def _remark_options(self, instant: datetime) -> None:
        """Re-mark every option series whose underlying has a surface and a price."""
        chain, spots, quotes, vols = [], [], [], []
        for inst in self.instruments:
            surface = self.surfaces.get(inst.base) if inst.expiry and inst.instrument not in self.settled else None
            base, quote = self.usd_price(inst.base), self.usd_price(inst.quote)
            if surface is None or base is None or quote is None:
                continue
            chain.append(inst)
            spots.append(base / quote)
            quotes.append(quote / USD_PRICE_SCALE)
            vols.append(surface.at(inst.expiry))
        try:
            risks = remark_chain(chain, spots, quotes, vols, self.option_rate, instant, self.margin_rates)
        except ValueError as err:
            log.error("option re-marking refused its inputs: %s", err)
            return
        for risk in risks:
            if self.references.get(risk.instrument) != risk.mark and self._accepted(
                    self.client.set_reference(risk.instrument, risk.mark), f"mark of instrument {risk.instrument}"):
                self.references[risk.instrument] = risk.mark
            margins = (risk.initial, risk.maintenance)
            if self.option_margins.get(risk.instrument) != margins and self._accepted(
                    self.client.set_option_risk(risk.instrument, *margins),
                    f"option risk of instrument {risk.instrument}"):
                self.option_margins[risk.instrument] = margins

    def _refresh_listing(self) -> None:
        """Take the instruments listed since the last step (LIST_SERIES at run time)."""
        listing = self.client.instruments()
        if isinstance(listing, Instruments):
            self.instruments = listing.instruments
        else:
            log.error("instrument list refused: code %d %s", listing.code, listing.text)

    def _settle_expired(self, now: int) -> None:
        """Send CloseSeries at the TWAP settlement price for each dated series past expiry."""
        for inst in self.instruments:
            if not inst.expiry or inst.instrument in self.settled:
                continue
            expiry = expiry_instant_ns(inst.expiry)
            if now < expiry:
                continue
            history, quote = self.history.get(inst.base), self.usd_price(inst.quote)
            twap = history.twap(expiry - self.settlement_window_ns, expiry) if history is not None else None
            if twap is None or quote is None:
                log.error("%s expired but %s has no price history over the settlement window; an operator "
                          "settles it", inst.symbol, inst.base)
                self.settled.add(inst.instrument)
                continue
            reply = self.client.close_series(inst.instrument, settlement_units(twap, quote, inst.price_scale))
            if not isinstance(reply, Reject) or reply.code == CoreReject.SERIES_FINAL:
                self.settled.add(inst.instrument)
            else:
                log.error("settlement of %s refused: code %d %s", inst.symbol, reply.code, reply.text)

    def _send_asset_price(self, asset: str, price: int) -> None:
        if asset not in self.asset_ids:
            log.warning("%s: not an asset of the venue; price not sent", asset)
            return
        if self._accepted(self.client.set_asset_price(self.asset_ids[asset], price), f"asset price of {asset}"):
            self.prices[asset] = price

    def _send_reference(self, inst) -> None:
        units = self.reference_units(inst)
        if units is None or self.references.get(inst.instrument) == units:
            return
        if self._accepted(self.client.set_reference(inst.instrument, units), f"reference of {inst.symbol}"):
            self.references[inst.instrument] = units

    def _halt(self, instrument: int, why: str) -> None:
        if instrument in self.halted or self._current_state(instrument) != TradingState.OPEN:
            return   # already ours, or halted / closed by someone else: theirs to reopen
        log.warning("instrument %d: %s; moving it to %s", instrument, why, self.stale_state.name)
        if self._accepted(self.client.set_state(instrument, self.stale_state), f"halt of instrument {instrument}"):
            self.halted.add(instrument)

    def _reopen(self, instrument: int) -> None:
        log.info("instrument %d: nothing halts it any more; reopening", instrument)
        if self._accepted(self.client.set_state(instrument, TradingState.OPEN), f"reopening of {instrument}"):
            self.halted.discard(instrument)

    def _current_state(self, instrument: int) -> int | None:
        listing = self.client.instruments()
        if not isinstance(listing, Instruments):
            log.error("instrument list refused: code %d %s", listing.code, listing.text)
            return None
        return next(i.state for i in listing.instruments if i.instrument == instrument)

    @staticmethod
    def _accepted(reply, what: str) -> bool:
        if isinstance(reply, Reject):
            log.error("%s refused: code %d %s", what, reply.code, reply.text)
            return False
        return True


def utc_instant(ns: int) -> datetime:
    """Nanoseconds since the epoch as a UTC datetime (to the microsecond, exactly)."""
    return datetime.fromtimestamp(ns // NS_PER_SECOND, UTC) + timedelta(microseconds=ns % NS_PER_SECOND // 1000)


def build_source(entry: SourceConfig, base: Path, clock: Clock) -> Source:
    """The Source a config entry describes; replays start now on ``clock``."""
    match entry:
        case LobsterSourceConfig():
            ticks = lobster_mids(base / entry.messages, base / entry.orderbook)
            return Replay(entry.name, entry.asset, ticks, start=clock.now(), speed=entry.speed)
        case CsvSourceConfig():
            return Replay(entry.name, entry.asset, csv_ticks(base / entry.path), start=clock.now(),
                          speed=entry.speed)
        case ChainlinkSourceConfig():
            w3 = Web3(Web3.HTTPProvider(entry.rpc, request_kwargs={"timeout": 10}))
            return ChainlinkSource(entry.name, entry.asset, w3, entry.address,
                                   interval_ns=int(entry.interval_s * 1e9))
        case GbmSourceConfig():
            return GbmSource(entry.name, entry.asset, initial=float(entry.initial), sigma=entry.sigma,
                             mu=entry.mu, seed=entry.seed, start=clock.now(), step_ns=entry.step_ms * 1_000_000,
                             confidence_bps=entry.confidence_bps)
    raise TypeError(f"unknown source {entry!r}")


def from_config(config: FeedsConfig, base: Path, clock: Clock) -> FeedProcess:
    """A FeedProcess connected to the configured gateway with the configured sources."""
    gateway = config.gateway
    keys = ClientKeys.from_files(base / gateway.key_file, base / gateway.server_key_file)
    client = Client(gateway.endpoint, keys, timeout=gateway.timeout_ms / 1000)
    sources = [build_source(entry, base, clock) for entry in config.sources]
    rules = {entry.name: entry.rule() for entry in config.sources}
    fixed = {symbol: usd_units(text) for symbol, text in config.feeds.fixed_prices.items()}
    sessions = config.sessions
    calendar = None if sessions is None else SessionCalendar(sessions.exchange, sessions.start, sessions.end)
    return FeedProcess(client, sources, rules, clock, outlier_bps=config.feeds.outlier_bps, fixed_prices=fixed,
                       stale_state=config.feeds.stale_state, surfaces=config.options.surfaces,
                       option_rate=config.options.rate, margin_rates=config.options.margin,
                       settlement_window_ns=int(config.options.settlement_window_s * 1e9),
                       tokens=[token.token() for token in config.stock_tokens],
                       multiplier_rules=config.multipliers.rules(), calendar=calendar,
                       policies=sessions.policies if sessions is not None else SessionPolicies())
