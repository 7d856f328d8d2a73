"""Gas per settled fill (issue 11 part 7): a batch of 10,000 fills over 100 accounts costs at
most 300 gas of execution a fill once its epoch's checkpoints are written, on anvil under the
Cancun rules where gas splits exactly into intrinsic, calldata and execution
(bench/settlement.py). Gas is deterministic for the seeded fills, so these are exact checks,
not timings. The figure before packed balances was 497 gas a fill."""

from __future__ import annotations

from conftest import requires_anvil

from bench.settlement import measure_gas


def test_ten_thousand_fills_over_a_hundred_accounts_cost_at_most_300_gas_of_execution_a_fill():
    requires_anvil()
    results = measure_gas([10_000], [100], log=lambda _line: None)
    steady = results["exec_per_fill_10000_100"]
    first = results["exec_first_per_fill_10000_100"]
    assert steady <= 300, f"{steady} gas of execution a fill"
    # The epoch's first batch also writes each touched slot's checkpoint (the last
    # unchallenged state, part 2): one extra storage write per (wallet, slot), so it costs
    # more, but less than two steady batches.
    assert steady < first < 2 * steady
    # Publishing the fills costs calldata beside execution: 84 bytes a fill.
    assert 84 * 4 <= results["fills_calldata_per_fill_10000_100"] <= 84 * 16
