"""At most one start per task instance: the record a try leaves, the rule that finds our run
in CDM without one, and what try 2 does when try 1's worker died right after its start.
Starts are counted at the simulator."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from cdm_status import JobStatus, Submission
from cdm_status.airflow import _runs
from cdm_status.airflow._compat import AirflowException, AirflowFailException, TaskDeferred
from cdm_status.airflow.operators import CDMStartJobOperator
from cdm_status.testing import JobPlan
from tests.support.airflow_simulated import (
    Cluster,
    DagRun,
    TaskInstance,
    TaskStateStore,
    cluster,
    on_virtual_time,
    simulated_cluster,
)

__all__ = ["cluster"]

UTC = timezone.utc
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
RUN = JobPlan(boot_seconds=30, run_seconds=600, rows=500)


def submission(status: JobStatus, *, created: datetime = T0, user: str = "etl", sid: int = 7):
    return Submission(
        job_name="orders",
        status=status,
        raw_status=status.value,
        creation_date=created,
        creation_user=user,
        submission_id=sid,
    )


# ---------------------------------------------------------------------- pure decisions


@pytest.mark.parametrize(
    ("status", "step"),
    [
        (JobStatus.BOOTING, _runs.Step.WAIT),
        (JobStatus.RUNNING, _runs.Step.WAIT),
        (JobStatus.UNKNOWN, _runs.Step.WAIT),
        (JobStatus.SUCCEEDED, _runs.Step.RETURN),
        (JobStatus.FAILED, _runs.Step.START_AGAIN),
        (JobStatus.STOPPED, _runs.Step.START_AGAIN),
        (JobStatus.FAILURE_ON_SUBMIT, _runs.Step.START_AGAIN),
    ],
)
def test_a_later_try_waits_returns_or_starts_again_by_the_run_s_status(
    status: JobStatus, step: _runs.Step
) -> None:
    assert _runs.next_step(submission(status)) is step


def test_the_record_is_json_and_names_the_run_it_was_made_for() -> None:
    run = submission(JobStatus.BOOTING)
    stored = _runs.record(run, cluster_id="c-1", try_number=1)
    assert stored == {
        "job_name": "orders",
        "cluster_id": "c-1",
        "submission_id": 7,
        "creation_date": "2026-01-01T08:00:00+00:00",
        "creation_user": "etl",
        "try_number": 1,
    }
    found = _runs.recorded(stored, job_name="orders", cluster_id="c-1")
    assert found is not None
    assert _runs.recorded_run(submission(JobStatus.SUCCEEDED), found)
    assert not _runs.recorded_run(submission(JobStatus.RUNNING, sid=8), found)
    # A record of another job (the job name is a template) or cluster is not ours.
    assert _runs.recorded(stored, job_name="customers", cluster_id="c-1") is None
    assert _runs.recorded(stored, job_name="orders", cluster_id="c-2") is None
    assert _runs.recorded(None, job_name="orders", cluster_id="c-1") is None
    # Without submission ids, the creation date tells the run.
    dated = dict(stored, submission_id=None)
    assert _runs.recorded_run(submission(JobStatus.RUNNING, sid=9), dated)
    later = submission(JobStatus.RUNNING, created=T0 + timedelta(seconds=1), sid=9)
    assert not _runs.recorded_run(later, dated)


def test_the_rule_takes_a_run_created_since_the_dag_run_began_by_the_connection_s_user() -> None:
    run = submission(JobStatus.RUNNING, created=T0)
    assert _runs.is_ours(run, since=T0 - timedelta(minutes=1), user=None)
    assert _runs.is_ours(run, since=T0 - timedelta(minutes=1), user="etl")
    assert not _runs.is_ours(run, since=T0 - timedelta(minutes=1), user="alice")
    # CDM's clock may be up to 15 minutes behind Airflow's (the gateway refuses more).
    assert _runs.is_ours(run, since=T0 + timedelta(minutes=14), user=None)
    assert not _runs.is_ours(run, since=T0 + timedelta(minutes=16), user=None)
    assert not _runs.is_ours(run, since=None, user=None)
    assert "started by etl at 2026-01-01T08:00:00+00:00" in _runs.describe(run)


# ---------------------------------------------------------------------- the operator


class WorkerDied(Exception):
    """The worker's process ended right after the start (the first thing after it)."""


class DyingTaskInstance(TaskInstance):
    def xcom_push(self, key: str, value: Any) -> None:
        raise WorkerDied


def starts(cl: Cluster) -> int:
    return int(cl.simulator.stats.by_endpoint["start"])


def now(cl: Cluster) -> datetime:
    return datetime.fromtimestamp(cl.clock.time(), tz=UTC)


def first_try_dies(cl: Cluster, context: dict[str, Any]) -> None:
    """Try 1 starts the job and its worker dies right after."""
    with pytest.raises(WorkerDied):
        CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True).execute(
            context | {"ti": DyingTaskInstance(1)}
        )
    assert starts(cl) == 1


def contexts(cl: Cluster) -> dict[str, dict[str, Any]]:
    """What a later try knows: the task state store (Airflow >= 3.3), or only the DAG
    run's start (older Airflow: the rule)."""
    return {
        "store": {"task_state_store": TaskStateStore()},
        "rule": {"dag_run": DagRun(start_date=now(cl))},
    }


@pytest.mark.parametrize("kind", ["store", "rule"])
def test_try_2_waits_for_the_run_try_1_started(cluster: Cluster, kind: str) -> None:
    cluster.simulator.add_job("orders", plan=RUN, started=False)
    context = contexts(cluster)[kind]
    first_try_dies(cluster, context)
    anyio.run(cluster.clock.advance, 60)  # try 2 comes a minute later: the run goes on
    ti = TaskInstance(2)
    with pytest.raises(TaskDeferred) as deferred:
        CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True).execute(
            context | {"ti": ti}
        )
    assert starts(cluster) == 1
    booted = [s for s in cluster.simulator.transitions("orders") if s.status is JobStatus.BOOTING]
    assert len(booted) == 1
    started = deferred.value.kwargs["started"]
    assert deferred.value.trigger.since == started["creation_date"]
    assert ti.xcom["cdm_submission"] == started


@pytest.mark.parametrize("kind", ["store", "rule"])
def test_try_2_returns_the_result_of_the_run_that_already_succeeded(
    cluster: Cluster, kind: str
) -> None:
    cluster.simulator.add_job("orders", plan=RUN, started=False)
    context = contexts(cluster)[kind]
    first_try_dies(cluster, context)
    anyio.run(cluster.clock.advance, 3600)  # the run ended before the retry came
    summary = CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True).execute(
        context | {"ti": TaskInstance(2)}
    )
    assert starts(cluster) == 1
    assert summary["status"] == "SUCCEEDED"
    assert summary["rows_written"] == 500
    assert summary["started"]["job_name"] == "orders"


@pytest.mark.parametrize("kind", ["store", "rule"])
def test_try_2_starts_again_after_a_failed_run_and_says_so(
    cluster: Cluster, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    failing = JobPlan(boot_seconds=30, run_seconds=60, outcome=JobStatus.FAILED)
    cluster.simulator.add_job("orders", plan=failing, started=False)
    context = contexts(cluster)[kind]
    first_try_dies(cluster, context)
    anyio.run(cluster.clock.advance, 600)
    with pytest.raises(TaskDeferred) as deferred:
        CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True).execute(
            context | {"ti": TaskInstance(2)}
        )
    assert starts(cluster) == 2
    assert "ended without success: starting the job again" in capsys.readouterr().out
    since = datetime.fromisoformat(deferred.value.trigger.since)
    assert since >= now(cluster) - timedelta(seconds=1)  # the new run, not the failed one


def test_try_2_waits_on_the_worker_too(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.simulator.add_job("orders", plan=RUN, started=False)
    context = contexts(cluster)["store"]
    first_try_dies(cluster, context)
    on_virtual_time(monkeypatch, cluster)
    summary = CDMStartJobOperator(task_id="s", job_name="orders", deferrable=False).execute(
        context | {"ti": TaskInstance(2)}
    )
    assert summary["status"] == "SUCCEEDED"
    assert starts(cluster) == 1


def test_a_clear_after_success_does_not_start_the_job_again(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(0, 0, rows=3), started=False)
    store = TaskStateStore()
    first = CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True).execute(
        {"task_state_store": store, "ti": TaskInstance(1)}
    )
    assert first["status"] == "SUCCEEDED"
    cleared = CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True).execute(
        {"task_state_store": store, "ti": TaskInstance(2)}
    )
    assert cleared["started"] == first["started"]
    assert starts(cluster) == 1


def test_a_first_try_refuses_somebody_else_s_run_saying_whose_and_since_when(
    cluster: Cluster,
) -> None:
    cluster.simulator.add_job("orders", plan=RUN)  # started by the console's user, "cdm"
    when = now(cluster).isoformat()
    for context in contexts(cluster).values():
        with pytest.raises(AirflowException, match="already running") as refused:
            CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True).execute(
                context | {"ti": TaskInstance(1)}
            )
        assert f"started by cdm at {when}" in str(refused.value)
        assert "did not start that run" in str(refused.value)


@pytest.mark.parametrize(("user", "adopted"), [("cdm", True), ("etl", False)])
def test_without_a_record_the_rule_checks_the_connection_s_user(
    monkeypatch: pytest.MonkeyPatch, user: str, adopted: bool
) -> None:
    cl = simulated_cluster(monkeypatch, user=user)
    began = now(cl)
    anyio.run(cl.clock.advance, 5)
    cl.simulator.add_job("orders", plan=RUN)  # started after the DAG run began, by "cdm"
    context = {"dag_run": DagRun(start_date=began), "ti": TaskInstance(2)}
    operator = CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True)
    if adopted:
        with pytest.raises(TaskDeferred):
            operator.execute(context)
        assert starts(cl) == 0  # recognised before any start request
    else:
        with pytest.raises(AirflowException, match="started by cdm"):
            operator.execute(context)
        assert starts(cl) == 1  # the start CDM refused


def test_a_recorded_run_that_is_no_longer_the_newest_is_not_started_again(
    cluster: Cluster,
) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(0, 0), started=False)
    store = TaskStateStore()
    CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True).execute(
        {"task_state_store": store, "ti": TaskInstance(1)}
    )
    anyio.run(cluster.clock.advance, 60)
    cluster.simulator.start_job("orders")  # somebody started it again since
    with pytest.raises(AirflowFailException, match="no longer the job's newest run"):
        CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True).execute(
            {"task_state_store": store, "ti": TaskInstance(2)}
        )
    assert starts(cluster) == 1
