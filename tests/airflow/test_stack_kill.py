"""End to end, on every supported Airflow minor (``make airflow-versions``; the newest in
``make test``): a deferred ``CDMStartJobOperator`` keeps its CDM run through a triggerer
restart (SIGTERM, so the trigger's ``cleanup()`` runs), and stops it when a user marks
the task failed. Airflow 3.3 tells the trigger through ``on_kill()``, 3.1 and 3.2 only through
``cleanup()`` (see ``CDMJobTrigger.cleanup``): the same outcome is asserted on each."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import anyio
import httpx
import pytest

from cdm_status import AKSKAuth, CDMClient
from tests.airflow.conftest import AK, SK
from tests.airflow.test_stack import Stack, stack, wait_for

__all__ = ["stack"]

pytestmark = pytest.mark.slow

# A deployment with a triggerer: the start-and-wait example defers.
STACK_ENV = {"AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE": "True"}

JOB = "cdm_long"  # boots 5 s, runs an hour (test_stack.SIMULATOR)
DAG = "cdm_start_and_wait"
TASK = "start_and_wait"


def newest_status(stack: Stack) -> str:
    """The status of the job's newest run, as CDM (the simulator) answers it."""
    conn = json.loads(stack.env["AIRFLOW_CONN_HUAWEICLOUD_DEFAULT"])
    extra = conn["extra"]

    async def read() -> str:
        auth = AKSKAuth(AK, SK, project_id=extra["project_id"])
        async with CDMClient(
            extra["endpoint"], extra["project_id"], extra["cluster_id"], auth=auth
        ) as client:
            return (await client.get_status(JOB)).status.value

    return anyio.run(read)


def watches_started(stack: Stack) -> int:
    """How many times a trigger began watching the job (once per triggerer that ran it)."""
    logs = "".join(
        path.read_text(errors="replace")
        for path in Path(stack.home, "logs").glob(f"dag_id={DAG}/**/*")
        if path.is_file()
    )
    return logs.count(f"watching 1 CDM job(s): {JOB}")


def mark_failed(stack: Stack) -> None:
    """PATCH the task instance to ``failed`` through the REST API (all users are admins)."""
    ((run_id,),) = stack.states(f"select run_id from task_instance where task_id = '{TASK}'")
    base = f"http://127.0.0.1:{stack.env['AIRFLOW__API__PORT']}"
    with httpx.Client(base_url=base, timeout=60) as http:
        token = http.get("/auth/token").raise_for_status().json()["access_token"]
        http.patch(
            f"/api/v2/dags/{DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/{TASK}",
            json={"new_state": "failed"},
            headers={"Authorization": f"Bearer {token}"},
        ).raise_for_status()


def task_state(stack: Stack) -> str | None:
    rows = stack.states(f"select state from task_instance where task_id = '{TASK}'")
    return rows[0][0] if rows else None


def test_a_restart_keeps_the_run_and_a_kill_stops_it(stack: Stack) -> None:
    wait_for(lambda: len(stack.states("select dag_id from dag")) >= 3, 120, "the DAGs to be parsed")
    wait_for(stack.api_answers, 120, "the API server")
    stack.begin_runs()
    # With a logical date: the example renders {{ ds }}, which a run without one lacks.
    stack.trigger(DAG, {"job": JOB}, logical_date="2026-01-01T00:00:00+00:00")
    wait_for(lambda: task_state(stack) == "deferred", 120, "the task to defer")
    wait_for(lambda: watches_started(stack) >= 1, 60, "the trigger to watch the job")
    assert newest_status(stack) in ("BOOTING", "RUNNING")

    # A restart: SIGTERM ends the trigger, its cleanup() runs, and the run goes on.
    stack.stop("triggerer")
    assert task_state(stack) == "deferred"
    assert newest_status(stack) in ("BOOTING", "RUNNING")
    stack.start("triggerer", "triggerer", "--skip-serve-logs")
    wait_for(lambda: watches_started(stack) >= 2, 120, "the new triggerer to watch the job")
    assert newest_status(stack) in ("BOOTING", "RUNNING")

    # A user marks the deferred task failed, as the UI's "Mark as failed" does.
    mark_failed(stack)
    wait_for(lambda: newest_status(stack) == "STOPPED", 120, "the run to be stopped")
    assert stack.processes["triggerer"].poll() is None  # a kill is not a crash
