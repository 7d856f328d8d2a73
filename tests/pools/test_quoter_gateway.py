"""The quoting process against a real gateway process: quotes inside the bands
and amended in place, a stale feed cancels them and a fresh one brings them
back, a position widens the spread, the pool's delta is hedged on the spot book;
the SDK's Client.exchange answers a batch request by request."""

from __future__ import annotations

import time

import msgspec
import pytest
from quoter_harness import (
    CALL,
    POOL,
    PUT,
    SPOT,
    SPOT_PX,
    TSLA,
    client,
    pools_doc,
    publish,
    write_venue,
)

from engine.core.types import Reject as Code
from engine.core.types import Side, TimeInForce
from engine.gateway.process import GatewayProcess
from engine.schemas import Ack, Amend, Amended, Balances, Cancel, Cancelled, GetBalances, NewOrder, Reject
from pools.quote_model import execution_band
from pools.quoter import Quoter, QuoterError
from pools.quoter_config import PoolsConfig


@pytest.fixture
def venue(tmp_path):
    """(gateway, keys dir, operator client, trader client) on a fresh venue."""
    path, keys = write_venue(tmp_path)
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        ops, trader = client(gw.orders, keys, "ops"), client(gw.orders, keys, "trader")
        yield gw, keys, ops, trader
        ops.close()
        trader.close()


def make_quoter(gw, keys, **sections) -> Quoter:
    """A started quoter on the pool's key with the test config updated by ``sections``."""
    config = msgspec.convert(pools_doc(gw.orders, keys, **sections), PoolsConfig)
    quoter = Quoter(client(gw.orders, keys, "pool"), config)
    try:
        quoter.start()
    except QuoterError:
        quoter.client.close()
        raise
    return quoter


def resting(ops, account=POOL) -> dict[tuple[int, int], tuple[int, int, int]]:
    """The account's resting orders: (instrument, side) -> (order id, price, open qty)."""
    return {(o.instrument, o.side): (o.order_id, o.price, o.leaves) for o in ops.open_orders(account).orders}


def assert_inside_bands(ops, orders) -> None:
    listing = {i.instrument: i for i in ops.instruments().instruments}
    for (iid, side), (_, price, _) in orders.items():
        i = listing[iid]
        band = execution_band(i.reference, i.last_trade, i.static_band_bps, i.dynamic_band_bps, i.tick_size)
        assert band[0] <= price <= band[1] and price % i.tick_size == 0, (iid, side, price, band)


def spread(orders, iid) -> int:
    return orders[(iid, Side.SELL)][1] - orders[(iid, Side.BUY)][1]


def test_quotes_inside_the_bands_and_amended_in_place(venue):
    gw, keys, ops, _ = venue
    publish(ops)
    quoter = make_quoter(gw, keys)
    try:
        report = quoter.refresh()
        assert report.placed == 4 and report.rejected == [] and report.quoted == 2
        first = resting(ops)
        assert set(first) == {(PUT, Side.BUY), (PUT, Side.SELL), (CALL, Side.BUY), (CALL, Side.SELL)}
        assert_inside_bands(ops, first)
        for iid, mark in ((PUT, 146_200), (CALL, 300_000)):
            assert first[(iid, Side.BUY)][1] < mark < first[(iid, Side.SELL)][1]
        # The feed re-marks the put 5% up: its quotes move in place (same order ids).
        ops.set_reference(PUT, 153_500)
        publish(ops)
        report = quoter.refresh()
        assert (report.placed, report.amended, report.rejected) == (0, 2, [])
        moved = resting(ops)
        assert {k: v[0] for k, v in moved.items()} == {k: v[0] for k, v in first.items()}
        assert moved[(PUT, Side.BUY)][1] > first[(PUT, Side.BUY)][1]
        assert moved[(CALL, Side.BUY)] == first[(CALL, Side.BUY)]
        assert_inside_bands(ops, moved)
        # A static band narrowed to 1%: the quotes are clipped inside it, none refused.
        # The narrower band cancelled the quotes outside it; an amend that raced
        # that cancel is refused as unknown, and the quote is placed again at once.
        ops.set_bands(PUT, 100, 0)
        report = quoter.refresh()
        assert [r for r in report.rejected if r.code != Code.UNKNOWN_ORDER] == []
        clipped = resting(ops)
        assert len(clipped) == 4
        assert_inside_bands(ops, clipped)
        assert spread(clipped, PUT) < spread(moved, PUT)
        # Nothing moved: nothing sent.
        report = quoter.refresh()
        assert (report.placed, report.amended, report.cancelled) == (0, 0, 0)
    finally:
        quoter.client.close()


def test_stale_feed_cancels_quotes_and_fresh_prices_bring_them_back(venue):
    gw, keys, ops, _ = venue
    quoter = make_quoter(gw, keys, quoter={"stale_after_ms": 2_000})
    try:
        publish(ops)                                 # greeks published right before each refresh
        quoter.refresh()
        assert len(resting(ops)) == 4
        time.sleep(2.1)                              # no greeks for longer than the limit
        report = quoter.refresh()
        assert sorted(report.stale) == [PUT, CALL] and report.cancelled == 4
        assert resting(ops) == {}
        publish(ops, {CALL: 0.5})                    # only the call's feed comes back
        report = quoter.refresh()
        assert report.stale == [PUT] and report.placed == 2
        assert set(resting(ops)) == {(CALL, Side.BUY), (CALL, Side.SELL)}
        publish(ops)
        quoter.refresh()
        assert len(resting(ops)) == 4
        # A halted series is not quoted either.
        ops.set_state(CALL, 2)
        report = quoter.refresh()
        assert report.stale == [CALL]
        assert set(resting(ops)) == {(PUT, Side.BUY), (PUT, Side.SELL)}
    finally:
        quoter.client.close()


def test_position_growth_widens_the_spread(venue):
    gw, keys, ops, trader = venue
    publish(ops)
    quoter = make_quoter(gw, keys)
    try:
        quoter.refresh()
        before = resting(ops)
        # The trader lifts the pool's put ask: the pool is now short one contract.
        assert isinstance(trader.place(PUT, Side.BUY, 100, before[(PUT, Side.SELL)][1], tif=TimeInForce.IOC), Ack)
        quoter.refresh()
        after = resting(ops)
        assert spread(after, PUT) > spread(before, PUT)
        # Short: both prices rise (skew), the untouched call's spread stays.
        assert after[(PUT, Side.BUY)][1] > before[(PUT, Side.BUY)][1]
        assert after[(PUT, Side.SELL)][1] > before[(PUT, Side.SELL)][1]
        assert spread(after, CALL) >= spread(before, CALL)
        assert_inside_bands(ops, after)
    finally:
        quoter.client.close()


def test_delta_past_the_threshold_is_hedged_on_the_spot_book(venue):
    gw, keys, ops, trader = venue
    publish(ops)
    quoter = make_quoter(gw, keys, quotes={"size": 5.0, "impact": 0.01})
    try:
        quoter.refresh()
        ask = resting(ops)[(PUT, Side.SELL)][1]
        # A spot bid to hedge into, then the trader buys 5 puts: the pool's delta
        # is -5 x -0.3 = +1.5 TSLA.M, above the 1.0 threshold.
        assert isinstance(trader.place(SPOT, Side.BUY, 5_000, SPOT_PX - 10_000), Ack)
        assert isinstance(trader.place(PUT, Side.BUY, 500, ask, tif=TimeInForce.IOC), Ack)
        report = quoter.refresh()
        assert len(report.hedges) == 1
        instrument, side, qty, price = report.hedges[0]
        assert (instrument, side, qty) == (SPOT, Side.SELL, 1_500)
        listing = {i.instrument: i for i in ops.instruments().instruments}
        assert listing[SPOT].last_trade == SPOT_PX - 10_000       # it traded, inside the band
        held = {b.asset: b.total for b in ops.balances(POOL).balances}
        assert held[TSLA] == 100 * 10**6 - 1_500_000
        # Hedged: the next refresh sends nothing.
        assert quoter.refresh().hedges == []
    finally:
        quoter.client.close()


def test_a_key_of_another_account_is_refused(venue):
    gw, keys, _, _ = venue
    with pytest.raises(QuoterError, match="bound to account 1, not to the pool account 3"):
        make_quoter(gw, keys, quoter={"account": 3})
    with pytest.raises(QuoterError, match="NVDA.M is not an asset"):
        make_quoter(gw, keys, underlying={"asset": "NVDA.M"})
    with pytest.raises(QuoterError, match="TSLA.M-PERP-250-C is not a spot book"):
        make_quoter(gw, keys, underlying={"spot": "TSLA.M-PERP-250-C"})


def test_exchange_answers_each_request_in_order(venue):
    gw, keys, _, trader = venue
    ack = trader.place(SPOT, Side.BUY, 10, SPOT_PX - 1_000)
    requests = [NewOrder(trader.next_id(), SPOT, Side.BUY, 10, SPOT_PX - 2_000),
                Amend(trader.next_id(), ack.order_id, 0, SPOT_PX - 3_000),
                Cancel(trader.next_id(), ack.order_id),
                Cancel(trader.next_id(), 999_999),
                GetBalances(trader.next_id())]
    answers = trader.exchange(requests)
    assert [type(a) for a in answers] == [Ack, Amended, Cancelled, Reject, Balances]
    assert answers[3].code == Code.UNKNOWN_ORDER and answers[4].account == 2
    # A message the gateway refuses whole names no request: the caller hears why.
    with pytest.raises(RuntimeError, match="refused the message"):
        trader.exchange([Cancel(trader.next_id(), 1) for _ in range(1_025)])
