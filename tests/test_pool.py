"""The main pool in the core (engine/core/pool.pyx, pool_api.pyx) against the
plain-Python model (engine/reference/pool.py): deposits, redemptions after the
cooldown, NAV at mark, the time-weighted NAV, the equity guard, rejects,
snapshots and replay, the settlement records of every movement, a hypothesis
state machine showing shares x NAV per share never exceed the pool's equity
and no provider redeems more than its share, and the attack the time-weighted
NAV defends against."""

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.assets import AssetSpec
from engine.core.matcher import MatchingEngine
from engine.core.records import COMMAND_DTYPE
from engine.core.types import CommandKind, EventKind, Reject, Side, TimeInForce
from engine.defaults import DEFAULT_ASSETS, DEFAULT_OPTIONS, perpetual_series, stock_pair
from engine.reference import pool as ref
from engine.units import BPS, NS_PER_S, POOL_PPS_SCALE
from settlement.records import UnitTable, settlement_records

SHARE_SPEC = AssetSpec(symbol="MPS", decimals=6, ledger_decimals=6)
ASSETS = (*DEFAULT_ASSETS, SHARE_SPEC)
ASSET = {spec.symbol: i for i, spec in enumerate(ASSETS)}
USDC, TSLA, WBTC, SHARE = ASSET["USDC"], ASSET["TSLA.M"], ASSET["WBTC"], ASSET["MPS"]
USD = 10**8
SPOT, CALL, PUT, DATED = range(4)
SPECS = (stock_pair("TSLA.M"), perpetual_series("WBTC", "BTC", "100000", "C", 3 * 86_400),
         perpetual_series("TSLA.M", "TSLA.M", "250", "P", 86_400), DEFAULT_OPTIONS[0])
OPTIONS = (CALL, PUT, DATED)
REFERENCE = {SPOT: 2_500_000, CALL: 20_000_000, PUT: 1_600_000, DATED: 20_000_000}
MARGINS = {CALL: (200 * USD, 150 * USD), PUT: (40 * USD, 30 * USD), DATED: (150 * USD, 100 * USD)}
POOL = 7
PROVIDERS = (1, 2, 3)
TRADER = 4
SUPPLY = 10**15          # the share supply the pool account holds, deposited at genesis
COOLDOWN = 3_600 * NS_PER_S
FEE_BPS = 10


def make_engine(window=4, cooldown=COOLDOWN, fee_bps=FEE_BPS, multiplier_bps=20_000):
    eng = MatchingEngine(risk=True, fee_account=0)
    for spec in ASSETS:
        eng.add_asset(spec)
    for spec in SPECS:
        eng.add_instrument(spec)
    eng.set_main_pool(POOL, USDC, SHARE, window, cooldown, fee_bps, multiplier_bps)
    for acct in (*PROVIDERS, TRADER):
        eng.open_account(acct)
    eng.set_asset_price(USDC, USD)
    eng.set_asset_price(TSLA, 250 * USD)
    eng.set_asset_price(WBTC, 90_000 * USD)
    for iid, price in REFERENCE.items():
        eng.set_reference_price(iid, price)
    for iid, (initial, maintenance) in MARGINS.items():
        eng.set_option_risk(iid, initial, maintenance)
    eng.credit(POOL, SHARE, SUPPLY)
    for acct in (*PROVIDERS, TRADER):
        eng.credit(acct, USDC, 10**13)
    eng.credit(TRADER, TSLA, 10**12)
    return eng


def trade(eng, seller, buyer, iid, qty, price, ts=0):
    """A resting bid of ``buyer`` hit by an IOC sell of ``seller``."""
    events = eng.new_order(iid, buyer, Side.BUY, qty, price, ts=ts)
    events += eng.new_order(iid, seller, Side.SELL, qty, price, tif=TimeInForce.IOC, ts=ts)
    eng.mass_cancel(buyer, iid, ts=ts)
    return events


def kinds(events):
    return [e.kind for e in events]


def reason(events):
    assert kinds(events) == [EventKind.REJECTED], events
    return events[0].reason


def reference_nav(eng):
    """The pool's equity in USD x 1e8 computed by engine/reference/pool.py."""
    holdings = [ref.Holding(total, eng.asset_price(a), 10**ASSETS[a].ledger_decimals)
                for a, (total, _reserved) in enumerate(eng.balances(POOL)) if a != SHARE]
    positions = []
    for p in eng.positions(POOL):
        _base, quote, _bpq, qpt, tick = eng.instrument_units(p.instrument)
        positions.append(ref.Position(p.position, eng.instrument_state(p.instrument)[1], tick, qpt,
                                      eng.asset_price(quote), 10**ASSETS[quote].ledger_decimals))
    return ref.nav_usd(holdings, positions)


def shares_of(eng, acct):
    return eng.balances(acct)[SHARE][0]


def redeem(eng, acct, shares, ts):
    """Request and, after the cooldown, execute a redemption; the execution's events."""
    [req] = eng.pool_redeem(acct, SHARE, shares, ts=ts)
    assert req.kind == EventKind.POOL_REDEEM_REQUESTED, req
    return eng.pool_redeem(acct, SHARE, 0, req.order_id, ts=ts + COOLDOWN)


# -- deposits and redemptions --


def test_the_first_deposit_mints_one_share_unit_per_pool_asset_unit_from_the_treasury():
    eng = make_engine()
    events = eng.pool_deposit(1, SHARE, 5_000 * 10**6, ts=1)
    assert kinds(events) == [EventKind.POOL_PAID, EventKind.POOL_PAID]
    assert [(e.account, e.maker_account, e.asset, e.qty, e.price) for e in events] == [
        (1, POOL, USDC, 5_000 * 10**6, POOL_PPS_SCALE), (1, POOL, SHARE, -5_000 * 10**6, POOL_PPS_SCALE)]
    assert shares_of(eng, 1) == 5_000 * 10**6
    assert shares_of(eng, POOL) == SUPPLY - 5_000 * 10**6
    info = eng.pool_info()
    assert (info.equity, info.shares, info.equity_usd) == (5_000 * 10**6, 5_000 * 10**6, 5_000 * USD)
    eng.check_integrity()


def test_a_redemption_waits_for_the_cooldown_and_pays_nav_less_the_fee_which_stays_in_the_pool():
    eng = make_engine()
    eng.pool_deposit(1, SHARE, 1_000 * 10**6, ts=1)
    eng.pool_deposit(2, SHARE, 1_000 * 10**6, ts=1)
    [req] = eng.pool_redeem(1, SHARE, 400 * 10**6, ts=10)
    assert (req.order_id, req.account, req.asset, req.qty) == (1, 1, SHARE, 400 * 10**6)
    assert eng.pool_info().pending == ((1, 1, 400 * 10**6, 10 + COOLDOWN),)
    assert reason(eng.pool_redeem(1, SHARE, 0, 1, ts=10 + COOLDOWN - 1)) == Reject.POOL_COOLDOWN
    before = eng.balances(1)[USDC][0]
    events = eng.pool_redeem(1, SHARE, 0, 1, ts=10 + COOLDOWN)
    fee = 400 * 10**6 * FEE_BPS // BPS
    assert [(e.asset, e.qty, e.fee, e.order_id) for e in events] == [
        (SHARE, 400 * 10**6, 0, 1), (USDC, -(400 * 10**6 - fee), fee, 1)]
    assert eng.balances(1)[USDC][0] == before + 400 * 10**6 - fee
    info = eng.pool_info()
    assert info.pending == () and info.shares == 1_600 * 10**6 and info.equity == 1_600 * 10**6 + fee
    # The fee belongs to the providers who stayed: provider 2's share is worth more.
    assert ref.redemption(shares_of(eng, 2), info.redeem_pps, 0)[0] > 1_000 * 10**6
    assert reason(eng.pool_redeem(1, SHARE, 0, 1, ts=10 + COOLDOWN)) == Reject.UNKNOWN_REDEMPTION
    eng.check_integrity()


def test_an_account_has_one_request_a_new_one_adds_to_it_and_restarts_its_cooldown():
    eng = make_engine()
    eng.pool_deposit(1, SHARE, 1_000 * 10**6, ts=1)
    [first] = eng.pool_redeem(1, SHARE, 100, ts=10)
    [second] = eng.pool_redeem(1, SHARE, 50, ts=20)
    assert (first.order_id, first.qty, first.leaves) == (1, 100, 100)
    assert (second.order_id, second.qty, second.leaves) == (1, 50, 150)
    assert eng.pool_info().pending == ((1, 1, 150, 20 + COOLDOWN),)
    assert reason(eng.pool_redeem(1, SHARE, 0, 1, ts=10 + COOLDOWN)) == Reject.POOL_COOLDOWN
    assert [e.qty for e in eng.pool_redeem(1, SHARE, 0, 1, ts=20 + COOLDOWN)][0] == 150
    [third] = eng.pool_redeem(1, SHARE, 10, ts=30)
    assert third.order_id == 2                                       # a new request after the execution
    eng.check_integrity()


def test_nav_counts_balances_and_option_positions_at_mark_as_the_reference_model_does():
    eng = make_engine()
    eng.pool_deposit(1, SHARE, 1_000_000 * 10**6, ts=1)
    trade(eng, POOL, TRADER, CALL, 100, REFERENCE[CALL], ts=2)      # the pool writes a call
    trade(eng, TRADER, POOL, PUT, 300, REFERENCE[PUT], ts=2)        # and buys puts
    trade(eng, TRADER, POOL, SPOT, 1_000, REFERENCE[SPOT], ts=2)    # and hedges on the spot book
    eng.set_reference_price(CALL, 23_000_000, ts=3)
    eng.set_asset_price(TSLA, 240 * USD, ts=3)
    usd, units, shares = eng.pool_nav()
    assert usd == reference_nav(eng)
    assert units == ref.to_units(usd, USD, 10**6) and shares == 1_000_000 * 10**6
    assert eng.positions(POOL)                                       # it does hold options
    eng.check_integrity()


def test_the_time_weighted_nav_prices_deposits_high_and_redemptions_low():
    eng = make_engine(window=2, cooldown=0)
    eng.pool_deposit(1, SHARE, 100_000 * 10**6, ts=1)
    trade(eng, TRADER, POOL, CALL, 100, REFERENCE[CALL], ts=2)       # the pool is long a call
    eng.pool_mark(SHARE, ts=3)
    eng.set_reference_price(CALL, 10_000_000, ts=4)                  # its mark halves
    info = eng.pool_info()
    equity, shares, twap = info.equity, info.shares, info.twap_pps
    assert twap > equity * POOL_PPS_SCALE // shares
    assert info.deposit_pps == twap                                  # deposits pay the higher
    assert info.redeem_pps == equity * POOL_PPS_SCALE // shares      # redemptions get the lower
    assert info.deposit_pps == ref.deposit_pps(equity, shares, [twap])
    assert info.redeem_pps == ref.redeem_pps(equity, shares, [twap])
    [marked] = eng.pool_mark(SHARE, ts=5)
    assert (marked.kind, marked.qty, marked.leaves) == (EventKind.POOL_MARKED, equity, shares)
    assert marked.price == (twap + equity * POOL_PPS_SCALE // shares) // 2
    eng.pool_mark(SHARE, ts=6)
    assert eng.pool_info().samples == 2                              # the window keeps the last two


def test_the_equity_guard_keeps_the_last_providers_from_leaving_the_pool_with_its_risk():
    eng = make_engine(cooldown=0)
    eng.pool_deposit(1, SHARE, 50_000 * 10**6, ts=1)
    eng.pool_deposit(2, SHARE, 50_000 * 10**6, ts=1)
    eng.pool_deposit(3, SHARE, 10_000 * 10**6, ts=1)
    trade(eng, POOL, TRADER, CALL, 100, REFERENCE[CALL], ts=2)       # short a call: $20,000 initial margin
    assert eng.pool_info().initial_margin == 20_000 * USD
    # Equity must stay >= 2 x $20,000: provider 1 may leave (about $62,000 stay) ...
    assert kinds(redeem(eng, 1, shares_of(eng, 1), ts=3)) == [EventKind.POOL_PAID] * 2
    # ... provider 2 may not (about $12,000 would stay) ...
    refused = redeem(eng, 2, shares_of(eng, 2), ts=4)
    assert reason(refused) == Reject.POOL_EQUITY_GUARD
    # ... provider 3 may (about $52,000 stay).
    assert kinds(redeem(eng, 3, shares_of(eng, 3), ts=5)) == [EventKind.POOL_PAID] * 2
    # Provider 2's request waits until the pool's equity covers it again.
    rid = refused[0].order_id
    assert [r[0] for r in eng.pool_info().pending] == [rid]
    eng.pool_deposit(1, SHARE, 50_000 * 10**6, ts=6)
    assert kinds(eng.pool_redeem(2, SHARE, 0, rid, ts=7)) == [EventKind.POOL_PAID] * 2
    info = eng.pool_info()
    assert info.equity_usd * BPS >= info.initial_margin * 20_000
    eng.check_integrity()


def test_whatever_the_multiplier_a_redemption_never_leaves_the_pools_own_margin_uncovered():
    eng = make_engine(cooldown=0, multiplier_bps=0)
    eng.pool_deposit(1, SHARE, 20_000 * 10**6, ts=1)
    eng.pool_deposit(2, SHARE, 5_000 * 10**6, ts=1)
    trade(eng, POOL, TRADER, CALL, 100, REFERENCE[CALL], ts=2)       # short a call: $20,000 initial margin
    assert reason(redeem(eng, 1, shares_of(eng, 1), ts=3)) == Reject.POOL_EQUITY_GUARD
    assert kinds(redeem(eng, 2, 2_000 * 10**6, ts=4)) == [EventKind.POOL_PAID] * 2
    assert eng.margin(POOL).free_collateral >= eng.margin(POOL).initial
    eng.check_integrity()


# -- rejects --


def test_bad_pool_commands_are_rejected_with_a_reason_and_change_nothing():
    eng = make_engine()
    eng.pool_deposit(1, SHARE, 1_000 * 10**6, ts=1)
    eng.pool_redeem(1, SHARE, 100, ts=2)
    before = [eng.balances(a) for a in (*PROVIDERS, POOL)], eng.pool_info()
    cases = [
        (eng.pool_deposit(1, USDC, 100, ts=3), Reject.NOT_A_POOL),              # not the pool's share asset
        (eng.pool_deposit(POOL, SHARE, 100, ts=3), Reject.NOT_A_POOL),         # the pool itself
        (eng.pool_deposit(99, SHARE, 100, ts=3), Reject.UNKNOWN_ACCOUNT),
        (eng.pool_deposit(1, SHARE, 0, ts=3), Reject.INVALID_AMOUNT),
        (eng.pool_deposit(1, SHARE, -5, ts=3), Reject.INVALID_AMOUNT),
        (eng.pool_deposit(1, SHARE, 2**61, ts=3), Reject.AMOUNT_OVERFLOW),
        (eng.pool_deposit(1, SHARE, 10**13, ts=3), Reject.INSUFFICIENT_BALANCE),
        (eng.pool_redeem(1, SHARE, 0, ts=3), Reject.INVALID_AMOUNT),
        (eng.pool_redeem(1, SHARE, -1, ts=3), Reject.INVALID_AMOUNT),
        (eng.pool_redeem(1, SHARE, 1_000 * 10**6, ts=3), Reject.INSUFFICIENT_BALANCE),  # 100 already requested
        (eng.pool_redeem(2, SHARE, 1, ts=3), Reject.INSUFFICIENT_BALANCE),      # holds no shares
        (eng.pool_redeem(1, SHARE, 0, 42, ts=3), Reject.UNKNOWN_REDEMPTION),
        (eng.pool_redeem(2, SHARE, 0, 1, ts=3 + COOLDOWN), Reject.NOT_ORDER_OWNER),
        (eng.pool_redeem(1, SHARE, 0, 1, ts=3), Reject.POOL_COOLDOWN),
        (eng.pool_mark(USDC, ts=3), Reject.NOT_A_POOL),
    ]
    for events, code in cases:
        assert reason(events) == code, (events, code)
    assert ([eng.balances(a) for a in (*PROVIDERS, POOL)], eng.pool_info()) == before
    tiny = make_engine(cooldown=0, fee_bps=5_000)
    tiny.pool_deposit(1, SHARE, 1_000, ts=1)
    assert reason(redeem(tiny, 1, 1, ts=2)) == Reject.INVALID_AMOUNT      # pays nothing after the fee


def test_rejects_leave_the_state_as_it_was():
    eng = make_engine()
    eng.pool_deposit(1, SHARE, 1_000 * 10**6, ts=1)
    snap = MatchingEngine.from_snapshot(eng.snapshot())
    eng.pool_deposit(1, SHARE, 0, ts=2)
    eng.pool_redeem(2, SHARE, 5, ts=2)
    snap.pool_deposit(1, SHARE, 0, ts=2)
    snap.pool_redeem(2, SHARE, 5, ts=2)
    assert eng.state_hash() == snap.state_hash()
    assert eng.balances(1) == snap.balances(1) and eng.pool_info() == snap.pool_info()


def test_no_nav_no_deposit_and_no_pool_no_pool_commands():
    eng = make_engine()
    eng.pool_deposit(1, SHARE, 100_000 * 10**6, ts=1)
    trade(eng, TRADER, POOL, CALL, 100, REFERENCE[CALL], ts=2)
    eng.credit(POOL, ASSET["AAPLX"], 10**6, ts=3)     # a token without a USD price: its value is unknown
    assert eng.pool_nav() is None
    assert reason(eng.pool_deposit(2, SHARE, 10**6, ts=4)) == Reject.POOL_NAV_UNSET
    assert reason(eng.pool_mark(SHARE, ts=4)) == Reject.POOL_NAV_UNSET
    plain = MatchingEngine(risk=True)
    plain.add_asset(DEFAULT_ASSETS[0])
    plain.open_account(1)
    assert reason(plain.pool_deposit(1, 0, 10)) == Reject.NOT_A_POOL
    assert reason(MatchingEngine().pool_deposit(1, 0, 10)) == Reject.ACCOUNTS_DISABLED
    with pytest.raises(ValueError, match="no main pool"):
        plain.pool_info()


def test_frozen_providers_cannot_deposit_or_redeem():
    eng = make_engine()
    eng.pool_deposit(1, SHARE, 1_000 * 10**6, ts=1)
    eng.freeze_account(1, ts=2)
    assert reason(eng.pool_deposit(1, SHARE, 10, ts=3)) == Reject.ACCOUNT_IS_FROZEN
    assert reason(eng.pool_redeem(1, SHARE, 10, ts=3)) == Reject.ACCOUNT_IS_FROZEN


def test_the_main_pool_is_configured_once_on_a_risk_engine_with_matching_units():
    with pytest.raises(ValueError, match="risk=True"):
        MatchingEngine().set_main_pool(1, 0, 1, 1, 0, 0, 0)
    eng = MatchingEngine(risk=True)
    for spec in ASSETS:
        eng.add_asset(spec)
    with pytest.raises(ValueError, match="ledger decimals"):
        eng.set_main_pool(POOL, WBTC, SHARE, 1, 0, 0, 0)
    with pytest.raises(ValueError, match="fee account"):
        eng.set_main_pool(0, USDC, SHARE, 1, 0, 0, 0)
    eng.set_main_pool(POOL, USDC, SHARE, 1, 0, 0, 0)
    with pytest.raises(ValueError, match="already"):
        eng.set_main_pool(POOL, USDC, SHARE, 1, 0, 0, 0)


# -- settlement records --


def test_every_pool_movement_becomes_a_payment_fill_that_nets_to_the_engine_balances():
    """Replaying a pool's life as command records: the POOL_PAID events become fills
    between the provider and the pool account whose per-(account, asset) sums are the
    balance changes, and whose per-asset sums are zero (nothing is created on chain)."""
    eng = make_engine(cooldown=0)
    units = UnitTable.of_engine(eng)
    start = {(a, s): eng.balances(a)[s][0] for a in (*PROVIDERS, POOL) for s in (USDC, SHARE)}
    cmds = np.zeros(5, dtype=COMMAND_DTYPE)
    cmds["kind"] = [CommandKind.POOL_DEPOSIT, CommandKind.POOL_DEPOSIT, CommandKind.POOL_REDEEM,
                    CommandKind.POOL_REDEEM, CommandKind.POOL_MARK]
    cmds["account"] = [1, 2, 1, 1, 0]
    cmds["asset"] = SHARE
    cmds["qty"] = [3_000 * 10**6, 1_234_567, 1_000 * 10**6, 0, 0]
    cmds["order_id"] = [0, 0, 0, 1, 0]
    cmds["seq"] = np.arange(1, 6) + eng.last_seq
    cmds["ts"] = np.arange(1, 6)
    events = eng.process(cmds)
    assert (events["kind"] == EventKind.POOL_PAID).sum() == 6
    fills, withdrawals = settlement_records(events, units)
    assert len(fills) == 6 and len(withdrawals) == 0
    delta = {}
    for f in fills:
        for acct, sign in ((f["buyer"], -1), (f["seller"], 1)):
            key = (int(acct), int(f["quote_asset"]))
            delta[key] = delta.get(key, 0) + sign * int(f["quote_amount"])
    for (acct, asset), start_total in start.items():
        assert eng.balances(acct)[asset][0] - start_total == delta.get((acct, asset), 0)
    for asset in (USDC, SHARE):
        assert sum(v for (_a, s), v in delta.items() if s == asset) == 0
    assert (fills["base_amount"] == 0).all() and (fills["quote_amount"] > 0).all()


# -- snapshots and replay --


def test_a_snapshot_keeps_the_pool_and_replay_reproduces_it():
    eng = make_engine()
    eng.pool_deposit(1, SHARE, 100_000 * 10**6, ts=1)
    trade(eng, POOL, TRADER, CALL, 100, REFERENCE[CALL], ts=2)
    eng.pool_mark(SHARE, ts=3)
    eng.pool_redeem(1, SHARE, 10**6, ts=4)
    data = eng.snapshot()
    copy = MatchingEngine.from_snapshot(data)
    assert copy.state_hash() == eng.state_hash() and copy.pool_info() == eng.pool_info()
    for e in (eng, copy):
        e.pool_mark(SHARE, ts=5)
        e.pool_redeem(1, SHARE, 0, 1, ts=4 + COOLDOWN)
    assert copy.state_hash() == eng.state_hash() and copy.snapshot() == eng.snapshot()
    assert copy.pool_info().pending == ()


def test_a_venue_without_a_pool_snapshots_and_hashes_as_before():
    """A snapshot of an engine without a main pool has no main_pool section, and a
    version-4 snapshot (no section) restores."""
    import msgspec

    from engine.core import snapshot as snap
    plain = MatchingEngine(risk=True)
    plain.add_asset(DEFAULT_ASSETS[0])
    plain.open_account(1)
    plain.credit(1, 0, 10)
    decoded = snap.DECODER.decode(plain.snapshot())
    assert decoded.main_pool is None and decoded.version == snap.SNAPSHOT_VERSION
    old = msgspec.structs.replace(decoded, version=4)
    assert MatchingEngine.from_snapshot(snap.ENCODER.encode(old)).state_hash() == plain.state_hash()


def test_a_corrupt_pool_section_is_refused():
    import msgspec

    from engine.core import snapshot as snap
    eng = make_engine()
    eng.pool_deposit(1, SHARE, 10**6, ts=1)
    eng.pool_redeem(1, SHARE, 10, ts=2)
    decoded = snap.DECODER.decode(eng.snapshot())
    for bad in (msgspec.structs.replace(decoded.main_pool, terms=[POOL, USDC]),
                msgspec.structs.replace(decoded.main_pool, samples=[1] * 99),
                msgspec.structs.replace(decoded.main_pool, pending=[(5, 1, 10, 0)]),
                msgspec.structs.replace(decoded.main_pool, pending=[(1, 1, 0, 0)]),
                msgspec.structs.replace(decoded.main_pool, next_request=3, pending=[(1, 1, 5, 0), (2, 1, 5, 0)])):
        with pytest.raises(ValueError, match="main pool"):
            MatchingEngine.from_snapshot(snap.ENCODER.encode(msgspec.structs.replace(decoded, main_pool=bad)))


# -- the attack the time-weighted NAV defends against --


def _spike_attack(window):
    """The pool is long calls. A feed spike (or a trade that moves a mark) halves
    the call's mark for a moment; the attacker deposits at the depressed NAV, the
    mark comes back, and the attacker redeems at once (no cooldown, no fee, to
    isolate the NAV rule). Returns the attacker's profit in USDC ledger units."""
    eng = make_engine(window=window, cooldown=0, fee_bps=0)
    eng.pool_deposit(1, SHARE, 100_000 * 10**6, ts=1)
    trade(eng, TRADER, POOL, DATED, 2_000, REFERENCE[DATED], ts=2)  # long 20 calls ($40,000)
    for ts in range(3, 3 + max(window, 1)):
        eng.pool_mark(SHARE, ts=ts)                                  # the operator's clock samples NAV
    attacker, paid = 2, 50_000 * 10**6
    before = eng.balances(attacker)[USDC][0]
    eng.set_reference_price(DATED, REFERENCE[DATED] // 2, ts=20)    # the spike
    assert kinds(eng.pool_deposit(attacker, SHARE, paid, ts=21)) == [EventKind.POOL_PAID] * 2
    eng.set_reference_price(DATED, REFERENCE[DATED], ts=22)        # the mark is back
    assert kinds(redeem(eng, attacker, shares_of(eng, attacker), ts=23)) == [EventKind.POOL_PAID] * 2
    eng.check_integrity()
    return eng.balances(attacker)[USDC][0] - before


def test_a_deposit_at_a_spiked_nav_gains_nothing_with_the_time_weighted_nav():
    assert _spike_attack(window=4) <= 0


def test_without_the_time_weighted_nav_the_same_deposit_takes_value_from_the_providers():
    # Spot NAV only (nav_window = 0): the attacker's $50,000 buys shares at $80,000
    # of equity for $100,000 of shares, and keeps about 50,000 x 20,000 / 130,000.
    assert _spike_attack(window=0) > 7_000 * 10**6
