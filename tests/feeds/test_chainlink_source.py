"""The Chainlink source against a real contract: MockAggregator (AggregatorV3Interface)
deployed on the embedded EVM and on anvil, read with web3."""

from __future__ import annotations

import logging

import pytest
from feeds_harness import UPDATED, deploy_aggregator

from feeds.chainlink import ChainlinkSource
from feeds.rules import FeedRule, rejection
from feeds.update import NS_PER_SECOND, usd_units
from settlement.anvil import Anvil, anvil_command
from settlement.chain import connect


@pytest.fixture(params=["embedded", "anvil"])
def w3(request):
    if request.param == "embedded":
        yield connect()
        return
    if anvil_command() is None:
        pytest.skip("anvil not installed: run `npm ci` (package @foundry-rs/anvil)")
    with Anvil() as node:
        yield connect(node.url)


def test_rounds_become_updates_with_the_feed_heartbeat(w3):
    address, push = deploy_aggregator(w3, 8, "BTC / USD")
    source = ChainlinkSource("btc-chainlink", "WBTC", w3, address)
    push(9_000_012_345_678, UPDATED)
    [update] = source.poll(0)
    assert (update.asset, update.price, update.source) == ("WBTC", usd_units("90000.12345678"), "btc-chainlink")
    assert update.timestamp == UPDATED * NS_PER_SECOND
    assert source.poll(0) == []                       # the same round is not a new update
    hourly = FeedRule(heartbeat_ns=3600 * NS_PER_SECOND)
    assert rejection(update, hourly, (UPDATED + 3600) * NS_PER_SECOND) is None
    assert rejection(update, hourly, (UPDATED + 3601) * NS_PER_SECOND) == "stale"
    push(9_100_000_000_000, UPDATED + 60)
    assert [u.price for u in source.poll(0)] == [usd_units("91000")]


def test_rounds_that_are_not_prices_are_skipped(w3, caplog):
    address, push = deploy_aggregator(w3, 8, "ETH / USD")
    source = ChainlinkSource("eth-chainlink", "WETH", w3, address)
    with caplog.at_level(logging.WARNING, logger="feeds.chainlink"):
        push(300_000_000_000, UPDATED, answered_in=0)    # carried over from an earlier round
        assert source.poll(0) == []
        push(0, UPDATED)
        assert source.poll(0) == []
    assert caplog.text.count("is not a price") == 2


def test_eighteen_decimals_round_to_the_venue_unit_and_reads_are_paced(w3):
    address, push = deploy_aggregator(w3, 18, "ETH / USD (18)")
    source = ChainlinkSource("eth-18", "WETH", w3, address, interval_ns=10 * NS_PER_SECOND)
    push(3_000_123_456_789_012_345_678, UPDATED)
    assert [u.price for u in source.poll(0)] == [usd_units("3000.12345679")]
    push(3_100 * 10**18, UPDATED + 1)
    assert source.poll(9 * NS_PER_SECOND) == []       # within the read interval: no read at all
    assert [u.price for u in source.poll(10 * NS_PER_SECOND)] == [usd_units("3100")]


def test_unreadable_feed_is_logged_not_raised(caplog):
    w3 = connect()
    source = ChainlinkSource("nothing", "WBTC", w3, "0x" + "11" * 20)
    with caplog.at_level(logging.WARNING, logger="feeds.chainlink"):
        assert source.poll(0) == []
    assert "cannot read" in caplog.text
