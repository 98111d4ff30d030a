"""Wait for one CDM job, deferred: no worker slot is held while the job runs.

Needs a ``huaweicloud_cdm`` connection named ``huaweicloud_default`` (login = AK,
password = SK, extras ``region``, ``project_id``, ``cluster_id``).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from cdm_status.airflow.sensors import CDMJobSensor

with DAG(
    dag_id="cdm_job",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={"job": Param("jdbc2hive", type="string")},
    tags=["cdm"],
):
    CDMJobSensor(
        task_id="wait_for_job",
        job_name="{{ params.job }}",
        timeout=6 * 3600,  # then AirflowSensorTimeout, naming the job's status and progress
        deferrable=True,  # waits in the triggerer, whatever [operators] default_deferrable says
    )
