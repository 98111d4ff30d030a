"""``wait --subjobs-of PARENT`` without tables: the subjobs the job list shows.

CDM names a whole-database job's subjobs ``PARENT_TABLE``, and lists them with the
whole-database jobs (``BATCH_JOB``) or the plain ones (``NORMAL_JOB``) depending on the
version: both types are read, every page. The list's filter is a fuzzy match, so each name
is checked for the prefix here too.
"""

from __future__ import annotations

from .._batching import LIST_JOB_TYPES, PAGE_SIZE
from .._client import CDMClient

__all__ = ["find_subjobs"]


async def find_subjobs(client: CDMClient, parent: str) -> list[str]:
    """The names the job list shows that start with ``PARENT_``, in list order, each once."""
    prefix = f"{parent}_"
    names: list[str] = []
    for job_type in LIST_JOB_TYPES:
        page_no = 1
        while True:
            page = await client.list_jobs(
                filter=prefix, page_no=page_no, page_size=PAGE_SIZE, job_type=job_type
            )
            names += [job.name for job in page.jobs if job.name.startswith(prefix)]
            if not page.jobs or page_no * page.page_size >= page.total:
                break
            page_no += 1
    return list(dict.fromkeys(names))
