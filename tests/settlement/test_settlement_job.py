"""The batch job on the embedded EVM: batches, chain balances vs the engine's after every batch,
crash injection at every step, reorg and revert handling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from settlement_helpers import (
    AAPLX,
    GUARDIAN_KEY,
    INITIAL,
    USDC,
    Crash,
    Venue,
    assert_settled_exactly_once,
    expected_ledger,
    make_job,
    make_withdrawals,
    random_records,
    settle_all,
)

from settlement.chain import ReorgError, RevertError
from settlement.job import STEPS, JobError, JobStore, rebuild_batch
from settlement.exits import ExitQueue
from settlement.records import FREEZE_DTYPE, WITHDRAWAL_DTYPE
from settlement.source import RecordFileSource


def test_job_settles_in_batches_and_chain_matches_engine_after_each(venue, tmp_path):
    fills, withdrawals = random_records(1, 30, 4)
    source = RecordFileSource(tmp_path / "source")
    job = make_job(venue, source, tmp_path / "state")
    for chunk in range(3):
        part_f = fills[fills["fill_id"] <= np.uint64(fills["fill_id"][(chunk + 1) * 10 - 1])]
        part_w = withdrawals[withdrawals["withdrawal_id"] <= part_f["fill_id"][-1]]
        source.append(part_f[len(source.read(0, 10**9)[0]):], part_w[len(source.read(0, 10**9)[1]):])
        settle_all(job)
        assert venue.ledger() == expected_ledger(part_f, part_w)
    assert_settled_exactly_once(venue, job, fills, withdrawals)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), n_fills=st.integers(1, 16), n_withdrawals=st.integers(0, 3),
       max_records=st.integers(2, 8))
def test_chain_balances_equal_engine_balances_after_every_batch(embedded_venue_snapshot, tmp_path_factory, seed,
                                                                  n_fills, n_withdrawals, max_records):
    base, snapshot = embedded_venue_snapshot
    base.w3.provider.ethereum_tester.revert_to_snapshot(snapshot)
    venue = Venue(base.w3, base.deployment, base.vault, base.book)
    fills, withdrawals = random_records(seed, n_fills, n_withdrawals)
    source = RecordFileSource(tmp_path_factory.mktemp("source"))
    source.append(fills, withdrawals)
    job = make_job(venue, source, tmp_path_factory.mktemp("state"), max_records=max_records)
    while job.step() is not None:
        last_id = job.store.checkpoint().last_id
        done_f = fills[fills["fill_id"] <= np.uint64(last_id)]
        done_w = withdrawals[withdrawals["withdrawal_id"] <= np.uint64(last_id)]
        assert venue.ledger() == expected_ledger(done_f, done_w)
    assert_settled_exactly_once(venue, job, fills, withdrawals)


@pytest.mark.parametrize("step", STEPS)
def test_crash_at_each_step_resumes_without_double_or_skip(chain_venue, tmp_path, step):
    venue = chain_venue
    fills, withdrawals = random_records(2, 20, 2)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    crashes = []

    def crash_on_second_batch(name):
        if name == step and len(crashes) == 0 and job.store.checkpoint().batch_id == 1:
            crashes.append(name)
            raise Crash(name)

    job = make_job(venue, source, tmp_path / "state", step_hook=crash_on_second_batch)
    with pytest.raises(Crash):
        settle_all(job)
    assert crashes == [step]
    resumed = make_job(venue, source, tmp_path / "state")
    settle_all(resumed)
    assert_settled_exactly_once(venue, resumed, fills, withdrawals)
    assert venue.vault.last_batch()[0] == 4  # 22 records, 7 per batch: nothing settled twice
    record = resumed.store.batch(2)
    assert len(record.txs) == 1  # the recorded transaction was reused, not a second one signed


def test_crash_twice_at_the_same_batch(venue, tmp_path):
    fills, withdrawals = random_records(3, 10)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    for step in ("before_send", "after_mined"):
        def crash(name, step=step):
            if name == step:
                raise Crash(name)
        with pytest.raises(Crash):
            settle_all(make_job(venue, source, tmp_path / "state", step_hook=crash))
    job = make_job(venue, source, tmp_path / "state")
    settle_all(job)
    assert_settled_exactly_once(venue, job, fills, withdrawals)


def test_batches_are_cut_by_time_when_fewer_than_max_records(venue, tmp_path):
    fills, withdrawals = random_records(4, 3)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    now = [100.0]
    job = make_job(venue, source, tmp_path / "state", max_records=10, max_wait=5.0, clock=lambda: now[0])
    assert job.step() is None
    now[0] += 4.9
    assert job.step() is None
    now[0] += 0.2
    assert job.step() == 1
    assert_settled_exactly_once(venue, job, fills, withdrawals)


def test_reorg_below_the_checkpoint_is_detected(venue, tmp_path):
    fills, withdrawals = random_records(5, 5)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    tester = venue.w3.provider.ethereum_tester
    before = tester.take_snapshot()
    job = make_job(venue, source, tmp_path / "state")
    settle_all(job)
    tester.revert_to_snapshot(before)
    tester.mine_blocks(3)
    with pytest.raises(ReorgError, match="reorg deeper than 1 confirmation"):
        make_job(venue, source, tmp_path / "state").step()


def test_revert_is_decoded_and_batch_retried_after_fix(venue, tmp_path):
    fills, _ = random_records(6, 4)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills)
    venue.client(GUARDIAN_KEY).transact(venue.vault.contract.functions.pause())
    job = make_job(venue, source, tmp_path / "state")
    with pytest.raises(RevertError, match="EnforcedPause"):
        job.step()
    venue.client(GUARDIAN_KEY).transact(venue.vault.contract.functions.unpause())
    settle_all(make_job(venue, source, tmp_path / "state"))
    assert_settled_exactly_once(venue, job, fills, np.zeros(0, dtype=WITHDRAWAL_DTYPE))


def test_batch_touching_an_exited_wallet_is_reported(venue, tmp_path):
    user = venue.client(2)
    user.transact(venue.vault.contract.functions.requestExit())
    source = RecordFileSource(tmp_path / "source")
    source.append(freezes=np.array([(1, 2)], dtype=FREEZE_DTYPE))
    exits = ExitQueue(venue.vault, venue.book, venue.deployment.block)
    assert make_job(venue, source, tmp_path / "state", exits=exits).step() == 1   # serves the request
    user.transact(venue.vault.contract.functions.escape([USDC]))
    fills, _ = random_records(7, 6)   # records after its freeze: the engine never makes them
    source.append(fills)
    with pytest.raises(RevertError, match="WalletExited"):
        make_job(venue, source, tmp_path / "state").step()


def test_source_changed_under_a_recorded_batch_is_refused(venue, tmp_path):
    fills, _ = random_records(8, 5)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills)
    def crash(name):
        if name == "before_send":
            raise Crash(name)
    with pytest.raises(Crash):
        make_job(venue, source, tmp_path / "state", step_hook=crash).step()
    other = RecordFileSource(tmp_path / "other")
    changed = fills.copy()
    changed["quote_amount"][0] += 1
    other.append(changed)
    with pytest.raises(JobError, match="no longer yields batch 1"):
        make_job(venue, other, tmp_path / "state").step()
    assert JobStore(tmp_path / "state").checkpoint().batch_id == 0


def test_withdrawals_ride_in_batches_and_are_claimable(venue, tmp_path):
    source = RecordFileSource(tmp_path / "source")
    source.append(withdrawals=make_withdrawals([(65536, 4, USDC, 123), (131072, 4, AAPLX, INITIAL[AAPLX])]))
    settle_all(make_job(venue, source, tmp_path / "state"))
    assert venue.vault.balance(venue.book.wallet(4), USDC) == (INITIAL[USDC] - 123, 123)
    assert venue.vault.balance(venue.book.wallet(4), AAPLX) == (0, INITIAL[AAPLX])


def test_batches_are_cut_shorter_to_stay_within_max_entries(venue, tmp_path):
    fills, withdrawals = random_records(10, 12, 2)
    source = RecordFileSource(tmp_path / "source")
    source.append(fills, withdrawals)
    job = make_job(venue, source, tmp_path / "state", max_records=14, max_entries=8)
    settle_all(job)
    assert_settled_exactly_once(venue, job, fills, withdrawals)
    assert venue.vault.last_batch()[0] > 1
    for batch_id in range(1, venue.vault.last_batch()[0] + 1):
        record = job.store.batch(batch_id)
        batch = rebuild_batch(record, source, venue.book)
        assert len(batch.deltas) + len(batch.withdrawal_words) <= 8 or record.record_count == 1
