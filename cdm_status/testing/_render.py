"""What the simulator puts on the wire: submission objects, job-list entries, error bodies.

Written from the API page and notes, independently of the client's parser (``_wire``): if
the two shared code, a misreading in one would hide in the other.
"""

from __future__ import annotations

from typing import Any

from .._models import JobStatus
from ._setup import DEFAULT_SETUP, JobSetup
from ._timeline import Run, RunState

__all__ = [
    "cdm_error",
    "driver_configs",
    "gateway_error",
    "job_configs",
    "list_entry",
    "submission",
]

COUNTERS_GROUP = "org.apache.sqoop.submission.counter.SqoopCounters"


def _ms(epoch_seconds: float) -> int:
    return int(epoch_seconds * 1000)


def submission(
    run: Run, state: RunState, *, user_key: str, shift: float = 0.0, delete_job: bool = False
) -> dict[str, Any]:
    """The submission object of ``run`` in ``state``, shaped as CDM sends it, its dates
    ``shift`` seconds ahead of the simulator's clock (a server clock set apart).
    ``delete_job``: the job is deleted after its run (``isDeleteJob``)."""
    plan = run.plan
    body: dict[str, Any] = {
        "job-name": run.job_name,
        "status": state.status.value,
        "creation-date": _ms(run.created_at + shift),
        "creation-user": plan.user,
        "progress": state.progress,
        "submission-id": run.submission_id,
    }
    if not run.progress_curve.reported:
        del body["progress"]  # versions that never send it
    if state.status is JobStatus.BOOTING:
        return body  # early states are sparse: only the fields above
    body.update(
        {
            "isStopingIncrement": "",  # documented Boolean, sent as "" (sic)
            "last-update-date": _ms((state.updated_at or run.submitted_at) + shift),
            "is-execute-auto": False,
            user_key: plan.user,
            "isDeleteJob": delete_job,
            "isIncrementing": False,
            "external-id": run.external_id,
            "execute-date": _ms(run.running_at + shift),
        }
    )
    if state.status is JobStatus.RUNNING:
        # Running counts come as these flat fields; ``counters`` waits for success.
        body.update({"write_rows": state.rows_done, "update_rows": 0, "delete_rows": 0})
    elif state.status is JobStatus.SUCCEEDED:
        body["counters"] = {COUNTERS_GROUP: _counters(run)}
    elif state.status is JobStatus.FAILED:
        body["error-summary"] = run.error_summary
        body["error-details"] = run.error_details
    return body


def _counters(run: Run) -> dict[str, int]:
    plan = run.plan
    written = plan.rows - plan.rows_skipped
    return {
        "BYTES_WRITTEN": plan.bytes,
        "TOTAL_FILES": plan.files,
        "BYTES_READ": plan.bytes,
        "FILES_WRITTEN": plan.files,
        "TOTAL_SIZE": plan.bytes,
        "FILES_READ": plan.files,
        "FILES_SKIPPED": -1 if plan.files < 0 else 0,
        "ROWS_WRITTEN": written,
        "ROWS_READ": plan.rows,
        "ROWS_WRITTEN_SKIPPED": plan.rows_skipped,
    }


def list_entry(
    name: str,
    job_type: str,
    created_at: float,
    run: Run | None,
    state: RunState | None,
    *,
    user_key: str,
    shift: float = 0.0,
) -> dict[str, Any]:
    """One job of the job list: a name and its last status, no counters or errors (dates
    ``shift`` seconds ahead of the simulator's clock)."""
    entry: dict[str, Any] = {
        "name": name,
        "job_type": job_type,
        # A job that never ran shows NEW in the list (the status API says NEVER_EXECUTED).
        "status": JobStatus.NEW.value if state is None else state.status.value,
        "creation-date": _ms(created_at + shift),
        "creation-user": "cdm",
        "last-update-date": _ms(
            shift
            + (created_at if run is None or state is None else state.updated_at or run.submitted_at)
        ),
        user_key: "cdm",
        "is_incre_job": False,
        "from-connector-name": "generic-jdbc-connector",
        "to-connector-name": "hive-connector",
    }
    return entry


def _configs(name: str, inputs: dict[str, str]) -> dict[str, Any]:
    return {
        "configs": [
            {
                "name": name,
                "inputs": [{"name": key, "value": value} for key, value in inputs.items()],
            }
        ]
    }


def driver_configs(setup: JobSetup = DEFAULT_SETUP) -> dict[str, Any]:
    """A job's parameters (``driver-config-values``), with ``setup``'s settings."""
    return {
        "configs": [
            {
                "name": "schedulerConfig",
                "inputs": [
                    {"name": "schedulerConfig.isSchedulerJob", "value": "false"},
                    {"name": "schedulerConfig.disposableType", "value": setup.disposable},
                ],
            },
            {
                "name": "retryJobConfig",
                "inputs": [{"name": "retryJobConfig.retryJobType", "value": setup.retry}],
            },
        ]
    }


def job_configs(table: str, setup: JobSetup = DEFAULT_SETUP) -> dict[str, Any]:
    """What a job's definition says besides its status: its links, what it reads and
    writes, and its parameters (``driver-config-values``) with ``setup``'s settings."""
    return {
        "from-link-name": "mysql_link",
        "to-link-name": "hive_link",
        "from-config-values": _configs(
            "fromJobConfig",
            {"fromJobConfig.schemaName": "erp", "fromJobConfig.tableName": table},
        ),
        "to-config-values": _configs(
            "toJobConfig",
            {"toJobConfig.database": "warehouse", "toJobConfig.table": table},
        ),
        "driver-config-values": driver_configs(setup),
    }


def cdm_error(code: str, message: str) -> dict[str, Any]:
    """CDM's own error body."""
    return {"errCode": code, "externalMessage": message}


def gateway_error(code: str, message: str, request_id: str) -> dict[str, Any]:
    """The API gateway's error body."""
    return {"error_code": code, "error_msg": message, "request_id": request_id}
