"""A fixed set of watch events for the tests of ``wait``'s outputs (no I/O, no clock)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cdm_status import (
    AuthenticationError,
    Counters,
    JobDone,
    JobNotFoundError,
    JobOutcome,
    JobStatus,
    OutcomeKind,
    PollFailed,
    ServiceUnavailableError,
    StatusChanged,
    Submission,
)
from cdm_status._events import Event

T0 = datetime(2026, 1, 1, 8, 0, 0, tzinfo=timezone.utc)
JOBS = ("db_orders", "db_users", "db_items", "db_audit", "db_ghost")
LOCK_TIMEOUT = "GENERIC_JDBC_CONNECTOR_0002:Unable to execute the SQL statement"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def submission(
    job: str,
    status: JobStatus,
    *,
    progress: float | None = None,
    rows: int | None = None,
    size: int | None = None,
    summary: str | None = None,
) -> Submission:
    counters = None if rows is None else Counters(rows_written=rows, bytes_written=size)
    return Submission(
        job_name=job,
        status=status,
        raw_status=status.value,
        progress=progress,
        submission_id=1,
        counters=counters,
        error_summary=summary,
        error_details=None if summary is None else f"java.sql.SQLException: {summary}",
    )


def change(
    job: str, previous: JobStatus | None, current: Submission, seconds: float
) -> StatusChanged:
    return StatusChanged(job, previous, current.status, current, at(seconds))


def not_found(job: str) -> JobNotFoundError:
    return JobNotFoundError(
        f"HTTP 400 Cdm.0100: Job[{job}] doesn't exist. (job {job!r})",
        status_code=400,
        error_code="Cdm.0100",
        error_msg=f"Job[{job}] doesn't exist.",
        job_name=job,
    )


def unavailable() -> ServiceUnavailableError:
    return ServiceUnavailableError("HTTP 503", status_code=503)


def refused() -> AuthenticationError:
    return AuthenticationError(
        "HTTP 401 APIG.0301: Incorrect IAM authentication information",
        status_code=401,
        error_code="APIG.0301",
        error_msg="Incorrect IAM authentication information",
    )


def five_jobs() -> list[tuple[Event, datetime]]:
    """Three of five jobs done (1 succeeded, 1 failed, 1 not found); two still running."""
    orders_done = submission(
        "db_orders", JobStatus.SUCCEEDED, progress=100, rows=1200, size=3 * 1024 * 1024
    )
    users_failed = submission("db_users", JobStatus.FAILED, progress=-1, summary=LOCK_TIMEOUT)
    events: list[tuple[Event, float]] = [
        (change("db_orders", None, submission("db_orders", JobStatus.BOOTING), 0), 0),
        (change("db_users", None, submission("db_users", JobStatus.RUNNING, progress=5), 1), 1),
        (change("db_items", None, submission("db_items", JobStatus.NEVER_EXECUTED), 1), 1),
        (change("db_audit", None, submission("db_audit", JobStatus.RUNNING, progress=1), 2), 2),
        (PollFailed("db_ghost", not_found("db_ghost"), 1), 2),
        (
            change(
                "db_orders",
                JobStatus.BOOTING,
                submission("db_orders", JobStatus.RUNNING, progress=10),
                5,
            ),
            5,
        ),
        (PollFailed("db_items", unavailable(), 1), 6),
        (change("db_orders", JobStatus.RUNNING, orders_done, 30), 30),
        (JobDone(JobOutcome("db_orders", OutcomeKind.SUCCEEDED, orders_done)), 30),
        (change("db_users", JobStatus.RUNNING, users_failed, 31), 31),
        (JobDone(JobOutcome("db_users", OutcomeKind.FAILED, users_failed)), 31),
        (
            JobDone(JobOutcome("db_ghost", OutcomeKind.NOT_FOUND, None, not_found("db_ghost"))),
            32,
        ),
    ]
    return [(event, at(seconds)) for event, seconds in events]
