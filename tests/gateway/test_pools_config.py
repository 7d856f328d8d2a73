"""The [pools] table (engine/pools_config.py): a main pool's terms become part of
the venue definition and the engine built from it; wrong terms are refused with
the reason; a venue without a main pool writes the genesis bytes it wrote
before pools existed; load_pools reads the table alone."""

from __future__ import annotations

import pytest
from gateway_harness import venue_doc

from engine.config import ConfigError, decode_venue, encode_venue, load_config, to_toml
from engine.pools_config import PoolsSection, load_pools
from engine.venue import build_engine

MAIN = {"asset": "USDC", "share_asset": "MPS", "nav_window": 6, "cooldown_s": 60, "withdrawal_fee_bps": 5,
        "equity_multiplier_bps": 15_000}


def _config(tmp_path, keys, pools=None, share_decimals=6):
    doc = venue_doc(keys, tmp_path / "journal")
    doc["assets"] = [*doc["assets"], {"symbol": "MPS", "decimals": 6, "ledger_decimals": share_decimals}]
    if pools is not None:
        doc["pools"] = pools
    path = tmp_path / "venue.toml"
    path.write_text(to_toml(doc))
    return path


def test_a_main_pool_is_part_of_the_venue_definition_and_of_the_engine(tmp_path, keys):
    config = load_config(_config(tmp_path, keys, {"main_account": 4, "insurance_account": 3, "main": MAIN}))
    terms = config.venue.main_pool
    assert (terms.account, terms.asset, terms.share_asset, terms.cooldown_ns) == (4, 0, 4, 60 * 10**9)
    assert terms.deposit_cooldown_ns == 3_600 * 10**9                  # the default: one hour
    assert decode_venue(encode_venue(config.venue)) == config.venue
    info = build_engine(config.venue).pool_info()
    assert (info.account, info.share_asset, info.withdrawal_fee_bps, info.equity_multiplier_bps) == (4, 4, 5, 15_000)
    assert info.deposit_cooldown_ns == 3_600 * 10**9
    pools = load_pools(config.path)
    assert (pools.main_account, pools.insurance_account) == (4, 3)


def test_a_genesis_written_before_deposit_requests_decodes_without_a_deposit_cooldown(tmp_path, keys):
    import msgspec

    config = load_config(_config(tmp_path, keys, {"main_account": 4, "main": MAIN}))
    fields = msgspec.to_builtins(config.venue)
    del fields["main_pool"]["deposit_cooldown_ns"]
    old = decode_venue(msgspec.msgpack.encode(fields))
    assert old.main_pool.deposit_cooldown_ns == 0
    assert build_engine(old).pool_info().deposit_cooldown_ns == 0


def test_without_a_main_pool_the_genesis_is_what_it_was(tmp_path, keys):
    config = load_config(_config(tmp_path, keys, {"insurance_account": 3}))
    assert config.venue.main_pool is None
    assert b"main_pool" not in encode_venue(config.venue)
    assert decode_venue(encode_venue(config.venue)) == config.venue
    assert load_pools(_config(tmp_path, keys)) == PoolsSection()


@pytest.mark.parametrize("pools, decimals, message", [
    ({"main": MAIN}, 6, "needs \\[pools\\] main_account"),
    ({"main_account": 9, "main": {**MAIN, "share_asset": "NOPE"}}, 6, "not a listed asset"),
    ({"main_account": 9, "main": {**MAIN, "share_asset": "USDC"}}, 6, "must differ"),
    ({"main_account": 9, "main": MAIN}, 8, "ledger_decimals"),
    ({"main_account": 9, "main": {**MAIN, "withdrawal_fee_bps": 10_000}}, 6, "withdrawal_fee_bps"),
    ({"main_account": 9, "main": {**MAIN, "nav_window": -1}}, 6, "nav_window"),
    ({"main_account": 9, "main": {**MAIN, "cooldown_s": -5}}, 6, "cooldown_s"),
    ({"main_account": 9, "main": {**MAIN, "deposit_cooldown_s": -5}}, 6, "deposit_cooldown_s"),
    ({"main_account": 9, "main": {**MAIN, "equity_multiplier_bps": -1}}, 6, "equity_multiplier_bps"),
    ({"main_account": 0, "main": MAIN}, 6, "other than the fee account"),
    ({"main_account": 9, "main": {**MAIN, "surprise": 1}}, 6, "surprise"),
])
def test_wrong_pool_terms_are_refused_with_the_reason(tmp_path, keys, pools, decimals, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, keys, pools, decimals))
