"""Venue configuration, genesis batch, key CLI."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
from gateway_harness import PUT_SPEC, venue_doc

from engine.config import ConfigError, load_config, to_toml
from engine.venue import build_engine, genesis_commands
from engine.core.types import CommandKind
from engine.keys import main as keys_main

SAMPLE = Path(__file__).resolve().parents[2] / "configs" / "venue.toml"


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "venue.toml"
    path.write_text(to_toml(doc))
    return path


def test_sample_config_loads_after_keys_init(tmp_path, capsys):
    config_path = tmp_path / "venue.toml"
    shutil.copy(SAMPLE, config_path)
    with pytest.raises(ConfigError, match="keys init"):
        load_config(config_path)
    assert keys_main(["init", "--config", str(config_path)]) == 0
    assert "created" in capsys.readouterr().out
    assert keys_main(["init", "--config", str(config_path)]) == 0  # idempotent
    assert capsys.readouterr().out == ""
    assert (tmp_path / "keys" / ".gitignore").read_text().strip().endswith("*.key_secret")
    config = load_config(config_path)
    assert [i.symbol for i in config.venue.instruments] == ["AMZNX/USDC", "AAPLX/USDC", "TSLA.M/USDC",
                                                             "NVDA.M/USDC", "BTC-20261231-100000-C",
                                                             "TSLA.M-20261218-250-P"]
    assert config.venue.instruments[4].option.right == "C" and config.venue.instruments[2].option is None
    assert config.venue.accounts == [1, 2, 3, 4]
    who = {p.user_id: p for p in config.principals.values()}
    assert set(who) == {"acct:market-maker", "acct:retail", "acct:fund", "acct:pool", "op:ops"}
    assert who["op:ops"].operator and who["op:ops"].account is None
    assert config.journal_path == (tmp_path / "../var/journal")
    public, secret = config.server_keys()
    assert len(public) == len(secret) == 40
    commands = genesis_commands(config)
    kinds = commands["kind"].tolist()
    assert kinds.count(CommandKind.SET_REFERENCE) == 6 and kinds.count(CommandKind.CREDIT) == 10
    assert kinds.count(CommandKind.SET_OPTION_RISK) == 2
    engine = build_engine(config.venue)
    events = engine.process(commands)
    assert (events["kind"] != 2).all()  # genesis is accepted as a whole
    assert engine.balances(1)[0] == (10_000_000 * 10**6, 0)
    assert engine.option_risk(4) == (11_797_960_000, 9_547_960_000)   # $11,797.96 / $9,547.96 per contract


def test_keys_show_and_generate(tmp_path, capsys):
    assert keys_main(["generate", str(tmp_path), "alice"]) == 0
    capsys.readouterr()
    assert keys_main(["show", str(tmp_path / "alice.key")]) == 0
    assert len(capsys.readouterr().out.strip()) == 40
    assert keys_main(["generate", str(tmp_path), "alice"]) == 1  # never overwrites a key
    assert (tmp_path / "alice.key_secret").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("change, message", [
    (lambda d: d["venue"].update(colour="red"), "unknown field"),
    (lambda d: d["accounts"].append({"id": 2, "public_keys": []}), "account 2 listed twice"),
    (lambda d: d["accounts"].append({"id": 900}), "outside"),
    (lambda d: d["accounts"].append({"id": 0}), "fee account"),
    (lambda d: d["instruments"][0].update(base="GOLD"), "must be listed assets"),
    (lambda d: d["instruments"][0].update(symbol="A|B"), "may only use"),
    (lambda d: d["instruments"][0].update(tick_size=0), "tick_size must be positive"),
    (lambda d: d["operators"].append({"name": "x", "public_keys": ["short"]}), "not 40 Z85"),
    (lambda d: d["operators"].append({"name": "y", "key_files": [d["accounts"][0]["key_files"][0]]}),
     "bound twice"),
    (lambda d: d["session"].update(timeout_ms=0), "timeout_ms must be positive"),
    (lambda d: d["journal"].update(fsync="sometimes"), "fsync"),
    (lambda d: d["journal"].update(snapshot_min_interval_s=-1), "snapshot_min_interval_s must be >= 0"),
    (lambda d: d["instruments"][0].update(initial_margin="10", maintenance_margin="5"), "margins are for option"),
    (lambda d: d["instruments"].append({k: v for k, v in PUT_SPEC.items() if k != "maintenance_margin"}), "give both"),
    (lambda d: d["instruments"].append({**PUT_SPEC, "option": {**PUT_SPEC["option"], "right": "X"}}), "right must be"),
    (lambda d: d["instruments"].append({**PUT_SPEC, "option": {**PUT_SPEC["option"], "expiry": "2026-13-01"}}),
     "not an ISO date"),
    (lambda d: d["instruments"].append({**PUT_SPEC, "option": {**PUT_SPEC["option"], "strike": "-1"}}),
     "strike must be positive"),
])
def test_config_errors_say_what_is_wrong(tmp_path, keys, change, message):
    doc = venue_doc(keys, tmp_path / "journal")
    change(doc)
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, doc))




@pytest.mark.parametrize("initial, maintenance, message", [
    ("52.13", "60", "maintenance_margin above initial_margin"),
    ("lots", "1", "not a decimal"),
    ("0", "0", "must be positive"),
    ("2000000000", "1", "above the engine's limit"),
])
def test_option_margins_in_the_config_are_checked(tmp_path, keys, initial, maintenance, message):
    doc = venue_doc(keys, tmp_path / "journal")
    doc["instruments"].append({**PUT_SPEC, "initial_margin": initial, "maintenance_margin": maintenance})
    with pytest.raises(ConfigError, match=message):
        genesis_commands(load_config(_write(tmp_path, doc)))


def test_genesis_rejects_inexact_amounts(tmp_path, keys):
    doc = venue_doc(keys, tmp_path / "journal")
    doc["instruments"][0]["reference_price"] = "185.000001"
    with pytest.raises(ConfigError, match="finer than one price unit"):
        genesis_commands(load_config(_write(tmp_path, doc)))
    doc = venue_doc(keys, tmp_path / "journal")
    doc["accounts"][0]["credit"] = {"USDC": "0.0000001"}
    with pytest.raises(ConfigError, match="finer than one ledger unit"):
        genesis_commands(load_config(_write(tmp_path, doc)))


def test_to_toml_round_trips(tmp_path, keys):
    doc = venue_doc(keys, tmp_path / "journal")
    assert tomllib.loads(to_toml(doc)) == doc
