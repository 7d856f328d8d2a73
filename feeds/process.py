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
After the re-marks, the greeks of every re-marked series that is not closed
(delta, gamma, vega, theta and the vol used; a perpetual's theta is minus its
funding rate) are published to the gateway (PublishGreeks), every step: the
gateway keeps them in memory only, so they come back within a step of its
restart.

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
instruments on stock tokens are halted for that session and reopened after it; so
are they while a source their price is made of reports the stock halted at home
(feeds/market_status.py, which also cross-checks the sources' open / closed with
the calendar).

Liquidations: with ``liquidation`` settings the process is the venue's liquidator
(feeds/liquidator.py), and each asset's gate comes from here: a fixed price always
passes; an asset neither fed nor fixed, stale, halted (split, session, home market)
or whose price the engine refused holds back every account resting on it; a fresh
price passes ``liquidation_gate`` (its age against its feed's heartbeat, and for a
stock token the grace period after the regular open).

Restarts: with a ``state_path`` the process remembers the instruments it halted
and the stock tokens' last references (feeds/feed_state.py); on start it keeps
only the recorded halts the gateway still shows (GetInstruments), unless the file
is newer than the venue's journal (GetStatus), so a restarted process reopens
its own halts once its rules allow, and still checks a split's first price.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import msgspec
from web3 import Web3

from engine.client import Client, ClientKeys
from engine.core.types import Reject as CoreReject
from engine.core.types import TradingState
from engine.instruments import expiry_instant_ns
from engine.schemas import InstrumentInfo, Instruments, Reject, Status
from engine.schemas_greeks import MAX_GREEKS_ENTRIES, SeriesGreeks
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
from feeds.feed_state import FeedState, load_state, save_state
from feeds.liquidator import LiquidationSettings, Liquidator
from feeds.market_status import market_view
from feeds.median import Combined, combine
from feeds.multipliers import FeedAction, MultiplierRules, TokenMultiplier, token_reference
from feeds.options import MarginRates
from feeds.perpetual import remark_perpetuals
from feeds.remark import VolSurface, remark_chain
from feeds.replay import Replay, csv_ticks, lobster_mids
from feeds.rules import FeedRule, rejection
from feeds.session_policy import HoldBack, LiquidationGate, SessionPolicies, liquidation_gate
from feeds.sessions import Session, SessionCalendar, SessionState
from feeds.synthetic import GbmSource
from feeds.twap import DEFAULT_WINDOW_NS, ReferenceHistory, settlement_units
from feeds.update import NS_PER_SECOND, PriceUpdate, Source, usd_units

log = logging.getLogger(__name__)

STALE_STATES = {"halt": TradingState.HALTED}
STALE_PRICE = "stale price"   # the halt reason of an asset without a usable price


def _is_option(inst: InstrumentInfo) -> bool:
    """An option series: dated (an expiry) or perpetual (a funding period)."""
    return bool(inst.expiry or inst.funding_period_s)


class FeedProcess:
    """One gateway client driving reference and asset prices from ``sources``.
    ``rules`` holds each source's FeedRule by source name; ``fixed_prices`` the USD x 1e8
    price of assets without a feed that quote instruments (e.g. USDC). Option series on
    an underlying in ``surfaces`` are re-marked with ``option_rate`` and ``margin_rates``;
    the assets in ``tokens`` are stock tokens, priced through their multipliers under
    ``multiplier_rules`` and halted in the sessions of ``calendar`` that ``policies``
    halts. With ``liquidation`` settings it liquidates the accounts under maintenance
    whose prices allow it; with ``state_path`` it remembers its halts across restarts.
    Dated series settle at the TWAP of the ``settlement_window_ns`` before expiry."""

    def __init__(self, client: Client, sources: Sequence[Source], rules: dict[str, FeedRule], clock: Clock, *,
                 outlier_bps: int = 200, fixed_prices: dict[str, int] | None = None,
                 stale_state: str = "halt", surfaces: Sequence[VolSurface] = (), option_rate: float = 0.0,
                 margin_rates: MarginRates = MarginRates(), tokens: Sequence[TokenMultiplier] = (),
                 multiplier_rules: MultiplierRules = MultiplierRules(), calendar: SessionCalendar | None = None,
                 policies: SessionPolicies = SessionPolicies(), liquidation: LiquidationSettings | None = None,
                 state_path: Path | None = None,
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
        # Twice the window: the step that settles a series comes after its expiry instant
        # (a poll later, or after an outage), and the window before expiry must still be
        # held then; keeping only one window would cut its start away.
        self.history = {asset: ReferenceHistory(2 * settlement_window_ns) for asset in self.fed_assets}
        self.settled: set[int] = set()                        # series closed (by this process or before)
        self.halts: dict[str, str] = {}                       # this step's halt reason per asset
        self.calendar_state: SessionState | None = None       # the calendar's session this step
        self.sessions: dict[str, Session] = {}                # each stock token's session this step
        self.disagreements: dict[str, str | None] = {}        # each token's sources vs the calendar, last logged
        self.disagreement_count: Counter[str] = Counter()     # disagreements begun, per token
        self.liquidator = None if liquidation is None else Liquidator(client, liquidation, listing.instruments,
                                                                     listing.assets)
        self.last_seq = 0                                     # venue seq of the last command accepted
        self.state_path = state_path
        self.remembered: FeedState | None = None
        if state_path is not None:
            self._restore(listing)

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
        for asset, why in self._home_markets(instant).items():
            halts.setdefault(asset, why)   # a stale price or a split says first why it halts
        self.halts = halts
        self._apply_session_policy()
        priced = {a for a in self.fed_assets if self.usd[a] is not None}
        for inst in self.instruments:
            if not _is_option(inst) and {inst.base, inst.quote} & priced:
                self._send_reference(inst)
        self._settle_expired(now)
        self._publish_greeks([*self._remark_options(instant), *self._fund_perpetuals()])
        for inst in self.instruments:
            depends = {inst.base} if _is_option(inst) else {inst.base, inst.quote}
            blocked = sorted(depends & set(halts))
            if blocked:
                self._halt(inst.instrument, "; ".join(f"{asset}: {halts[asset]}" for asset in blocked))
            elif inst.instrument in self.halted and self._reference_sent(inst):
                self._reopen(inst.instrument)
        if self.liquidator is not None and self.liquidator.due(now):
            self.liquidator.run(now, self.liquidation_gates(now, self.liquidator.settings.open_grace))
        self._remember()

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
        return inst.instrument in self.references or (_is_option(inst) and inst.base not in self.surfaces)

    def _asset_price(self, asset: str, combined: Combined, instant: datetime, halts: dict[str, str]) -> int | None:
        """The asset's USD x 1e8 price this step: the combined price, times the
        multiplier for a stock token; None (with the reason in ``halts``) when it
        has no usable price or a split halts it."""
        if combined.price is None:
            halts[asset] = STALE_PRICE
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

    def _home_markets(self, instant: datetime) -> dict[str, str]:
        """Each stock token's session this step (``sessions``: the calendar's, as its
        sources correct it, feeds/market_status.py) and why tokens halt: a session
        the policy halts, the home market halting the stock, or an instant outside
        the calendar's range (no session is known)."""
        halts: dict[str, str] = {}
        self.calendar_state, self.sessions = None, {}
        if self.calendar is not None:
            try:
                self.calendar_state = self.calendar.at(instant)
            except ValueError as err:
                halts = dict.fromkeys(self.tokens, str(err))
        calendar_session = None if self.calendar_state is None else self.calendar_state.session
        for token in self.tokens:
            view = market_view(token, calendar_session, self._used_updates(token))
            if view.disagreement != self.disagreements.get(token):
                if view.disagreement is not None:
                    log.warning("%s: %s", token, view.disagreement)
                    self.disagreement_count[token] += 1
                self.disagreements[token] = view.disagreement
            if view.halt is not None:
                halts.setdefault(token, view.halt)
            if view.session is not None:
                self.sessions[token] = view.session
                if self.policies.of(view.session).halt:
                    halts.setdefault(token, f"the {view.session.value} session halts stock tokens")
        return halts

    def _used_updates(self, asset: str) -> list[PriceUpdate]:
        """The updates this step's price of ``asset`` is made of."""
        combined = self.combined.get(asset)
        return [] if combined is None else [self.latest[(asset, source)] for source in combined.used]

    def _apply_session_policy(self) -> None:
        """Send each stock token's session's static band width of its spot pairs and
        its collateral haircut, once per change (dynamic widths stay as listed)."""
        for token, session in self.sessions.items():
            policy = self.policies.of(session)
            asset = self.asset_ids[token]
            if self.session_settings.get(("haircut", asset)) != policy.haircut_bps:
                if self._accepted(self.client.set_haircut(asset, policy.haircut_bps), f"haircut of {token}"):
                    self.session_settings[("haircut", asset)] = policy.haircut_bps
            for inst in self.instruments:
                if _is_option(inst) or inst.base != token:
                    continue
                if self.session_settings.get(("band", inst.instrument)) != policy.band_bps:
                    reply = self.client.set_bands(inst.instrument, policy.band_bps, inst.dynamic_band_bps)
                    if self._accepted(reply, f"bands of {inst.symbol}"):
                        self.session_settings[("band", inst.instrument)] = policy.band_bps

    # -- liquidations and restarts ---------------------------------------------------------

    def liquidation_gates(self, now: int, open_grace: timedelta) -> dict[str, LiquidationGate]:
        """Per asset of the venue, whether a liquidation may rest on its price at
        ``now`` (after this step's prices and halts), waiting ``open_grace`` after
        the regular open for a stock token."""
        return {asset: self._liquidation_gate(asset, now, open_grace) for asset in self.asset_ids}

    def _liquidation_gate(self, asset: str, now: int, open_grace: timedelta) -> LiquidationGate:
        if asset not in self.usd:
            if asset in self.fixed_prices:
                return LiquidationGate(True, "")
            return LiquidationGate(False, "the feed process has no price for it", HoldBack.NO_FEED)
        if asset in self.halts:
            why = self.halts[asset]
            return LiquidationGate(False, why, HoldBack.STALE if why == STALE_PRICE else HoldBack.HALTED)
        if self.prices.get(asset) != self.usd[asset]:
            return LiquidationGate(False, "the engine refused its current price", HoldBack.NOT_HELD)
        oldest = min(self._used_updates(asset), key=lambda update: update.timestamp)
        heartbeat = timedelta(microseconds=self.rules[oldest.source].heartbeat_ns // 1000)
        regular = self.sessions.get(asset) is Session.REGULAR
        return liquidation_gate(utc_instant(now), utc_instant(oldest.timestamp), heartbeat,
                                self.calendar_state if regular else None, open_grace)

    def _restore(self, listing: Instruments) -> None:
        """Take back what an earlier run recorded, as far as the venue still shows it."""
        saved = load_state(self.state_path)
        if saved is None:
            return
        status = self.client.status()
        if not isinstance(status, Status):
            raise RuntimeError(f"the gateway refused its status: {status.code} {status.text}")
        if saved.seq > status.last_seq:
            log.warning("feed state %s records seq %d, past the venue's %d: another venue's; ignored",
                        self.state_path, saved.seq, status.last_seq)
            return
        states = {i.instrument: i.state for i in listing.instruments}
        for instrument in saved.halted:
            if states.get(instrument) == TradingState.HALTED:
                self.halted.add(instrument)
            else:
                log.info("instrument %d: halted by an earlier run, since changed by someone else: not ours",
                         instrument)
        for asset, reference in saved.references().items():
            if asset in self.tokens:
                self.tokens[asset] = msgspec.structs.replace(self.tokens[asset], last_reference=reference)
        self.last_seq = saved.seq
        self.remembered = saved
        log.info("feed state restored: halted %s, references of %s", sorted(self.halted),
                 ", ".join(sorted(saved.last_references)) or "no token")

    def _remember(self) -> None:
        """Save the halts and token references when they changed."""
        if self.state_path is None:
            return
        references = {t: str(m.last_reference) for t, m in self.tokens.items() if m.last_reference}
        kept = self.remembered
        if kept is not None and set(kept.halted) == self.halted and kept.last_references == references:
            return
        self.remembered = FeedState(seq=self.last_seq, halted=sorted(self.halted), last_references=references)
        save_state(self.state_path, self.remembered)

    def _remark_options(self, instant: datetime) -> list[SeriesGreeks]:
        """Re-mark every option series whose underlying has a surface and a price;
        their greeks."""
        chain, spots, quotes, vols = self._chain_inputs(
            lambda inst: bool(inst.expiry) and inst.instrument not in self.settled,
            lambda inst, surface: surface.at(inst.expiry))
        try:
            risks = remark_chain(chain, spots, quotes, vols, self.option_rate, instant, self.margin_rates)
        except ValueError as err:
            log.error("option re-marking refused its inputs: %s", err)
            return []
        for risk in risks:
            self._send_option_risk(risk.instrument, risk.mark, (risk.initial, risk.maintenance))
        return [risk.greeks for risk in risks]

    def _chain_inputs(self, selected: Callable[[InstrumentInfo], bool],
                      vol_of: Callable[[InstrumentInfo, VolSurface], float]
                      ) -> tuple[list[InstrumentInfo], list[float], list[float], list[float]]:
        """The series ``selected`` whose underlying has a surface and whose underlying
        and quote have prices this step, with their spots (in the quote), quote USD
        prices and vols: the inputs of one vectorised re-mark."""
        chain, spots, quotes, vols = [], [], [], []
        for inst in self.instruments:
            surface = self.surfaces.get(inst.base) if selected(inst) else None
            base, quote = self.usd_price(inst.base), self.usd_price(inst.quote)
            if surface is None or base is None or quote is None:
                continue
            chain.append(inst)
            spots.append(base / quote)
            quotes.append(quote / USD_PRICE_SCALE)
            vols.append(vol_of(inst, surface))
        return chain, spots, quotes, vols

    def _send_option_risk(self, instrument: int, mark: int, margins: tuple[int, int]) -> None:
        """An option series' mark (SET_REFERENCE) and margins, each when it changed."""
        if self.references.get(instrument) != mark and self._accepted(
                self.client.set_reference(instrument, mark), f"mark of instrument {instrument}"):
            self.references[instrument] = mark
        if self.option_margins.get(instrument) != margins and self._accepted(
                self.client.set_option_risk(instrument, *margins), f"option risk of instrument {instrument}"):
            self.option_margins[instrument] = margins

    def _fund_perpetuals(self) -> list[SeriesGreeks]:
        """Re-mark every perpetual series whose underlying has a surface and a
        price (everlasting closed form, the surface's base vol) and send FUND
        with its mark and payoff: each step is a funding tick (docs/funding.md).
        Their greeks."""
        chain, spots, quotes, vols = self._chain_inputs(lambda inst: inst.funding_period_s > 0,
                                                        lambda _inst, surface: surface.vol)
        try:
            risks = remark_perpetuals(chain, spots, quotes, vols)
        except ValueError as err:
            log.error("perpetual re-marking refused its inputs: %s", err)
            return []
        for risk in risks:
            self._send_option_risk(risk.instrument, risk.mark, (risk.initial, risk.maintenance))
            self._accepted(self.client.fund(risk.instrument, risk.mark, risk.payoff),
                           f"funding of instrument {risk.instrument}")
        return [risk.greeks for risk in risks]

    def _publish_greeks(self, greeks: list[SeriesGreeks]) -> None:
        """Publish the greeks of this step's re-marks, MAX_GREEKS_ENTRIES a
        request, but a closed series' or any with a non-finite number: the
        gateway refuses a whole publication that names one."""
        closed = {i.instrument for i in self.instruments if i.state == TradingState.CLOSED}
        live = []
        for g in greeks:
            if not all(math.isfinite(x) for x in (g.delta, g.gamma, g.vega, g.theta, g.vol)):
                log.warning("instrument %d: greeks not finite, not published: %s", g.instrument, g)
            elif g.instrument not in closed:
                live.append(g)
        for start in range(0, len(live), MAX_GREEKS_ENTRIES):
            reply = self.client.publish_greeks(live[start:start + MAX_GREEKS_ENTRIES])
            if isinstance(reply, Reject):
                log.error("greeks refused: code %d %s", reply.code, reply.text)

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
            expiry = expiry_instant_ns(inst.expiry, inst.expiry_time)
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
        # Recorded before it is sent: a crash right after the halt must not leave it looking like an
        # operator's; a halt that never happened is dropped at the restart (the venue shows it open).
        self.halted.add(instrument)
        self._remember()
        if not self._accepted(self.client.set_state(instrument, self.stale_state), f"halt of instrument {instrument}"):
            self.halted.discard(instrument)

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

    def _accepted(self, reply, what: str) -> bool:
        if isinstance(reply, Reject):
            log.error("%s refused: code %d %s", what, reply.code, reply.text)
            return False
        self.last_seq = max(self.last_seq, reply.seq)
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
                       policies=sessions.policies if sessions is not None else SessionPolicies(),
                       liquidation=config.liquidations.settings(),
                       state_path=None if config.feeds.state_file is None else base / config.feeds.state_file)
