"""Stopping the run the operator started: ``on_kill`` as Airflow calls it (from its SIGTERM
handler, in the main thread, inside the loop of a task waiting on its worker), and
``stop_on_timeout``. Stop requests are counted at the simulator."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from cdm_status import JobStatus
from cdm_status.airflow._compat import AirflowFailException, AirflowSensorTimeout, TaskDeferred
from cdm_status.airflow.operators import CDMStartJobOperator
from cdm_status.airflow.triggers import CDMJobTrigger
from cdm_status.testing import JobPlan
from tests.support.airflow_simulated import Cluster, TaskInstance, cluster, on_virtual_time

__all__ = ["cluster"]

HOUR = JobPlan(boot_seconds=30, run_seconds=3600)


def stops(cl: Cluster) -> int:
    return int(cl.simulator.stats.by_endpoint["stop"])


@pytest.fixture
def sigterm_calls_on_kill() -> Iterator[list[CDMStartJobOperator]]:
    """Airflow's task runner: ``signal.signal(SIGTERM, lambda *_: ti.task.on_kill())``.
    The test puts the task in the list."""
    tasks: list[CDMStartJobOperator] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: tasks[0].on_kill())
    try:
        yield tasks
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_on_kill_while_waiting_on_the_worker_sends_one_stop(
    cluster: Cluster,
    monkeypatch: pytest.MonkeyPatch,
    sigterm_calls_on_kill: list[CDMStartJobOperator],
) -> None:
    cluster.simulator.add_job("orders", plan=HOUR, started=False)

    async def kill_at_ten_minutes() -> None:
        await cluster.clock.sleep(600)
        assert cluster.simulator.status("orders") is JobStatus.RUNNING
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, in the running loop
        os.kill(os.getpid(), signal.SIGTERM)  # Airflow may call on_kill more than once

    on_virtual_time(monkeypatch, cluster, alongside=kill_at_ten_minutes)
    operator = CDMStartJobOperator(task_id="s", job_name="orders", deferrable=False)
    sigterm_calls_on_kill.append(operator)
    with pytest.raises(AirflowFailException, match="orders STOPPED"):
        operator.execute({"ti": TaskInstance(1)})
    assert stops(cluster) == 1
    assert cluster.simulator.status("orders") is JobStatus.STOPPED


def test_on_kill_outside_any_loop_stops_a_deferred_start(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=HOUR, started=False)
    operator = CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True)
    with pytest.raises(TaskDeferred):
        operator.execute({})
    operator.on_kill()
    operator.on_kill()
    assert stops(cluster) == 1
    assert cluster.simulator.status("orders") is JobStatus.STOPPED


@pytest.mark.parametrize("stop_on_timeout", [False, True])
def test_a_wait_that_reaches_its_deadline_stops_the_run_only_when_asked(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch, stop_on_timeout: bool
) -> None:
    cluster.simulator.add_job("orders", plan=HOUR, started=False)
    on_virtual_time(monkeypatch, cluster)
    operator = CDMStartJobOperator(
        task_id="s",
        job_name="orders",
        deferrable=False,
        timeout=900,
        stop_on_timeout=stop_on_timeout,
    )
    with pytest.raises(AirflowSensorTimeout, match="orders still RUNNING"):
        operator.execute({"ti": TaskInstance(1)})
    assert stops(cluster) == int(stop_on_timeout)
    expected = JobStatus.STOPPED if stop_on_timeout else JobStatus.RUNNING
    assert cluster.simulator.status("orders") is expected


def test_a_deferred_wait_that_reaches_its_deadline_stops_the_run(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=HOUR, started=False)
    operator = CDMStartJobOperator(
        task_id="s", job_name="orders", deferrable=True, timeout=900, stop_on_timeout=True
    )
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": TaskInstance(1)})
    trigger = deferred.value.trigger
    assert isinstance(trigger, CDMJobTrigger)

    async def run_trigger() -> dict[str, Any]:
        async with cluster.clock.autojump():
            async for event in trigger.run():
                return dict(event.payload)
        raise AssertionError("no event")

    event = anyio.run(run_trigger)
    assert event["result"] == "timeout"
    resumed = CDMStartJobOperator(  # a new worker runs the method the task resumes with
        task_id="s", job_name="orders", deferrable=True, timeout=900, stop_on_timeout=True
    )
    with pytest.raises(AirflowSensorTimeout):
        resumed.execute_complete({}, event, **deferred.value.kwargs)
    assert stops(cluster) == 1
    assert cluster.simulator.status("orders") is JobStatus.STOPPED
