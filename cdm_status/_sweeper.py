"""Sweeps of the job list on behalf of one watch (the batched half of the waiter).

The sweeper only reads the list and reports, through :class:`SweepTarget`, which watched
jobs it saw (and with what status) and which it did not see. The watch decides what that
means: a status request for a changed job, or per-job polling for a job the list does not
show.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from ._batching import LIST_JOB_TYPES, PAGE_SIZE, list_is_quicker
from ._budget import Budget
from ._client import CDMClient, JobPage
from ._clock import Clock
from ._errors import CDMError, is_permanent
from ._models import JobSummary
from ._schedule import PollPolicy

__all__ = ["ListSweeper", "SweepTarget"]

logger = logging.getLogger("cdm_status")

FAILURES_BEFORE_FALLBACK = 3
"""Failed list requests in a row after which every job falls back to per-job polling
until the list answers again."""


class SweepTarget(Protocol):
    """What the sweeper tells a watch."""

    def still_watched(self) -> set[str]:
        """Names of the jobs that have no outcome yet."""
        ...

    def listed(self, summary: JobSummary) -> None:
        """The list shows a watched job with this status."""
        ...

    def unlisted(self, names: Iterable[str]) -> None:
        """A full sweep did not show these jobs: poll them one by one."""
        ...


class ListSweeper:
    """Reads every page of the list for one name prefix, again and again.

    The first sweep tries both job types and keeps those that showed a watched job.
    With ``auto``, the first page's ``total`` decides whether sweeping is worth it at all
    (:func:`list_is_quicker`); if not, every job goes to per-job polling.
    """

    def __init__(
        self,
        client: CDMClient,
        target: SweepTarget,
        *,
        prefix: str,
        limiter: Budget,
        status_per_minute: float,
        clock: Clock,
        policy: PollPolicy,
        auto: bool,
    ) -> None:
        self._client = client
        self._target = target
        self._prefix = prefix
        self._limiter = limiter
        self._status_per_minute = status_per_minute
        self._clock = clock
        self._policy = policy
        self._auto = auto
        self._failures = 0
        self.sweeps = 0
        self.pages = 0

    async def run(self) -> None:
        """Sweep until no job is left to watch (or the list turns out not to pay).

        A permanent error from the list (no permission for it, say) hands every job to
        per-job polling, which will meet the same error and end the job with it if the
        status API refuses too.
        """
        try:
            await self._sweep_forever()
        except CDMError as error:
            logger.warning("the job list is not usable (%s); polling each job", error)
            self._target.unlisted(self._target.still_watched())
        except Exception:
            # A bug here must not cost anybody their jobs: per-job polling takes over.
            logger.exception("sweeping the job list failed; polling each job")
            self._target.unlisted(self._target.still_watched())

    async def _sweep_forever(self) -> None:
        job_types: tuple[str, ...] = LIST_JOB_TYPES
        while True:
            watched = self._target.still_watched()
            if not watched:
                return
            started = self._clock.monotonic()
            seen: set[str] = set()
            useful: list[str] = []
            for job_type in job_types:
                found = await self._sweep_type(job_type, watched, seen)
                if found is None:  # the list does not pay for this watch
                    self._target.unlisted(watched)
                    return
                if found:
                    useful.append(job_type)
            self.sweeps += 1
            self._target.unlisted(watched - seen)
            if self.sweeps == 1:
                job_types = tuple(useful)
                if not job_types:
                    logger.info("the job list shows none of the watched jobs; polling each")
                    return
            pause = started + self._policy.list_interval - self._clock.monotonic()
            await self._clock.sleep(pause)

    async def _sweep_type(self, job_type: str, watched: set[str], seen: set[str]) -> bool | None:
        """One pass over every page of one job type; whether it showed a watched job.

        None means: stop listing (``auto`` found per-job polling quicker).
        """
        found = False
        page_no = 1
        while True:
            page = await self._page(job_type, page_no, watched)
            if page_no == 1 and self.sweeps == 0 and not self._worth_listing(page, watched):
                return None
            for summary in page.jobs:
                if summary.name in watched:
                    seen.add(summary.name)
                    found = True
                    self._target.listed(summary)
            if not page.jobs or page_no * PAGE_SIZE >= page.total:
                return found
            page_no += 1

    def _worth_listing(self, first_page: JobPage, watched: set[str]) -> bool:
        """Under ``auto``: does a sweep beat a round of per-job polls for this watch?"""
        if not self._auto or list_is_quicker(
            first_page.total,
            len(watched),
            status_per_minute=self._status_per_minute,
            list_per_minute=self._limiter.per_minute,
            job_types=len(LIST_JOB_TYPES),
        ):
            return True
        logger.info(
            "the list filter %r matches %d jobs: polling each job is quicker",
            self._prefix,
            first_page.total,
        )
        return False

    async def _page(self, job_type: str, page_no: int, watched: set[str]) -> JobPage:
        """One list page, riding out transient failures (per-job polling covers for it)."""
        while True:
            try:
                page = await self._client.list_jobs(
                    filter=self._prefix,
                    page_no=page_no,
                    page_size=PAGE_SIZE,
                    job_type=job_type,
                    limiter=self._limiter,
                )
            except CDMError as error:
                if is_permanent(error):
                    raise
                self._failures += 1
                logger.warning("job list page %d failed: %s", page_no, error)
                if self._failures == FAILURES_BEFORE_FALLBACK:
                    self._target.unlisted(self._target.still_watched())
                await self._clock.sleep(
                    self._policy.retry_poll(self._failures, 0.0, 0.5)  # no jitter needed
                )
                continue
            self._failures = 0
            self.pages += 1
            return page
