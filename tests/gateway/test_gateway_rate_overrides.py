"""Per-account rate overrides through a real gateway process: an account's
``rates`` table (a market maker's) replaces the [gateway] message and request
rates for its sessions, everyone else keeps the defaults and is refused
RATE_LIMITED as before; a bad override stops the gateway at start with a
readable error."""

from __future__ import annotations

import re

import pytest
from gateway_harness import venue_doc

from engine.config import GatewaySection, RateOverrides, load_config, to_toml
from engine.gateway.limits import SessionLimits
from engine.gateway.process import GatewayProcess
from engine.schemas import REQUEST_ENCODER, GatewayReject, Heartbeat, Pong, Reject

DEFAULTS = {"max_messages_per_s": 200, "max_requests_per_s": 1_000, "max_query_items_per_s": 2_000}
MAKER_RATES = {"max_messages_per_s": 5_000, "max_requests_per_s": 5_000}
BURST = 1_500   # messages: past the default's burst of 200, within the maker's 5,000


def _venue(tmp_path, keys, maker_rates: dict):
    doc = venue_doc(keys, tmp_path / "journal", gateway=DEFAULTS)
    doc["accounts"][0]["rates"] = maker_rates           # account 1, "mm"
    path = tmp_path / "venue.toml"
    path.write_text(to_toml(doc))
    return path


def _flood(client, messages: int) -> list:
    one = REQUEST_ENCODER.encode([Heartbeat(0)])
    for _ in range(messages):
        client.socket.send(one)
    replies = []
    while len(replies) < messages:
        replies += client.recv(20.0)
    return replies


def test_an_overridden_maker_is_not_throttled_where_a_default_client_is(tmp_path, keys, clients):
    with GatewayProcess(_venue(tmp_path, keys, MAKER_RATES), tmp_path / "gateway.log") as gw:
        mm, retail = clients(gw, "mm"), clients(gw, "retail")
        retail_replies = _flood(retail, BURST)
        limited = [r for r in retail_replies if isinstance(r, Reject)]
        assert limited and {r.code for r in limited} == {GatewayReject.RATE_LIMITED}
        assert "more than 200 messages a second" in limited[0].text
        mm_replies = _flood(mm, BURST)
        assert all(isinstance(r, Pong) for r in mm_replies), [r for r in mm_replies if isinstance(r, Reject)][:1]
        # The override is the maker's own: requests stay at its rate, not unlimited.
        many = REQUEST_ENCODER.encode([Heartbeat(0)] * 250)   # max_requests_per_message: 256
        for _ in range(100):   # 25,000 requests: five seconds' worth
            mm.socket.send(many)
        refused = []
        try:
            while True:
                refused += [r for r in mm.recv(1.0) if isinstance(r, Reject)]
        except TimeoutError:
            pass
        assert refused and all("more than 5000 requests a second" in r.text for r in refused)


@pytest.mark.parametrize("rates, message", [
    ({"max_messages_per_s": 0}, "account 1 \\(mm\\): rates.max_messages_per_s must be positive, not 0"),
    ({"max_requests_per_s": -5}, "account 1 \\(mm\\): rates.max_requests_per_s must be positive, not -5"),
    ({"max_mesages_per_s": 10}, "unknown field `max_mesages_per_s`.*accounts\\[0\\].rates"),
])
def test_a_bad_override_stops_the_gateway_at_start(tmp_path, keys, rates, message):
    log = tmp_path / "gateway.log"
    with pytest.raises(RuntimeError, match="did not become ready"):
        GatewayProcess(_venue(tmp_path, keys, rates), log, timeout=30)
    assert re.search(message, log.read_text()), log.read_text()[-500:]


def test_overrides_replace_only_the_rates_they_name(tmp_path, keys):
    principals = {p.name: p for p in load_config(_venue(tmp_path, keys, MAKER_RATES)).principals.values()}
    defaults = GatewaySection(**DEFAULTS)
    maker, retail = (SessionLimits(defaults, principals[n].rates) for n in ("mm", "retail"))
    assert (maker.messages.rate, maker.requests.rate, maker.query_items.rate) == (5_000, 5_000, 2_000)
    assert (retail.messages.rate, retail.requests.rate, retail.query_items.rate) == (200, 1_000, 2_000)
    assert RateOverrides().over(defaults) == DEFAULTS
