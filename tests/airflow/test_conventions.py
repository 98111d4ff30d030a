"""Airflow's conventions: ``deferrable`` defaults to ``[operators] default_deferrable``, a
sensor that is not deferred waits on its worker or pokes and reschedules, and its timeout
counts from the first poke."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import anyio
import pytest

from cdm_status import JobStatus
from cdm_status.airflow._compat import (
    AirflowRescheduleException,
    AirflowSensorTimeout,
    TaskDeferred,
)
from cdm_status.airflow.operators import CDMStartJobOperator
from cdm_status.airflow.sensors import CDMDatabaseJobSensor, CDMJobSensor
from cdm_status.testing import JobPlan
from tests.support.airflow_simulated import Cluster, TaskInstance, cluster, on_virtual_time

__all__ = ["cluster"]

TEN_MINUTES = JobPlan(boot_seconds=30, run_seconds=570, rows=10)


@pytest.mark.parametrize("configured", [False, True])
def test_deferrable_defaults_to_the_configured_default(
    monkeypatch: pytest.MonkeyPatch, configured: bool
) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", str(configured))
    sensor = CDMJobSensor(task_id="t", job_name="a")
    assert sensor.deferrable is configured
    assert sensor.start_from_trigger is configured
    assert CDMDatabaseJobSensor(task_id="d", parent="p").start_from_trigger is configured
    assert CDMStartJobOperator(task_id="s", job_name="a").deferrable is configured
    # An explicit argument wins over the configuration.
    assert CDMJobSensor(task_id="u", job_name="a", deferrable=not configured).deferrable is (
        not configured
    )


def test_with_no_triggerer_configured_a_sensor_waits_on_its_worker(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "false")
    cluster.simulator.add_job("orders", plan=TEN_MINUTES)
    on_virtual_time(monkeypatch, cluster)
    sensor = CDMJobSensor(task_id="t", job_name="orders", timeout=3600)
    assert sensor.start_from_trigger is False
    result = sensor.execute({})  # never TaskDeferred: nothing would run the trigger
    assert result["status"] == "SUCCEEDED"
    assert cluster.clock.monotonic() >= 600


def poke_until_done(
    cl: Cluster, sensor: CDMJobSensor | CDMDatabaseJobSensor, ti: TaskInstance
) -> tuple[Any, list[int]]:
    """Run the sensor as Airflow runs a rescheduled one: each try pokes once and frees
    the worker until ``poke_interval`` later. Returns its XCom and the status requests
    each poke sent."""
    requests: list[int] = []
    while True:
        before = cl.simulator.stats.by_endpoint["status"]
        rescheduled: datetime | None = None
        try:
            result = sensor.execute({"ti": ti})
        except AirflowRescheduleException as told:
            rescheduled = told.reschedule_date
        requests.append(cl.simulator.stats.by_endpoint["status"] - before)
        if rescheduled is None:
            return result, requests
        assert rescheduled > datetime.now(tz=timezone.utc)
        anyio.run(cl.clock.advance, sensor.poke_interval)  # the worker slot is free


def test_a_rescheduled_sensor_pokes_each_job_once_a_try_until_it_ends(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=TEN_MINUTES)
    cluster.simulator.add_job("customers", plan=JobPlan(boot_seconds=5, run_seconds=60))
    sensor = CDMJobSensor(
        task_id="t",
        job_names=["orders", "customers"],
        deferrable=False,
        mode="reschedule",
        poke_interval=120,
        timeout=3600,
    )
    ti = TaskInstance(1, first_reschedule=datetime.now(tz=timezone.utc))
    result, requests = poke_until_done(cluster, sensor, ti)
    assert result["orders"]["status"] == "SUCCEEDED"
    assert result["customers"]["status"] == "SUCCEEDED"
    assert len(requests) == 6  # 0, 2, 4, 6, 8 minutes: running; 10 minutes: ended
    assert requests == [2] * 6  # every job checked once per poke


def test_a_rescheduled_database_sensor_finds_its_tables_and_keys_them(cluster: Cluster) -> None:
    plans = {"orders": TEN_MINUTES, "customers": JobPlan(5, 30, outcome=JobStatus.SUCCEEDED)}
    cluster.simulator.add_database_job("nightly", ["orders", "customers"], plans=plans)
    sensor = CDMDatabaseJobSensor(
        task_id="d", parent="nightly", deferrable=False, mode="reschedule", poke_interval=300
    )
    ti = TaskInstance(1, first_reschedule=datetime.now(tz=timezone.utc))
    result, _ = poke_until_done(cluster, sensor, ti)
    assert sorted(result) == ["customers", "orders"]
    assert result["orders"]["rows_written"] == 10


def test_a_rescheduled_sensor_s_timeout_counts_from_its_first_poke(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=TEN_MINUTES)
    sensor = CDMJobSensor(
        task_id="t", job_name="orders", deferrable=False, mode="reschedule", timeout=3600
    )
    first_poke = datetime.now(tz=timezone.utc) - timedelta(hours=2)
    with pytest.raises(AirflowSensorTimeout):
        sensor.execute({"ti": TaskInstance(1, first_reschedule=first_poke)})


def test_a_deferrable_sensor_ignores_reschedule_mode(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=TEN_MINUTES)
    sensor = CDMJobSensor(task_id="t", job_name="orders", deferrable=True, mode="reschedule")
    with pytest.raises(TaskDeferred):
        sensor.execute({"ti": TaskInstance(1)})
