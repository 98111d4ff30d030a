"""What the waiter needs from a request budget, whatever keeps it.

CDM counts requests per user, over every process that uses the same credentials. A
:class:`Budget` is the one place a request asks before it goes: the local
:class:`~cdm_status.RateLimiter` keeps the count in this process; a budget shared through
Redis keeps it across processes and hosts. The client takes a slot for every attempt
(retries included) and reports every throttle it sees, so any implementation of this
protocol can stand behind a :class:`~cdm_status.JobStatusWaiter`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Budget"]


@runtime_checkable
class Budget(Protocol):
    """A request budget for one CDM API (status, or the job list).

    * ``per_minute``: the requests per minute *this process* may plan with. A local budget
      has all of it; a shared one reports this process's share, so polls are planned
      for the rate they will really get.
    * ``acquire()``: wait until a request may go, then take the slot. Never raises for a
      problem of the budget's own (a shared budget falls back to a local limit instead).
    * ``pause(seconds)``: the API throttled (a 429, or a ``Retry-After``): send nothing
      for ``seconds``. Synchronous, so it can be called from an ``except`` block; a shared
      budget tells the other processes on its next round trip.
    """

    @property
    def per_minute(self) -> float: ...

    async def acquire(self) -> None: ...

    def pause(self, seconds: float) -> None: ...
