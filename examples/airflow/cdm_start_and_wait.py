"""Start a CDM job and wait for that run; a failing run fails the task with its error
summary, and killing the task stops the run it started.

It waits in the triggerer when ``[operators] default_deferrable`` is true, else on the
worker. A retry never starts a second run while the first one goes on or after it
succeeded: it waits for it, or returns its result.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, task

from cdm_status.airflow.operators import CDMStartJobOperator

with DAG(
    dag_id="cdm_start_and_wait",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"job": Param("jdbc2hive", type="string")},
    tags=["cdm"],
):
    run = CDMStartJobOperator(
        task_id="start_and_wait",
        job_name="{{ params.job }}",
        variables={"day": "{{ dag_run.run_after | ds }}"},  # a manual run has no logical date
        timeout=2 * 3600,
        retries=2,
    )

    @task
    def report(summary: dict[str, object]) -> None:
        print(f"{summary['status']}: {summary['rows_written']} rows written")

    report(run.output)
