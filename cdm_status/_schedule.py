"""When each job is polled next. Pure: numbers in, numbers out; no clock, no I/O.

Rules:

* A ``BOOTING`` job is looked at every ``starting_interval`` seconds: it will change soon.
* A job waiting to start (``NEVER_EXECUTED``, ``NEW``, ``PENDING``) is looked at after
  ``starting_interval`` seconds at first, then less often the longer it waits: the
  subjobs of a whole-database migration can wait hours for a free slot, and must not take
  the budget from the jobs that are about to finish.
* A ``RUNNING`` job is looked at after ``running_interval`` seconds at first; the interval
  then grows with the time the job has been running (``running_growth`` of it), up to
  ``max_interval``. A job that has run for an hour will not end in the next second more
  often than one that started a minute ago.
* When the budget is short, every job is overdue; the one due earliest goes first, so
  jobs are polled in proportion to how often their state asks for.
* When the budget has room, intervals shrink (never below ``min_interval``) so that the
  watch uses up to ``budget_share`` of it: see :func:`spare_budget_scale`.
* ``UNKNOWN`` and statuses this library does not know are asked again every
  ``unknown_interval`` seconds.
* After a failed poll the job is asked again after ``failure_backoff * 2**(n-1)``
  seconds, up to ``max_interval``.
* Every interval is jittered by ``±jitter`` (a fraction) so that jobs that started together
  never poll in lock-step.
* When the budget is short, the job that has been due longest goes first
  (:class:`DueQueue`).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from dataclasses import dataclass

from ._models import JobStatus

__all__ = ["DueQueue", "PollPolicy", "RequestWindow"]

_WAITING = frozenset({JobStatus.NEVER_EXECUTED, JobStatus.NEW, JobStatus.PENDING})


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How often a waiter polls a job, by the job's state. All numbers are seconds.

    The defaults suit CDM: jobs boot in seconds to a minute and run for minutes to hours.
    """

    starting_interval: float = 5.0
    running_interval: float = 5.0
    running_growth: float = 0.1
    max_interval: float = 60.0
    waiting_max_interval: float = 300.0
    """Cap for jobs waiting to start; they must not crowd out running ones."""
    min_interval: float = 2.0
    """Floor when intervals shrink to use spare budget."""
    budget_share: float = 0.8
    """Share of the request budget a watch aims to use; the rest absorbs retries."""
    unknown_interval: float = 10.0
    failure_backoff: float = 2.0
    jitter: float = 0.1
    list_interval: float = 5.0
    """Least time between the starts of two sweeps of the job list."""
    hot_page_gap: float = 1.0
    """Least time between two reads of a list page that showed a watched job running
    (re-read between the pages of a sweep: see ``cdm_status._pages``)."""
    hot_page_ratio: float = 1.0
    """Re-reads of such pages per page of a sweep, at most (0: never re-read)."""
    not_found_grace: int = 3
    """Not-found answers in a row that end a job never seen to exist (new jobs may lag)."""
    retry_grace: float = 300.0
    """Seconds a failed run of a job that CDM retries (``RETRY_TRIPLE``) waits for the
    next run before the job ends ``FAILED``. CDM documents no delay before a retry; five
    minutes covers a retry queued behind a busy cluster many times over, while a failure
    that is not retried after all is reported at most five minutes late (a run that
    starts later than this is missed: raise it for clusters that retry slowly)."""

    def __post_init__(self) -> None:
        require_seconds(
            self,
            "starting_interval",
            "running_interval",
            "max_interval",
            "waiting_max_interval",
            "min_interval",
            "unknown_interval",
            "failure_backoff",
            "list_interval",
            "hot_page_gap",
            "retry_grace",
        )
        if self.running_growth < 0:
            raise ValueError("running_growth must not be negative")
        if not 0 < self.budget_share <= 1:
            raise ValueError("budget_share must be in (0, 1]")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.hot_page_ratio < 0:
            raise ValueError("hot_page_ratio must not be negative")
        if self.not_found_grace < 1:
            raise ValueError("not_found_grace must be at least 1")

    def interval(self, status: JobStatus, time_in_status: float) -> float:
        """The un-jittered wait before the next look at a job in ``status``."""
        if status is JobStatus.BOOTING:
            base = self.starting_interval
        elif status in _WAITING:
            base = self.starting_interval + self.running_growth * max(0.0, time_in_status)
            return min(base, self.waiting_max_interval)
        elif status is JobStatus.RUNNING:
            base = self.running_interval + self.running_growth * max(0.0, time_in_status)
        else:
            base = self.unknown_interval
        return min(base, self.max_interval)

    def jittered(self, interval: float, draw: float) -> float:
        """``interval`` scaled by a factor in ``[1 - jitter, 1 + jitter)``; ``draw`` in [0, 1)."""
        return interval * (1.0 + self.jitter * (2.0 * draw - 1.0))

    def next_poll(
        self,
        status: JobStatus,
        time_in_status: float,
        now: float,
        draw: float,
        scale: float = 1.0,
    ) -> float:
        """When to look at the job next, after seeing it in ``status``.

        ``scale`` (at most 1) shrinks the interval when the budget has room to spare.
        """
        interval = self.interval(status, time_in_status)
        if scale < 1.0:
            interval = max(min(interval, self.min_interval), interval * scale)
        return now + self.jittered(interval, draw)

    def spare_budget_scale(self, demand: float, budget: float) -> float:
        """How much to shrink intervals so a watch uses ``budget_share`` of its budget.

        ``demand`` is the polls per second the watched jobs' states ask for (the sum of
        their 1/interval); ``budget`` the requests per second allowed. 1.0 when the
        budget is already short (then the due order shares it out).
        """
        target = budget * self.budget_share
        if demand <= 0 or demand >= target:
            return 1.0
        return demand / target

    def retry_poll(self, consecutive_failures: int, now: float, draw: float) -> float:
        """When to look again after ``consecutive_failures`` failed polls in a row."""
        exponent = min(max(0, consecutive_failures - 1), 30)
        backoff = min(self.failure_backoff * 2.0**exponent, self.max_interval)
        return now + self.jittered(backoff, draw)


def require_seconds(owner: object, *names: str) -> None:
    """Raise ``ValueError`` unless each attribute ``names`` of ``owner`` is a positive,
    finite number of seconds."""
    for name in names:
        value = getattr(owner, name)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"{name} must be a positive number of seconds")


_STALE_ALLOWED = 64
"""Stale heap entries a :class:`DueQueue` keeps beyond twice its live ones."""


_ENDING, _URGENT, _AIMED, _ROUTINE = range(4)
"""The levels of a :class:`DueQueue`, first served first."""


class DueQueue:
    """Jobs ordered by urgency, then due time; the one due longest comes out first.

    ``schedule(name, at, urgent=True)`` puts a job before every routine entry once it is
    due (a status request for a job the list saw change must not wait behind routine
    polls; nor must a look at a job likely to have just started); ``ending=True`` puts it
    before those too: the list saw the job end, and its outcome (and what a user waits
    for) needs that one answer, while a look at a job that went from BOOTING to RUNNING
    only adds detail. When more changes come in than the budget can confirm, the ends
    are confirmed first. ``aimed=True`` (a look at a running job's predicted end) goes
    after the urgent entries, which the floor owes, and before the routine ones.
    ``owed_at=t`` makes an entry of a lower level urgent from ``t`` on: a look the floor
    bounds is served in due order while the budget keeps up, and before the routine
    ones once it is owed (a routine look at a running table due in 5 s must not wait
    for the whole first round of 1,000 first looks).
    Entries of one level are ordered by due time (owed ones among the urgent by when
    they became owed), and one not due yet holds back no entry of another level that
    is. ``schedule`` replaces a job's previous entry; ``discard`` drops it.
    Both are O(log n): stale heap entries are skipped lazily, and the heaps are rebuilt
    from the live entries when stale ones outnumber them (amortised O(1)), so a job
    rescheduled for ever holds one entry, not one per reschedule.
    """

    __slots__ = ("_due", "_heaps", "_order", "_owed", "_owed_at")

    def __init__(self) -> None:
        self._heaps: tuple[list[tuple[int, float, int, str]], ...] = ([], [], [], [])
        """Ending entries, urgent ones, aimed ones, then routine ones."""
        self._due: dict[str, tuple[int, float, int]] = {}
        self._owed: list[tuple[float, int, str]] = []
        """Entries of a lower level that become urgent, by when (``owed_at``)."""
        self._owed_at: dict[str, float] = {}
        self._order = itertools.count()

    def __len__(self) -> int:
        return len(self._due)

    def __contains__(self, name: object) -> bool:
        return name in self._due

    def schedule(
        self,
        name: str,
        at: float,
        *,
        urgent: bool = False,
        ending: bool = False,
        aimed: bool = False,
        owed_at: float | None = None,
    ) -> None:
        level = _ENDING if ending else _URGENT if urgent else _AIMED if aimed else _ROUTINE
        if owed_at is not None and level > _URGENT and owed_at <= at:
            level = _URGENT  # owed by the time it is due
        entry = (level, at, next(self._order))
        self._due[name] = entry
        heap = self._heaps[entry[0]]
        heapq.heappush(heap, (*entry, name))
        if owed_at is not None and level > _URGENT:
            self._owed_at[name] = owed_at
            heapq.heappush(self._owed, (owed_at, entry[2], name))
        else:
            self._owed_at.pop(name, None)
        if len(heap) + len(self._owed) > 2 * len(self._due) + _STALE_ALLOWED:
            self._compact()

    def _compact(self) -> None:
        """Drop every stale entry: the heaps hold the live entries only."""
        for level, heap in enumerate(self._heaps):
            heap[:] = [(*entry, name) for name, entry in self._due.items() if entry[0] == level]
            heapq.heapify(heap)
        self._owed[:] = [(at, self._due[name][2], name) for name, at in self._owed_at.items()]
        heapq.heapify(self._owed)

    def discard(self, name: str) -> None:
        self._due.pop(name, None)
        self._owed_at.pop(name, None)

    def due_at(self, name: str) -> float | None:
        """When ``name`` is due, or None when it is not queued."""
        entry = self._due.get(name)
        return None if entry is None else entry[1]

    def owed_at(self, name: str) -> float | None:
        """When ``name``, queued at a lower level, becomes urgent (None: never)."""
        return self._owed_at.get(name)

    def is_urgent(self, name: str) -> bool:
        """``name`` is queued before the routine entries."""
        entry = self._due.get(name)
        return entry is not None and entry[0] <= _URGENT

    def is_ending(self, name: str) -> bool:
        """``name`` is queued as a look that confirms its end, before every other."""
        entry = self._due.get(name)
        return entry is not None and entry[0] == _ENDING

    def _top(self, heap: list[tuple[int, float, int, str]]) -> tuple[int, float, int, str] | None:
        while heap and self._due.get(heap[0][3]) != heap[0][:3]:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def _top_owed(self) -> tuple[float, int, str] | None:
        heap = self._owed
        while heap:
            _, order, name = heap[0]
            entry = self._due.get(name)
            if entry is not None and entry[2] == order:
                return heap[0]
            heapq.heappop(heap)
        return None

    def next_due(self) -> float | None:
        """The earliest due time of any entry, or None when empty."""
        tops = [top[1] for top in map(self._top, self._heaps) if top is not None]
        return min(tops) if tops else None

    def pop_due(self, now: float) -> str | None:
        """The job that comes out next if one is due by ``now``: ending entries first,
        then urgent and owed ones; else None."""
        for level, heap in enumerate(self._heaps):
            top = self._top(heap)
            if level == _URGENT:
                owed = self._top_owed()
                if owed is not None and owed[0] <= now and (top is None or owed[0] < top[1]):
                    return self._take(owed[2])
            if top is not None and top[1] <= now:
                return self._take(top[3])
        return None

    def _take(self, name: str) -> str:
        del self._due[name]  # its heap entries go stale
        self._owed_at.pop(name, None)
        return name


class RequestWindow:
    """The requests this process sent over the last ``span`` seconds, to spend only
    what is left of a share of the budget (the looks between list sweeps).

    Pure: times are passed in (monotonic seconds). ``room(now, per_minute, share)``
    says whether one more request keeps the count under ``share x per_minute`` scaled
    to ``span``; ``free_at`` when the oldest request leaves the window. It holds the
    requests of the last ``span`` only: bounded by the budget, however long it lives.
    """

    __slots__ = ("_sent", "span")

    def __init__(self, span: float = 60.0) -> None:
        self.span = span
        self._sent: deque[float] = deque()

    def sent(self, at: float) -> None:
        """A request took a budget slot at ``at``. What left the window is forgotten now,
        not only when :meth:`room` is asked (a watch that never asks would keep every
        request it ever sent)."""
        self._sent.append(at)
        self.count(at)

    def count(self, now: float) -> int:
        """Requests sent in ``(now - span, now]``."""
        while self._sent and self._sent[0] <= now - self.span:
            self._sent.popleft()
        return len(self._sent)

    def room(self, now: float, per_minute: float, share: float) -> bool:
        """One more request stays under ``share`` of ``per_minute`` over the window."""
        return self.count(now) + 1 <= share * per_minute * self.span / 60.0

    def use(self, now: float, per_minute: float, share: float) -> float:
        """The requests over the window as a share of ``share`` of ``per_minute`` (1.0:
        no room left)."""
        return self.count(now) / (share * per_minute * self.span / 60.0)

    def free_at(self, now: float) -> float:
        """When the oldest request in the window leaves it (``now`` if none)."""
        self.count(now)
        return self._sent[0] + self.span if self._sent else now
