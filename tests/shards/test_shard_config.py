"""The shards file: parsing, each shard's narrowed venue config, and bad files refused with their reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from shards_harness import shards_doc, write_venue

from engine.config import ConfigError, to_toml
from engine.keys import main as keys_main
from engine.shards import load_shards, shard_config
from engine.venue import genesis_commands


def _write(tmp_path, **changes):
    path = write_venue(tmp_path)
    doc = shards_doc(tmp_path / "journals")
    for key, value in changes.items():
        doc[key] = value
    path.write_text(to_toml(doc))
    return path


def test_shards_parse_and_narrow(tmp_path):
    shards = load_shards(write_venue(tmp_path))
    assert [s.name for s in shards.shards] == ["a", "b"]
    assert shards.shard_of_instrument() == {0: (0, 0), 2: (0, 1), 1: (1, 0)}
    assert shards.home == {1: 0, 2: 1}
    a, b = shard_config(shards, "a"), shard_config(shards, "b")
    assert [i.symbol for i in a.venue.instruments] == ["AMZNX/USDC", "NVDA.M/USDC"]
    assert [i.symbol for i in b.venue.instruments] == ["TSLA.M/USDC"]
    assert a.venue.assets == b.venue.assets == shards.venue.venue.assets
    assert a.venue.accounts == b.venue.accounts == [1, 2]
    assert a.journal_path == tmp_path / "journals" / "a"
    # opening credits only on the home shard
    credits = {name: sorted(int(r["account"]) for r in genesis_commands(cfg) if r["kind"] == 7)
               for name, cfg in (("a", a), ("b", b))}
    assert set(credits["a"]) == {1} and set(credits["b"]) == {2}


def _shard(name, instruments, journal):
    return {"name": name, "instruments": instruments, "journal": journal}


@pytest.mark.parametrize(("shards", "extra", "message"), [
    ([_shard("a", ["AMZNX/USDC", "TSLA.M/USDC"], "ja"), _shard("b", ["TSLA.M/USDC", "NVDA.M/USDC"], "jb")], {},
     "instrument TSLA.M/USDC is in shard a and in shard b"),
    ([_shard("a", ["AMZNX/USDC", "TSLA.M/USDC", "BTC/USDC"], "ja"), _shard("b", ["NVDA.M/USDC"], "jb")], {},
     "instrument 'BTC/USDC' is not in venue.toml"),
    ([_shard("a", ["AMZNX/USDC"], "ja"), _shard("b", ["NVDA.M/USDC"], "jb")], {},
     "instruments in no shard: TSLA.M/USDC"),
    ([_shard("a", ["AMZNX/USDC", "TSLA.M/USDC"], "ja"), _shard("a", ["NVDA.M/USDC"], "jb")], {},
     "shard a listed twice"),
    ([_shard("a", ["AMZNX/USDC", "TSLA.M/USDC"], "j"), _shard("b", ["NVDA.M/USDC"], "j")], {},
     "journal"),
    ([_shard("a", ["AMZNX/USDC", "TSLA.M/USDC", "NVDA.M/USDC"], "ja"), _shard("b", [], "jb")], {},
     "shard b has no instruments"),
    ([_shard("a", ["AMZNX/USDC", "TSLA.M/USDC", "NVDA.M/USDC"], "ja")], {"home": {"7": "a"}},
     "home: '7' is not an account id"),
    ([_shard("a", ["AMZNX/USDC", "TSLA.M/USDC", "NVDA.M/USDC"], "ja")], {"home": {"1": "z"}},
     "account 1: 'z' is not a shard"),
    ([_shard("a b", ["AMZNX/USDC", "TSLA.M/USDC", "NVDA.M/USDC"], "ja")], {"home_shard": "a b"},
     "may only use letters"),
    ([_shard(f"s{i}", ["AMZNX/USDC", "TSLA.M/USDC", "NVDA.M/USDC"] if i == 0 else [], f"j{i}") for i in range(17)],
     {}, "17 shards; at most 16"),
    ([{**_shard("a", ["AMZNX/USDC", "TSLA.M/USDC"], "ja"), "orders": ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"],
       "market_data": ["tcp://127.0.0.1:3", "tcp://127.0.0.1:4"]}, _shard("b", ["NVDA.M/USDC"], "jb")], {},
     'several gateways need journal_kind = "jetstream"'),
    ([{**_shard("a", ["AMZNX/USDC", "TSLA.M/USDC"], ""), "journal_kind": "jetstream",
       "orders": ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"]}, _shard("b", ["NVDA.M/USDC"], "jb")], {},
     "2 orders endpoints and 1 market_data endpoints"),
    ([{**_shard("a", ["AMZNX/USDC", "TSLA.M/USDC"], ""), "journal_kind": "jetstream", "stream": "s"},
      _shard("b", ["NVDA.M/USDC"], "jb")], {}, "a jetstream journal needs `stream` and `servers`"),
    ([{**_shard("a", ["AMZNX/USDC", "TSLA.M/USDC"], ""), "journal_kind": "jetstream", "stream": "s",
       "servers": ["nats://127.0.0.1:4222"]},
      {**_shard("b", ["NVDA.M/USDC"], ""), "journal_kind": "jetstream", "stream": "s",
       "servers": ["nats://127.0.0.1:4222"]}], {}, "stream s is another shard's"),
    ([_shard("a", ["AMZNX/USDC", "TSLA.M/USDC"], ""), _shard("b", ["NVDA.M/USDC"], "jb")], {},
     "a file journal needs `journal`"),
])
def test_bad_shards_refused(tmp_path, shards, extra, message):
    path = _write(tmp_path, shards=shards, **{"home": {}, **extra})
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_shards(path)


def test_unknown_field_and_unknown_shard_refused(tmp_path):
    path = _write(tmp_path, colour="blue")
    with pytest.raises(ConfigError, match="colour"):
        load_shards(path)
    shards = load_shards(write_venue(tmp_path))
    with pytest.raises(ConfigError, match="no shard named 'c'"):
        shard_config(shards, "c")
    with pytest.raises(ConfigError, match="shard a has 1 gateway\\(s\\); no replica 1"):
        shard_config(shards, "a", 1)


def test_jetstream_shard_narrows_to_its_stream_and_replica(tmp_path):
    """A JetStream shard: each gateway of it gets its own endpoints, the shard's stream and servers."""
    path = _write(tmp_path, shards=[
        {**_shard("a", ["AMZNX/USDC", "TSLA.M/USDC"], ""), "journal_kind": "jetstream", "stream": "shard-a",
         "servers": ["nats://127.0.0.1:4222"], "orders": ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"],
         "market_data": ["tcp://127.0.0.1:3", "tcp://127.0.0.1:4"]},
        _shard("b", ["NVDA.M/USDC"], "jb")])
    shards = load_shards(path)
    assert shards.shards[0].journal_path is None and shards.shards[1].journal_kind == "file"
    standby = shard_config(shards, "a", 1)
    assert (standby.journal.kind, standby.journal.stream, standby.journal.servers) == (
        "jetstream", "shard-a", ["nats://127.0.0.1:4222"])
    assert (standby.endpoints.orders, standby.endpoints.market_data) == ("tcp://127.0.0.1:2", "tcp://127.0.0.1:4")
    assert shard_config(shards, "b").journal.kind == "file"


def test_sample_shards_file_loads(tmp_path):
    """configs/shards.toml splits configs/venue.toml (keys created as `keys init` does)."""
    configs = Path(__file__).resolve().parents[2] / "configs"
    for name in ("venue.toml", "shards.toml"):
        shutil.copy(configs / name, tmp_path / name)
    assert keys_main(["init", "--config", str(tmp_path / "venue.toml")]) == 0
    shards = load_shards(tmp_path / "shards.toml")
    assert [s.name for s in shards.shards] == ["stocks", "options"]
    assert [i.symbol for i in shard_config(shards, "options").venue.instruments] == [
        "BTC-20261231-100000-C", "TSLA.M-20261218-250-P"]
