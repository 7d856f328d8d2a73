"""bench/ab.py: medians, ratios, missing figures and failing runs, on fabricated results."""

import pytest

from bench.ab import ABError, Row, compare, format_table, median_of, run_suite


def core(batch, percommand, risk, margin, lobster=None):
    run = {"batch_cmds_per_s": batch, "percommand_cmds_per_s": percommand, "batch_risk_ratio": risk,
           "margin_ratio": margin, "run": "quick"}
    if lobster is not None:
        run["lobster_msgs_per_s"] = lobster
    return run


def test_median_of_skips_runs_without_the_figure():
    runs = [{"x": 3}, {"x": 1.0}, {"y": 7}, {"x": "text"}, {"x": True}, {"x": 2}]
    assert median_of(runs, "x") == 2
    assert median_of(runs, "z") is None
    assert median_of([], "x") is None


def test_compare_gives_medians_and_new_over_old():
    old = {"core": [core(100, 10, 0.8, 0.9, 50), core(300, 30, 0.6, 0.7, 70), core(200, 20, 0.7, 0.8, 60)],
           "gateway": [{"tcp_orders_per_s": 1000, "ipc_orders_per_s": 1500}]}
    new = {"core": [core(400, 20, 0.8, 0.9, 90), core(400, 40, 0.8, 0.9, 90), core(400, 30, 0.8, 0.9, 90)],
           "gateway": [{"tcp_orders_per_s": 500, "ipc_orders_per_s": 3000}]}
    rows = {row.label: row for row in compare(old, new)}
    assert list(rows) == ["core batch cmds/s", "per-command cmds/s", "risk-on ratio", "margin-check ratio",
                          "LOBSTER msgs/s", "gateway orders/s (tcp)", "gateway orders/s (ipc)"]
    assert rows["core batch cmds/s"] == Row("core batch cmds/s", 200, 400)
    assert rows["core batch cmds/s"].ratio == 2.0
    assert rows["per-command cmds/s"].ratio == 1.5
    assert rows["risk-on ratio"].old == pytest.approx(0.7)
    assert rows["LOBSTER msgs/s"].ratio == 1.5
    assert rows["gateway orders/s (tcp)"].ratio == 0.5
    assert rows["gateway orders/s (ipc)"].ratio == 2.0


def test_a_figure_one_build_lacks_is_na():
    old = {"core": [{"batch_cmds_per_s": 100}], "gateway": []}
    new = {"core": [core(200, 20, 0.8, 0.9)], "gateway": [{"tcp_orders_per_s": 10}]}
    rows = {row.label: row for row in compare(old, new)}
    assert "LOBSTER msgs/s" not in rows and "gateway orders/s (ipc)" not in rows  # optional, nobody has it
    assert rows["margin-check ratio"] == Row("margin-check ratio", None, 0.9)
    assert rows["margin-check ratio"].ratio is None
    assert rows["gateway orders/s (tcp)"].ratio is None
    assert Row("x", 0, 5).ratio is None
    table = format_table(list(rows.values()))
    lines = table.splitlines()
    assert lines[0].split() == ["figure", "old", "(median)", "new", "(median)", "new/old"]
    margin = next(line for line in lines if line.startswith("margin-check ratio"))
    assert margin.split()[-3:] == ["n/a", "0.90", "n/a"]
    batch = next(line for line in lines if line.startswith("core batch cmds/s"))
    assert batch.split()[-3:] == ["100", "200", "2.00"]
    assert len({len(line) for line in lines}) == 1  # aligned columns


def test_a_failing_run_reports_its_stderr_tail(tmp_path):
    tree = tmp_path / "tree"
    (tree / "bench").mkdir(parents=True)
    (tree / "bench" / "__init__.py").write_text("")
    (tree / "bench" / "__main__.py").write_text(
        "import sys\nprint('\\n'.join(f'line {i}' for i in range(50)), file=sys.stderr)\n"
        "sys.exit('the core is not built')\n")
    with pytest.raises(ABError) as failure:
        run_suite(tree, "core", tmp_path)
    message = str(failure.value)
    assert "exit code 1" in message and "the core is not built" in message
    assert "line 49" in message and "line 10\n" not in message
    assert "python -m bench core --quick" in message


def test_a_run_without_json_is_an_error(tmp_path):
    tree = tmp_path / "tree"
    (tree / "bench").mkdir(parents=True)
    (tree / "bench" / "__init__.py").write_text("")
    (tree / "bench" / "__main__.py").write_text("print('nothing written')\n")
    with pytest.raises(ABError, match="no readable JSON"):
        run_suite(tree, "gateway", tmp_path)
