"""bench/options.py on its tiny sizes: the JSON it writes has every figure and
its baseline (no timing is asserted: figures come from `python -m bench options`)."""

import json

from bench.options import main

KEYS = ("chain_marks_per_s", "chain_bs_marks_per_s", "margin_check_p50_ns", "margin_check_p99_ns",
        "margin_baseline_p50_ns", "margin_baseline_p99_ns", "option_orders_per_s", "spot_orders_per_s",
        "funding_positions_per_s", "funding_baseline_positions_per_s", "quote_refresh_p50_ms", "quote_refresh_p99_ms",
        "quote_cancel_replace_p50_ms", "quote_cancel_replace_p99_ms", "quote_one_per_message_p50_ms",
        "quote_one_per_message_p99_ms")


def test_bench_options_writes_every_figure(tmp_path, capsys):
    path = tmp_path / "options.json"
    assert main(["--tiny", "--json", str(path)]) == 0
    results = json.loads(path.read_text())
    for key in KEYS:
        assert isinstance(results[key], (int, float)) and results[key] > 0, key
    assert results["margin_check_p50_ns"] <= results["margin_check_p99_ns"]
    assert results["chain_series"] == 1_000 and results["margin_portfolio_positions"] == 50
    assert results["quote_series"] == 200
    assert "funding, positions settled/s" in capsys.readouterr().out
