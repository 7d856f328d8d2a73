"""The feeds config: the sample file parses and builds its sources; mistakes are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from feeds.clock import ManualClock
from feeds.config import FeedsConfigError, GbmSourceConfig, load_feeds_config
from feeds.process import build_source

SAMPLE = Path(__file__).resolve().parents[2] / "configs" / "feeds.toml"


def test_sample_config_builds_its_sources():
    config, base = load_feeds_config(SAMPLE)
    sources = [build_source(entry, base, ManualClock(0)) for entry in config.sources]
    assert [s.asset for s in sources] == ["AMZNX", "AAPLX", "WBTC"]
    assert all(s.poll(0) for s in sources)           # every source has its first price at once
    gbm = next(e for e in config.sources if isinstance(e, GbmSourceConfig))
    assert gbm.rule().heartbeat_ns == 10 * 10**9


@pytest.mark.parametrize(("text", "match"), [
    ("[gateway]\nendpoint = 'x'\n", "key_file"),
    ("[gateway]\nendpoint='x'\nkey_file='k'\nserver_key_file='s'\n[[sources]]\nkind='gbm'\nname='a'\n"
     "asset='X'\nheartbeat_s=0\ninitial='1'\nsigma=0.1\nseed=1\n", "heartbeat_s"),
    ("[gateway]\nendpoint='x'\nkey_file='k'\nserver_key_file='s'\n[[sources]]\nkind='pyth'\nname='a'\n", "pyth"),
    ("[gateway]\nendpoint='x'\nkey_file='k'\nserver_key_file='s'\n[feeds]\nstale_state='wide'\n", "stale_state"),
])
def test_bad_configs_are_named(tmp_path, text, match):
    path = tmp_path / "feeds.toml"
    path.write_text(text)
    with pytest.raises(FeedsConfigError, match=match):
        load_feeds_config(path)
