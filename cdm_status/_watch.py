"""One ``watch()`` call: its jobs' state, its dispatcher, its polls and their endings.

The dispatcher is the only task that sleeps on the clock: it pops the job due longest from
a :class:`DueQueue`, takes a slot from the capacity limiter and starts that job's poll.
A poll decides, from the answer, the job's next event and its next due time. With a
:class:`ListSweeper`, the job list tells the watch which jobs changed, and only those get
a status request. Every job ends exactly once (:meth:`Watch._finish`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectSendStream

from ._batching import common_prefix, wants_list
from ._clock import utc_datetime
from ._errors import AuthenticationError, CDMError, JobNotFoundError, is_permanent
from ._events import Event, JobDone, JobOutcome, OutcomeKind, PollFailed, StatusChanged
from ._models import JobStatus, JobSummary, Submission
from ._schedule import DueQueue
from ._sweeper import ListSweeper

if TYPE_CHECKING:
    from ._waiter import JobStatusWaiter

__all__ = ["NOT_STARTED", "Watch"]

logger = logging.getLogger("cdm_status")

DETAIL_FIRST = 1e9
"""A status request for a job the list saw change goes before every routine poll."""

NOT_STARTED = frozenset({JobStatus.NEW, JobStatus.NEVER_EXECUTED})
"""List statuses of a job that has not run yet."""


@dataclass(slots=True)
class _Track:
    """What a watch knows about one job."""

    name: str
    status: JobStatus | None = None
    raw_status: str | None = None
    entered_at: float = 0.0
    submission: Submission | None = None
    exists: bool = False
    failures: int = 0
    not_found: int = 0
    done: bool = False
    in_flight: bool = False
    via_list: bool = False
    """The job list shows this job: no routine per-job polls, only detail fetches."""
    list_status: str | None = None
    demand: float = 0.0
    """Polls per second this job's state asks for (1 / its interval)."""


class Watch:
    """The state and the tasks of one ``watch()`` call."""

    def __init__(
        self,
        waiter: JobStatusWaiter,
        names: list[str],
        *,
        timeout: float | None,
        since: datetime | None,
        send: MemoryObjectSendStream[Event],
    ) -> None:
        self.waiter = waiter
        self.clock = waiter._clock
        self.policy = waiter.poll_policy
        self.tracks = {name: _Track(name) for name in names}
        self.outcomes: dict[str, JobOutcome] = {}
        self.queue = DueQueue()
        self.since = since.astimezone(timezone.utc) if since else None
        self.send = send
        self.started = self.clock.monotonic()
        self.deadline = None if timeout is None else self.started + timeout
        self.capacity = anyio.CapacityLimiter(waiter.max_concurrency)
        self.active = len(names)
        self.record = waiter._telemetry.watch(len(names))
        self.demand = 0.0
        """Polls per second the routinely polled jobs ask for, summed."""
        self._nap_scope: anyio.CancelScope | None = None
        self._wake_pending = False
        self.sweeper: ListSweeper | None = None
        if names and wants_list(
            waiter.strategy,
            len(names),
            status_per_minute=waiter.limiter.per_minute,
            starting_interval=self.policy.starting_interval,
        ):
            # Nobody is polled one by one until the first sweep says who is not listed.
            self.sweeper = ListSweeper(
                waiter._client,
                self,
                prefix=common_prefix(names),
                limiter=waiter.list_limiter,
                status_per_minute=waiter.limiter.per_minute,
                clock=self.clock,
                policy=self.policy,
                auto=waiter.strategy == "auto",
            )
        else:
            for name in names:
                self.queue.schedule(name, self.started)

    # ------------------------------------------------------------------ dispatcher

    async def run(self) -> None:
        self.record.start(self.active)
        try:
            async with anyio.create_task_group() as polls:
                if self.sweeper is not None:
                    polls.start_soon(self.sweeper.run)
                if self.deadline is not None:
                    polls.start_soon(self._expire_at_deadline, polls.cancel_scope)
                await self._dispatch(polls)
                polls.cancel_scope.cancel()
        finally:
            self.record.end()
            self.send.close()

    async def _expire_at_deadline(self, polls: anyio.CancelScope) -> None:
        # A task of its own: the deadline holds even while the dispatcher waits for a
        # poll slot, or every poll waits on the network or on a paused budget.
        assert self.deadline is not None
        await self.clock.sleep(self.deadline - self.clock.monotonic())
        self._expire()
        polls.cancel()

    async def _dispatch(self, polls: anyio.abc.TaskGroup) -> None:
        while self.active:
            now = self.clock.monotonic()
            due = self.queue.next_due()
            if due is None or due > now:
                await self._nap(None if due is None else due - now)
                continue
            # The slot first, then the job: whatever changed while we waited for the slot
            # (a job cancelled, rescheduled, or seen on the list) is taken into account.
            token = object()
            await self.capacity.acquire_on_behalf_of(token)
            name = self.queue.pop_due(self.clock.monotonic())
            if name is None:
                self.capacity.release_on_behalf_of(token)
                continue
            track = self.tracks[name]
            track.in_flight = True
            polls.start_soon(self._poll, track, token)

    async def _nap(self, seconds: float | None) -> None:
        """Sleep until ``seconds`` pass or a poll finishes, whichever comes first."""
        with anyio.CancelScope() as scope:
            self._nap_scope = scope
            if self._wake_pending:
                scope.cancel()
            if seconds is None:
                await anyio.sleep_forever()
            else:
                await self.clock.sleep(seconds)
        self._nap_scope = None
        self._wake_pending = False

    def _wake(self) -> None:
        self._wake_pending = True
        if self._nap_scope is not None:
            self._nap_scope.cancel()

    def _expire(self) -> None:
        for track in self.tracks.values():
            if not track.done:
                self._finish(track, OutcomeKind.TIMED_OUT, track.submission)

    def cancel(self, names: Iterable[str]) -> None:
        for name in names:
            track = self.tracks.get(name)
            if track is not None and not track.done:
                self.queue.discard(name)
                self._finish(track, OutcomeKind.CANCELLED, track.submission)
        self._wake()

    # ------------------------------------------------------------------ one poll

    async def _poll(self, track: _Track, token: object) -> None:
        try:
            logger.debug("polling %r", track.name)
            submission = await self.waiter.fetch_status(track.name)
        except Exception as error:
            if not track.done:
                self._failed(track, error)
        else:
            if not track.done:
                self._observe(track, submission)
        finally:
            track.in_flight = False
            self.capacity.release_on_behalf_of(token)
            self._wake()

    def _observe(self, track: _Track, submission: Submission) -> None:
        now = self.clock.monotonic()
        if self._is_stale(submission):
            submission = Submission.never_executed(track.name)
        else:
            track.exists = True
        track.failures = 0
        track.not_found = 0
        track.submission = submission
        raw = submission.raw_status if submission.status is JobStatus.OTHER else None
        if submission.status is not track.status or raw != track.raw_status:
            event = StatusChanged(
                job_name=track.name,
                previous=track.status,
                current=submission.status,
                submission=submission,
                at=utc_datetime(self.clock.time()),
            )
            logger.info(
                "job %r: %s -> %s",
                track.name,
                track.status.value if track.status else "(first look)",
                submission.raw_status,
            )
            track.status, track.raw_status, track.entered_at = submission.status, raw, now
            self.record.status_changed(submission.status.value)
            self._emit(event)
        if submission.status in self.waiter.success:
            self._finish(track, OutcomeKind.SUCCEEDED, submission)
        elif submission.status in self.waiter.failure:
            self._finish(track, OutcomeKind.FAILED, submission)
        elif not track.via_list or self._list_disagrees(track, submission):
            self._schedule_next(track, submission.status, now)

    def _schedule_next(self, track: _Track, status: JobStatus, now: float) -> None:
        """Queue the next routine poll, using spare budget to look sooner."""
        time_in_status = now - track.entered_at
        self._set_demand(track, 1.0 / self.policy.interval(status, time_in_status))
        scale = self.policy.spare_budget_scale(self.demand, self.waiter.limiter.per_minute / 60)
        draw = self.waiter._random.random()
        self.queue.schedule(
            track.name, self.policy.next_poll(status, time_in_status, now, draw, scale)
        )

    def _set_demand(self, track: _Track, demand: float) -> None:
        self.demand += demand - track.demand
        track.demand = demand

    @staticmethod
    def _list_disagrees(track: _Track, submission: Submission) -> bool:
        """The list and the status API differ (one lags, or the list shows an older run):
        keep polling this job until they agree, or a sweep would never look again."""
        if track.list_status is None:
            return False
        listed = JobStatus.parse(track.list_status)
        if listed in NOT_STARTED and submission.status in NOT_STARTED:
            return False  # the list says NEW where the status API has no submission
        if listed is JobStatus.OTHER:
            return submission.raw_status != track.list_status
        return listed is not submission.status

    # ------------------------------------------------------------------ the job list

    def still_watched(self) -> set[str]:
        return {name for name, track in self.tracks.items() if not track.done}

    def listed(self, summary: JobSummary) -> None:
        track = self.tracks.get(summary.name)
        if track is None or track.done:
            return
        if not track.via_list and not track.in_flight:
            self.queue.discard(track.name)  # the list looks at it from now on
        track.via_list = True
        self._set_demand(track, 0.0)
        if summary.raw_status == track.list_status:
            return
        first_sighting = track.list_status is None
        track.list_status = summary.raw_status
        if summary.status in NOT_STARTED and track.status is None:
            # A job that never ran: the list says NEW, the status API an empty list. No
            # status request needed to report it (thousands of subjobs start this way).
            self._observe(track, Submission.never_executed(track.name))
        elif not (first_sighting and summary.status is track.status):
            self._fetch_soon(track)

    def unlisted(self, names: Iterable[str]) -> None:
        now = self.clock.monotonic()
        for name in names:
            track = self.tracks[name]
            if track.done:
                continue
            track.via_list = False
            track.list_status = None
            if name not in self.queue and not track.in_flight:
                self.queue.schedule(name, now)
        self._wake()

    def _fetch_soon(self, track: _Track) -> None:
        """Ask this job's status before any routine poll (the list saw it change)."""
        if not track.in_flight:
            self.queue.schedule(track.name, self.clock.monotonic() - DETAIL_FIRST)
            self._wake()

    def _is_stale(self, submission: Submission) -> bool:
        return (
            self.since is not None
            and submission.creation_date is not None
            and submission.creation_date < self.since
        )

    def _failed(self, track: _Track, error: Exception) -> None:
        if isinstance(error, JobNotFoundError):
            track.not_found += 1
            if track.exists or track.not_found >= self.policy.not_found_grace:
                self._finish(track, OutcomeKind.NOT_FOUND, track.submission, error)
                return
        elif isinstance(error, AuthenticationError):
            # The credentials, not this job: every other poll would be refused too (and
            # each refusal would cost a request from the budget). End them all now.
            logger.error("the API refused the credentials: %s", error)
            for other in self.tracks.values():
                self.queue.discard(other.name)
                self._finish(other, OutcomeKind.ERROR, other.submission, error)
            return
        elif is_permanent(error):
            if not isinstance(error, CDMError):
                logger.error("polling %r failed unexpectedly", track.name, exc_info=error)
            self._finish(track, OutcomeKind.ERROR, track.submission, error)
            return
        track.failures += 1
        logger.warning("polling %r failed (%d in a row): %s", track.name, track.failures, error)
        self.record.poll_failed(error)
        self._emit(PollFailed(track.name, error, track.failures))
        now = self.clock.monotonic()
        draw = self.waiter._random.random()
        self.queue.schedule(track.name, self.policy.retry_poll(track.failures, now, draw))

    # ------------------------------------------------------------------ endings

    def _finish(
        self,
        track: _Track,
        kind: OutcomeKind,
        submission: Submission | None,
        error: BaseException | None = None,
    ) -> None:
        if track.done:  # every job ends exactly once
            return
        track.done = True
        self.active -= 1
        self._set_demand(track, 0.0)
        outcome = JobOutcome(track.name, kind, submission, error)
        self.outcomes[track.name] = outcome
        logger.info("job %r done: %s", track.name, kind.value)
        self.record.job_finished(kind.value)
        self._emit(JobDone(outcome))

    def _emit(self, event: Event) -> None:
        # The buffer is unbounded: events per job are few, and a slow reader must never
        # hold up the polls of other jobs.
        # If the reader has left the watch, nobody is listening any more.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            self.send.send_nowait(event)
