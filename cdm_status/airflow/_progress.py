"""The progress line of a large watch: counts per status, at most once a period.

Each status change, ridden-out failure and outcome is already logged by the waiter (the
``cdm_status`` logger, which the triggerer writes to the task's log), except the change to
a final status: the engine stops tracking a job once no watch waits for it, so that last
change is logged here. A watch of thousands of jobs also needs the whole picture now and
then.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from .._clock import Clock
from .._events import Event, JobDone, PollFailed, RetryExpected, StatusChanged

__all__ = ["ProgressLog"]

logger = logging.getLogger("cdm_status.airflow")

LARGE_WATCH = 10
"""Watches of at least this many jobs get progress lines."""


class ProgressLog:
    """Called with every event of one watch; logs progress lines through ``log``.

    ``every`` is the least time, on ``clock``, between two progress lines.
    """

    def __init__(
        self,
        job_names: Iterable[str],
        *,
        clock: Clock,
        log: logging.Logger = logger,
        every: float = 60.0,
    ) -> None:
        self._status: dict[str, str] = dict.fromkeys(job_names, "WAITING")
        self._clock = clock
        self._log = log
        self._every = every
        self._last_line: float | None = None
        self.lines = 0
        """Progress lines written so far."""

    def __call__(self, event: Event) -> None:
        if isinstance(event, StatusChanged):
            self._status[event.job_name] = event.current.value
            if event.current.is_success or event.current.is_failure:
                previous = event.previous.value if event.previous else "(first look)"
                self._log.info(
                    "job %r: %s -> %s", event.job_name, previous, event.submission.raw_status
                )
        elif isinstance(event, PollFailed):
            # The engine rides the failure out; the task's log says so, in its context.
            self._log.warning(
                "polling %r failed (%d in a row): %s",
                event.job_name,
                event.consecutive,
                event.error,
            )
        elif isinstance(event, RetryExpected):
            self._log.info(
                "job %r: %s; CDM retries it (retry %d of %d)",
                event.job_name,
                event.submission.raw_status,
                event.attempt,
                event.retries,
            )
        elif isinstance(event, JobDone):
            self._status[event.job_name] = f"done:{event.outcome.kind.value}"
        self._maybe_progress()

    def counts(self) -> Counter[str]:
        """Jobs per last known status (``done:<outcome>`` once a job ended)."""
        return Counter(self._status.values())

    def _maybe_progress(self) -> None:
        if len(self._status) < LARGE_WATCH:
            return
        now = self._clock.monotonic()
        if self._last_line is None:
            self._last_line = now  # the first line comes a period after the watch starts
            return
        if now - self._last_line < self._every:
            return
        self._last_line = now
        self.lines += 1
        counts = ", ".join(f"{status} {n}" for status, n in sorted(self.counts().items()))
        self._log.info("CDM progress, %d jobs: %s", len(self._status), counts)
