"""Whether, and how, to watch jobs through the job list. Pure: no clock, no I/O.

CDM's job list (``GET .../cdm/job/all``) returns up to 100 jobs per request from its own
budget (120 requests per minute), beside the status API's 120 per minute. One sweep of
list pages can therefore look at 100 jobs for the price of one status request. The list
lacks counters and error details, so a job seen in a new status there still costs one
status request, for the full submission.

The trade-off, per watch:

* per-job polling sees each of ``n`` jobs every ``n / status_rate`` seconds at best;
* a list sweep sees every matching job every ``pages / list_rate`` seconds, where ``pages``
  depends on how many jobs the list filter matches (``total``), not only the watched ones.

``auto`` lists when per-job polling could not keep every job at its starting interval and
a sweep is quicker than a per-job round.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from typing import Literal

__all__ = [
    "PAGE_SIZE",
    "Strategy",
    "common_prefix",
    "list_is_quicker",
    "pages_for",
    "wants_list",
]

Strategy = Literal["auto", "per_job", "list"]
STRATEGIES: tuple[Strategy, ...] = ("auto", "per_job", "list")
PAGE_SIZE = 100
LIST_JOB_TYPES = ("BATCH_JOB", "NORMAL_JOB")
"""Whole-database subjobs may be listed under either type: the first sweep tries both."""


def common_prefix(names: Iterable[str]) -> str:
    """The longest prefix of every name: the list filter that covers them all."""
    # Character by character on purpose: CDM's list filter matches any substring.
    return os.path.commonprefix(list(names))  # noqa: RUF071


def pages_for(total: int, page_size: int = PAGE_SIZE) -> int:
    """List pages needed to cover ``total`` jobs (at least one)."""
    return max(1, math.ceil(total / page_size))


def wants_list(
    strategy: Strategy,
    watched: int,
    *,
    status_per_minute: float,
    starting_interval: float,
) -> bool:
    """Should a watch of ``watched`` jobs start sweeping the list?

    ``auto`` says yes once per-job polling can no longer look at every job within its
    starting interval (beyond ``status_per_minute / 60 * starting_interval`` jobs).
    """
    if strategy == "per_job":
        return False
    if strategy == "list":
        return True
    return watched > status_per_minute / 60.0 * starting_interval


def list_is_quicker(
    total_matching: int,
    watched: int,
    *,
    status_per_minute: float,
    list_per_minute: float,
    job_types: int = 1,
) -> bool:
    """True when one sweep of the list beats one round of per-job polls.

    ``total_matching`` is the list's ``total`` for the filter (it can exceed ``watched``
    when the filter also matches jobs nobody watches).
    """
    sweep = pages_for(total_matching) * job_types / list_per_minute
    round_ = watched / status_per_minute
    return sweep < round_
