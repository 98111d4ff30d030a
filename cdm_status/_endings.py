"""What the end of a run means, given the job's settings. Pure: no clock, no I/O.

Two settings of a CDM job change what a waiter sees at the end of a run (see
``_definition``); the tracker (``_tracker``) asks this module what to make of it.

Automatic retry (``retryJobConfig.retryJobType = RETRY_TRIPLE``):

* A ``FAILED`` run (the only status CDM documents as retried) is not the end while
  retries remain: the watch expects the next run, attempt ``k`` of 3, for
  ``PollPolicy.retry_grace`` seconds. STOPPED (somebody stopped it) and
  FAILURE_ON_SUBMIT end the job as before.
* The next run is a newer submission (``submission-id``, ``creation-date``), or the same
  submission going back to BOOTING/RUNNING, or ending again with a later
  ``last-update-date`` (CDM's documents do not say which: all three count).
* The job ends ``FAILED`` when the third retry failed, or when no run came within the
  grace period; each failed run is kept in the outcome (``attempts``).
* A failed run of a job whose settings are not known yet waits for them (one read of the
  job's definition) before it ends anything.

Delete after run (``schedulerConfig.disposableType``), once a job seen to exist (with a
run, or in the job list) answers "not found":

* ``DELETE_AFTER_SUCCEED``: CDM deletes it only after a success: the outcome is
  ``SUCCEEDED``, inferred (``deleted``), the last submission seen kept. That holds for a
  run never seen too: a short one-time subjob may start, succeed and go between two
  looks at a large watch.
* ``DELETE`` (or no setting known, but the run said ``isDeleteJob``): the result is
  unknown: ``DELETED``.
* ``NONE``, or nothing says it deletes itself: somebody deleted it: ``NOT_FOUND`` as for
  any job, except that a failure already seen (its retry awaited) stands: ``FAILED``.
* A job that deletes itself whatever the result is looked at more often near its
  predicted end (:data:`NEAR_END`), so that its result is read before it goes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ._definition import DisposableType, JobSettings
from ._estimate import EstimatePolicy
from ._events import OutcomeKind
from ._models import JobStatus, Submission

__all__ = [
    "NEAR_END",
    "RETRIED",
    "Learned",
    "Retries",
    "Step",
    "after_deletion",
    "after_failure",
    "is_next_run",
    "watch_closely",
    "wants_settings",
]

RETRIED = frozenset({JobStatus.FAILED})
"""The statuses CDM runs again under ``RETRY_TRIPLE`` ("a failed run is retried")."""

NEAR_END = EstimatePolicy(min_gap=1.0, soon=1.0)
"""When to look at a running job that CDM deletes whatever its result: at its predicted
end, then 1, 2, 4... seconds after (not 5, 10, 20...) while it still runs."""


class Learned(enum.Enum):
    """How far the watch got in learning a job's settings (once per job per watch)."""

    NOT_ASKED = "not_asked"
    ASKED = "asked"
    """The job's definition is being read."""
    KNOWN = "known"
    UNAVAILABLE = "unavailable"
    """The definition could not be read: decide without it."""


class Step(enum.Enum):
    """What a failed run means."""

    END = "end"
    RETRY = "retry"
    """CDM runs the job again: wait for the next run."""
    ASK = "ask"
    """Whether CDM retries it depends on settings not known yet: wait for them."""


@dataclass(slots=True)
class Retries:
    """One watcher's record of a job's failed runs that CDM retries."""

    failed: list[Submission] = field(default_factory=list)
    """Failed runs, oldest first: each retried, or (the last) awaiting its retry."""
    until: float | None = None
    """While a retry is awaited: when the grace period ends (monotonic seconds)."""


def after_failure(
    settings: JobSettings | None, learned: Learned, retried: int, seen: Submission
) -> Step:
    """A run ended in failure (``seen``); ``retried`` earlier failures were retried."""
    if seen.status not in RETRIED:
        return Step.END
    if settings is None:
        return Step.ASK if learned in (Learned.NOT_ASKED, Learned.ASKED) else Step.END
    return Step.RETRY if retried < settings.retries else Step.END


def _older(seen: Submission, failed: Submission) -> bool:
    if seen.submission_id is not None and failed.submission_id is not None:
        return seen.submission_id < failed.submission_id
    if seen.creation_date is not None and failed.creation_date is not None:
        return seen.creation_date < failed.creation_date
    return False


def is_next_run(failed: Submission, seen: Submission) -> bool:
    """``seen`` is a run after the failed run ``failed``: a newer submission, or the
    same one started again (active, or ended again later)."""
    same = (seen.submission_id, seen.creation_date) == (failed.submission_id, failed.creation_date)
    if not same:
        return not _older(seen, failed)
    if not seen.status.is_terminal:
        return seen.status not in (JobStatus.NEVER_EXECUTED, JobStatus.UNKNOWN, JobStatus.OTHER)
    if seen.last_update_date is None or failed.last_update_date is None:
        return False
    return seen.last_update_date > failed.last_update_date


def _deletes(settings: JobSettings | None, last: Submission | None) -> DisposableType | None:
    """How the job deletes itself, as far as anything says (None: it does not)."""
    flagged = last is not None and last.is_delete_job is True
    disposable = None if settings is None else settings.disposable
    if disposable in (None, DisposableType.OTHER):
        return DisposableType.DELETE if flagged else None
    return None if disposable is DisposableType.NONE else disposable


def after_deletion(
    settings: JobSettings | None, last: Submission | None, *, retry_awaited: bool
) -> tuple[OutcomeKind, bool]:
    """The outcome of a job seen to exist that now answers "not found", and whether
    CDM's deletion after the run was its final answer. ``last`` is the last submission
    the watch read; ``retry_awaited``: a failed run of it awaits its retry."""
    deletes = _deletes(settings, last)
    if deletes is DisposableType.DELETE_AFTER_SUCCEED:
        return OutcomeKind.SUCCEEDED, True
    if deletes is DisposableType.DELETE:
        return OutcomeKind.DELETED, True
    return (OutcomeKind.FAILED if retry_awaited else OutcomeKind.NOT_FOUND), False


def wants_settings(submission: Submission) -> bool:
    """An answer that calls for the job's settings: it failed (retried or not?), or it
    says (or, running, does not say) whether CDM deletes the job after the run."""
    if submission.status in RETRIED or submission.is_delete_job is True:
        return True
    return submission.status is JobStatus.RUNNING and submission.is_delete_job is None


def watch_closely(settings: JobSettings | None, last: Submission | None) -> bool:
    """The job's result is lost unless read between its end and its deletion."""
    return _deletes(settings, last) is DisposableType.DELETE
