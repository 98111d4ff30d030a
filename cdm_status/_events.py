"""What a waiter reports: status changes, ridden-out poll failures, and each job's outcome.

A watch yields, for every job, zero or more :class:`StatusChanged` and :class:`PollFailed`
events in the order they happened, then exactly one :class:`JobDone` carrying its
:class:`JobOutcome`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from ._models import JobStatus, Submission

__all__ = ["Event", "JobDone", "JobOutcome", "OutcomeKind", "PollFailed", "StatusChanged"]


class OutcomeKind(str, enum.Enum):
    """How a watched job ended."""

    SUCCEEDED = "succeeded"
    """The job reached a success status (``SUCCEEDED``)."""
    FAILED = "failed"
    """The job reached a failure status (``FAILED``, ``FAILURE_ON_SUBMIT``, ``STOPPED``)."""
    NOT_FOUND = "not_found"
    """The job does not exist, or disappeared while watched."""
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
    """The end of one job's watch: its kind, the last submission seen, and the error."""

    job_name: str
    kind: OutcomeKind
    submission: Submission | None = None
    error: BaseException | None = None

    @property
    def succeeded(self) -> bool:
        """True when the job ended in success."""
        return self.kind is OutcomeKind.SUCCEEDED


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A job was seen in a new status. ``previous`` is None on the first look."""

    job_name: str
    previous: JobStatus | None
    current: JobStatus
    submission: Submission
    at: datetime
    """When the change was seen (aware UTC), by the waiter's clock."""


@dataclass(frozen=True, slots=True)
class PollFailed:
    """A poll failed in a way the waiter rides out; the job stays watched."""

    job_name: str
    error: BaseException
    consecutive: int
    """Failed polls of this job in a row, this one included."""


@dataclass(frozen=True, slots=True)
class JobDone:
    """A job's watch ended; exactly one per job."""

    outcome: JobOutcome

    @property
    def job_name(self) -> str:
        return self.outcome.job_name


Event = StatusChanged | PollFailed | JobDone
