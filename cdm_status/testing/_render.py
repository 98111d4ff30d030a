"""What the simulator puts on the wire: submission objects, job-list entries, error bodies.

Written from the API page and notes, independently of the client's parser (``_wire``): if
the two shared code, a misreading in one would hide in the other.
"""

from __future__ import annotations

from typing import Any

from .._models import JobStatus
from ._timeline import Run, RunState

__all__ = ["cdm_error", "gateway_error", "list_entry", "submission"]

COUNTERS_GROUP = "org.apache.sqoop.submission.counter.SqoopCounters"


def _ms(epoch_seconds: float) -> int:
    return int(epoch_seconds * 1000)


def submission(run: Run, state: RunState, *, user_key: str, shift: float = 0.0) -> dict[str, Any]:
    """The submission object of ``run`` in ``state``, shaped as CDM sends it, its dates
    ``shift`` seconds ahead of the simulator's clock (a server clock set apart)."""
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
            "isDeleteJob": False,
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


def cdm_error(code: str, message: str) -> dict[str, Any]:
    """CDM's own error body."""
    return {"errCode": code, "externalMessage": message}


def gateway_error(code: str, message: str, request_id: str) -> dict[str, Any]:
    """The API gateway's error body."""
    return {"error_code": code, "error_msg": message, "request_id": request_id}
