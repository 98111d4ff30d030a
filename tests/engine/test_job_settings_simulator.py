"""Jobs that CDM deletes after their run, or retries after a failure, watched on the
simulator in virtual time: the outcome each setting leads to, and what it costs."""

from __future__ import annotations

import random

import pytest

from cdm_status import (
    JobDeletedError,
    JobDone,
    JobFailedError,
    JobStatus,
    JobStatusWaiter,
    OutcomeKind,
    PollPolicy,
    RetryExpected,
)
from cdm_status.testing import (
    CDMSimulator,
    FakeClock,
    JobPlan,
    JobSetup,
    ProgressShape,
    RateLimits,
)
from tests.support.simulated import run_watch

pytestmark = pytest.mark.anyio

EVERY_30S = PollPolicy(
    starting_interval=30, running_interval=30, running_growth=0, min_interval=30, jitter=0
)
"""Looks every 30 s, whatever the budget leaves (no progress is reported either)."""


def simulator(progress: ProgressShape = "absent") -> CDMSimulator:
    return CDMSimulator(clock=FakeClock(), limits=RateLimits.cdm_defaults(), progress=progress)


def failing(summary: str, run_seconds: float = 95.0) -> JobPlan:
    return JobPlan(
        boot_seconds=5, run_seconds=run_seconds, outcome=JobStatus.FAILED, error_summary=summary
    )


async def test_a_job_deleted_after_success_succeeded_though_never_seen_so() -> None:
    sim = simulator()
    plan = JobPlan(boot_seconds=10, run_seconds=95)  # ends between two looks
    sim.add_job("once", plan=plan, setup=JobSetup(disposable="DELETE_AFTER_SUCCEED"))
    run = await run_watch(sim, ["once"], strategy="per_job", poll=EVERY_30S)
    assert sim.deleted_at("once") == pytest.approx(sim.finished_at("once") + 0.1)  # type: ignore[operator]
    [outcome] = [e.outcome for e in run.events if isinstance(e, JobDone)]
    assert outcome.kind is OutcomeKind.SUCCEEDED
    assert outcome.inferred
    assert outcome.error is None
    assert outcome.submission is not None
    assert outcome.submission.status is JobStatus.RUNNING
    assert [c.current for c in run.changes("once")] == [JobStatus.BOOTING, JobStatus.RUNNING]


async def test_wait_returns_a_run_deleted_after_success() -> None:
    sim = simulator()
    sim.add_job(
        "once",
        plan=JobPlan(boot_seconds=10, run_seconds=95),
        setup=JobSetup(disposable="DELETE_AFTER_SUCCEED"),
    )
    clock = sim.clock
    assert isinstance(clock, FakeClock)
    async with sim.client() as client, clock.autojump():
        waiter = JobStatusWaiter(
            client, poll=EVERY_30S, strategy="per_job", random=random.Random(1)
        )
        submission = await waiter.wait("once")
    assert submission.status is JobStatus.RUNNING  # the last one seen; the success inferred


async def test_a_job_deleted_whatever_its_result_ends_deleted() -> None:
    sim = simulator()
    sim.add_job("gone", plan=failing("boom"), setup=JobSetup(disposable="DELETE"))
    clock = sim.clock
    assert isinstance(clock, FakeClock)
    async with sim.client() as client, clock.autojump():
        waiter = JobStatusWaiter(
            client, poll=EVERY_30S, strategy="per_job", random=random.Random(1)
        )
        with pytest.raises(JobDeletedError, match="before its result was read") as caught:
            await waiter.wait("gone")
        assert caught.value.disposable == "DELETE"
        assert caught.value.submission is not None
        # Configured so, the same outcome returns the last run seen instead.
        sim.add_job("gone", plan=failing("boom"), setup=JobSetup(disposable="DELETE"))
        kept = await waiter.wait("gone", deleted_ok=True)
        assert kept.status is JobStatus.RUNNING


async def test_a_kept_job_deleted_mid_run_is_still_not_found() -> None:
    sim = simulator()
    sim.add_job("kept", plan=JobPlan(boot_seconds=10, run_seconds=600))
    sim.delete_job("kept", at=sim.clock.time() + 100)
    run = await run_watch(sim, ["kept"], strategy="per_job", poll=EVERY_30S)
    assert run.outcomes == {"kept": OutcomeKind.NOT_FOUND}


async def test_a_job_retried_after_two_failures_succeeds_once() -> None:
    sim = simulator()
    retries = (failing("second"), JobPlan(boot_seconds=5, run_seconds=50))
    sim.add_job(
        "flaky", plan=failing("first"), setup=JobSetup(retry="RETRY_TRIPLE", retry_plans=retries)
    )
    assert sim.attempts("flaky") == [JobStatus.FAILED, JobStatus.FAILED, JobStatus.SUCCEEDED]
    run = await run_watch(sim, ["flaky"], strategy="per_job", poll=EVERY_30S)
    done = [e.outcome for e in run.events if isinstance(e, JobDone)]
    assert len(done) == 1
    outcome = done[0]
    assert outcome.kind is OutcomeKind.SUCCEEDED
    assert [a.error_summary for a in outcome.attempts] == ["first", "second"]
    assert outcome.submission is not None
    assert outcome.submission.submission_id == 3
    expected = [(e.attempt, e.retries) for e in run.events if isinstance(e, RetryExpected)]
    assert expected == [(1, 3), (2, 3)]


async def test_a_job_failing_four_times_fails_with_every_summary() -> None:
    sim = simulator()
    retries = tuple(failing(f"run {n}", 50) for n in (2, 3, 4))
    sim.add_job(
        "broken",
        plan=failing("run 1"),
        setup=JobSetup(retry="RETRY_TRIPLE", retry_plans=retries),
    )
    clock = sim.clock
    assert isinstance(clock, FakeClock)
    async with sim.client() as client, clock.autojump():
        waiter = JobStatusWaiter(
            client, poll=EVERY_30S, strategy="per_job", random=random.Random(1)
        )
        with pytest.raises(JobFailedError) as caught:
            await waiter.wait("broken")
    error = caught.value
    assert error.error_summary == "run 4"
    assert [a.error_summary for a in error.attempts] == ["run 1", "run 2", "run 3"]
    assert "after 3 automatic retries" in str(error)


async def test_without_retries_the_first_failure_ends_the_wait() -> None:
    sim = simulator()
    sim.add_job("plain", plan=failing("boom"))
    run = await run_watch(sim, ["plain"], strategy="per_job", poll=EVERY_30S)
    assert run.outcomes == {"plain": OutcomeKind.FAILED}
    assert not any(isinstance(e, RetryExpected) for e in run.events)
    # Polled one by one, its settings came from one read of its definition, at the failure.
    assert sim.stats.by_endpoint["job"] == 1


async def test_no_retry_within_the_grace_period_ends_failed() -> None:
    sim = simulator()
    # CDM says it retries, but the retry comes after the watch's grace period.
    setup = JobSetup(retry="RETRY_TRIPLE", retry_delay=900.0)
    sim.add_job("slow", plan=failing("boom"), setup=setup)
    run = await run_watch(
        sim, ["slow"], strategy="per_job", poll=PollPolicy(retry_grace=120.0, jitter=0)
    )
    [outcome] = [e.outcome for e in run.events if isinstance(e, JobDone)]
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.error_summaries == ("boom",)
    failed_at = sim.transitions("slow")[2].at
    assert failed_at < sim.clock.time() < failed_at + 120.0 + 60.0


@pytest.mark.slow
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # a scale test: one loop is enough
async def test_a_whole_database_watch_with_self_deleting_and_retried_subjobs() -> None:
    sim = simulator("linear")
    rng = random.Random(22)
    tables = [f"t{index:04d}" for index in range(1000)]
    picks = rng.sample(tables, 350)
    deleting, retried = picks[:300], picks[300:]  # 30% delete themselves, 5% retry
    setups = dict.fromkeys(deleting, JobSetup(disposable="DELETE_AFTER_SUCCEED"))
    again = JobPlan(boot_seconds=5, run_seconds=90)
    setups.update(dict.fromkeys(retried, JobSetup(retry="RETRY_TRIPLE", retry_plans=(again,))))
    plans = {table: failing("lock wait timeout", 60) for table in retried}
    names = sim.add_database_job(
        "erp",
        tables,
        parallelism=200,
        failure_rate=0.02,
        run_seconds=(60.0, 180.0),
        plans=plans,
        setups=setups,
    )
    run = await run_watch(sim, names)
    truth = {
        name: OutcomeKind.SUCCEEDED
        if sim.final_status(name) is JobStatus.SUCCEEDED
        else OutcomeKind.FAILED
        for name in names
    }
    assert run.outcomes == truth
    assert OutcomeKind.FAILED in truth.values()  # the plain failures are there too
    outcomes = {e.outcome.job_name: e.outcome for e in run.events if isinstance(e, JobDone)}
    seen_failing = 0
    for table in retried:
        outcome = outcomes[f"erp_{table}"]
        assert outcome.kind is OutcomeKind.SUCCEEDED
        # A failed run is in the outcome when a look saw it (not one that failed and was
        # retried between two looks).
        assert [a.error_summary for a in outcome.attempts] in ([], ["lock wait timeout"])
        seen_failing += bool(outcome.attempts)
    assert seen_failing >= len(retried) // 2
    inferred = sum(outcomes[f"erp_{table}"].inferred for table in deleting)
    assert inferred > 200  # most self-deleting subjobs were gone when looked at again
    assert sim.stats.by_status.get(429, 0) == 0
    assert sim.stats.max_in_window("status", 60.0) <= 120
    assert sim.stats.max_in_window("list", 60.0) <= 120
    # Every list row carried the settings: not one job's definition was read.
    assert sim.stats.by_endpoint["job"] == 0
