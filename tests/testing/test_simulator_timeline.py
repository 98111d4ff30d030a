"""Job timelines are pure: state at any time follows from the plan, no event loop needed."""

from __future__ import annotations

import random

import pytest

from cdm_status import JobStatus
from cdm_status.testing import JobPlan, random_plan
from cdm_status.testing._limits import RateLimits, ServerStats, SlidingWindow
from cdm_status.testing._timeline import Run

T0 = 1_000_000.0


def make_run(plan: JobPlan) -> Run:
    return Run("job", 1, T0, plan, "job_local1_0001", table="job")


def test_run_goes_booting_running_then_its_outcome() -> None:
    run = make_run(JobPlan(boot_seconds=10, run_seconds=100, rows=1000))
    assert run.state_at(T0 - 1) is None
    assert run.state_at(T0).status is JobStatus.BOOTING  # type: ignore[union-attr]
    middle = run.state_at(T0 + 60)
    assert middle is not None
    assert (middle.status, middle.progress, middle.rows_done) == (JobStatus.RUNNING, 50.0, 500)
    end = run.state_at(T0 + 110)
    assert end is not None
    assert (end.status, end.progress, end.updated_at) == (JobStatus.SUCCEEDED, 100.0, T0 + 110)
    assert [(t.status, t.at) for t in run.transitions()] == [
        (JobStatus.BOOTING, T0),
        (JobStatus.RUNNING, T0 + 10),
        (JobStatus.SUCCEEDED, T0 + 110),
    ]


def test_progress_stays_below_100_until_success() -> None:
    run = make_run(JobPlan(boot_seconds=0, run_seconds=100))
    state = run.state_at(T0 + 99.99)
    assert state is not None
    assert state.status is JobStatus.RUNNING
    assert state.progress < 100


def test_failure_on_submit_skips_running() -> None:
    run = make_run(JobPlan(boot_seconds=5, run_seconds=100, outcome=JobStatus.FAILURE_ON_SUBMIT))
    assert [t.status for t in run.transitions()] == [
        JobStatus.BOOTING,
        JobStatus.FAILURE_ON_SUBMIT,
    ]
    assert run.state_at(T0 + 5).status is JobStatus.FAILURE_ON_SUBMIT  # type: ignore[union-attr]


def test_stop_cuts_a_run_short_and_keeps_it_pure() -> None:
    run = make_run(JobPlan(boot_seconds=10, run_seconds=100))
    stopped = run.stop(T0 + 30)
    assert run.outcome is JobStatus.SUCCEEDED  # the original value is untouched
    assert stopped.outcome is JobStatus.STOPPED
    assert stopped.transitions()[-1].at == T0 + 30
    assert stopped.state_at(T0 + 29).status is JobStatus.RUNNING  # type: ignore[union-attr]
    assert stopped.state_at(T0 + 31).status is JobStatus.STOPPED  # type: ignore[union-attr]
    assert run.stop(T0 + 500) is run  # stopping a finished run changes nothing


def test_failed_run_reports_its_error_with_the_table_name() -> None:
    run = Run("db_orders", 1, T0, JobPlan(1, 2, outcome=JobStatus.FAILED), "x", table="orders")
    assert "Unable to get a connection" in run.error_summary
    state = run.state_at(T0 + 3)
    assert state is not None
    assert (state.status, state.progress) == (JobStatus.FAILED, -1.0)


def test_random_plans_are_seeded_and_realistic() -> None:
    first = [random_plan(random.Random(7), failure_rate=0.3) for _ in range(3)]
    again = [random_plan(random.Random(7), failure_rate=0.3) for _ in range(3)]
    assert first == again
    plans = [random_plan(random.Random(seed), failure_rate=0.3) for seed in range(300)]
    assert all(5 <= plan.boot_seconds <= 60 for plan in plans)
    assert all(0 < plan.run_seconds <= 3600 for plan in plans)
    failed = [plan for plan in plans if plan.outcome is JobStatus.FAILED]
    assert 50 < len(failed) < 130
    assert all(plan.error_summary and plan.error_details for plan in failed)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"boot_seconds": -1, "run_seconds": 1},
        {"boot_seconds": 1, "run_seconds": float("nan")},
        {"boot_seconds": 1, "run_seconds": 1, "outcome": JobStatus.RUNNING},
        {"boot_seconds": 1, "run_seconds": 1, "rows": -5},
    ],
)
def test_impossible_plans_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011
        JobPlan(**kwargs)  # type: ignore[arg-type]


def test_sliding_window_counts_any_60_seconds() -> None:
    window = SlidingWindow(2, 60.0)
    assert window.admit(0.0) is None
    assert window.admit(30.0) is None
    assert window.admit(59.0) == pytest.approx(1.0)
    assert window.admit(60.0) is None  # the request at 0 has left the window


def test_max_in_window() -> None:
    stats = ServerStats()
    for at in (0.0, 10.0, 59.9, 60.0, 61.0, 200.0):
        stats.record("status", 200, at)
    assert stats.max_in_window("status") == 4  # 10, 59.9, 60, 61
    assert stats.max_in_window("status", 1.0) == 2
    assert stats.max_in_window("list") == 0


def test_cdm_default_limits() -> None:
    limits = RateLimits.cdm_defaults()
    assert (limits.status, limits.list, limits.start_stop) == (120, 120, 1200)
    assert limits.budget("start") == limits.budget("stop") == ("start_stop", 1200)
    assert RateLimits().budget("status") == ("status", None)
