"""``python -m feeds``: the session and price commands, in-process and once as a
real subprocess."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys

import pytest

from feeds.__main__ import COMMANDS, main
from feeds.everlasting import everlasting
from feeds.options import black_scholes


def run(capsys, *argv):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def usage_error(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        main(list(argv))
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(("at", "session", "next_change", "next_session"), [
    ("2026-11-26T15:00:00Z", "closed", "2026-11-27T01:00:00+00:00", "overnight"),      # Thanksgiving
    ("2026-11-27T12:00:00-05:00", "regular", "2026-11-27T18:00:00+00:00", "post"),     # early close at 13:00
    ("2026-11-27T18:00:00", "post", "2026-11-27T22:00:00+00:00", "closed"),             # no offset: UTC
    ("2026-11-30T03:00:00Z", "overnight", "2026-11-30T09:00:00+00:00", "pre"),
    ("2026-11-30T09:00:00Z", "pre", "2026-11-30T14:30:00+00:00", "regular"),
])
def test_session_command(capsys, at, session, next_change, next_session):
    out = run(capsys, "session", "XNYS", "--at", at)
    assert (out["session"], out["next_change"], out["next_session"]) == (session, next_change, next_session)


@pytest.mark.parametrize(("argv", "match"), [
    (("session", "XNYZ", "--at", "2026-11-26T15:00:00Z"), "XNYZ"),
    (("session", "XNYS", "--at", "2026-13-01"), "--at"),
    (("session", "XNYS", "--at", "1700-01-01"), "1900"),
    (("session", "XNYS"), "--at"),
    (("price", "--spot", "-1", "--strike", "100", "--vol", "0.5", "--right", "call", "--expiry-days", "30"), "spot"),
    (("price", "--spot", "100", "--strike", "100", "--vol", "0.5", "--right", "call"), "--expiry-days"),
    (("price", "--spot", "100", "--strike", "100", "--vol", "0.5", "--right", "call", "--expiry-days", "30",
      "--funding-days", "7"), "not allowed"),
    (("price", "--spot", "100", "--strike", "100", "--vol", "0.5", "--right", "call", "--funding-days", "7",
      "--rate", "0.05"), "--rate"),
    (("price", "--spot", "100", "--strike", "100", "--vol", "0", "--right", "put", "--funding-days", "7"), "vol"),
    (("price", "--spot", "nan", "--strike", "100", "--vol", "0.5", "--right", "put", "--funding-days", "7"), "spot"),
    (("bogus",), "invalid choice"),
])
def test_bad_arguments_are_usage_errors_with_a_reason(capsys, argv, match):
    assert match in usage_error(capsys, *argv)


def test_price_dated_series_is_black_scholes(capsys):
    out = run(capsys, "price", "--spot", "42", "--strike", "40", "--vol", "0.2", "--right", "put",
              "--expiry-days", "182.5", "--rate", "0.1")
    expected = black_scholes(42.0, 40.0, 0.5, 0.2, 0.1, False)
    assert out["model"] == "black-scholes" and round(out["mark"], 2) == 0.81  # Hull's example
    assert [out[k] for k in ("mark", "delta", "gamma", "vega", "theta")] == [float(x) for x in expected]
    assert run(capsys, "price", "--spot", "42", "--strike", "40", "--vol", "0.2", "--right", "put",
               "--expiry-days", "182.5")["rate"] == 0.0


def test_price_funding_days_is_the_everlasting_form(capsys):
    out = run(capsys, "price", "--spot", "100", "--strike", "100", "--vol", "0.5", "--right", "call",
              "--funding-days", "7")
    assert out["model"] == "everlasting"
    assert out["mark"] == pytest.approx(100 / math.sqrt(1 + 8 / (0.25 * 7 / 365)), rel=1e-15)
    expected = everlasting(100.0, 100.0, 0.5, 7 / 365, True)
    assert [out[k] for k in expected._fields] == [float(x) for x in expected]


def test_every_command_module_has_the_interface():
    for module_name, help_text in COMMANDS.values():
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run) and help_text


def test_python_dash_m_feeds_prints_json():
    result = subprocess.run([sys.executable, "-m", "feeds", "price", "--spot", "100", "--strike", "90",
                             "--vol", "0.6", "--right", "put", "--funding-days", "3"],
                            capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(result.stdout)["mark"] > 0
