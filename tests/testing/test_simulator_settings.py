"""The simulator's job settings: deletion after the run (``Cdm.0100`` from then on),
retries as new submissions after a delay, and the list and definition showing both."""

from __future__ import annotations

import pytest

from cdm_status import DisposableType, JobNotFoundError, JobStatus, RetryType
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, JobSetup

pytestmark = pytest.mark.anyio

OK = JobPlan(boot_seconds=10, run_seconds=100)
BAD = JobPlan(boot_seconds=10, run_seconds=100, outcome=JobStatus.FAILED, error_summary="bad")


def sim(**options: object) -> CDMSimulator:
    return CDMSimulator(clock=FakeClock(), **options)  # type: ignore[arg-type]


async def test_a_job_deleted_after_success_answers_not_found_from_then_on() -> None:
    simulator = sim()
    simulator.add_job("once", plan=OK, setup=JobSetup(disposable="DELETE_AFTER_SUCCEED"))
    clock = simulator.clock
    assert isinstance(clock, FakeClock)
    async with simulator.client() as client:
        running = await client.get_status("once")
        await clock.advance(15)
        running = await client.get_status("once")
        assert running.status is JobStatus.RUNNING
        assert running.is_delete_job is True
        await clock.advance(95)  # ends at 110, deleted 0.1 s later
        assert (await client.get_status("once")).status is JobStatus.SUCCEEDED
        await clock.advance(0.1)
        with pytest.raises(JobNotFoundError) as caught:
            await client.get_status("once")
        assert caught.value.error_code == "Cdm.0100"
        with pytest.raises(JobNotFoundError):
            await client.get_job("once")
        assert (await client.list_jobs()).jobs == []
    assert simulator.final_status("once") is JobStatus.SUCCEEDED  # the ground truth stays
    assert [t.status for t in simulator.transitions("once")][-1] is JobStatus.SUCCEEDED


async def test_delete_after_succeed_keeps_a_failed_job_and_delete_does_not() -> None:
    simulator = sim()
    simulator.add_job("kept", plan=BAD, setup=JobSetup(disposable="DELETE_AFTER_SUCCEED"))
    simulator.add_job("gone", plan=BAD, setup=JobSetup(disposable="DELETE"))
    simulator.add_job("plain", plan=OK)
    assert simulator.deleted_at("kept") is None
    assert simulator.deleted_at("gone") == pytest.approx(simulator.clock.time() + 110.1)
    assert simulator.deleted_at("plain") is None
    clock = simulator.clock
    assert isinstance(clock, FakeClock)
    await clock.advance(200)
    async with simulator.client() as client:
        kept = await client.get_status("kept")
        assert (kept.status, kept.error_summary) == (JobStatus.FAILED, "bad")
        with pytest.raises(JobNotFoundError):
            await client.get_status("gone")
        assert (await client.get_status("plain")).is_delete_job is False


async def test_retries_are_new_submissions_after_the_delay() -> None:
    simulator = sim()
    setup = JobSetup(retry="RETRY_TRIPLE", retry_delay=30.0, retry_plans=(BAD, OK))
    simulator.add_job("flaky", plan=BAD, setup=setup)
    assert simulator.attempts("flaky") == [JobStatus.FAILED, JobStatus.FAILED, JobStatus.SUCCEEDED]
    clock = simulator.clock
    assert isinstance(clock, FakeClock)
    async with simulator.client() as client:
        await clock.advance(115)  # the first run failed at 110
        failed = await client.get_status("flaky")
        assert (failed.status, failed.submission_id) == (JobStatus.FAILED, 1)
        await clock.advance(30)  # its retry was submitted at 140
        retry = await client.get_status("flaky")
        assert (retry.status, retry.submission_id) == (JobStatus.BOOTING, 2)
        await clock.advance(400)
        last = await client.get_status("flaky")
        assert (last.status, last.submission_id) == (JobStatus.SUCCEEDED, 3)
    statuses = [t.status for t in simulator.transitions("flaky")]
    assert statuses.count(JobStatus.BOOTING) == 3


async def test_at_most_three_retries_and_none_after_a_stop() -> None:
    simulator = sim()
    simulator.add_job("broken", plan=BAD, setup=JobSetup(retry="RETRY_TRIPLE"))
    # A drawn retry fails at the job's failure rate (0 here): it succeeds.
    assert simulator.attempts("broken") == [JobStatus.FAILED, JobStatus.SUCCEEDED]
    setup = JobSetup(retry="RETRY_TRIPLE", retry_plans=(BAD, BAD, BAD))
    simulator.add_job("doomed", plan=BAD, setup=setup)
    assert simulator.attempts("doomed") == [JobStatus.FAILED] * 4
    simulator.add_job("stopped", plan=OK, setup=JobSetup(retry="RETRY_TRIPLE"))
    clock = simulator.clock
    assert isinstance(clock, FakeClock)
    await clock.advance(20)
    simulator.stop_job("stopped")
    assert simulator.attempts("stopped") == [JobStatus.STOPPED]
    with pytest.raises(ValueError, match="at most 3 retry plans"):
        JobSetup(retry="RETRY_TRIPLE", retry_plans=(OK,) * 4)
    with pytest.raises(ValueError, match="disposable"):
        JobSetup(disposable="KEEP")


async def test_the_list_and_the_definition_show_the_settings() -> None:
    simulator = sim()
    simulator.add_job("a", plan=OK, setup=JobSetup(disposable="DELETE", retry="RETRY_TRIPLE"))
    simulator.add_database_job(
        "db", ["t1", "t2"], setups={"t2": JobSetup(disposable="DELETE_AFTER_SUCCEED")}
    )
    async with simulator.client() as client:
        [row] = (await client.list_jobs(filter="a")).jobs
        assert row.settings is not None
        assert (row.settings.disposable, row.settings.retry) == (
            DisposableType.DELETE,
            RetryType.RETRY_TRIPLE,
        )
        rows = (await client.list_jobs(filter="db_", job_type="BATCH_JOB")).jobs
        kinds = {r.name: r.settings.disposable for r in rows if r.settings is not None}
        assert kinds == {
            "db_t1": DisposableType.NONE,
            "db_t2": DisposableType.DELETE_AFTER_SUCCEED,
        }
        definition = await client.get_job("db_t2")
        assert definition.source.table == "t2"
        assert definition.settings.disposable is DisposableType.DELETE_AFTER_SUCCEED


async def test_a_list_without_settings_leaves_them_to_the_definition() -> None:
    simulator = sim(list_settings=False)
    simulator.add_job("a", plan=OK, setup=JobSetup(retry="RETRY_TRIPLE"))
    async with simulator.client() as client:
        [row] = (await client.list_jobs()).jobs
        assert row.settings is None
        assert (await client.get_job("a")).settings.retry is RetryType.RETRY_TRIPLE


async def test_a_database_subjob_holds_its_slot_through_its_retries() -> None:
    simulator = sim()
    setup = JobSetup(retry="RETRY_TRIPLE", retry_delay=30.0, retry_plans=(OK,))
    names = simulator.add_database_job(
        "db", ["t1", "t2"], parallelism=1, plans={"t1": BAD, "t2": OK}, setups={"t1": setup}
    )
    first, second = names
    # t1: 110 s failing, 30 s delay, 110 s retry; t2 starts when t1's retry ends.
    assert simulator.finished_at(first) == pytest.approx(simulator.clock.time() + 250)
    t2_boots = [t.at for t in simulator.transitions(second, upcoming=True)][1]
    assert t2_boots == pytest.approx(simulator.clock.time() + 250)
    assert simulator.final_status("db") is JobStatus.SUCCEEDED
