"""Sensors and the operator on a worker: finishing at once, deferring, waiting here, the
outcome-to-exception mapping, and on_kill."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from cdm_status import JobDeletedError, JobOutcome, JobStatus, OutcomeKind, Submission
from cdm_status.airflow._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)
from cdm_status.airflow._payload import build_event
from cdm_status.airflow._results import conclude
from cdm_status.airflow.operators import CDMStartJobOperator
from cdm_status.airflow.sensors import CDMDatabaseJobSensor, CDMJobSensor
from cdm_status.airflow.triggers import CDMJobTrigger
from cdm_status.testing import JobPlan, JobSetup
from tests.support.airflow_simulated import Cluster, cluster, simulated_cluster

__all__ = ["cluster"]

DONE = JobPlan(boot_seconds=0, run_seconds=0, rows=77)
LONG = JobPlan(boot_seconds=5, run_seconds=3600)


def event(result: str, message: str = "why") -> dict[str, Any]:
    return {"result": result, "message": message, "jobs": {"a": {"outcome": "x"}}}


@pytest.mark.parametrize(
    ("result", "raised"),
    [
        ("failed", AirflowFailException),
        ("timeout", AirflowSensorTimeout),
        ("error", AirflowException),
        ("anything else", AirflowException),
    ],
)
def test_each_result_raises_its_exception_with_the_message(
    result: str, raised: type[Exception]
) -> None:
    with pytest.raises(raised, match="why") as caught:
        conclude(event(result))
    assert type(caught.value) is raised  # a retryable error is not a "fail now"


def test_success_returns_the_jobs() -> None:
    assert conclude(event("success")) == {"a": {"outcome": "x"}}


@pytest.mark.parametrize("result", ["failed", "timeout", "error"])
def test_soft_fail_skips_instead(result: str) -> None:
    sensor = CDMJobSensor(task_id="t", job_name="a", soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.execute_complete({}, event(result))
    assert CDMJobSensor(task_id="t", job_name="a").execute_complete({}, event("success")) == {
        "outcome": "x"
    }


def test_sensors_start_from_the_trigger_with_static_kwargs() -> None:
    sensor = CDMJobSensor(
        task_id="t", job_names=["a", "b"], cluster_id="c", timeout=600, deferrable=True
    )
    assert sensor.start_from_trigger is True
    args = sensor.start_trigger_args
    assert args is not None
    assert args.trigger_cls == "cdm_status.airflow.triggers.CDMJobTrigger"
    assert args.next_method == "execute_complete"
    assert args.timeout == timedelta(seconds=600)
    kwargs = args.trigger_kwargs or {}
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert CDMJobTrigger(**kwargs).job_names == ["a", "b"]
    # The template fields rendered in the triggerer are the trigger's own arguments.
    assert set(sensor.template_fields) <= set(kwargs)
    database = CDMDatabaseJobSensor(task_id="d", parent="p", tables=["x"], deferrable=True)
    assert set(database.template_fields) <= set(database.start_trigger_args.trigger_kwargs or {})
    assert CDMJobSensor(task_id="w", job_name="a", deferrable=False).start_from_trigger is False


def test_a_sensor_needs_exactly_one_of_job_name_and_job_names() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        CDMJobSensor(task_id="t")
    with pytest.raises(ValueError, match="exactly one"):
        CDMJobSensor(task_id="t", job_name="a", job_names=["b"])


def test_an_ended_job_finishes_without_deferring(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=DONE)
    result = CDMJobSensor(task_id="t", job_name="orders", deferrable=True).execute({})
    assert result["status"] == "SUCCEEDED"
    assert result["rows_written"] == 77


def test_an_ended_failed_job_fails_without_deferring(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(0, 0, outcome=JobStatus.FAILED))
    with pytest.raises(AirflowFailException, match="orders FAILED"):
        CDMJobSensor(task_id="t", job_name="orders", deferrable=True).execute({})


def test_refused_credentials_fail_before_deferring(monkeypatch: pytest.MonkeyPatch) -> None:
    cl = simulated_cluster(monkeypatch, password="wrong-secret-key")
    cl.simulator.add_job("orders", plan=LONG)
    with pytest.raises(AirflowException, match="AuthenticationError") as raised:
        CDMJobSensor(task_id="t", job_name="orders", deferrable=True).execute({})
    assert not isinstance(raised.value, AirflowFailException)


def test_a_running_job_defers_with_the_deadline(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=LONG)
    sensor = CDMJobSensor(task_id="t", job_name="orders", timeout=3600, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, CDMJobTrigger)
    assert trigger.job_names == ["orders"]
    assert deferred.value.timeout == timedelta(seconds=3600)
    assert trigger.deadline is not None
    deadline = datetime.fromisoformat(trigger.deadline).timestamp()
    assert deadline == pytest.approx(cluster.clock.time() + 3600)


def test_a_database_sensor_returns_a_summary_per_table(cluster: Cluster) -> None:
    cluster.simulator.add_database_job(
        "nightly", ["orders", "customers"], plans={"orders": DONE, "customers": DONE}
    )
    result = CDMDatabaseJobSensor(
        task_id="d", parent="nightly", tables=["orders", "customers"], deferrable=True
    ).execute({})
    assert sorted(result) == ["customers", "orders"]
    assert result["orders"]["status"] == "SUCCEEDED"


def test_non_deferrable_waits_on_the_worker(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=DONE)
    sensor = CDMJobSensor(task_id="t", job_name="orders", deferrable=False)
    assert sensor.execute({})["status"] == "SUCCEEDED"
    assert cluster.registry.waiters == 0  # the worker's clients are closed afterwards


def test_the_operator_starts_once_and_defers_since_that_run(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=LONG, started=False)
    before = cluster.simulator.stats.by_endpoint["start"]
    operator = CDMStartJobOperator(
        task_id="s", job_name="orders", variables={"d": "1"}, deferrable=True
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({})
    assert cluster.simulator.stats.by_endpoint["start"] == before + 1
    trigger = deferred.value.trigger
    assert isinstance(trigger, CDMJobTrigger)
    assert trigger.stop_on_kill is True
    assert trigger.since is not None
    started = deferred.value.kwargs["started"]
    assert started["creation_date"] == trigger.since
    assert cluster.simulator.status("orders") in (JobStatus.BOOTING, JobStatus.RUNNING)
    operator.on_kill()
    assert cluster.simulator.status("orders") is JobStatus.STOPPED


def test_the_operator_without_wait_returns_the_start(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=LONG, started=False)
    result = CDMStartJobOperator(task_id="s", job_name="orders", wait=False).execute({})
    assert result["job_name"] == "orders"
    assert isinstance(result["submission_id"], int)
    assert cluster.simulator.status("orders") is JobStatus.BOOTING


def test_on_kill_stops_nothing_the_operator_did_not_start(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=LONG)
    CDMStartJobOperator(task_id="s", job_name="orders").on_kill()
    assert cluster.simulator.status("orders") is JobStatus.BOOTING


def deleted_event() -> dict[str, Any]:
    submission = Submission("gone", JobStatus.RUNNING, "RUNNING")
    error = JobDeletedError("gone", submission, "DELETE")
    outcome = JobOutcome("gone", OutcomeKind.DELETED, submission, error, deleted=True)
    return build_event({"gone": outcome})


def test_a_deleted_job_fails_the_sensor_unless_deleted_ok() -> None:
    event = json.loads(json.dumps(deleted_event()))
    with pytest.raises(AirflowFailException, match="NONE or DELETE_AFTER_SUCCEED"):
        CDMJobSensor(task_id="t", job_name="gone").execute_complete({}, event)
    lenient = CDMJobSensor(task_id="t", job_name="gone", deleted_ok=True)
    assert lenient.execute_complete({}, event)["outcome"] == "deleted"
    operator = CDMStartJobOperator(task_id="s", job_name="gone", deleted_ok=True)
    assert operator.execute_complete({}, event)["deleted"] is True
    with pytest.raises(AirflowFailException):
        CDMStartJobOperator(task_id="s", job_name="gone").execute_complete({}, event)


def test_a_failed_run_that_cdm_retries_defers_instead_of_failing(cluster: Cluster) -> None:
    failing = JobPlan(0, 0, outcome=JobStatus.FAILED)
    cluster.simulator.add_job("flaky", plan=failing, setup=JobSetup(retry="RETRY_TRIPLE"))
    with pytest.raises(TaskDeferred):
        CDMJobSensor(task_id="t", job_name="flaky", deferrable=True).execute({})
    assert cluster.simulator.stats.by_endpoint["job"] == 1  # its settings, read once
