"""Wait for every table of a whole-database CDM job; the XCom is a summary per table.

Without ``tables`` the subjobs ``<parent>_<table>`` are read from the job list.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from cdm_status.airflow.sensors import CDMDatabaseJobSensor

with DAG(
    dag_id="cdm_database_job",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"parent": Param("nightly_db", type="string")},
    tags=["cdm"],
):
    CDMDatabaseJobSensor(
        task_id="wait_for_tables",
        parent="{{ params.parent }}",
        timeout=12 * 3600,
        deferrable=True,  # waits in the triggerer, whatever [operators] default_deferrable says
    )
