"""The waiter against the CDM simulator on a virtual clock: scale, budgets, faults."""

from __future__ import annotations

import statistics
from datetime import timedelta

import pytest

from cdm_status import JobStatus, OutcomeKind, PollFailed, PollPolicy, StatusChanged
from cdm_status._clock import utc_datetime
from cdm_status.testing import CDMSimulator, FakeClock, Faults, JobPlan, RateLimits
from tests.support.simulated import expected_kind, run_watch

pytestmark = pytest.mark.anyio


def migration(tables: int, *, strategy_seed: int = 0, **options: object) -> CDMSimulator:
    simulator = CDMSimulator(
        clock=FakeClock(), seed=strategy_seed, limits=RateLimits.cdm_defaults(), **options
    )  # type: ignore[arg-type]
    return simulator


async def test_500_subjobs_reach_their_outcomes_within_the_budget() -> None:
    simulator = migration(500)
    names = simulator.add_database_job(
        "db1", 500, parallelism=50, failure_rate=0.05, run_seconds=(30.0, 120.0)
    )
    run = await run_watch(simulator, names, strategy="per_job")
    assert run.outcomes == {name: expected_kind(simulator, name) for name in names}
    assert OutcomeKind.FAILED in run.outcomes.values()
    assert simulator.stats.max_in_window("status", 60.0) <= 120
    assert simulator.stats.by_status.get(429, 0) == 0
    # Every reported change happened, in the simulator's order.
    for name in names[:50]:
        truth = [step.status for step in simulator.transitions(name)]
        seen = [change.current for change in run.changes(name)]
        assert seen[0] in (JobStatus.NEVER_EXECUTED, *truth)
        assert [s for s in seen if s is not JobStatus.NEVER_EXECUTED] == [
            s for s in truth if s in seen
        ]


async def test_a_burst_of_503s_and_a_retry_after_pause_lose_no_job() -> None:
    simulator = migration(40, faults=Faults(retry_after=7.0))
    names = simulator.add_database_job("db2", 40, parallelism=10, run_seconds=(30.0, 90.0))
    simulator.faults.script(["503"] * 30 + ["503-retry-after"] * 3 + ["429"] * 2)
    run = await run_watch(simulator, names, strategy="per_job")
    assert run.outcomes == {name: expected_kind(simulator, name) for name in names}
    assert any(isinstance(e, PollFailed) for e in run.events)
    assert run.waiter._client.budget.pauses  # type: ignore[attr-defined] >= 1
    # A ridden-out failure never turns into a fake FAILED.
    assert all(kind is OutcomeKind.SUCCEEDED for kind in run.outcomes.values())


async def test_a_job_deleted_mid_run_ends_not_found() -> None:
    simulator = migration(1)
    simulator.add_job("doomed", plan=JobPlan(boot_seconds=10, run_seconds=600))
    simulator.delete_job("doomed", at=simulator.clock.time() + 120)
    run = await run_watch(simulator, ["doomed"])
    assert run.outcomes == {"doomed": OutcomeKind.NOT_FOUND}
    assert [c.current for c in run.changes("doomed")] == [JobStatus.BOOTING, JobStatus.RUNNING]


async def test_since_ignores_the_previous_successful_run() -> None:
    clock = FakeClock()
    simulator = CDMSimulator(clock=clock)
    simulator.add_job("nightly", plan=JobPlan(boot_seconds=5, run_seconds=60))
    await clock.advance(3600)
    since = utc_datetime(clock.time()) - timedelta(seconds=1)
    simulator.start_job("nightly")
    run = await run_watch(simulator, ["nightly"], since=since)
    done = run.events[-1]
    assert run.outcomes == {"nightly": OutcomeKind.SUCCEEDED}
    first = run.changes("nightly")[0]
    assert first.current is JobStatus.BOOTING  # not the old SUCCEEDED
    last_change = run.changes("nightly")[-1]
    assert last_change.submission.creation_date is not None
    assert last_change.submission.creation_date >= since
    assert done.outcome.submission is last_change.submission  # type: ignore[union-attr]


async def test_timeout_reports_running_jobs_with_their_last_status() -> None:
    simulator = migration(30)
    names = simulator.add_database_job("db3", 30, parallelism=5, run_seconds=(600.0, 900.0))
    run = await run_watch(simulator, names, timeout=300.0, strategy="per_job")
    kinds = set(run.outcomes.values())
    assert kinds == {OutcomeKind.TIMED_OUT}
    assert len(run.outcomes) == 30
    assert simulator.clock.monotonic() == pytest.approx(300.0, abs=1.0)


async def test_unknown_and_unseen_jobs_end_not_found_after_the_grace_period() -> None:
    simulator = migration(1)
    simulator.add_job("real", plan=JobPlan(boot_seconds=5, run_seconds=30))
    run = await run_watch(simulator, ["real", "imaginary"])
    assert run.outcomes == {"real": OutcomeKind.SUCCEEDED, "imaginary": OutcomeKind.NOT_FOUND}
    assert run.counting.status_requests["imaginary"] == 3


async def test_status_changes_carry_the_full_submission() -> None:
    simulator = migration(1)
    simulator.add_job(
        "broken",
        plan=JobPlan(boot_seconds=5, run_seconds=30, outcome=JobStatus.FAILED),
    )
    run = await run_watch(simulator, ["broken"])
    final = run.changes("broken")[-1]
    assert final.current is JobStatus.FAILED
    assert final.submission.error_summary
    assert isinstance(run.events[-1], type(run.events[-1]))
    assert not any(isinstance(e, StatusChanged) and e.previous == e.current for e in run.events)


async def test_the_deadline_holds_while_every_poll_slot_is_busy() -> None:
    # One slot, held by a poll whose answer takes 50 s: the dispatcher waits for that
    # slot, but the watch still ends at its deadline, not when the slot frees up.
    simulator = migration(2, faults=Faults(latency=50.0))
    simulator.add_job("a", plan=JobPlan(boot_seconds=5, run_seconds=600))
    simulator.add_job("b", plan=JobPlan(boot_seconds=5, run_seconds=600))
    simulator.faults.script(["slow"])
    run = await run_watch(simulator, ["a", "b"], timeout=10.0, max_concurrency=1)
    assert run.outcomes == {"a": OutcomeKind.TIMED_OUT, "b": OutcomeKind.TIMED_OUT}
    assert simulator.clock.monotonic() == pytest.approx(10.0)


@pytest.mark.parametrize(("progress", "median_lag"), [("linear", 3.0), ("zero", 12.0)])
async def test_between_sweeps_running_jobs_are_looked_at_with_the_spare_status_budget(
    progress: str, median_lag: float
) -> None:
    # Sweeps of the list 30 s apart: the list alone sees an end 15 s late on average.
    # Looks between sweeps (at the predicted end when progress tells one, else at the
    # running interval) see it sooner, and end the job at once.
    simulator = migration(100, progress=progress)
    names = simulator.add_database_job(
        "db1", 100, parallelism=10, failure_rate=0.05, run_seconds=(120.0, 600.0)
    )
    run = await run_watch(simulator, names, strategy="auto", poll=PollPolicy(list_interval=30.0))
    assert run.outcomes == {name: expected_kind(simulator, name) for name in names}
    lags = [
        run.changes(name)[-1].at.timestamp() - simulator.transitions(name)[-1].at for name in names
    ]
    assert statistics.median(lags) <= median_lag
    assert simulator.stats.by_endpoint["list"] > 0  # the list did cover them
    assert simulator.stats.max_in_window("status", 60.0) <= 120
    assert simulator.stats.by_status.get(429, 0) == 0
