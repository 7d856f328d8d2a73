"""Option greeks through a real gateway process: an operator publishes a
series' greeks, a trader's GetChain returns them beside the series' mark and
open interest; bad publications are refused with their reason; publishing
sequences nothing (the state hash and seq stay), and after a restart the
greeks are unknown while marks and open interest replay."""

from __future__ import annotations

import math

import pytest
from gateway_harness import PUT_SPEC, venue_doc, write_venue

from engine.core.types import Reject as Code
from engine.core.types import Side
from engine.gateway.process import GatewayProcess
from engine.schemas import Ack, GatewayReject, Reject
from engine.schemas_greeks import MAX_GREEKS_ENTRIES, GreeksPublished, SeriesGreeks
from engine.schemas_options import Chain

AMZN, PUT = 0, 3           # the configured spot pair and put
TSLA_ASSET = 2
MARK = 146_200             # PUT_SPEC's reference price, $14.62


@pytest.fixture(scope="module")
def venue(tmp_path_factory, keys):
    directory = tmp_path_factory.mktemp("greeks")
    spot = venue_doc(keys, directory / "journal")["instruments"]
    return write_venue(directory, keys, instruments=[*spot, PUT_SPEC]), directory


def test_published_greeks_reach_a_traders_chain_and_are_gone_after_a_restart(venue, clients):
    path, directory = venue
    greeks = SeriesGreeks(PUT, -0.312, 0.0071, 61.25, -29.5, 0.55)
    with GatewayProcess(path, directory / "gateway.log") as gw:
        ops, mm, retail = (clients(gw, n) for n in ("ops", "mm", "retail"))
        assert mm.chain(TSLA_ASSET).series[0].greeks is None          # never published
        denied = retail.publish_greeks([greeks])
        assert isinstance(denied, Reject) and denied.code == GatewayReject.NOT_AUTHORIZED
        before = ops.status()
        published = ops.publish_greeks([greeks])
        assert isinstance(published, GreeksPublished) and published.count == 1 and published.ts > 0
        after = ops.status()
        assert (after.last_seq, after.state_hash) == (before.last_seq, before.state_hash)   # not engine state

        assert isinstance(mm.place(PUT, Side.SELL, 100, MARK), Ack)
        assert isinstance(retail.place(PUT, Side.BUY, 100, MARK), Ack)
        chain = retail.chain(TSLA_ASSET)
        assert isinstance(chain, Chain) and [s.instrument for s in chain.series] == [PUT]
        put = chain.series[0]
        assert (put.mark, put.open_interest, put.status) == (MARK, 100, 0)
        assert (put.greeks, put.greeks_ts) == (greeks, published.ts)
        state = ops.status().state_hash

    with GatewayProcess(path, directory / "gateway2.log") as gw:
        ops, mm = clients(gw, "ops"), clients(gw, "mm")
        assert ops.status().state_hash == state
        put = mm.chain(TSLA_ASSET).series[0]
        assert (put.mark, put.open_interest, put.greeks, put.greeks_ts) == (MARK, 100, None, 0)


REFUSED = [
    ([SeriesGreeks(99, 0.5, 0.01, 10.0, -1.0, 0.5)], Code.UNKNOWN_INSTRUMENT, "entry 0 (instrument 99)"),
    ([SeriesGreeks(AMZN, 1.0, 0.0, 0.0, 0.0, 0.0)], Code.NOT_AN_OPTION, f"entry 0 (instrument {AMZN})"),
    ([SeriesGreeks(PUT, math.nan, 0.01, 10.0, -1.0, 0.5)], GatewayReject.MALFORMED, "delta not finite"),
    ([SeriesGreeks(PUT, 0.5, 0.01, 10.0, -math.inf, 0.5)], GatewayReject.MALFORMED, "theta not finite"),
    ([SeriesGreeks(PUT, -0.3, 0.01, 10.0, -1.0, 0.5)] * (MAX_GREEKS_ENTRIES + 1), GatewayReject.CHAIN_TOO_LARGE,
     f"{MAX_GREEKS_ENTRIES + 1} entries"),
]


def test_bad_publications_are_refused_with_their_reason(venue, clients):
    path, directory = venue
    with GatewayProcess(path, directory / "gateway-rejects.log") as gw:
        ops = clients(gw, "ops")
        for entries, code, says in REFUSED:
            refused = ops.publish_greeks(entries)
            assert isinstance(refused, Reject) and refused.code == code and says in refused.text, refused
        assert ops.chain(TSLA_ASSET).series[0].greeks is None
