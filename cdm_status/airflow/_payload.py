"""The one small JSON event a trigger yields, built from the outcomes of its watch.

Pure: no Airflow import, no I/O. The event crosses the triggerer's database to the task, so
it holds only JSON-native values, capped in size: per job the outcome, status, submission
id, progress, rows and bytes written and the error summary (and, for jobs CDM retried or
deleted after their run, the earlier runs' summaries and whether the deletion was the
final answer); overall one ``result`` word that the task maps to success or an exception
(``_results``), and a message saying why.

A job that CDM deleted after its run before its result was read (``deleted``) fails the
watch by default, with a message saying how to keep such jobs; the task can count it as
done instead (``deleted_ok``, see :func:`judge`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .._endings import RETRIED
from .._errors import is_permanent
from .._events import JobOutcome, OutcomeKind
from .._models import Submission

__all__ = [
    "ERROR_CAP",
    "FAILED",
    "GAVE_UP",
    "SUCCESS",
    "TIMEOUT",
    "UNREACHABLE",
    "build_event",
    "job_entry",
    "judge",
    "outcome_from_check",
]

SUCCESS = "success"
FAILED = "failed"
"""A job failed, was stopped or does not exist: retrying the task would not help."""
UNREACHABLE = "error"
"""Credentials or permission refused, or the API could not be reached: retryable."""
TIMEOUT = "timeout"
"""The task's deadline came with jobs still running."""

GAVE_UP = "unreachable"
"""The per-job outcome of a job given up after too many failed polls in a row."""

ERROR_CAP = 500
"""Characters kept of one error summary or message."""
MESSAGE_JOBS = 5
"""Jobs named in the overall message; the rest are counted."""
ATTEMPTS_CAP = 3
"""Earlier runs' error summaries kept per job (CDM retries at most three times)."""
KEEP_DELETED = (
    "to read the result of such a job, set its schedulerConfig.disposableType to NONE or "
    "DELETE_AFTER_SUCCEED; or pass deleted_ok=True to count it as done"
)


def _cap(text: str | None, limit: int = ERROR_CAP) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def job_entry(outcome: JobOutcome, gave_up: BaseException | None = None) -> dict[str, Any]:
    """One job's part of the event."""
    sub = outcome.submission
    counters = sub.counters if sub is not None else None
    error = gave_up if gave_up is not None else outcome.error
    return {
        "outcome": GAVE_UP if gave_up is not None else outcome.kind.value,
        "status": sub.raw_status if sub is not None else None,
        "submission_id": sub.submission_id if sub is not None else None,
        "progress": sub.progress if sub is not None else None,
        "rows_written": counters.rows_written if counters is not None else None,
        "bytes_written": counters.bytes_written if counters is not None else None,
        "error_summary": _cap(sub.error_summary) if sub is not None else None,
        "error": _cap(_error_text(error)) if error is not None else None,
        "deleted": outcome.deleted,
        "inferred": outcome.inferred,
        "attempts": [_cap(run.error_summary) for run in outcome.attempts[-ATTEMPTS_CAP:]],
    }


def _failed_kinds(deleted_ok: bool) -> set[str]:
    kinds = {OutcomeKind.FAILED.value, OutcomeKind.NOT_FOUND.value}
    return kinds if deleted_ok else kinds | {OutcomeKind.DELETED.value}


def _result_of(entries: Mapping[str, Mapping[str, Any]], deleted_ok: bool = False) -> str:
    kinds = {entry["outcome"] for entry in entries.values()}
    if kinds & _failed_kinds(deleted_ok):
        return FAILED
    if kinds & {OutcomeKind.ERROR.value, OutcomeKind.CANCELLED.value, GAVE_UP}:
        return UNREACHABLE
    if OutcomeKind.TIMED_OUT.value in kinds:
        return TIMEOUT
    return SUCCESS


def _describe(name: str, entry: Mapping[str, Any]) -> str:
    outcome = entry["outcome"]
    status = entry["status"]
    if outcome == OutcomeKind.TIMED_OUT.value:
        progress = entry["progress"]
        at = f" at {progress:g}%" if progress is not None else ""
        return f"{name} still {status or 'not started'}{at}"
    if outcome in (OutcomeKind.FAILED.value, OutcomeKind.SUCCEEDED.value):
        summary = entry["error_summary"]
        return f"{name} {status}" + (f": {summary}" if summary else "")
    if outcome == OutcomeKind.NOT_FOUND.value:
        return f"{name} not found"
    if outcome == OutcomeKind.DELETED.value:
        return f"{name} was deleted by CDM after its run, before its result was read"
    if outcome == GAVE_UP:
        return f"{name} unreachable ({entry['error']})"
    return f"{name} {outcome}" + (f" ({entry['error']})" if entry["error"] else "")


def _message(
    result: str, entries: Mapping[str, Mapping[str, Any]], deleted_ok: bool = False
) -> str:
    total = len(entries)
    if result == SUCCESS:
        return f"{total} CDM job(s) succeeded"
    wanted = {
        FAILED: _failed_kinds(deleted_ok),
        UNREACHABLE: {OutcomeKind.ERROR.value, OutcomeKind.CANCELLED.value, GAVE_UP},
        TIMEOUT: {OutcomeKind.TIMED_OUT.value},
    }[result]
    named = [name for name, entry in entries.items() if entry["outcome"] in wanted]
    parts = [_describe(name, entries[name]) for name in named[:MESSAGE_JOBS]]
    if len(named) > MESSAGE_JOBS:
        parts.append(f"and {len(named) - MESSAGE_JOBS} more")
    lead = {
        FAILED: f"{len(named)} of {total} CDM job(s) failed",
        UNREACHABLE: f"{len(named)} of {total} CDM job(s) could not be watched",
        TIMEOUT: f"deadline reached with {len(named)} of {total} CDM job(s) unfinished",
    }[result]
    hint = ""
    if any(entries[name]["outcome"] == OutcomeKind.DELETED.value for name in named):
        hint = f" ({KEEP_DELETED})"  # kept whole: the cap cuts what comes before it
    return (_cap(f"{lead}: " + "; ".join(parts), 2000 - len(hint)) or lead) + hint


def judge(entries: Mapping[str, Mapping[str, Any]], *, deleted_ok: bool = False) -> tuple[str, str]:
    """``(result, message)`` for these per-job entries; ``deleted_ok`` counts a job
    deleted before its result was read as done (the task's choice, made after the
    trigger built the event)."""
    result = _result_of(entries, deleted_ok)
    return result, _message(result, entries, deleted_ok)


def build_event(
    outcomes: Mapping[str, JobOutcome],
    gave_up: Mapping[str, BaseException] | None = None,
) -> dict[str, Any]:
    """The event for these outcomes: ``{"result", "message", "jobs": {name: entry}}``."""
    gave_up = gave_up or {}
    entries = {name: job_entry(outcome, gave_up.get(name)) for name, outcome in outcomes.items()}
    result, message = judge(entries)
    return {"result": result, "message": message, "jobs": entries}


def outcome_from_check(
    name: str,
    found: Submission | BaseException,
    *,
    since: datetime | None = None,
    retried: bool = False,
) -> JobOutcome | None:
    """The outcome a status check already shows, or None when the job must be waited for.

    Only what a watch would end on at once: a terminal status of a run created at or after
    ``since``, or a permanent error. A missing job (it may appear when its parent starts) or
    a transient error is left to the watch, which decides or rides it out; so is a FAILED
    run that CDM may run again (``retried``: its settings say so, or could not be read).
    """
    if isinstance(found, BaseException):
        return JobOutcome(name, OutcomeKind.ERROR, error=found) if is_permanent(found) else None
    if since is not None and (found.creation_date is None or found.creation_date < since):
        return None
    if found.status.is_success:
        return JobOutcome(name, OutcomeKind.SUCCEEDED, found)
    if found.status.is_failure and not (retried and found.status in RETRIED):
        return JobOutcome(name, OutcomeKind.FAILED, found)
    return None
