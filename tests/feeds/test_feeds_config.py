"""The feeds config: the sample file parses and builds its sources, surfaces, stock
tokens, sessions and liquidator; mistakes are named."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from feeds.clock import ManualClock
from feeds.config import FeedsConfigError, GbmSourceConfig, load_feeds_config
from feeds.liquidator import LiquidationSettings
from feeds.process import build_source

SAMPLE = Path(__file__).resolve().parents[2] / "configs" / "feeds.toml"


def test_sample_config_builds_its_sources():
    config, base = load_feeds_config(SAMPLE)
    sources = [build_source(entry, base, ManualClock(0)) for entry in config.sources]
    assert [s.asset for s in sources] == ["AMZNX", "AAPLX", "WBTC"]
    assert all(s.poll(0) for s in sources)           # every source has its first price at once
    gbm = next(e for e in config.sources if isinstance(e, GbmSourceConfig))
    assert gbm.rule().heartbeat_ns == 10 * 10**9
    surface = config.options.surfaces[0]
    assert (surface.underlying, surface.at("2026-12-31"), surface.at("2027-03-26")) == ("WBTC", 0.65, 0.6)
    assert [t.token().current for t in config.stock_tokens] == [Fraction(1), Fraction(1)]
    assert config.sessions is not None and config.sessions.start == date(2026, 1, 1)
    assert config.multipliers.rules().split_threshold_bps == 1000
    assert config.liquidations.settings() == LiquidationSettings(interval_ns=5 * 10**9,
                                                                 open_grace=timedelta(seconds=60))
    assert config.feeds.state_file == "../var/feeds-state.json"


_GATEWAY = "[gateway]\nendpoint='x'\nkey_file='k'\nserver_key_file='s'\n"


@pytest.mark.parametrize(("text", "match"), [
    ("[gateway]\nendpoint = 'x'\n", "key_file"),
    ("[gateway]\nendpoint='x'\nkey_file='k'\nserver_key_file='s'\n[[sources]]\nkind='gbm'\nname='a'\n"
     "asset='X'\nheartbeat_s=0\ninitial='1'\nsigma=0.1\nseed=1\n", "heartbeat_s"),
    ("[gateway]\nendpoint='x'\nkey_file='k'\nserver_key_file='s'\n[[sources]]\nkind='pyth'\nname='a'\n", "pyth"),
    ("[gateway]\nendpoint='x'\nkey_file='k'\nserver_key_file='s'\n[feeds]\nstale_state='wide'\n", "stale_state"),
    (_GATEWAY + "[[stock_tokens]]\nasset='A'\nstaged_multiplier='2'\n", "go together"),
    (_GATEWAY + "[[stock_tokens]]\nasset='A'\nmultiplier='x'\n", "not a decimal"),
    (_GATEWAY + "[[stock_tokens]]\nasset='A'\nmultiplier='0'\n", "positive"),
    (_GATEWAY + "[[stock_tokens]]\nasset='A'\nstaged_multiplier='2'\nactivates_at=2026-06-08T13:30:00\n",
     "timezone-aware"),
    (_GATEWAY + "[[stock_tokens]]\nasset='A'\n[[stock_tokens]]\nasset='A'\n", "twice"),
    (_GATEWAY + "[[options.surfaces]]\nunderlying='WBTC'\nvol=-0.1\n", "not negative"),
    (_GATEWAY + "[[options.surfaces]]\nunderlying='WBTC'\nvol=0.5\nexpiries={'2026-13-01'=0.6}\n", "ISO date"),
    (_GATEWAY + "[options]\nmargin={initial_base=0.1, initial_min=0.2}\n", "min_rate|initial_min"),
    (_GATEWAY + "[sessions]\nstart=2026-01-01\n", "end"),
    (_GATEWAY + "[sessions]\nstart=2026-02-01\nend=2026-01-01\n", "before start"),
    (_GATEWAY + "[sessions]\nexchange='XNOPE'\nstart=2026-01-01\nend=2026-02-01\n", "exchange_calendars code"),
    (_GATEWAY + "[sessions]\nstart=2026-01-01\nend=2026-02-01\npolicies={regular={band_bps=0, haircut_bps=1}}\n",
     "band_bps"),
    (_GATEWAY + "[liquidations]\nenabled=true\ninterval_ms=0\n", "interval must be positive"),
    (_GATEWAY + "[liquidations]\nenabled=true\nopen_grace_s=-1\n", "open grace not negative"),
    (_GATEWAY + "[liquidations]\nenable=true\n", "enable"),
])
def test_bad_configs_are_named(tmp_path, text, match):
    path = tmp_path / "feeds.toml"
    path.write_text(text)
    with pytest.raises(FeedsConfigError, match=match):
        load_feeds_config(path)
