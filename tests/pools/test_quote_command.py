"""``python -m pools quote`` as a process: a bad config or a venue that does not
match it is refused with a readable message (exit 2), SIGTERM stops it leaving
no quote, and configs/pools.toml parses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from quoter_harness import POOL, client, publish, write_pools, write_venue

from engine.config import to_toml
from engine.gateway.process import GatewayProcess
from pools.quoter_config import PoolsConfigError, load_pools_config

ROOT = Path(__file__).resolve().parents[2]


def quote_process(config: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "pools", "quote", "--config", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_sample_config_parses():
    config, base = load_pools_config(ROOT / "configs" / "pools.toml")
    assert base == ROOT / "configs"
    assert [u.spot for u in config.underlyings] == ["TSLA.M/USDC"]


@pytest.mark.parametrize(("change", "message"), [
    ({"quotes": {"size": 0.0}}, "quotes: size must be a finite number above 0"),
    ({"quotes": {"min_half_ticks": 0}}, "quotes: min_half_ticks must be at least 1"),
    ({"quoter": {"interval_ms": -5}}, "quoter: interval_ms and stale_after_ms must be positive"),
    ({"underlying": {"hedge_threshold": -1.0}}, "underlyings TSLA.M: hedge_threshold must be a finite number"),
    ({"quotes": {"spread": 3}}, "unknown field `spread`"),
])
def test_bad_config_is_refused_with_a_readable_message(tmp_path, change, message):
    path = write_pools(tmp_path, "tcp://127.0.0.1:1", tmp_path, **change)
    with pytest.raises(PoolsConfigError, match=message.replace("(", r"\(")):
        load_pools_config(path)


def test_cli_refuses_a_bad_config_and_a_mismatched_venue(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text(to_toml({"gateway": {"endpoint": "tcp://127.0.0.1:1", "key_file": "k", "server_key_file": "s"},
                              "quoter": {"account": 1}}))
    proc = quote_process(empty)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "underlyings: name at least one underlying" in err
    path, keys = write_venue(tmp_path / "venue")
    with GatewayProcess(path, tmp_path / "gateway.log") as gw:
        proc = quote_process(write_pools(tmp_path, gw.orders, keys, quoter={"account": 2}))
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and "bound to account 1, not to the pool account 2" in err
        missing = write_pools(tmp_path, gw.orders, keys, gateway={"key_file": str(tmp_path / "nope.key_secret")})
        proc = quote_process(missing)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 2 and "gateway keys" in err


def test_sigterm_stops_the_process_leaving_no_quote(tmp_path):
    path, keys = write_venue(tmp_path / "venue")
    with GatewayProcess(path, tmp_path / "gateway.log") as gw, client(gw.orders, keys, "ops") as ops:
        publish(ops)
        proc = quote_process(write_pools(tmp_path, gw.orders, keys))
        try:
            assert proc.stdout.readline().strip() == "quoting"
            deadline = time.monotonic() + 30
            while len(ops.open_orders(POOL).orders) < 4:
                assert time.monotonic() < deadline, "no quotes within 30 s"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert proc.returncode == 0, err
        assert ops.open_orders(POOL).orders == []
