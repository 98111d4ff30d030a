"""``wait --subjobs-of PARENT`` without tables: the subjobs the job list shows.

CDM names a whole-database job's subjobs ``PARENT_TABLE``, and lists them with the
whole-database jobs (``BATCH_JOB``) or the plain ones (``NORMAL_JOB``) depending on the
version: both types are read, every page. The list's filter is a fuzzy match, so each name
is checked for the prefix here too.

The pages are read through the client, so each takes its slot from the client's list
budget (local, or shared through Redis) and a throttle pauses that budget, like every
other list read. A page the API refuses for a while is read again rather than ending the
discovery (13,000 tables are 130 pages: two discoveries at once go over the user's limit
and are throttled): a 429 is waited out for as long as it lasts, the API is there; other
passing failures (503, no answer) for up to ``unreachable_after`` seconds in a row, as
``wait`` rides them out. An endpoint that cannot even be connected to before any page
came ends it at once, and a permanent error (a wrong cluster, refused credentials) too.
"""

from __future__ import annotations

import random as _random

from .._batching import LIST_JOB_TYPES, PAGE_SIZE
from .._client import CDMClient, JobPage
from .._errors import CDMError, RateLimitedError, TransportError
from .._retry import RandomSource, backoff_delay, is_retryable
from ._common import UNREACHABLE_AFTER

__all__ = ["find_subjobs"]

BACKOFF_BASE = 1.0
BACKOFF_CAP = 30.0
"""Seconds between two reads of a page the API refused: full-jitter exponential backoff
on top of the client's own retries (and of the budget's pause after a throttle)."""


async def find_subjobs(
    client: CDMClient,
    parent: str,
    *,
    unreachable_after: float = UNREACHABLE_AFTER,
    random: RandomSource | None = None,
) -> list[str]:
    """The names the job list shows that start with ``PARENT_``, in list order, each once."""
    reader = _PageReader(client, unreachable_after, random or _random.Random())
    prefix = f"{parent}_"
    names: list[str] = []
    for job_type in LIST_JOB_TYPES:
        page_no = 1
        while True:
            page = await reader.page(prefix, page_no, job_type)
            names += [job.name for job in page.jobs if job.name.startswith(prefix)]
            if not page.jobs or page_no * page.page_size >= page.total:
                break
            page_no += 1
    return list(dict.fromkeys(names))


class _PageReader:
    """Reads pages, riding out what passes (see the module docstring)."""

    def __init__(self, client: CDMClient, unreachable_after: float, random: RandomSource) -> None:
        self._client = client
        self._unreachable_after = unreachable_after
        self._random = random
        self._answered = False

    async def page(self, prefix: str, page_no: int, job_type: str) -> JobPage:
        clock = self._client.clock
        failures = 0
        failing_since: float | None = None
        while True:
            try:
                page = await self._client.list_jobs(
                    filter=prefix, page_no=page_no, page_size=PAGE_SIZE, job_type=job_type
                )
            except CDMError as error:
                if not is_retryable(error):
                    raise
                never_connected = isinstance(error, TransportError) and not error.connected
                if never_connected and not self._answered:
                    raise  # nothing suggests it is coming back: say so now
                now = clock.monotonic()
                if not isinstance(error, RateLimitedError):  # a throttle is an answer
                    failing_since = now if failing_since is None else failing_since
                    if now - failing_since >= self._unreachable_after:
                        raise
                failures += 1
                draw = self._random.random()
                await clock.sleep(
                    backoff_delay(failures, base=BACKOFF_BASE, cap=BACKOFF_CAP, draw=draw)
                )
                continue
            self._answered = True
            return page
