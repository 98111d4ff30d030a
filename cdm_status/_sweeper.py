"""Sweeps of the job list for one name prefix (the batched half of the waiter).

The sweeper only reads the list and reports, through :class:`SweepTarget`, which watched
jobs it saw (and with what status) and which it did not see. The engine decides what that
means: a status request for a changed job, or per-job polling for a job the list does not
show.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ._batching import LIST_JOB_TYPES, PAGE_SIZE, list_is_quicker, pages_for
from ._client import CDMClient, JobPage
from ._clock import Clock
from ._errors import CDMError, is_permanent
from ._models import JobSummary
from ._pages import PageKey, PageMap, hot_read_allowed
from ._schedule import PollPolicy

__all__ = ["ListSweeper", "SweepTarget"]

logger = logging.getLogger("cdm_status")

FAILURES_BEFORE_FALLBACK = 3
"""Failed list requests in a row after which every job falls back to per-job polling
until the list answers again."""


class SweepTarget(Protocol):
    """What the sweeper tells the engine about the jobs it covers."""

    def still_watched(self) -> set[str]:
        """Names of the jobs that have no outcome yet."""
        ...

    def listed(self, summary: JobSummary) -> None:
        """The list shows a watched job with this status."""
        ...

    def unlisted(self, names: Iterable[str]) -> None:
        """A full sweep did not show these jobs: poll them one by one."""
        ...


@dataclass(slots=True)
class _Sweep:
    """One pass over the list in progress (kept across cancellations)."""

    started: float
    watched: set[str]
    job_types: tuple[str, ...]
    type_index: int = 0
    page_no: int = 1
    found: bool = False
    seen: set[str] = field(default_factory=set)
    useful: list[str] = field(default_factory=list)
    sweep_reads: int = 0
    hot_reads: int = 0
    read_hot: dict[PageKey, int] = field(default_factory=dict)
    """Pages re-read since this sweep began (see ``_pages``), with the total they gave:
    their jobs are already in ``seen``, so the sweep does not read them again."""


class ListSweeper:
    """Reads every page of the list for one name prefix, again and again.

    The first sweep tries both job types and keeps those that showed a watched job.
    With ``auto``, the first page's ``total`` decides whether sweeping is worth it at all
    (:func:`list_is_quicker`); if not, every job goes to per-job polling. Between the
    pages of a sweep, the pages that showed running jobs are read again (see
    :mod:`cdm_status._pages`).
    """

    def __init__(
        self,
        client: CDMClient,
        target: SweepTarget,
        *,
        prefix: str,
        clock: Clock,
        policy: PollPolicy,
        auto: bool,
    ) -> None:
        self._client = client
        self._target = target
        self._prefix = prefix
        self._clock = clock
        self._policy = policy
        self._auto = auto
        self._failures = 0
        self._job_types: tuple[str, ...] = LIST_JOB_TYPES
        self._sweep: _Sweep | None = None
        self._pages = PageMap(policy)
        self._totals: dict[str, int] = {}
        """The list's total for each job type, as the last page read said."""
        self._next_sweep_at: float | None = None
        self.sweeps = 0
        self.pages = 0

    @property
    def prefix(self) -> str:
        """The list filter: every job this sweeper reports has a name starting with it."""
        return self._prefix

    async def run(self) -> None:
        """Sweep until no job is left to watch (or the list turns out not to pay).

        Cancellable at any await: the sweep in progress (job type, page, jobs seen) is
        kept, so the next ``run()`` resumes on the page it was on. A permanent error
        from the list (no permission for it, say) hands every job to per-job polling,
        which will meet the same error and end the job with it if the status API refuses
        too.
        """
        try:
            await self._sweep_forever()
        except CDMError as error:
            logger.debug("the job list is not usable (%s); polling each job", error)
            self._target.unlisted(self._target.still_watched())
        except Exception:
            # A bug here must not cost anybody their jobs: per-job polling takes over.
            logger.debug("sweeping the job list failed; polling each job", exc_info=True)
            self._target.unlisted(self._target.still_watched())

    async def _sweep_forever(self) -> None:
        while True:
            sweep = self._sweep
            if sweep is None:
                if self._next_sweep_at is not None:
                    await self._clock.sleep(self._next_sweep_at - self._clock.monotonic())
                watched = self._target.still_watched()
                if not watched:
                    return
                sweep = self._sweep = _Sweep(self._clock.monotonic(), watched, self._job_types)
            while sweep.type_index < len(sweep.job_types):
                found = await self._sweep_type(sweep)
                if found is None:  # the list does not pay for this watch
                    self._target.unlisted(sweep.watched)
                    return
                if found:
                    sweep.useful.append(sweep.job_types[sweep.type_index])
                sweep.type_index += 1
                sweep.page_no, sweep.found = 1, False
            self._sweep = None
            self.sweeps += 1
            self._target.unlisted(sweep.watched - sweep.seen)
            if self.sweeps == 1:
                self._job_types = tuple(sweep.useful)
                if not self._job_types:
                    logger.debug("the job list shows none of the watched jobs; polling each")
                    return
            self._next_sweep_at = sweep.started + self._policy.list_interval

    async def _sweep_type(self, sweep: _Sweep) -> bool | None:
        """The rest of one pass over every page of one job type; whether it showed a
        watched job. None means: stop listing (``auto`` found per-job polling quicker).
        """
        job_type = sweep.job_types[sweep.type_index]
        while True:
            await self._read_hot_page(sweep)
            key = (job_type, sweep.page_no)
            total = sweep.read_hot.get(key)
            if total is None:  # not re-read since the sweep began: read it now
                page = await self._page(job_type, sweep.page_no)
                sweep.sweep_reads += 1
                if (
                    sweep.page_no == 1
                    and self.sweeps == 0
                    and not self._worth_listing(page, sweep.watched)
                ):
                    return None
                self._report(sweep, key, page)
                if not page.jobs:
                    return sweep.found
                total = page.total
            if sweep.page_no * PAGE_SIZE >= total:
                return sweep.found
            sweep.page_no += 1

    async def _read_hot_page(self, sweep: _Sweep) -> None:
        """Read the page of running jobs due a look, if the sweep has earned one. Not in
        the first sweep: it tells every subscriber where each job stands, and nothing
        should hold that back."""
        if self.sweeps == 0 or not hot_read_allowed(
            self._policy, sweep.hot_reads, sweep.sweep_reads
        ):
            return
        pages = sum(
            pages_for(total)
            for job_type, total in self._totals.items()
            if job_type in sweep.job_types
        )
        key = self._pages.next_hot(self._target.still_watched(), self._clock.monotonic(), pages)
        if key is None:
            return
        page = await self._page(*key)
        sweep.hot_reads += 1
        self._report(sweep, key, page)
        if page.jobs:
            sweep.read_hot[key] = page.total

    def _report(self, sweep: _Sweep, key: PageKey, page: JobPage) -> None:
        """Tell the engine what a page showed of the watched jobs, and learn where they are."""
        self._pages.read(key, page.jobs, self._clock.monotonic())
        self._totals[key[0]] = page.total
        of_this_type = key[0] == sweep.job_types[sweep.type_index]
        for summary in page.jobs:
            if summary.name in sweep.watched:
                sweep.seen.add(summary.name)
                sweep.found = sweep.found or of_this_type
                self._target.listed(summary)

    def _worth_listing(self, first_page: JobPage, watched: set[str]) -> bool:
        """Under ``auto``: does a sweep beat a round of per-job polls for this watch?"""
        if not self._auto or list_is_quicker(
            first_page.total,
            len(watched),
            status_per_minute=self._client.budget.per_minute,
            list_per_minute=self._client.list_budget.per_minute,
            job_types=len(LIST_JOB_TYPES),
        ):
            return True
        logger.debug(
            "the list filter %r matches %d jobs: polling each job is quicker",
            self._prefix,
            first_page.total,
        )
        return False

    async def _page(self, job_type: str, page_no: int) -> JobPage:
        """One list page, riding out transient failures (per-job polling covers for it)."""
        while True:
            try:
                page = await self._client.list_jobs(
                    filter=self._prefix,
                    page_no=page_no,
                    page_size=PAGE_SIZE,
                    job_type=job_type,
                )
            except CDMError as error:
                if is_permanent(error):
                    raise
                self._failures += 1
                logger.debug("job list page %d failed: %s", page_no, error)
                if self._failures == FAILURES_BEFORE_FALLBACK:
                    self._target.unlisted(self._target.still_watched())
                await self._clock.sleep(
                    self._policy.retry_poll(self._failures, 0.0, 0.5)  # no jitter needed
                )
                continue
            self._failures = 0
            self.pages += 1
            return page
