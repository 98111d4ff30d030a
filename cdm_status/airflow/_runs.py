"""Which run of a job a task instance started, and what its next try does about it.

Pure: no Airflow import, no I/O, no logging. The operator records each run it starts (a
JSON-native :func:`record`) where its next try can read it: Airflow's task state store,
which keeps a task instance's keys across tries and clears. A later try then looks the run
up (:func:`recorded_run`) and :func:`next_step` says what to do:

=====================  ==========================================================
our run is             the try
=====================  ==========================================================
still going            waits for it (no start)
ended successfully     returns its result (no start)
ended without success  starts the job again (that is what the retry is for)
=====================  ==========================================================

Where Airflow has no task state store (before 3.3), :func:`is_ours` recognises our run in
CDM instead: the job's newest submission, created at or after the DAG run began (less
:data:`CLOCK_ALLOWANCE`), by the connection's ``user`` when the connection names one.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .._models import Submission

__all__ = [
    "CLOCK_ALLOWANCE",
    "RECORD_KEY",
    "Step",
    "describe",
    "is_ours",
    "next_step",
    "record",
    "recorded",
    "recorded_run",
]

RECORD_KEY = "cdm_status.started"
"""The task state store key of the run a task instance started."""

CLOCK_ALLOWANCE = timedelta(minutes=15)
"""How far CDM's clock may be behind Airflow's: the AK/SK gateway refuses a signing clock
more than 15 minutes off, so a run this task started is never dated earlier than that
before the moment Airflow gave."""


class Step(enum.Enum):
    """What a try does about the run an earlier try started."""

    WAIT = "wait"
    """The run is still going: wait for it."""
    RETURN = "return"
    """The run succeeded: return its result."""
    START_AGAIN = "start_again"
    """The run ended without success: start the job again."""


def record(submission: Submission, *, cluster_id: str, try_number: int) -> dict[str, Any]:
    """The JSON-native record of a run just started (what the task state store keeps)."""
    created = submission.creation_date
    return {
        "job_name": submission.job_name,
        "cluster_id": cluster_id,
        "submission_id": submission.submission_id,
        "creation_date": created.isoformat() if created is not None else None,
        "creation_user": submission.creation_user,
        "try_number": try_number,
    }


def recorded(value: object, *, job_name: str, cluster_id: str) -> dict[str, Any] | None:
    """The stored record if it is one of this job on this cluster, else None (nothing
    stored, or a record of another job: the task's job name is a template)."""
    if not isinstance(value, Mapping):
        return None
    if value.get("job_name") != job_name or value.get("cluster_id") != cluster_id:
        return None
    if value.get("submission_id") is None and value.get("creation_date") is None:
        return None
    return dict(value)


def _date(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def recorded_run(newest: Submission, stored: Mapping[str, Any]) -> bool:
    """Whether ``newest`` (the job's newest submission) is the recorded run: the same
    submission id when both have one, else the same creation date."""
    wanted_id = stored.get("submission_id")
    if wanted_id is not None and newest.submission_id is not None:
        return bool(newest.submission_id == wanted_id)
    created = _date(stored.get("creation_date"))
    return created is not None and newest.creation_date == created


def is_ours(newest: Submission, *, since: datetime | None, user: str | None) -> bool:
    """The rule for an Airflow without a task state store: ``newest`` was created at or
    after ``since`` (the DAG run's start) less :data:`CLOCK_ALLOWANCE`, and by ``user``
    when one is given. Without ``since`` nothing is recognised."""
    created = newest.creation_date
    if since is None or created is None:
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    if created < since - CLOCK_ALLOWANCE:
        return False
    return user is None or newest.creation_user == user


def next_step(run: Submission) -> Step:
    """What a later try does about its run, by the run's status."""
    if run.status.is_success:
        return Step.RETURN
    if run.status.is_failure:
        return Step.START_AGAIN
    return Step.WAIT


def describe(run: Submission) -> str:
    """``submission 7 (RUNNING), started by alice at 2026-01-01T08:00:00+00:00``."""
    ident = f"submission {run.submission_id}" if run.submission_id is not None else "a run"
    who = run.creation_user or "an unknown user"
    when = run.creation_date.isoformat() if run.creation_date is not None else "an unknown time"
    return f"{ident} ({run.raw_status}), started by {who} at {when}"
