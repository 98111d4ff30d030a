"""Which page of the job list to read again before a sweep comes back to it. Pure.

A sweep reads every page of the list in turn, so a job that ends is seen, at worst, one
whole sweep later: 50 s for 10,000 subjobs (100 pages at 2 requests a second). But the
jobs about to end are the running ones, and they sit on few pages: a whole-database job
runs a bounded number of tables at once, and the list keeps its order. So between the
pages of a sweep, the sweeper re-reads the *hot* pages (those that last showed a watched
job started and not ended), the one read longest ago first:

* a hot page is read again no sooner than ``hot_page_gap`` seconds after its last read;
* at most ``hot_page_ratio`` hot reads go with each page of the sweep, so the sweep itself
  (which finds the jobs that start, and the jobs the list stopped showing) is slowed by at
  most ``1 + hot_page_ratio``; a page read hot after the sweep began is not read again by
  the sweep.

(Both are fields of :class:`~cdm_status.PollPolicy`.)

Where the running jobs are spread over most pages (tables started in random order), the
sweep itself is the re-read: while more than half of the pages are hot, none is re-read.

:class:`PageMap` learns where each job is from the pages read; nothing here does I/O or
reads a clock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from ._models import JobStatus, JobSummary
from ._schedule import PollPolicy

__all__ = ["PageKey", "PageMap", "hot_read_allowed", "is_hot"]

PageKey = tuple[str, int]
"""A page of the list: its job type and its page number (from 1)."""

_NOT_STARTED = frozenset({JobStatus.NEW, JobStatus.NEVER_EXECUTED})


def hot_read_allowed(policy: PollPolicy, hot_reads: int, sweep_reads: int) -> bool:
    """One more hot read keeps them within ``hot_page_ratio`` per page the sweep read."""
    return hot_reads + 1 <= policy.hot_page_ratio * sweep_reads


def is_hot(status: JobStatus) -> bool:
    """The list shows a job started and not ended: it may end any moment."""
    return status not in _NOT_STARTED and not status.is_terminal


class PageMap:
    """Where the list last showed each job, which jobs were running, and when each page
    was read (monotonic seconds, passed in)."""

    __slots__ = ("_hot", "_page_of", "_read_at", "policy")

    def __init__(self, policy: PollPolicy) -> None:
        self.policy = policy
        self._page_of: dict[str, PageKey] = {}
        self._hot: set[str] = set()
        self._read_at: dict[PageKey, float] = {}

    def read(self, page: PageKey, jobs: Iterable[JobSummary], at: float) -> None:
        """``page`` was read at ``at`` and showed ``jobs``."""
        self._read_at[page] = at
        for summary in jobs:
            self._page_of[summary.name] = page
            if is_hot(summary.status):
                self._hot.add(summary.name)
            else:
                self._hot.discard(summary.name)

    def hot_pages(self, watched: Collection[str]) -> set[PageKey]:
        """The pages that last showed a job of ``watched`` running."""
        self._hot.intersection_update(watched)  # ended or dropped jobs are not waited for
        return {self._page_of[name] for name in self._hot}

    def next_hot(self, watched: Collection[str], now: float, pages: int) -> PageKey | None:
        """The hot page to read now, if any: the one read longest ago, once ``hot_page_gap``
        has passed since its last read, and only while at most half of the ``pages`` a
        sweep reads are hot."""
        hot = self.hot_pages(watched)
        if 2 * len(hot) > pages:
            return None
        ready = [
            (self._read_at.get(page, float("-inf")), page)
            for page in hot
            if not now < self._read_at.get(page, float("-inf")) + self.policy.hot_page_gap
        ]
        return min(ready)[1] if ready else None
