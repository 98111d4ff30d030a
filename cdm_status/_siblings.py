"""Which waiting subjobs to look at sooner when a sibling ends. Pure: no clock, no I/O.

A whole-database migration runs a bounded number of tables at once: when one subjob ends,
its slot goes to a subjob that was waiting (``NEVER_EXECUTED``). Polling each job on its
own, the start of that one is found sooner if the waiting siblings likeliest to take the
slot are looked at first, and its end can only be predicted once it has been seen
running.

Rules:

* Only subjobs seen waiting are candidates; the group is the watch's subjobs of one
  whole-database job, in table order (the order they were given in).
* CDM is not documented to start tables in any order. While the group looks started in
  order (at most ``slack`` waiting subjobs come before the last one seen started: starts
  not seen yet), the first ``promote`` waiting subjobs in table order are the likeliest:
  those before the last started one have almost surely started already, the next one
  takes the freed slot.
* Otherwise every waiting subjob is as likely as another to take the slot; the ones
  looked at longest ago are picked (never looked at first), which also spreads the looks.
* The bound: promoting only ever moves looks earlier, never pushes one later; the
  caller keeps every waiting subjob looked at within :func:`waiting_bound` of its last
  look, the time the share of the budget it gives waiting subjobs allows.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["SiblingPolicy", "waiting_bound"]


@dataclass(frozen=True, slots=True)
class SiblingPolicy:
    """How many waiting siblings to look at sooner when one ends, and how soon."""

    promote: int = 2
    """Waiting siblings picked per end (one slot frees; a spare for a start not seen)."""
    slack: int = 4
    """Waiting siblings that may sit before the last started one in an in-order group."""
    soon: float = 3.0
    """Seconds after the end was seen to look at them (a slot takes a moment to refill)."""

    def __post_init__(self) -> None:
        if self.promote < 0 or self.slack < 0:
            raise ValueError("promote and slack must not be negative")
        if not (self.soon >= 0 and math.isfinite(self.soon)):
            raise ValueError("soon must be a number of seconds >= 0")

    def in_order(self, jobs: Sequence[str], waiting: Collection[str]) -> bool:
        """Do the starts seen so far follow table order (within ``slack``)?"""
        last_started = next(
            (index for index in range(len(jobs) - 1, -1, -1) if jobs[index] not in waiting),
            None,
        )
        if last_started is None:
            return True  # nothing started yet: nothing says otherwise
        before = sum(1 for job in jobs[:last_started] if job in waiting)
        return before <= self.slack

    def likely_next(
        self,
        jobs: Sequence[str],
        waiting: Collection[str],
        looked_at: Mapping[str, float],
    ) -> tuple[str, ...]:
        """The waiting siblings to look at ``soon`` after one of ``jobs`` ended.

        ``jobs``: the group in table order; ``waiting``: those seen waiting to start
        (never seen started in this run); ``looked_at``: when each was last looked at
        (monotonic seconds; a job missing from it was never looked at).
        """
        if self.promote == 0:
            return ()
        candidates = [job for job in jobs if job in waiting]
        if self.in_order(jobs, waiting):
            return tuple(candidates[: self.promote])
        position = {job: index for index, job in enumerate(candidates)}
        # Never looked at sorts first; ties keep table order, so the pick is deterministic.
        oldest = sorted(candidates, key=lambda job: (looked_at.get(job, -math.inf), position[job]))
        return tuple(oldest[: self.promote])


def waiting_bound(waiting: int, per_second: float, floor: float) -> float:
    """The time within which each of ``waiting`` subjobs can be looked at, spending
    ``per_second`` looks a second on them; never below ``floor`` seconds."""
    if per_second <= 0 or not math.isfinite(per_second):
        raise ValueError("per_second must be a positive number")
    return max(floor, waiting / per_second)
