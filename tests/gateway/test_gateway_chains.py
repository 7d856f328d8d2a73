"""Option chains through a real gateway process: an operator lists a chain in
one request (one journaled LIST_SERIES per series), anyone reads it back with
marks, margins and open interest, a holder covers calls it sells, series
without open interest are delisted and the others refused, the new series
trade and publish market data, and a restart replays it all."""

from __future__ import annotations

import pytest
from gateway_harness import ACCOUNTS, PUT_SPEC, venue_doc, write_venue

from engine.core.order_info import PositionInfo
from engine.core.types import Reject as Code
from engine.core.types import Side
from engine.gateway.process import GatewayProcess
from engine.schemas import Ack, GatewayReject, Reject
from engine.schemas_options import MAX_CHAIN_SERIES, Chain, CoveringSet, SeriesClosed, SeriesListed

PUT = 3                    # the configured put: the chain's template
TSLA_ASSET = 2
SHARE = 10**6              # TSLA.M ledger units


@pytest.fixture(scope="module")
def venue(tmp_path_factory, keys):
    directory = tmp_path_factory.mktemp("chains")
    base = venue_doc(keys, directory / "journal")
    base["assets"][TSLA_ASSET] = {**base["assets"][TSLA_ASSET], "haircut_bps": 3_000, "usd_price": "250"}
    return write_venue(directory, keys, assets=base["assets"], instruments=base["instruments"] + [PUT_SPEC]), directory


def test_a_chain_is_listed_read_covered_and_delisted(venue, clients):
    path, directory = venue
    poor = ACCOUNTS["poor"]
    with GatewayProcess(path, directory / "gateway.log") as gw:
        ops, mm, holder = (clients(gw, n) for n in ("ops", "mm", "poor"))
        denied = mm.list_chain(PUT, [20261218], [2_600_000], [1], SHARE)
        assert isinstance(denied[0], Reject) and denied[0].code == GatewayReject.NOT_AUTHORIZED
        listed = ops.list_chain(PUT, [20261218, 20270115], [2_500_000, 2_600_000], [1, 2], SHARE)
        assert len(listed) == 8
        assert isinstance(listed[1], Reject) and listed[1].code == Code.SERIES_EXISTS     # the 250 put
        new = [r for r in listed if isinstance(r, SeriesListed)]
        assert [r.instrument for r in new] == list(range(4, 11))
        assert (new[0].right, new[0].expiry, new[0].strike, new[0].contract) == (1, 20261218, 2_500_000, SHARE)
        too_many = ops.list_chain(PUT, list(range(20270101, 20270111)), list(range(1, 102)), [1], SHARE)
        assert len(too_many) == 1 and too_many[0].code == GatewayReject.CHAIN_TOO_LARGE
        assert 10 * 101 > MAX_CHAIN_SERIES

        call = new[0].instrument                                      # TSLA.M-20261218-250-C
        chain = mm.chain(TSLA_ASSET)
        assert isinstance(chain, Chain) and [s.instrument for s in chain.series] == [PUT, *range(4, 11)]
        put = chain.series[0]
        assert (put.symbol, put.mark, put.initial, put.maintenance, put.open_interest, put.status) == (
            "TSLA.M-20261218-250-P", 146_200, 52_130_000, 39_630_000, 0, 0)
        assert chain.series[1].symbol == "TSLA.M-20261218-250-C" and chain.series[1].initial == 0

        # The new call trades once the feed (here the operator) sets its margins; the holder covers.
        ops.set_option_risk(call, 600 * 10**6, 500 * 10**6)           # $600 a contract: more than a share backs
        assert ops.credit(poor, TSLA_ASSET, 2 * SHARE, deposit_id=1).total == 2 * SHARE
        naked = holder.place(call, Side.SELL, 100, 100_000)
        assert isinstance(naked, Reject) and naked.code == Code.INSUFFICIENT_MARGIN
        covering = holder.cover_calls()
        assert isinstance(covering, CoveringSet) and (covering.account, covering.covering) == (poor, 1)
        assert isinstance(holder.place(call, Side.SELL, 200, 100_000), Ack)
        assert isinstance(mm.place(call, Side.BUY, 200, 100_000), Ack)
        balances = holder.balances().balances[TSLA_ASSET]
        assert (balances.total, balances.reserved) == (2 * SHARE, 2 * SHARE)
        denied = holder.debit(poor, TSLA_ASSET, SHARE)
        assert isinstance(denied, Reject) and denied.code == Code.INSUFFICIENT_BALANCE
        premium = 200 * (100_000 // 100) * 100                        # as the put: tick 100, 100 units a tick
        assert holder.margin().positions == [PositionInfo(call, -200, 0, 0, -premium)]   # its cost: received
        assert mm.chain(TSLA_ASSET).series[1].open_interest == 200

        refused = ops.close_series(call)
        assert isinstance(refused, Reject) and refused.code == Code.OPEN_INTEREST
        early = ops.close_series(call, 2_700_000)
        assert isinstance(early, Reject) and early.code == Code.NOT_EXPIRED
        last = new[-1].instrument
        delisted = ops.close_series(last)
        assert isinstance(delisted, SeriesClosed) and (delisted.instrument, delisted.status) == (last, 2)
        closed = holder.place(last, Side.BUY, 100, 100_000)
        assert isinstance(closed, Reject) and closed.code == Code.INSTRUMENT_CLOSED
        assert mm.chain(TSLA_ASSET).series[-1].status == 2
        state = ops.status().state_hash

    with GatewayProcess(path, directory / "gateway2.log") as gw:
        ops, holder = clients(gw, "ops"), clients(gw, "poor")
        assert ops.status().state_hash == state
        assert [s.instrument for s in ops.chain(TSLA_ASSET).series] == [PUT, *range(4, 11)]
        assert holder.balances().balances[TSLA_ASSET].reserved == 2 * SHARE
