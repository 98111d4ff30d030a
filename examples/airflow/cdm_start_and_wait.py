"""Start a CDM job and wait for that run; a failing run fails the task with its error
summary, and killing the task stops the run it started."""

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
        variables={"day": "{{ ds }}"},
        timeout=2 * 3600,
    )

    @task
    def report(summary: dict[str, object]) -> None:
        print(f"{summary['status']}: {summary['rows_written']} rows written")

    report(run.output)
