"""What a waiter reports: status changes, ridden-out poll failures, and each job's outcome.

A watch yields, for every job, zero or more :class:`StatusChanged`, :class:`PollFailed`
and :class:`RetryExpected` events in the order they happened, then exactly one
:class:`JobDone` carrying its :class:`JobOutcome`.

Two job settings change what an outcome means (see ``_definition``): a job that CDM
deletes after its run (``schedulerConfig.disposableType``) may answer "not found" where its
result should be, and a job that CDM retries (``retryJobConfig.retryJobType``) may fail,
then run again. The outcome says so: ``deleted`` when the final answer was the deletion,
``attempts`` for the failed runs before the last one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from ._models import JobStatus, Submission

__all__ = [
    "Event",
    "JobDone",
    "JobOutcome",
    "OutcomeKind",
    "PollFailed",
    "RetryExpected",
    "StatusChanged",
]


class OutcomeKind(str, enum.Enum):
    """How a watched job ended."""

    SUCCEEDED = "succeeded"
    """The job reached a success status (``SUCCEEDED``)."""
    FAILED = "failed"
    """The job reached a failure status (``FAILED``, ``FAILURE_ON_SUBMIT``, ``STOPPED``)."""
    NOT_FOUND = "not_found"
    """The job does not exist, or disappeared while watched."""
    DELETED = "deleted"
    """CDM deleted the job after its run (``disposableType`` ``DELETE``) before its result
    was read: whether it succeeded is unknown. ``error`` is a ``JobDeletedError``."""
    ERROR = "error"
    """The API gave a permanent error (credentials, permission, bad request)."""
    TIMED_OUT = "timed_out"
    """The watch's deadline passed before the job ended."""
    CANCELLED = "cancelled"
    """The caller stopped watching this job."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """The end of one job's watch: its kind, the last submission seen, and the error.

    With ``deleted`` and ``SUCCEEDED`` the success is *inferred* (the job deletes itself
    only after a success: ``DELETE_AFTER_SUCCEED``), and ``submission`` is the last one
    seen before. A frozen value: it survives ``pickle`` and ``copy``.
    """

    job_name: str
    """The watched job."""
    kind: OutcomeKind
    """How the watch ended."""
    submission: Submission | None = None
    """The last submission seen (the terminal one for ``SUCCEEDED`` and ``FAILED``); None
    when none was seen (a job that never existed, a watch that ended before its first
    answer)."""
    error: BaseException | None = None
    """Why the watch ended without a terminal status: the ``JobNotFoundError`` of a
    ``NOT_FOUND``, the ``JobDeletedError`` of a ``DELETED``, the permanent error of an
    ``ERROR`` (an ``APIError``: credentials refused, permission denied, a bad request);
    None otherwise."""
    attempts: tuple[Submission, ...] = ()
    """Runs that failed and that CDM ran again (``RETRY_TRIPLE``) before ``submission``,
    oldest first, each with its ``error_summary``."""
    deleted: bool = False
    """The final answer was the job's deletion by CDM after its run (``DELETED``, or an
    inferred ``SUCCEEDED``: see ``inferred``)."""

    @property
    def succeeded(self) -> bool:
        """True when the job ended in success."""
        return self.kind is OutcomeKind.SUCCEEDED

    @property
    def inferred(self) -> bool:
        """The success was inferred from the job's deletion, not read."""
        return self.deleted and self.kind is OutcomeKind.SUCCEEDED

    @property
    def error_summaries(self) -> tuple[str | None, ...]:
        """Each failed run's error summary, oldest first, the final run's included."""
        runs = [*self.attempts]
        if self.submission is not None and self.submission.status.is_failure:
            runs.append(self.submission)
        return tuple(run.error_summary for run in runs)


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A job was seen in a new status. ``previous`` is None on the first look."""

    job_name: str
    """The job."""
    previous: JobStatus | None
    """The status seen before; None on the first look at the job."""
    current: JobStatus
    """The status seen now."""
    submission: Submission
    """The submission that showed it (counters, progress, dates, errors)."""
    at: datetime
    """When the change was seen (aware UTC), by the waiter's clock."""


@dataclass(frozen=True, slots=True)
class PollFailed:
    """A poll failed in a way the waiter rides out; the job stays watched.

    Transient failures only (throttling, 5xx, no answer, a malformed answer, a "not found"
    about a job not seen yet before ``PollPolicy.not_found_grace`` of them in a row): a
    permanent one ends the job's watch (``OutcomeKind.ERROR``) instead.
    """

    job_name: str
    """The job whose status request failed."""
    error: BaseException
    """What failed, after the client's own retries: a ``CDMError`` such as
    ``RateLimitedError``, ``ServerError``, ``TransportError``, ``ResponseFormatError``, or
    the ``JobNotFoundError`` of a job not seen yet."""
    consecutive: int
    """Failed polls of this job in a row, this one included."""


@dataclass(frozen=True, slots=True)
class RetryExpected:
    """A run failed and CDM will run the job again (``RETRY_TRIPLE``): not the end yet.

    The watch looks for the next run (a new submission, or the same one starting again)
    for a grace period (``PollPolicy.retry_grace``); none, and the job ends ``FAILED``.
    """

    job_name: str
    """The job."""
    attempt: int
    """Which retry is expected: 1, 2 or 3."""
    retries: int
    """How many retries the job's setting allows (3 for ``RETRY_TRIPLE``)."""
    submission: Submission
    """The run that failed."""
    at: datetime
    """When the failure was seen (aware UTC), by the waiter's clock."""


@dataclass(frozen=True, slots=True)
class JobDone:
    """A job's watch ended; exactly one per job."""

    outcome: JobOutcome
    """How it ended."""

    @property
    def job_name(self) -> str:
        """The job (``outcome.job_name``)."""
        return self.outcome.job_name


Event = StatusChanged | PollFailed | RetryExpected | JobDone
