"""What a watch has seen so far, in aggregate: the state behind every output of ``wait``.

Pure bookkeeping: events go in (with the time they were seen), counts come out. No clock,
no I/O, no ``rich``, so the live view, the plain lines and the summary all read the same
numbers and each can be tested without a terminal or an event loop.

Its size does not grow with the number of transitions: per job it keeps one status and one
counter pair, plus a bounded list of recent transitions. Failures are all kept (one small
record per failed job) because the summary must be able to name every one of them.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .._budget import Budget
from .._errors import (
    APIError,
    CDMError,
    JobNotFoundError,
    RateLimitedError,
    ResponseFormatError,
)
from .._events import (
    Event,
    JobDone,
    JobOutcome,
    OutcomeKind,
    PollFailed,
    RetryExpected,
    StatusChanged,
)
from .._models import Submission

__all__ = [
    "NOT_SEEN",
    "FAILURE_KINDS",
    "Failure",
    "Tally",
    "Transition",
    "describe_error",
    "describe_outcome_error",
    "failure_summary",
]

NOT_SEEN = "not seen yet"
"""The state shown for a job whose status has not been read yet."""

FAILURE_KINDS = frozenset(
    {OutcomeKind.FAILED, OutcomeKind.NOT_FOUND, OutcomeKind.DELETED, OutcomeKind.ERROR}
)
"""Outcomes that count as a failure of the job (exit code 1, or 4 for ERROR); DELETED
only without ``--deleted-ok``."""

RECENT = 8


@dataclass(frozen=True, slots=True)
class Transition:
    """One status change, as shown in the list of newest transitions."""

    job: str
    previous: str | None
    current: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Failure:
    """A job that ended without success, with the one line that says why."""

    job: str
    kind: OutcomeKind
    status: str | None
    summary: str
    at: datetime


def describe_error(error: BaseException) -> str:
    """A one-line description of an error (the library's messages are already readable)."""
    text = " ".join(str(error).split())
    if isinstance(error, CDMError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def describe_outcome_error(outcome: JobOutcome) -> str | None:
    """The error that ended ``outcome``, in one line that names no other job.

    One refusal (a 401) ends every job of a watch with the same error, raised by the
    request of one job: its ``(job 'X')`` note is left out of the other jobs' lines.
    """
    error = outcome.error
    if error is None:
        return None
    text = describe_error(error)
    other = getattr(error, "job_name", None)
    if isinstance(error, CDMError) and other is not None and other != outcome.job_name:
        text = text.replace(f" (job {other!r})", "", 1)
    return text


def is_answer(error: BaseException) -> bool:
    """True for a failed poll that the API answered all the same: not found, a body of
    the wrong shape, a client error. Throttling, 5xx and network errors are no answer."""
    if isinstance(error, ResponseFormatError):
        return True
    if isinstance(error, RateLimitedError) or not isinstance(error, APIError):
        return False
    return error.status_code < 500


def failure_summary(outcome: JobOutcome) -> str:
    """Why a job did not succeed, in one line: CDM's error summary when there is one."""
    submission = outcome.submission
    if outcome.kind is OutcomeKind.FAILED and submission is not None:
        retried = f" (after {len(outcome.attempts)} retries)" if outcome.attempts else ""
        if submission.error_summary:
            return " ".join(submission.error_summary.split()) + retried
        return f"ended {submission.raw_status}{retried}"
    if outcome.kind is OutcomeKind.NOT_FOUND:
        return describe_outcome_error(outcome) or "job not found"
    if outcome.kind is OutcomeKind.TIMED_OUT:
        seen = submission.raw_status if submission is not None else "never seen"
        return f"still {seen} when the timeout expired"
    return describe_outcome_error(outcome) or str(outcome.kind)


def status_label(submission: Submission | None) -> str | None:
    """The status as CDM spelled it (unknown strings included), or None."""
    return None if submission is None else submission.raw_status


class Tally:
    """Counts, newest transitions, failures and written totals of one watch.

    ``record`` every event in the order the watch yields them, with the time it was seen.
    """

    def __init__(self, job_names: Sequence[str], *, recent: int = RECENT) -> None:
        self.job_names = tuple(dict.fromkeys(job_names))
        self._status: dict[str, str | None] = dict.fromkeys(self.job_names)
        self._active: collections.Counter[str] = collections.Counter(
            {NOT_SEEN: len(self.job_names)} if self.job_names else {}
        )
        self.outcomes: dict[str, JobOutcome] = {}
        self.outcome_counts: collections.Counter[OutcomeKind] = collections.Counter()
        self.recent: collections.deque[Transition] = collections.deque(maxlen=recent)
        self.failures: list[Failure] = []
        self._written: dict[str, tuple[int, int]] = {}
        self.rows_written = 0
        self.bytes_written = 0
        self.poll_failures = 0
        self.last_poll_error: str | None = None
        self.answered = False
        """True once the API gave any answer (a status or a permanent error)."""
        self.status_seen = False
        """True once the API gave a status of any job."""
        self.error_answers = 0
        """Failed polls that the API did answer (not found, a bad body, a 4xx)."""
        self.not_found: set[str] = set()
        """Jobs the API answered "not found" for, at least once."""
        self.first_poll_failure_at: datetime | None = None
        self.budget: Budget | None = None
        """The status budget, when the outputs should say how it is shared."""
        self.deleted_ok = False
        """A job deleted before its result was read is no failure (``--deleted-ok``)."""
        self.retries_expected = 0
        """Failed runs that CDM was expected to retry (``RETRY_TRIPLE``)."""

    # ------------------------------------------------------------------ input

    def record(self, event: Event, at: datetime) -> None:
        """Take one event of the watch into account; ``at`` is when it was seen."""
        if isinstance(event, StatusChanged):
            self.answered = self.status_seen = True
            previous = self._status.get(event.job_name)
            current = event.submission.raw_status
            self._set_status(event.job_name, current)
            self._count_written(event.job_name, event.submission)
            self.recent.append(Transition(event.job_name, previous, current, event.at))
        elif isinstance(event, PollFailed):
            self.poll_failures += 1
            self.last_poll_error = describe_error(event.error)
            if is_answer(event.error):
                self.error_answers += 1
            if isinstance(event.error, JobNotFoundError):
                self.not_found.add(event.job_name)
            if self.first_poll_failure_at is None:
                self.first_poll_failure_at = at
        elif isinstance(event, RetryExpected):
            self.retries_expected += 1
        elif isinstance(event, JobDone):
            self._done(event.outcome, at)

    def _done(self, outcome: JobOutcome, at: datetime) -> None:
        name = outcome.job_name
        if name in self.outcomes or name not in self._status:
            return  # the waiter promises one outcome per job; never count one twice
        if outcome.kind not in (OutcomeKind.TIMED_OUT, OutcomeKind.CANCELLED):
            self.answered = True  # a timeout or a cancellation is no answer from the API
        if outcome.kind in (OutcomeKind.SUCCEEDED, OutcomeKind.FAILED):
            self.status_seen = True
        self.outcomes[name] = outcome
        self.outcome_counts[outcome.kind] += 1
        self._move(self._status.pop(name), None)
        if outcome.submission is not None:
            self._count_written(name, outcome.submission)
        if outcome.kind in FAILURE_KINDS and not (
            self.deleted_ok and outcome.kind is OutcomeKind.DELETED
        ):
            self.failures.append(
                Failure(
                    job=name,
                    kind=outcome.kind,
                    status=status_label(outcome.submission),
                    summary=failure_summary(outcome),
                    at=at,
                )
            )

    def _set_status(self, name: str, status: str) -> None:
        if name not in self._status:  # done already, or not one of ours
            return
        self._move(self._status[name], status)
        self._status[name] = status

    def _move(self, old: str | None, new: str | None) -> None:
        """Move one job between the per-status counts (None: not seen / no longer active)."""
        old_label = NOT_SEEN if old is None else old
        self._active[old_label] -= 1
        if self._active[old_label] <= 0:
            del self._active[old_label]
        if new is not None:
            self._active[new] += 1

    def _count_written(self, name: str, submission: Submission) -> None:
        counters = submission.counters
        if counters is None:
            return
        rows = counters.rows_written or 0
        size = counters.bytes_written or 0
        old_rows, old_size = self._written.get(name, (0, 0))
        self._written[name] = (rows, size)
        self.rows_written += rows - old_rows
        self.bytes_written += size - old_size

    # ------------------------------------------------------------------ output

    @property
    def total(self) -> int:
        """Jobs watched (distinct names)."""
        return len(self.job_names)

    @property
    def done(self) -> int:
        """Jobs that have their outcome."""
        return len(self.outcomes)

    @property
    def succeeded(self) -> int:
        return self.outcome_counts[OutcomeKind.SUCCEEDED]

    def active_counts(self) -> list[tuple[str, int]]:
        """Jobs still watched, by the status last seen, most common first."""
        return sorted(self._active.items(), key=lambda item: (-item[1], item[0]))

    def count(self, kind: OutcomeKind) -> int:
        """Jobs that ended with ``kind``."""
        return self.outcome_counts[kind]

    def eta(self, elapsed: float) -> float | None:
        """Seconds left at the pace so far (jobs done per second), or None before the first."""
        if self.done == 0 or elapsed <= 0:
            return None
        return elapsed / self.done * (self.total - self.done)
