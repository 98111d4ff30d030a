"""The watching engine: one per waiter, shared by every subscription.

The engine polls each watched job once however many subscriptions want it, sweeps the
job list once per name prefix for all of them, feeds what it learns to the pure tracker
(``_tracker``) and hands each subscription its own events. A job is polled while at least
one open subscription still waits for its outcome; after that, never again.

Who runs it ("whoever waits drives")
------------------------------------
The engine owns no task. Its work (a dispatcher, the status polls in flight, the list
sweepers) runs in a task group opened by whoever *drives* it:

* ``async with waiter:`` starts one permanent driver in a task group the waiter owns (an
  application's lifespan, a trigger process). Subscriptions then only wait for events.
* Otherwise a subscription whose ``__anext__`` finds no event and no driver becomes the
  driver: it opens a task group that lives only inside that one ``__anext__`` call and
  runs the dispatcher until its own queue has an event (or it is closed). Then it stops
  at the first moment no request is on the wire (a request sent and then cancelled would
  cost budget for nothing): it cancels the polls still waiting for a budget slot
  (nothing is lost: their jobs go back to the queue in their place) and returns. Polls
  go on while it waits for that moment; after :data:`DRAIN_LIMIT` seconds it starts no
  new one and waits only for those sent. Every subscription waiting for an event is
  then woken, and one of them takes the role over.

No task group or cancel scope is ever held across a subscriber's ``yield``, so a
subscription works inside an async generator (an SSE endpoint, an Airflow trigger),
closed from another task or simply dropped, on asyncio and trio. State that must outlive
one drive lives on plain objects: the due queue, the trackers, and each sweeper's page
(a sweep cut short resumes where it was).

A subscription dropped without closing is forgotten through a weak reference; its jobs
are not polled on its behalf again.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import logging
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from ._batching import Strategy, common_prefix, wants_list
from ._budget import Budget
from ._client import CDMClient, JobPage
from ._clock import Clock, utc_datetime
from ._events import Event, JobDone, OutcomeKind, PollFailed, StatusChanged
from ._models import JobSummary
from ._retry import RandomSource
from ._schedule import DueQueue, PollPolicy, RequestWindow
from ._siblings import SiblingPolicy
from ._subscription import Subscription
from ._sweeper import ListSweeper
from ._telemetry import Telemetry, WatchRecord
from ._tracker import (
    Decision,
    Demand,
    Interest,
    JobState,
    JobTrack,
    Moment,
    Rules,
    aborted,
    ahead,
    answered,
    dispatched,
    failed,
    finish,
    greet,
    listed,
    promoted,
    released,
    unlisted,
)

__all__ = ["DRAIN_LIMIT", "Engine"]

logger = logging.getLogger("cdm_status")

DRAIN_LIMIT = 1.0
"""Seconds a stopping driver goes on polling while waiting for a moment when no request
is on the wire; after that it starts no new request and waits for those sent."""


@dataclass(slots=True)
class _Work:
    """One task's request work (a status poll, or a sweeper), as the engine sees it."""

    scope: anyio.CancelScope | None = None
    on_wire: bool = False
    """A budget slot was taken: a request is (or was just) on its way."""
    stopping: bool = False

    def cancel(self) -> None:
        self.stopping = True
        if self.scope is not None:
            self.scope.cancel()


class _Metered:
    """A :class:`Budget` that tells the engine when its slot was taken, and refuses a
    first slot to work the engine is stopping (a call once begun runs to its end,
    retries included: cut off, it would leave a request half-told)."""

    def __init__(
        self, inner: Budget, work: _Work, on_slot: Callable[[], None] = lambda: None
    ) -> None:
        self._inner = inner
        self._work = work
        self._on_slot = on_slot

    @property
    def per_minute(self) -> float:
        return self._inner.per_minute

    async def acquire(self) -> None:
        if self._work.stopping and not self._work.on_wire:
            self._work.cancel()
            await anyio.lowlevel.checkpoint()  # raises: the work was cancelled
        await self._inner.acquire()
        if self._work.stopping and not self._work.on_wire:
            # Called back while the slot came: send nothing (the slot is lost, never the
            # budget's count; a request sent now would be cut off mid-way).
            await anyio.lowlevel.checkpoint()
        self._work.on_wire = True
        self._on_slot()

    def pause(self, seconds: float) -> None:
        self._inner.pause(seconds)


class _Lister:
    """The client's ``list_jobs`` as a sweeper sees it, through a metered budget."""

    def __init__(self, client: CDMClient, work: _Work) -> None:
        self._client = client
        self._work = work

    async def list_jobs(
        self,
        *,
        filter: str,
        page_no: int,
        page_size: int,
        job_type: str,
        limiter: Budget,
    ) -> JobPage:
        try:
            return await self._client.list_jobs(
                filter=filter,
                page_no=page_no,
                page_size=page_size,
                job_type=job_type,
                limiter=_Metered(limiter, self._work),
            )
        finally:
            self._work.on_wire = False


@dataclass(eq=False, slots=True)
class _SweepEntry:
    """A sweeper, the jobs it covers, and its work."""

    engine: Engine
    sweeper: ListSweeper = field(init=False)
    jobs: set[str] = field(default_factory=set)
    work: _Work = field(default_factory=_Work)
    ended: bool = False

    # SweepTarget: what the sweeper reports goes to the engine.
    def still_watched(self) -> set[str]:
        return set(self.jobs)

    def listed(self, summary: JobSummary) -> None:
        if summary.name in self.jobs:
            self.engine._on_listed(summary)

    def unlisted(self, names: Iterable[str]) -> None:
        self.engine._on_unlisted([name for name in names if name in self.jobs])


class Engine:
    """Polls and sweeps for every subscription of one waiter (see the module docstring)."""

    def __init__(
        self,
        client: CDMClient,
        *,
        limiter: Budget,
        list_limiter: Budget,
        clock: Clock,
        random: RandomSource,
        policy: PollPolicy,
        strategy: Strategy,
        max_concurrency: int,
        telemetry: Telemetry,
    ) -> None:
        self._client = client
        self._telemetry = telemetry
        self._records: dict[int, WatchRecord] = {}
        """Each open subscription's telemetry: its span, its jobs active and finished."""
        self._limiter = limiter
        self._list_limiter = list_limiter
        self._clock = clock
        self._random = random
        self._policy = policy
        self._strategy: Strategy = strategy
        self._max_concurrency = max_concurrency
        self._tracks: dict[str, JobTrack] = {}
        self._wanted: dict[str, dict[int, Interest]] = {}
        """Open interests by job, then by subscription key."""
        self._open: dict[int, dict[str, Interest]] = {}
        """Open interests by subscription key, then by job."""
        self._subs: dict[int, weakref.ref[Subscription]] = {}
        self._keys = itertools.count(1)
        self._abandoned: list[int] = []
        self._deadlines: list[tuple[float, int]] = []
        self._queue = DueQueue()
        self._ahead = DueQueue()
        """Looks between sweeps at running jobs the list covers (spare budget only)."""
        self._window = RequestWindow()
        """This process's status requests over the last minute."""
        self._demand = Demand()
        self._siblings = SiblingPolicy()
        self._polls: dict[str, _Work] = {}
        self._sweeps: list[_SweepEntry] = []
        self._sweep_of: dict[str, _SweepEntry] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._driving = False
        self._permanent = False
        self._handover = False
        self._released: anyio.Event | None = None
        self._nap_scope: anyio.CancelScope | None = None
        self._wake_pending = False

    # ------------------------------------------------------------------ subscriptions

    def subscribe(
        self, names: tuple[str, ...], rules: Rules, timeout: float | None
    ) -> Subscription:
        """A new subscription to ``names`` (validated, without duplicates)."""
        key = next(self._keys)
        subscription = Subscription(self, key, names)
        self._subs[key] = weakref.ref(subscription, functools.partial(self._abandon, key))
        now = self._clock.monotonic()
        if timeout is not None:
            heapq.heappush(self._deadlines, (now + timeout, key))
        record = self._records[key] = self._telemetry.watch(len(names))
        # Not attached to the caller's task: the engine's polls enter it (activated()).
        record.start(len(names), attach=False)
        interests = self._open[key] = {}
        fresh: list[str] = []
        greetings: list[tuple[Interest, Event]] = []
        moment = self._moment()
        for name in names:
            interest = interests[name] = Interest(name, rules, key)
            self._wanted.setdefault(name, {})[key] = interest
            track = self._tracks.get(name)
            if track is None:
                self._tracks[name] = JobTrack(name)
                fresh.append(name)
            else:
                greetings.extend(greet(track, interest, moment))
        if fresh:
            self._place(fresh, now)
        self._deliver(greetings)
        self._wake()
        return subscription

    def _place(self, fresh: list[str], now: float) -> None:
        """New jobs go to a list sweeper when listing pays, else to per-job polling."""
        if wants_list(
            self._strategy,
            len(self._tracks),
            status_per_minute=self._limiter.per_minute,
            starting_interval=self._policy.starting_interval,
        ):
            # Nobody is polled one by one until the first sweep says who is not listed.
            entry = self._sweeper_for(common_prefix(fresh))
            for name in fresh:
                self._tracks[name].state = JobState.AWAITING_LIST
                entry.jobs.add(name)
                self._sweep_of[name] = entry
            # Jobs polled one by one because they came while the watch was small (the
            # first of many small watches, say): the pages this sweep reads show them
            # too, so it takes them over once it does. Until then they are polled as
            # before; a job the list does not show stays with per-job polling.
            prefix = entry.sweeper.prefix
            for name, track in self._tracks.items():
                if name.startswith(prefix) and name not in self._sweep_of and not track.off_list:
                    entry.jobs.add(name)
                    self._sweep_of[name] = entry
            return
        for name in fresh:
            self._queue.schedule(name, now)

    def _sweeper_for(self, prefix: str) -> _SweepEntry:
        """The live sweeper whose list filter covers ``prefix``, or a new one (which
        takes over the sweepers it covers: one sweep per prefix, not per watch)."""
        for entry in self._sweeps:
            if not entry.ended and prefix.startswith(entry.sweeper.prefix):
                return entry
        entry = _SweepEntry(self)
        entry.sweeper = ListSweeper(
            _Lister(self._client, entry.work),  # type: ignore[arg-type]
            entry,
            prefix=prefix,
            limiter=self._list_limiter,
            status_per_minute=self._limiter.per_minute,
            clock=self._clock,
            policy=self._policy,
            auto=self._strategy == "auto",
        )
        for other in [e for e in self._sweeps if e.sweeper.prefix.startswith(prefix)]:
            other.ended = True
            other.work.cancel()
            self._sweeps.remove(other)
            for name in other.jobs:
                entry.jobs.add(name)
                self._sweep_of[name] = entry
        self._sweeps.append(entry)
        if self._group is not None:
            self._group.start_soon(self._run_sweeper, entry)
        return entry

    def unsubscribe(self, key: int) -> None:
        interests = self._open.pop(key, None)
        self._subs.pop(key, None)
        self._end_record(key)
        if interests:
            for interest in interests.values():
                self._forget(interest)
            self._wake()

    def _abandon(self, key: int, _: object = None) -> None:
        # Called by the garbage collector, at any point of any code: only take note.
        self._abandoned.append(key)

    def cancel(self, key: int, job_names: tuple[str, ...]) -> None:
        interests = self._open.get(key, {})
        events: list[tuple[Interest, Event]] = []
        for name in job_names:
            interest = interests.get(name)
            if interest is not None:
                done = finish(interest, OutcomeKind.CANCELLED)
                if done is not None:
                    events.append((interest, done))
        self._deliver(events)
        self._wake()

    def _forget(self, interest: Interest) -> None:
        """``interest`` is over: release its job if nobody else wants it."""
        wanted = self._wanted.get(interest.job_name)
        if wanted is None:
            return
        wanted.pop(interest.key, None)
        if not wanted:
            self._release(interest.job_name)

    def _release(self, name: str) -> None:
        del self._wanted[name]
        track = self._tracks.pop(name)
        released(track, self._demand)
        self._queue.discard(name)
        self._ahead.discard(name)
        work = self._polls.get(name)
        if work is not None:
            work.cancel()  # nobody waits for its answer: a deadline holds, whatever it waits on
        entry = self._sweep_of.pop(name, None)
        if entry is not None:
            entry.jobs.discard(name)

    # ------------------------------------------------------------------ decisions

    def _moment(self) -> Moment:
        return Moment(
            now=self._clock.monotonic(),
            at=utc_datetime(self._clock.time()),
            policy=self._policy,
            per_second=self._limiter.per_minute / 60.0,
            draw=self._random.random,
        )

    def _interests(self, name: str) -> list[Interest]:
        return list(self._wanted.get(name, {}).values())

    def _end_record(self, key: int) -> None:
        record = self._records.pop(key, None)
        if record is not None:
            record.end()

    def _record(self, key: int, event: Event) -> None:
        record = self._records.get(key)
        if record is None:
            return
        if isinstance(event, StatusChanged):
            record.status_changed(event.current.value)
        elif isinstance(event, PollFailed):
            record.poll_failed(event.error)
        else:
            record.job_finished(event.outcome.kind.value)

    def _deliver(self, events: list[tuple[Interest, Event]]) -> None:
        for interest, event in events:
            self._record(interest.key, event)
            ref = self._subs.get(interest.key)
            subscription = None if ref is None else ref()
            if subscription is not None:
                subscription.push(event)
            if isinstance(event, JobDone):
                logger.info("job %r done: %s", interest.job_name, event.outcome.kind.value)
                still_open = self._open.get(interest.key)
                if still_open is not None:
                    still_open.pop(interest.job_name, None)
                    if not still_open:  # every job of it ended: its deadline is moot
                        del self._open[interest.key]
                        self._end_record(interest.key)
                self._forget(interest)

    def _apply(self, track: JobTrack, decision: Decision) -> None:
        self._deliver(decision.events)
        if decision.credentials_refused is not None:
            self._refuse_all(decision.credentials_refused)
        if track.state is JobState.RELEASED:
            return
        if track.state is JobState.QUEUED:
            if decision.poll_at is not None:
                self._queue.schedule(track.name, decision.poll_at, urgent=decision.urgent)
        else:
            self._queue.discard(track.name)
            # "list" means the list alone: status requests only for what it saw change.
            ahead_of_sweeps = self._strategy == "auto" and track.state is JobState.AWAITING_LIST
            if decision.ahead_at is not None and ahead_of_sweeps:
                urgent = decision.ahead_predicted
                self._ahead.schedule(track.name, decision.ahead_at, urgent=urgent)
        self._wake()

    def _refuse_all(self, error: BaseException) -> None:
        events: list[tuple[Interest, Event]] = []
        for wanted in self._wanted.values():
            for interest in wanted.values():
                done = finish(interest, OutcomeKind.ERROR, error)
                if done is not None:
                    events.append((interest, done))
        self._deliver(events)

    def _on_listed(self, summary: JobSummary) -> None:
        track = self._tracks.get(summary.name)
        if track is not None:
            decision = listed(
                track, summary, self._interests(track.name), self._moment(), self._demand
            )
            self._apply(track, decision)

    def _on_unlisted(self, names: Iterable[str]) -> None:
        moment = self._moment()
        for name in names:
            track = self._tracks.get(name)
            if track is not None:
                self._apply(track, unlisted(track, moment))

    def _expire(self, now: float) -> None:
        """End the jobs of every subscription whose timeout has passed."""
        while self._deadlines and self._deadlines[0][0] <= now:
            _, key = heapq.heappop(self._deadlines)
            events: list[tuple[Interest, Event]] = []
            for interest in list(self._open.get(key, {}).values()):
                done = finish(interest, OutcomeKind.TIMED_OUT)
                if done is not None:
                    events.append((interest, done))
            self._deliver(events)

    def _collect_abandoned(self) -> None:
        while self._abandoned:
            key = self._abandoned.pop()
            logger.debug("a subscription was dropped without closing it")
            self.unsubscribe(key)

    # ------------------------------------------------------------------ driving

    def needs_driver(self) -> bool:
        # While the permanent driver is on its way, subscribers wait for it.
        return not self._driving and not self._handover

    async def drive(self, subscription: Subscription) -> None:
        """Run the engine until ``subscription`` has an event, or has finished."""

        def satisfied() -> bool:
            return subscription.has_events or subscription.finished or self._handover

        await self._drive(satisfied)

    def expect_driver(self) -> None:
        """A permanent driver is starting (``run()`` is about to be called): from now on,
        subscribers leave the driving to it."""
        self._handover = True

    async def run(self) -> None:
        """Run the engine until cancelled (the permanent driver of ``async with waiter``)."""
        self._handover = True
        try:
            while self._driving:  # a subscriber drives: it hands over at its next step
                self._wake()
                self._released = anyio.Event()
                await self._released.wait()
            self._handover = False
            self._permanent = True
            await self._drive(lambda: False)
        finally:
            self.driver_gone()

    def driver_gone(self) -> None:
        """The permanent driver stopped (or never started): subscribers drive again."""
        self._handover = False
        self._permanent = False
        self._notify_all()

    async def _drive(self, satisfied: Callable[[], bool]) -> None:
        assert not self._driving, "two drivers at once"
        self._driving = True
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                for entry in self._sweeps:
                    group.start_soon(self._run_sweeper, entry)
                await self._dispatch(group, satisfied)
                group.cancel_scope.cancel()  # what the drain left: cut off
        finally:
            self._group = None
            self._driving = False
            if not self._permanent:
                self._notify_all()
            if self._released is not None:
                self._released.set()

    def _notify_all(self) -> None:
        for ref in list(self._subs.values()):
            subscription = ref()
            if subscription is not None:
                subscription.wake()

    async def _dispatch(self, group: anyio.abc.TaskGroup, satisfied: Callable[[], bool]) -> None:
        stop_at: float | None = None
        # The time a full nap was asked to last until: the clock's own sleep said it came.
        # A clock that reads coarser than it sleeps (looptime rounds to a microsecond,
        # Windows ticks every 15 ms) may still read a hair short of it; going by the
        # reading alone would nap that hair again and again, without time moving on.
        slept_until = float("-inf")
        while True:
            self._collect_abandoned()
            now = max(self._clock.monotonic(), slept_until)
            self._expire(now)
            dispatching = True
            if satisfied():
                # Stop at the first moment no request is on the wire: nothing sent is
                # wasted, and polls go on meanwhile. Past DRAIN_LIMIT, start no more.
                if stop_at is None:
                    stop_at = now + DRAIN_LIMIT
                if now >= stop_at:  # compared, never subtracted: no rounding loop
                    self._stop_unsent()
                    dispatching = False
                if not self._on_wire():
                    self._stop_unsent()
                    return
            due = self._queue.next_due()
            # One poll at a time waits for its budget slot (the budget serves them in
            # turn anyway): the job is chosen when a slot is near, and a driver that
            # stops has at most one poll to call back before it sent anything. The
            # client takes the slot itself, once a connection is free, so a slot is
            # never spent late.
            room = (
                dispatching
                and len(self._polls) < self._max_concurrency
                and all(work.on_wire for work in self._polls.values())
            )
            if room and due is not None and due <= now:
                name = self._queue.pop_due(now)
                assert name is not None
                self._start_poll(group, self._tracks[name], due)
                continue
            ahead_due = self._ahead_due(now) if room else None
            if ahead_due is not None and ahead_due <= now:
                self._start_ahead(group, now)
                continue
            wake_at = [
                t
                for t in (due if room else None, ahead_due, self._next_deadline())
                if t is not None
            ]
            if stop_at is not None and dispatching:
                wake_at.append(stop_at)
            wake = min(wake_at) if wake_at else None
            if await self._nap(None if wake is None else wake - now) and wake is not None:
                slept_until = wake

    def _ahead_due(self, now: float) -> float | None:
        """When the next look between sweeps may go: when it is due and the status
        requests of the last minute leave room under the budget share."""
        due = self._ahead.next_due()
        if due is None:
            return None
        if not self._window.room(now, self._limiter.per_minute, self._policy.budget_share):
            return max(due, self._window.free_at(now))
        return due

    def _start_ahead(self, group: anyio.abc.TaskGroup, now: float) -> None:
        name = self._ahead.pop_due(now)
        assert name is not None
        track = self._tracks.get(name)
        if track is None or track.state is not JobState.AWAITING_LIST:
            return  # a detail fetch or a routine poll took it over meanwhile
        ahead(track)
        work = self._polls[name] = _Work()
        group.start_soon(self._poll, track, work, now)

    def _status_slot(self) -> None:
        """A status request took its budget slot."""
        self._window.sent(self._clock.monotonic())
        self._wake()

    def _next_deadline(self) -> float | None:
        while self._deadlines and self._deadlines[0][1] not in self._open:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def _stop_unsent(self) -> None:
        works = [*self._polls.values(), *(entry.work for entry in self._sweeps)]
        for work in works:
            work.stopping = True
            if not work.on_wire:
                work.cancel()

    def _on_wire(self) -> bool:
        works = [*self._polls.values(), *(entry.work for entry in self._sweeps)]
        return any(work.on_wire and work.scope is not None for work in works)

    async def _nap(self, seconds: float | None) -> bool:
        """Sleep until ``seconds`` pass or something changes, whichever comes first;
        True when the full ``seconds`` were slept."""
        with anyio.CancelScope() as scope:
            self._nap_scope = scope
            if self._wake_pending:
                scope.cancel()
            if seconds is None:
                await anyio.sleep_forever()
            else:
                await self._clock.sleep(seconds)
        self._nap_scope = None
        self._wake_pending = False
        return not scope.cancel_called

    def _wake(self) -> None:
        self._wake_pending = True
        if self._nap_scope is not None:
            self._nap_scope.cancel()

    # ------------------------------------------------------------------ the work

    def _start_poll(self, group: anyio.abc.TaskGroup, track: JobTrack, due: float) -> None:
        dispatched(track)
        work = self._polls[track.name] = _Work()
        group.start_soon(self._poll, track, work, due)

    async def _poll(self, track: JobTrack, work: _Work, due: float) -> None:
        outcome: Any = None
        try:
            with anyio.CancelScope() as scope:
                work.scope = scope
                if work.stopping:
                    scope.cancel()
                logger.debug("polling %r", track.name)
                try:
                    with self._span_for(track.name):
                        outcome = await self._client.get_status(
                            track.name, limiter=_Metered(self._limiter, work, self._status_slot)
                        )
                except Exception as error:
                    outcome = error
        finally:
            work.scope = None
            if self._polls.get(track.name) is work:
                del self._polls[track.name]
            if track.state is JobState.POLLING:
                self._settle(track, outcome, due)
            self._wake()

    def _span_for(self, name: str) -> contextlib.AbstractContextManager[None]:
        """The span of a subscription that wants ``name``: its request nests under it."""
        for key in self._wanted.get(name, {}):
            record = self._records.get(key)
            if record is not None:
                return record.activated()
        return contextlib.nullcontext()

    def _settle(self, track: JobTrack, outcome: object, due: float) -> None:
        """A poll's result, whatever it was, becomes the tracker's decision."""
        interests = self._interests(track.name)
        self._ahead.discard(track.name)  # the answer plans the next look afresh
        if outcome is None:  # cut off before an answer
            decision = aborted(track, due)
        elif isinstance(outcome, Exception):
            decision = failed(track, outcome, interests, self._moment())
        else:
            decision = answered(track, outcome, interests, self._moment(), self._demand)  # type: ignore[arg-type]
            if not track.via_list and any(isinstance(e, JobDone) for _, e in decision.events):
                self._promote(interests)
        self._apply(track, decision)

    def _promote(self, interests: Iterable[Interest]) -> None:
        """A job polled by itself ended: look sooner at the waiting siblings likeliest
        to take its slot (each watch's jobs are one group, in the order given)."""
        now = self._clock.monotonic()
        for key in {interest.key for interest in interests}:
            ref = self._subs.get(key)
            subscription = None if ref is None else ref()
            if subscription is None:
                continue
            for name, at in promoted(subscription.job_names, self._tracks, now, self._siblings):
                due = self._queue.due_at(name)
                if due is None or due > at or not self._queue.is_urgent(name):
                    self._queue.schedule(name, at if due is None else min(due, at), urgent=True)

    async def _run_sweeper(self, entry: _SweepEntry) -> None:
        if entry.ended:
            return
        work = entry.work
        work.stopping = work.on_wire = False
        try:
            with anyio.CancelScope() as scope:
                work.scope = scope
                await entry.sweeper.run()
                self._sweeper_ended(entry)
        finally:
            work.scope = None
            work.on_wire = False
            self._wake()

    def _sweeper_ended(self, entry: _SweepEntry) -> None:
        """The sweeper stopped for good: whatever it still covered is polled by itself."""
        entry.ended = True
        if entry in self._sweeps:
            self._sweeps.remove(entry)
        leftovers = [name for name in entry.jobs if self._sweep_of.get(name) is entry]
        for name in leftovers:
            del self._sweep_of[name]
        self._on_unlisted(leftovers)
