"""The watching engine: one per running waiter, shared by every subscription.

The engine polls each watched job once however many subscriptions want it, sweeps the
job list once per name prefix for all of them, feeds what it learns to the pure tracker
(``_tracker``) and puts each subscription's events in its inbox. A job is polled while at
least one open subscription still waits for its outcome; after that, never again.

One owner
---------
The engine runs only inside a task group that somebody owns for its whole life:
``async with JobStatusWaiter(client) as waiter`` (an application's lifespan, a trigger
process), or a ``wait()``/``wait_all()`` call on a waiter that is not entered, for as
long as it waits. :meth:`Engine.run` starts the dispatcher, the status polls and the list
sweepers as tasks of that group, in the owner's context; a subscription never runs any
of it. So a reader that stops, slows down or is cancelled never cuts off a request (a
slot booked on a shared budget is always spent), never delays another reader's events,
and never lends its own task context (its log handlers, say) to other jobs' work.

When the owner's block ends, every subscription still waiting gets a
:class:`~cdm_status.WaiterClosedError`. An engine runs once; a waiter entered again
makes a new one.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc

from ._batching import Strategy, common_prefix, wants_list
from ._client import CDMClient
from ._clock import Clock, utc_datetime
from ._definition import JobDefinition, JobSettings
from ._errors import WaiterClosedError
from ._events import Event, JobDone, OutcomeKind, PollFailed, StatusChanged
from ._models import JobSummary
from ._retry import RandomSource
from ._schedule import DueQueue, PollPolicy
from ._settings_reader import SettingsReader
from ._siblings import SiblingPolicy
from ._subscription import Inbox, Subscription
from ._sweeper import ListSweeper
from ._tasks import BackgroundTasks
from ._telemetry import Telemetry, WatchRecord
from ._tracker import (
    Conditions,
    Decision,
    Demand,
    Interest,
    JobTrack,
    Rules,
    TrackPhase,
    aborted,
    answered,
    awaiting_first_look,
    catch_up,
    dispatched,
    failed,
    finish,
    learned,
    likely_starts,
    listed,
    look_between_sweeps,
    released,
    replanned_wait,
    unlisted,
)

__all__ = ["Engine"]

logger = logging.getLogger("cdm_status")

STALE_DEADLINES = 64
"""Deadlines of closed subscriptions kept beyond twice the open ones, at most."""


@dataclass(slots=True)
class _Work:
    """One task's request work (a status poll, or a sweeper), as the engine sees it."""

    scope: anyio.CancelScope | None = None
    on_wire: bool = False
    """A budget slot was taken: a request is (or was just) on its way."""

    def cancel(self) -> None:
        if self.scope is not None:
            self.scope.cancel()


@dataclass(eq=False, slots=True)
class _SweepEntry:
    """A sweeper, the jobs it covers, and its work."""

    engine: Engine
    sweeper: ListSweeper = field(init=False)
    jobs: dict[str, None] = field(default_factory=dict)
    """The jobs it covers, in the order they came (a dict: ordered, unlike a set)."""
    work: _Work = field(default_factory=_Work)
    started: bool = False
    ended: bool = False

    # SweepTarget: what the sweeper reports goes to the engine.
    def still_watched(self) -> set[str]:
        return set(self.jobs)

    def listed(self, summary: JobSummary) -> None:
        if summary.name in self.jobs:
            self.engine._on_listed(summary)

    def unlisted(self, names: Iterable[str]) -> None:
        self.engine._on_unlisted(sorted(name for name in names if name in self.jobs))


class Engine:
    """Polls and sweeps for every subscription of one running waiter (see the module
    docstring). :meth:`run` is called once, by the waiter's owner."""

    def __init__(
        self,
        client: CDMClient,
        *,
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
        self._budget = client.budget
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
        self._inboxes: dict[int, Inbox] = {}
        self._groups: dict[int, tuple[str, ...]] = {}
        """Each open subscription's jobs in the order given (a database job's tables)."""
        self._keys = itertools.count(1)
        self._abandoned: list[int] = []
        self._deadlines: list[tuple[float, int]] = []
        self._queue = DueQueue()
        self._between_sweeps = DueQueue()
        """Looks between sweeps at running jobs the list covers (spare budget only)."""
        self._demand = Demand()
        self._siblings = SiblingPolicy()
        self._polls: dict[str, _Work] = {}
        self._sweeps: list[_SweepEntry] = []
        self._sweep_of: dict[str, _SweepEntry] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._state = "new"
        """new -> running -> stopped: an engine runs once."""
        self._nap_scope: anyio.CancelScope | None = None
        self._wake_pending = False
        self._reader = SettingsReader(self._read_definition, self._on_settings)
        """Reads the definitions of jobs whose settings no list row carried."""
        self._waiting_demand = 0.0
        """The demand of running jobs when waiting jobs were last re-planned."""

    @property
    def running(self) -> bool:
        return self._state == "running"

    # ------------------------------------------------------------------ subscriptions

    def subscribe(
        self, names: tuple[str, ...], rules: Rules, timeout: float | None
    ) -> Subscription:
        """A new subscription to ``names`` (validated, without duplicates). Only while
        the engine runs: it starts nothing itself (the dispatcher starts what it needs,
        in the owner's task context)."""
        if not self.running:
            raise RuntimeError("the engine is not running")
        key = next(self._keys)
        inbox = self._inboxes[key] = Inbox()
        subscription = Subscription(self, key, names, inbox)
        self._subs[key] = weakref.ref(subscription, functools.partial(self._abandon, key))
        self._groups[key] = names
        now = self._clock.monotonic()
        if timeout is not None:
            if len(self._deadlines) > 2 * len(self._open) + STALE_DEADLINES:
                # Subscriptions closed long before their timeout: forget their deadlines
                # now, not when the timeout comes (a day later, for a service).
                self._deadlines = [entry for entry in self._deadlines if entry[1] in self._open]
                heapq.heapify(self._deadlines)
            heapq.heappush(self._deadlines, (now + timeout, key))
        record = self._records[key] = self._telemetry.watch(len(names))
        # Not attached to the caller's task: the engine's polls enter it (activated()).
        record.start(len(names), attach=False)
        interests = self._open[key] = {}
        fresh: list[str] = []
        catch_ups: list[tuple[Interest, Event]] = []
        conditions = self._conditions()
        for name in names:
            interest = interests[name] = Interest(name, rules, key)
            self._wanted.setdefault(name, {})[key] = interest
            track = self._tracks.get(name)
            if track is None:
                self._tracks[name] = JobTrack(name)
                fresh.append(name)
            else:
                catch_ups.extend(catch_up(track, interest, conditions))
        if fresh:
            self._place(fresh, now)
        self._deliver(catch_ups)
        self._wake()
        return subscription

    def _place(self, fresh: list[str], now: float) -> None:
        """New jobs go to a list sweeper when listing pays, else to per-job polling."""
        if wants_list(
            self._strategy,
            len(self._tracks),
            status_per_minute=self._budget.per_minute,
            starting_interval=self._policy.starting_interval,
        ):
            # Nobody is polled one by one until the first sweep says who is not listed.
            entry = self._sweeper_for(common_prefix(fresh))
            for name in fresh:
                self._tracks[name].phase = TrackPhase.AWAITING_LIST
                entry.jobs[name] = None
                self._sweep_of[name] = entry
            # Jobs polled one by one because they came while the watch was small (the
            # first of many small watches, say): the pages this sweep reads show them
            # too, so it takes them over once it does. Until then they are polled as
            # before; a job the list does not show stays with per-job polling.
            prefix = entry.sweeper.prefix
            for name, track in self._tracks.items():
                if name.startswith(prefix) and name not in self._sweep_of and not track.off_list:
                    entry.jobs[name] = None
                    self._sweep_of[name] = entry
            return
        conditions = self._conditions()
        for queued, name in enumerate(fresh):
            at = awaiting_first_look(self._tracks[name], queued, conditions, self._demand)
            self._queue.schedule(name, at, urgent=True)

    def _sweeper_for(self, prefix: str) -> _SweepEntry:
        """The live sweeper whose list filter covers ``prefix``, or a new one (which
        takes over the sweepers it covers: one sweep per prefix, not per watch). A new
        one is started by the dispatcher, never from the subscriber's task."""
        for entry in self._sweeps:
            if not entry.ended and prefix.startswith(entry.sweeper.prefix):
                return entry
        entry = _SweepEntry(self)
        entry.sweeper = ListSweeper(
            self._client,
            entry,
            prefix=prefix,
            clock=self._clock,
            policy=self._policy,
            auto=self._strategy == "auto",
        )
        for other in [e for e in self._sweeps if e.sweeper.prefix.startswith(prefix)]:
            other.ended = True
            other.work.cancel()
            self._sweeps.remove(other)
            for name in other.jobs:
                entry.jobs[name] = None
                self._sweep_of[name] = entry
        self._sweeps.append(entry)
        return entry

    def unsubscribe(self, key: int) -> None:
        interests = self._open.pop(key, None)
        self._subs.pop(key, None)
        self._inboxes.pop(key, None)
        self._groups.pop(key, None)
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
        self._between_sweeps.discard(name)
        self._reader.discard(name)
        work = self._polls.get(name)
        if work is not None:
            work.cancel()  # nobody waits for its answer: a deadline holds, whatever it waits on
        entry = self._sweep_of.pop(name, None)
        if entry is not None:
            entry.jobs.pop(name, None)

    # ------------------------------------------------------------------ decisions

    def _conditions(self) -> Conditions:
        now = self._clock.monotonic()
        per_minute = self._budget.per_minute
        return Conditions(
            now=now,
            at=utc_datetime(self._clock.time()),
            policy=self._policy,
            per_second=per_minute / 60.0,
            draw=self._random.random,
            status_use=self._client._status_window.use(now, per_minute, self._policy.budget_share),
            server_offset=self._client.server_clock.offset,
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
        elif isinstance(event, JobDone):
            record.job_finished(event.outcome.kind.value)

    def _deliver(self, events: list[tuple[Interest, Event]]) -> None:
        for interest, event in events:
            self._record(interest.key, event)
            inbox = self._inboxes.get(interest.key)
            if inbox is not None:
                inbox.put(event)
            if isinstance(event, JobDone):
                logger.debug("job %r done: %s", interest.job_name, event.outcome.kind.value)
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
        if decision.read_settings:
            self._reader.want(track.name)
        if track.phase is TrackPhase.RELEASED:
            return
        if track.phase is TrackPhase.QUEUED:
            if decision.poll_at is not None:
                self._queue.schedule(
                    track.name,
                    decision.poll_at,
                    urgent=decision.urgent,
                    ending=decision.ending,
                    aimed=decision.aims_at_end,
                    owed_at=decision.owed_at,
                )
        else:
            self._queue.discard(track.name)
            # "list" means the list alone: status requests only for what it saw change.
            between_sweeps = self._strategy == "auto" and track.phase is TrackPhase.AWAITING_LIST
            if decision.between_sweeps_at is not None and between_sweeps:
                urgent = decision.aims_at_end
                self._between_sweeps.schedule(track.name, decision.between_sweeps_at, urgent=urgent)
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
                track, summary, self._interests(track.name), self._conditions(), self._demand
            )
            self._apply(track, decision)

    def _on_unlisted(self, names: Iterable[str]) -> None:
        conditions = self._conditions()
        queued = 0
        for name in names:
            track = self._tracks.get(name)
            if track is not None:
                decision = unlisted(track, conditions, self._demand, queued)
                queued += decision.poll_at is not None
                self._apply(track, decision)

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

    def _replan_waiting(self) -> None:
        """Running jobs ended since waiting jobs were planned: the share they leave is
        larger now, so bring the waiting jobs' far-off looks forward to their new bound
        (they would otherwise keep the slow pace of a busy conditions for hours)."""
        running = self._demand.total - self._demand.waiting_total
        if running >= self._waiting_demand * 0.9:
            self._waiting_demand = max(self._waiting_demand, running)
            return
        self._waiting_demand = running
        conditions = self._conditions()
        for name, track in self._tracks.items():
            due = self._queue.due_at(name)
            if due is None:
                continue
            at = replanned_wait(track, due, conditions, self._demand)
            if at is not None:
                queue = self._queue
                urgent, ending = queue.is_urgent(name), queue.is_ending(name)
                queue.schedule(name, at, urgent=urgent, ending=ending, owed_at=queue.owed_at(name))

    # ------------------------------------------------------------------ running

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run the engine until cancelled (by the owner of the waiter). Every task it
        starts belongs to this call's task group; when it ends, subscriptions still
        waiting get :class:`WaiterClosedError`."""
        if self._state != "new":
            raise RuntimeError("an engine runs once")
        try:
            async with BackgroundTasks() as group:
                self._group = group
                self._state = "running"
                task_status.started()
                group.start_soon(self._reader.run)
                await self._dispatch(group)
        finally:
            self._state = "stopped"
            self._group = None
            self._close_inboxes()

    def _close_inboxes(self) -> None:
        for key, inbox in list(self._inboxes.items()):
            pending = len(self._open.get(key, {}))
            inbox.stop(WaiterClosedError(pending))

    async def _dispatch(self, group: anyio.abc.TaskGroup) -> None:
        # The time a full nap was asked to last until: the clock's own sleep said it came.
        # A clock that reads coarser than it sleeps (looptime rounds to a microsecond,
        # Windows ticks every 15 ms) may still read a hair short of it; going by the
        # reading alone would nap that hair again and again, without time moving on.
        slept_until = float("-inf")
        while True:
            self._collect_abandoned()
            now = max(self._clock.monotonic(), slept_until)
            self._expire(now)
            for entry in self._sweeps:
                if not entry.started and not entry.ended:
                    entry.started = True
                    group.start_soon(self._run_sweeper, entry)
            self._replan_waiting()
            due = self._queue.next_due()
            # One poll at a time waits for its budget slot (the budget serves them in
            # turn anyway): the job is chosen when a slot is near. The client takes the
            # slot itself, once a connection is free, so a slot is never spent late.
            room = len(self._polls) < self._max_concurrency and all(
                work.on_wire for work in self._polls.values()
            )
            if room and due is not None and due <= now:
                name = self._queue.pop_due(now)
                assert name is not None
                self._start_poll(group, self._tracks[name], due)
                continue
            between_due = self._between_sweeps_due(now) if room else None
            if between_due is not None and between_due <= now:
                self._start_look_between_sweeps(group, now)
                continue
            wake_at = [
                t
                for t in (due if room else None, between_due, self._next_deadline())
                if t is not None
            ]
            wake = min(wake_at) if wake_at else None
            if await self._nap(None if wake is None else wake - now) and wake is not None:
                slept_until = wake

    def _between_sweeps_due(self, now: float) -> float | None:
        """When the next look between sweeps may go: when it is due and the status
        requests of the last minute (every caller of the client) leave room under the
        budget share."""
        due = self._between_sweeps.next_due()
        if due is None:
            return None
        window = self._client._status_window
        if not window.room(now, self._budget.per_minute, self._policy.budget_share):
            return max(due, window.free_at(now))
        return due

    def _start_look_between_sweeps(self, group: anyio.abc.TaskGroup, now: float) -> None:
        name = self._between_sweeps.pop_due(now)
        assert name is not None
        track = self._tracks.get(name)
        if track is None or track.phase is not TrackPhase.AWAITING_LIST:
            return  # a detail fetch or a routine poll took it over meanwhile
        look_between_sweeps(track)
        work = self._polls[name] = _Work()
        group.start_soon(self._poll, track, work, now)

    def _next_deadline(self) -> float | None:
        while self._deadlines and self._deadlines[0][1] not in self._open:
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

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

        def slot_taken() -> None:
            work.on_wire = True
            self._wake()

        try:
            with anyio.CancelScope() as scope:
                work.scope = scope
                logger.debug("polling %r", track.name)
                try:
                    with self._span_for(track.name):
                        outcome = await self._client._poll_status(track.name, on_slot=slot_taken)
                except Exception as error:
                    outcome = error
        finally:
            work.scope = None
            if self._polls.get(track.name) is work:
                del self._polls[track.name]
            if track.phase is TrackPhase.POLLING:
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
        self._between_sweeps.discard(track.name)  # the answer plans the next look afresh
        if outcome is None:  # cut off before an answer
            decision = aborted(track, due)
        elif isinstance(outcome, Exception):
            logger.debug("polling %r failed: %r", track.name, outcome)
            decision = failed(track, outcome, interests, self._conditions())
        else:
            decision = answered(track, outcome, interests, self._conditions(), self._demand)  # type: ignore[arg-type]
            if not track.via_list and any(isinstance(e, JobDone) for _, e in decision.events):
                self._look_at_likely_starts(interests)
        self._apply(track, decision)

    def _look_at_likely_starts(self, interests: Iterable[Interest]) -> None:
        """A job polled by itself ended: look sooner at the waiting siblings likeliest
        to take its slot (each watch's jobs are one group, in the order given)."""
        now = self._clock.monotonic()
        for key in dict.fromkeys(interest.key for interest in interests):
            group = self._groups.get(key)
            if group is None:
                continue
            for name, at in likely_starts(group, self._tracks, now, self._siblings):
                due = self._queue.due_at(name)
                if due is None or due > at or not self._queue.is_urgent(name):
                    self._queue.schedule(name, at if due is None else min(due, at), urgent=True)

    async def _run_sweeper(self, entry: _SweepEntry) -> None:
        if entry.ended:
            return
        work = entry.work
        try:
            with anyio.CancelScope() as scope:
                work.scope = scope
                await entry.sweeper.run()
                self._sweeper_ended(entry)
        finally:
            work.scope = None
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

    # ------------------------------------------------------------------ settings

    async def _read_definition(self, name: str) -> JobDefinition:
        """One job's definition, from the list's budget (the same API)."""
        with self._span_for(name):
            return await self._client.get_job(name)

    def _on_settings(self, name: str, settings: JobSettings | None) -> None:
        track = self._tracks.get(name)
        if track is not None:
            decision = learned(
                track, settings, self._interests(name), self._conditions(), self._demand
            )
            self._apply(track, decision)
