"""Whole-database jobs: subjobs started as slots free up, run to the end on a jumped clock."""

from __future__ import annotations

import time

import pytest

from cdm_status import JobStatus, RetryPolicy
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan
from tests.support.budgets import UNMETERED

pytestmark = pytest.mark.anyio


def most_at_once(sim: CDMSimulator, names: list[str]) -> int:
    """The most subjobs active (BOOTING or RUNNING) at the same moment, per ground truth."""
    events: list[tuple[float, int]] = []
    for name in names:
        steps = sim.transitions(name, upcoming=True)
        started = next(step.at for step in steps if step.status is JobStatus.BOOTING)
        events += [(started, 1), (steps[-1].at, -1)]
    running = best = 0
    for _, change in sorted(events):  # at equal times an end (-1) sorts before a start
        running += change
        best = max(best, running)
    return best


async def test_200_tables_run_to_completion_on_virtual_time() -> None:
    began = time.perf_counter()
    clock = FakeClock()
    sim = CDMSimulator(clock=clock, seed=11)
    names = sim.add_database_job("sales", 200, parallelism=10, failure_rate=0.1)
    assert names[0] == "sales_table_0001"
    client = sim.client(budget=UNMETERED, list_budget=UNMETERED, retry=RetryPolicy.never())
    seen: dict[str, set[JobStatus]] = {name: set() for name in names}
    while True:
        finished = 0
        for page_no in (1, 2):
            page = await client.list_jobs(
                filter="sales_", page_no=page_no, page_size=100, job_type="BATCH_JOB"
            )
            assert page.total == 200
            for job in page.jobs:
                seen[job.name].add(job.status)
                finished += job.status.is_terminal
        if finished == 200:
            break
        await clock.advance(120)
    # Hours of migration on the fake clock: a real sleep anywhere would take hours. The
    # bound is loose on purpose (a busy CI core); speed is measured in benchmarks/.
    wall = time.perf_counter() - began
    assert wall < 30.0, f"took {wall:.2f}s of wall time"
    assert clock.monotonic() > 3600  # hours of simulated migration
    outcomes = {name: sim.final_status(name) for name in names}
    assert set(outcomes.values()) == {JobStatus.SUCCEEDED, JobStatus.FAILED}
    for name in names:
        assert (await client.get_status(name)).status is outcomes[name]
    assert most_at_once(sim, names) == 10
    assert any(JobStatus.NEW in statuses for statuses in seen.values())  # waited for a slot
    parent = await client.get_status("sales")
    assert parent.status is JobStatus.FAILED
    assert parent.error_summary is not None
    assert parent.error_summary.endswith("of 200 tables failed")
    assert sim.finished_at("sales") == max(sim.finished_at(name) or 0 for name in names)


async def test_subjobs_wait_as_never_executed() -> None:
    clock = FakeClock()
    sim = CDMSimulator(clock=clock)
    plan = JobPlan(10, 90)
    names = sim.add_database_job(
        "db", ["a", "b", "c"], parallelism=2, plans=dict.fromkeys("abc", plan)
    )
    client = sim.client(budget=UNMETERED, list_budget=UNMETERED)
    assert [(await client.get_status(name)).status for name in names] == [
        JobStatus.BOOTING,
        JobStatus.BOOTING,
        JobStatus.NEVER_EXECUTED,
    ]
    await clock.advance(100)  # a and b end; c takes the first free slot
    assert (await client.get_status("db_c")).status is JobStatus.BOOTING
    assert [step.status for step in sim.transitions("db_c")] == [
        JobStatus.NEVER_EXECUTED,
        JobStatus.BOOTING,
    ]
    assert sim.transitions("db_c")[1].at == clock.time()
    assert next(step.status for step in sim.transitions("db_a")) is JobStatus.BOOTING


async def test_unlisted_subjobs_and_stopping_the_parent() -> None:
    clock = FakeClock()
    sim = CDMSimulator(clock=clock)
    names = sim.add_database_job("db", 30, parallelism=5, listed=False, run_seconds=(60, 60))
    client = sim.client(budget=UNMETERED, list_budget=UNMETERED)
    page = await client.list_jobs(job_type="BATCH_JOB")
    assert [job.name for job in page.jobs] == ["db"]
    assert (await client.get_status(names[0])).status is JobStatus.BOOTING  # still queryable
    await clock.advance(100)
    sim.stop_job("db")
    await clock.advance(10_000)
    statuses = [(await client.get_status(name)).status for name in names]
    assert JobStatus.STOPPED in statuses
    assert statuses[-1] is JobStatus.NEVER_EXECUTED  # never reached
    assert (await client.get_status("db")).status is JobStatus.STOPPED
    sim.start_job("db")  # a rerun schedules every table again
    assert (await client.get_status(names[-1])).status is JobStatus.NEVER_EXECUTED
    await clock.advance(10_000)
    assert (await client.get_status("db")).status is JobStatus.SUCCEEDED
    assert (await client.get_status(names[-1])).submission_id == 1
    assert (await client.get_status(names[0])).submission_id == 2


def test_database_job_arguments_are_checked() -> None:
    sim = CDMSimulator(clock=FakeClock())
    with pytest.raises(ValueError, match="at least one table"):
        sim.add_database_job("db", 0)
    with pytest.raises(ValueError, match="unique"):
        sim.add_database_job("db", ["a", "a"])
    with pytest.raises(ValueError, match="not in the job"):
        sim.add_database_job("db", ["a"], plans={"b": JobPlan(1, 1)})
    sim.add_database_job("db", ["a"])
    with pytest.raises(ValueError, match="already exists"):
        sim.add_job("db_a")
