"""What a watcher knows about one job, and what each thing it learns means. Pure.

No clock, no I/O, no event loop: each function takes an observation (a status answer, a
failed request, a row of the job list, its absence from the list, the time) and returns a
:class:`Decision`: the events to hand to each subscription, and when to look next. The
engine (``_engine``) does the I/O and applies decisions; tests drive these functions
directly.

One job is polled once for everyone, so its state is split in two:

* a :class:`JobTrack` per job: where its next look comes from (:class:`TrackPhase`), its
  failure counts, what the list last said, how often its state asks to be polled;
* an :class:`Interest` per (subscription, job): what that subscription was last told and
  its rules (success and failure statuses, ``since``). Two subscriptions with different
  rules see the same answer differently: one may finish a job the other still watches.

The rules of :class:`TrackPhase`, written once (a move not in :data:`TRANSITIONS` raises
:class:`IllegalTransition`):

* ``AWAITING_LIST``: a list sweep covers the job; no status request is queued. The list
  seeing it change, or not showing it, queues one.
* ``QUEUED``: a status request is queued (a routine poll, a retry, or an urgent detail
  fetch). The dispatcher takes it (``POLLING``), or the list takes the job over.
* ``POLLING``: a status request is on its way; never two at once for one job. The answer
  (or the failure) queues the next look, or hands the job to the list; a request cut off
  before its answer queues it again.
* ``RELEASED``: no subscription wants the job any more; nothing moves it again.

The floor no rule may break: a job waiting to start (``NEVER_EXECUTED``, ``NEW``,
``PENDING``) is looked at at least every :func:`waiting_ceiling` seconds,
``max(waiting_max_interval, W / share)`` with W the jobs seen waiting (and those not looked
at yet) and share the budget share's requests a second; any other job polled by itself at
least every :func:`polite_bound` seconds, as often as a polite loop going round all N
of them at the full rate (``N / rate``) or ``max_interval`` when that is longer. Jitter
may stretch the waiting jobs' bound and ``max_interval`` by its fraction, no more. A look
planned sooner is served in due order while the budget keeps up and is *owed* from its
bound on (``Decision.owed_at``): it then goes before the routine polls, so a busy queue
never makes it late. The first looks at jobs handed over at once are owed as they come
due (:func:`first_look`), and when running jobs end the waiting jobs' far-off looks are
brought forward (:func:`replanned_wait`). Estimates, siblings and spare budget only ever
move looks earlier.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ._definition import JobSettings
from ._endings import (
    NEAR_END,
    RETRIED,
    Learned,
    Retries,
    Step,
    after_deletion,
    after_failure,
    is_next_run,
    wants_settings,
    watch_closely,
)
from ._errors import AuthenticationError, JobDeletedError, JobNotFoundError, is_permanent
from ._estimate import EstimatePolicy, ProgressTrack, observe, run_started, starts_exactly
from ._events import (
    Event,
    JobDone,
    JobOutcome,
    OutcomeKind,
    PollFailed,
    RetryExpected,
    StatusChanged,
)
from ._models import JobStatus, JobSummary, Submission
from ._schedule import PollPolicy
from ._siblings import SiblingPolicy, waiting_bound

__all__ = [
    "NOT_STARTED",
    "TRANSITIONS",
    "Decision",
    "Demand",
    "IllegalTransition",
    "Interest",
    "TrackPhase",
    "JobTrack",
    "Conditions",
    "Rules",
    "aborted",
    "look_between_sweeps",
    "answered",
    "dispatched",
    "failed",
    "finish",
    "awaiting_first_look",
    "first_look",
    "polite_bound",
    "catch_up",
    "learned",
    "listed",
    "likely_starts",
    "released",
    "replanned_wait",
    "unlisted",
    "waiting_ceiling",
]


class TrackPhase(enum.Enum):
    """Where the next look at a job comes from."""

    AWAITING_LIST = "awaiting_list"
    QUEUED = "queued"
    POLLING = "polling"
    RELEASED = "released"


_S = TrackPhase
TRANSITIONS: Mapping[TrackPhase, frozenset[TrackPhase]] = {
    _S.AWAITING_LIST: frozenset({_S.AWAITING_LIST, _S.QUEUED, _S.RELEASED}),
    _S.QUEUED: frozenset({_S.QUEUED, _S.POLLING, _S.AWAITING_LIST, _S.RELEASED}),
    # POLLING -> POLLING is missing on purpose: one status request per job at a time.
    _S.POLLING: frozenset({_S.QUEUED, _S.AWAITING_LIST, _S.RELEASED}),
    _S.RELEASED: frozenset(),
}
"""Every legal move of :class:`TrackPhase` (from -> allowed next states)."""

NOT_STARTED = frozenset({JobStatus.NEW, JobStatus.NEVER_EXECUTED})
"""List statuses of a job that has not run yet."""
_WAITING = frozenset({*NOT_STARTED, JobStatus.PENDING})


class IllegalTransition(RuntimeError):
    """A move :data:`TRANSITIONS` does not allow: a bug in the caller, never the API."""

    def __init__(self, job_name: str, current: TrackPhase, wanted: TrackPhase) -> None:
        super().__init__(f"job {job_name!r}: {current.value} -> {wanted.value} is not allowed")
        self.job_name = job_name
        self.current = current
        self.wanted = wanted


@dataclass(frozen=True, slots=True)
class Rules:
    """What ends a job for one subscription, and which runs are too old to count."""

    success: frozenset[JobStatus]
    failure: frozenset[JobStatus]
    since: datetime | None = None
    """Aware UTC; submissions created before it count as "not started yet". A time read
    on the local clock, compared with the server's ``creation-date`` through the server
    clock's offset; but a ``since`` that is the creation date of a run seen (what a start
    returned) names that run, on the server's own clock (see :meth:`names_run`)."""

    def is_stale(self, submission: Submission, server_offset: float = 0.0) -> bool:
        """Created before ``since``; ``creation-date`` is read on the server's clock,
        ``server_offset`` seconds ahead of the local one."""
        return (
            self.since is not None
            and submission.creation_date is not None
            and submission.creation_date.timestamp() - server_offset < self.since.timestamp()
        )

    def names_run(self, submission: Submission) -> bool:
        """``since`` is this run's creation date (to the millisecond the API dates in): it
        was taken from the server's answer, not from a local clock."""
        return (
            self.since is not None
            and submission.creation_date is not None
            and abs((submission.creation_date - self.since).total_seconds()) < 0.001
        )


@dataclass(slots=True)
class Interest:
    """One subscription's view of one job: what it was told last, and whether it ended."""

    job_name: str
    rules: Rules
    key: int
    """The subscription's key (the engine routes events by it)."""
    status: JobStatus | None = None
    raw_status: str | None = None
    submission: Submission | None = None
    done: bool = False
    since_on_server: bool = False
    """Its ``since`` named a run seen (:meth:`Rules.names_run`): read on the server's clock."""
    retries: Retries = field(default_factory=Retries)
    """Failed runs CDM retries (see ``_endings``)."""


@dataclass(slots=True)
class JobTrack:
    """What the watcher knows about one job, shared by every interested subscription."""

    name: str
    phase: TrackPhase = TrackPhase.QUEUED
    status: JobStatus | None = None
    """The status polls are planned by (the freshest run any interested party counts)."""
    raw_status: str | None = None
    entered_at: float = 0.0
    submission: Submission | None = None
    """The last answer, as received (a stand-in for a job that never ran)."""
    exists: bool = False
    failures: int = 0
    not_found: int = 0
    via_list: bool = False
    """The job list shows this job: no routine per-job polls, only detail fetches."""
    list_status: str | None = None
    off_list: bool = False
    """A sweep covering the job did not show it (or gave the list up): it is polled by
    itself, and is not handed to a sweep again."""
    demand: float = 0.0
    """Polls per second this job's state asks for (1 / its interval)."""
    progress: ProgressTrack | None = None
    """What the looks at its current run said of its progress (while RUNNING)."""
    looked_at: float | None = None
    """When its last status answer came (monotonic seconds)."""
    waiting: bool = False
    """Counted in :attr:`Demand.waiting`."""
    settings: JobSettings | None = None
    """Its settings (delete after run, retry), from a list row or its definition."""
    learned: Learned = Learned.NOT_ASKED

    def move(self, wanted: TrackPhase) -> None:
        """Go to ``wanted``, or raise :class:`IllegalTransition`."""
        if wanted not in TRANSITIONS[self.phase]:
            raise IllegalTransition(self.name, self.phase, wanted)
        self.phase = wanted


@dataclass(slots=True)
class Demand:
    """Polls per second that every routinely polled job asks for, summed (one per engine),
    and the part of it that jobs waiting to start ask for."""

    total: float = 0.0
    waiting: int = 0
    """Routinely polled jobs last seen waiting to start."""
    waiting_total: float = 0.0
    polled: int = 0
    """Routinely polled jobs, waiting or not: those a polite loop would go round."""

    def set(self, track: JobTrack, demand: float, *, waiting: bool = False) -> None:
        self.total += demand - track.demand
        self.polled += (demand > 0 or waiting) - (track.demand > 0 or track.waiting)
        if track.waiting:
            self.waiting -= 1
            self.waiting_total -= track.demand
        if waiting:
            self.waiting += 1
            self.waiting_total += demand
        track.demand, track.waiting = demand, waiting


_ESTIMATE = EstimatePolicy()
_ESTIMATE_BUSY = EstimatePolicy(max_wait=300.0)
_BETWEEN_SWEEPS = EstimatePolicy(
    soon=1.0, min_gap=1.0, max_wait=3600.0, doubling=True, confirm_share=0.9
)
_BETWEEN_SWEEPS_BUSY = EstimatePolicy(soon=1.0, min_gap=1.0, max_wait=3600.0, anchored=True)
BUSY_STATUS_USE = 0.75
"""From this share of the budget share used over the last minute on, the status budget
is busy (:attr:`Conditions.busy`): running jobs take the busy estimate policies."""


@dataclass(frozen=True, slots=True)
class Conditions:
    """Everything a decision may depend on besides the job: the time, and the plan."""

    now: float
    """Monotonic seconds (schedules)."""
    at: datetime
    """Wall-clock time, aware UTC (dates events)."""
    policy: PollPolicy
    per_second: float
    """The status budget's rate, requests per second."""
    draw: Callable[[], float] = lambda: 0.5
    """Random numbers in [0, 1) for jitter (``random.Random().random``); called only
    when a poll is planned, so a seeded generator gives the same plan every run."""
    estimate: EstimatePolicy = _ESTIMATE
    """When to look at a running job from its progress."""
    estimate_busy: EstimatePolicy = _ESTIMATE_BUSY
    """The same while the status budget is busy: a confirmed prediction is looked at at
    its end up to five minutes ahead (as often as a job waiting to start, at most), not
    every minute. Where the waiting jobs' floor takes most of the budget, looks every
    minute at each running job come due faster than the budget serves them and wait
    minutes in the queue, the look at the end among them; the price is a failure part
    way seen up to five minutes late."""
    between_sweeps: EstimatePolicy = _BETWEEN_SWEEPS
    """The same between sweeps of the list: the sweeps cover the job, so only the looks
    the estimate asks for are made (no bound of an hour), and a job still running at
    its predicted end is looked at again after 1, 2, 4... seconds. The status budget
    is idle there, so the looks close in on the end: each no later than the run has run
    so far, and half way to the predicted end until readings over 90% of the progress
    left confirm it (a pace that grows, or an end predicted from a few tenths of progress,
    is corrected before the end rather than seen late by the sweep)."""
    between_sweeps_busy: EstimatePolicy = _BETWEEN_SWEEPS_BUSY
    """The looks between sweeps while the status budget is busy: straight to the
    predicted end once two readings agree. There, every look spent closing in is one
    that no end is seen by: with 500 tables running at once the closing-in looks wait
    behind the others until the sweep has seen the end, minutes late, while one reading
    of a linear run already predicts it. Until a pace is measured from a reading of 1%,
    though, a prediction the readings do not confirm is looked at no later than the run
    has run so far: a slow start read at a few tenths puts its end hours away."""
    status_use: float = 0.0
    """The status requests of the last minute, as a share of what the budget's share
    (``PollPolicy.budget_share``) allows in a minute."""
    server_offset: float = 0.0
    """How far the server's clock is ahead of the local one, in seconds: a date in an
    answer is read on the local clock as that date less this (see ``_server_time``)."""

    @property
    def busy(self) -> bool:
        """The status requests of the last minute used ``BUSY_STATUS_USE`` of the share
        or more."""
        return self.status_use >= BUSY_STATUS_USE


@dataclass(slots=True)
class Decision:
    """What to do after an observation."""

    events: list[tuple[Interest, Event]] = field(default_factory=list)
    """Events in order, each for one interest (one subscription)."""
    poll_at: float | None = None
    """Queue a status request due then (the job is ``QUEUED``)."""
    urgent: bool = False
    """The queued request goes before every routine poll."""
    owed_at: float | None = None
    """From then on the queued request is urgent: the floor owes it by then."""
    ending: bool = False
    """The queued request confirms an end the list saw: it goes before every other."""
    between_sweeps_at: float | None = None
    """A job the list covers is running: look at it between sweeps then (around its
    predicted end), if the status budget has room (the job stays ``AWAITING_LIST``)."""
    aims_at_end: bool = False
    """The look planned (``poll_at`` or ``between_sweeps_at``) is at the predicted end, or
    after it while the job runs late (not a refresh before it): it goes before the
    routine looks."""
    credentials_refused: BaseException | None = None
    """The API refused the credentials: every job of every subscription ends with it."""
    read_settings: bool = False
    """Read the job's definition (its settings) and hand them to :func:`learned`."""


# ---------------------------------------------------------------------- moves


def dispatched(track: JobTrack) -> None:
    """The dispatcher sends this job's status request."""
    track.move(TrackPhase.POLLING)


def look_between_sweeps(track: JobTrack) -> None:
    """A look between sweeps at a job the list covers is about to be sent (its answer
    comes back through :func:`answered` like any other). Only from ``AWAITING_LIST``: a
    job with a request queued or on its way gets no second one."""
    if track.phase is not TrackPhase.AWAITING_LIST:
        raise IllegalTransition(track.name, track.phase, TrackPhase.POLLING)
    track.move(TrackPhase.QUEUED)
    dispatched(track)


def aborted(track: JobTrack, due: float) -> Decision:
    """The request was cut off before an answer (the engine stopped): queue it again,
    at the time it was due, so it keeps its place."""
    track.move(TrackPhase.QUEUED)
    return Decision(poll_at=due)


def released(track: JobTrack, demand: Demand) -> None:
    """No subscription wants the job any more."""
    track.move(TrackPhase.RELEASED)
    demand.set(track, 0.0)


def finish(
    interest: Interest,
    kind: OutcomeKind,
    error: BaseException | None = None,
    *,
    deleted: bool = False,
) -> JobDone | None:
    """End ``interest`` with this outcome; None when it had already ended (once only)."""
    if interest.done:
        return None
    interest.done = True
    attempts = tuple(interest.retries.failed)
    return JobDone(
        JobOutcome(interest.job_name, kind, interest.submission, error, attempts, deleted)
    )


def catch_up(
    track: JobTrack, interest: Interest, conditions: Conditions
) -> list[tuple[Interest, Event]]:
    """A subscription joins a job already watched: tell it the last answer at once."""
    if track.submission is None:
        return []
    events: list[tuple[Interest, Event]] = []
    _tell(interest, track.submission, conditions, events, track)
    return events


def answered(
    track: JobTrack,
    submission: Submission,
    interests: Sequence[Interest],
    conditions: Conditions,
    demand: Demand,
) -> Decision:
    """A status answer (or the list's word that the job never ran)."""
    decision = Decision()
    track.failures = 0
    track.not_found = 0
    track.submission = submission
    track.looked_at = conditions.now
    planned: Submission | None = None
    for interest in interests:
        seen = _tell(interest, submission, conditions, decision.events, track)
        if seen is not None and (planned is None or seen is submission):
            planned = seen
    # Any answer says the job exists: CDM answers "not found" (Cdm.0100) for a job that
    # does not, and an empty list of submissions for one that never ran.
    track.exists = True
    if track.learned is Learned.NOT_ASKED and (
        wants_settings(submission) or (_is_placeholder(submission) and not track.via_list)
    ):
        # A job polled by itself is read before its first run too: a short one-time job
        # may run and be deleted between two looks, and once it is gone, whether it
        # deleted itself after a success can no longer be read (the list's rows, when
        # the list watches it, carry the settings for free).
        track.learned, decision.read_settings = Learned.ASKED, True
    if planned is None:  # every interested party has its outcome: nothing to plan
        track.move(TrackPhase.AWAITING_LIST if track.via_list else TrackPhase.QUEUED)
        return decision
    raw = planned.raw_status if planned.status is JobStatus.OTHER else None
    if planned.status is not track.status or raw != track.raw_status:
        track.status, track.raw_status, track.entered_at = planned.status, raw, conditions.now
    _follow_progress(track, planned, conditions)
    retry_until = _retry_deadline(interests)
    if not track.via_list or _list_disagrees(track, planned):
        # A retry awaited is a run waiting to start: looked at like one.
        status = planned.status if retry_until is None else JobStatus.PENDING
        _plan_next(track, status, conditions, demand, decision)
    else:
        track.move(TrackPhase.AWAITING_LIST)
        demand.set(track, 0.0)
        _plan_between_sweeps(track, conditions, decision)
    if retry_until is not None:
        _look_by(track, retry_until, decision)
    return decision


def learned(
    track: JobTrack,
    settings: JobSettings | None,
    interests: Sequence[Interest],
    conditions: Conditions,
    demand: Demand,
) -> Decision:
    """The job's definition was read (``settings``), or could not be (None): a failed
    run that waited for them is judged now; nothing else changes."""
    if settings is not None:
        track.settings, track.learned = settings, Learned.KNOWN
    elif track.learned is not Learned.KNOWN:
        track.learned = Learned.UNAVAILABLE
    held = any(  # a failed run seen, neither ended on nor retried: it waited for them
        not interest.done
        and interest.retries.until is None
        and interest.submission is not None
        and interest.submission.status in RETRIED
        for interest in interests
    )
    if not held or track.submission is None or track.phase is TrackPhase.POLLING:
        return Decision()  # a status answer on its way is judged with them anyway
    return answered(track, track.submission, interests, conditions, demand)


def failed(
    track: JobTrack,
    error: Exception,
    interests: Sequence[Interest],
    conditions: Conditions,
) -> Decision:
    """A status request failed (after the client's own retries)."""
    decision = Decision()
    if isinstance(error, JobNotFoundError):
        track.not_found += 1
        if track.exists:  # seen to exist: deleted, by CDM after its run or by somebody
            return _gone(track, interests, error, decision)
        if track.not_found >= conditions.policy.not_found_grace:
            return _end_all(track, interests, OutcomeKind.NOT_FOUND, error, decision)
    elif isinstance(error, AuthenticationError):
        # The credentials, not this job: every other poll would be refused too (and each
        # refusal would cost a request from the budget). The engine ends them all.
        decision.credentials_refused = error
        return _end_all(track, interests, OutcomeKind.ERROR, error, decision)
    elif is_permanent(error):
        return _end_all(track, interests, OutcomeKind.ERROR, error, decision)
    track.failures += 1
    for interest in interests:
        if not interest.done:
            decision.events.append((interest, PollFailed(track.name, error, track.failures)))
    track.move(TrackPhase.QUEUED)
    decision.poll_at = conditions.policy.retry_poll(
        track.failures, conditions.now, conditions.draw()
    )
    return decision


def listed(
    track: JobTrack,
    summary: JobSummary,
    interests: Sequence[Interest],
    conditions: Conditions,
    demand: Demand,
) -> Decision:
    """A sweep of the job list shows the job with this status."""
    decision = Decision()
    if track.settings is None and (settings := summary.settings) is not None:
        track.settings = settings  # free: no read of its definition needed
        if track.learned is Learned.NOT_ASKED:
            track.learned = Learned.KNOWN
    track.exists = True  # the list shows it: a "not found" from now on is a deletion
    newly_listed = not track.via_list
    track.via_list = True
    track.off_list = False
    demand.set(track, 0.0)
    if newly_listed and track.phase is TrackPhase.QUEUED:
        track.move(TrackPhase.AWAITING_LIST)  # the list looks at it from now on
    if summary.raw_status == track.list_status:
        return decision
    first_sighting = track.list_status is None
    track.list_status = summary.raw_status
    if summary.status in NOT_STARTED and track.status is None:
        # A job that never ran: the list says NEW, the status API an empty list. No
        # status request needed to report it (thousands of subjobs start this way).
        if track.phase is TrackPhase.POLLING:
            return decision  # its answer is on the way
        return answered(track, Submission.never_executed(track.name), interests, conditions, demand)
    if summary.status is track.status and (first_sighting or _caught_up(summary.status)):
        # The list shows what the status API last said (a page read before that answer
        # catching up with it): nothing new to fetch.
        return decision
    _fetch_soon(track, conditions, decision)
    decision.ending = summary.status.is_terminal
    return decision


def unlisted(track: JobTrack, conditions: Conditions, demand: Demand, queued: int = 0) -> Decision:
    """A full sweep did not show the job (or the list is unusable): poll it one by one,
    as the ``queued``-th of the jobs handed over at once (see :func:`first_look`)."""
    decision = Decision()
    track.via_list = False
    track.off_list = True
    track.list_status = None
    if track.phase is TrackPhase.AWAITING_LIST:
        track.move(TrackPhase.QUEUED)
        if track.looked_at is None:
            decision.poll_at = awaiting_first_look(track, queued, conditions, demand)
        else:  # seen before, by a status request: its demand is counted already
            decision.poll_at = first_look(queued, conditions)
        decision.urgent = True
    return decision


def awaiting_first_look(
    track: JobTrack, queued: int, conditions: Conditions, demand: Demand
) -> float:
    """When to look first at a job polled by itself, the ``queued``-th of the jobs
    handed over at once (:func:`first_look`; the look is owed then, so it is queued as
    urgent). Until that look the job counts among the jobs waiting to start (as far as
    anyone knows, it is one): the waiting jobs' bound (:func:`waiting_ceiling`) counts
    it, so the jobs seen first are not looked at again before the last ones are seen
    once."""
    demand.set(track, 0.0, waiting=True)
    return first_look(queued, conditions)


def first_look(queued: int, conditions: Conditions) -> float:
    """When to look first at the ``queued``-th (from 0) of jobs that came at once: one
    after the other at the budget share's rate (those it serves within
    ``starting_interval`` at once), each look owed then (the engine queues it as
    urgent), as the floor's first round. Nothing is known of these jobs yet: a table
    that started at once and ended soon after is seen within ``N / share`` however many
    follow-up looks at the tables already seen come due meanwhile, and those get what
    the share leaves of the budget. All due at once, the first round would hold back
    every look at a job already seen instead (a table seen booting is looked at again
    5 s later); in due order with those looks, it would take half as long again."""
    policy = conditions.policy
    share = conditions.per_second * policy.budget_share
    return conditions.now + max(0.0, queued / share - policy.starting_interval)


def likely_starts(
    group: Sequence[str],
    tracks: Mapping[str, JobTrack],
    now: float,
    policy: SiblingPolicy,
) -> list[tuple[str, float]]:
    """A job of ``group`` (one watch's jobs, in the order given: a database job's
    tables) ended: the waiting siblings polled by themselves to look at sooner, and
    when (see :mod:`cdm_status._siblings`). A job no longer tracked has ended: it
    counts as started. Only looks that are queued are moved, and only ever earlier
    (the caller keeps the earlier of the two)."""
    waiting = {
        name
        for name in group
        if (track := tracks.get(name)) is not None
        and track.status in NOT_STARTED
        and not track.via_list
    }
    looked_at = {name: at for name in waiting if (at := tracks[name].looked_at) is not None}
    picks = policy.likely_next(group, waiting, looked_at)
    return [(name, now + policy.soon) for name in picks if tracks[name].phase is TrackPhase.QUEUED]


# ---------------------------------------------------------------------- helpers


def _is_placeholder(submission: Submission) -> bool:
    return submission.status is JobStatus.NEVER_EXECUTED and submission.creation_date is None


def _tell(
    interest: Interest,
    submission: Submission,
    conditions: Conditions,
    events: list[tuple[Interest, Event]],
    track: JobTrack,
) -> Submission | None:
    """Tell one interest about an answer; the submission as it sees it, or None when
    this ended its watch of the job."""
    if interest.done:
        return None
    rules = interest.rules
    interest.since_on_server = interest.since_on_server or rules.names_run(submission)
    offset = 0.0 if interest.since_on_server else conditions.server_offset
    seen = (
        Submission.never_executed(interest.job_name)
        if rules.is_stale(submission, offset)
        else submission
    )
    interest.submission = seen
    raw = seen.raw_status if seen.status is JobStatus.OTHER else None
    if seen.status is not interest.status or raw != interest.raw_status:
        events.append(
            (
                interest,
                StatusChanged(
                    job_name=interest.job_name,
                    previous=interest.status,
                    current=seen.status,
                    submission=seen,
                    at=conditions.at,
                ),
            )
        )
        interest.status, interest.raw_status = seen.status, raw
    kind = (
        OutcomeKind.SUCCEEDED
        if seen.status in rules.success
        else OutcomeKind.FAILED
        if seen.status in rules.failure
        else None
    )
    if not _ends(track, interest, seen, kind, conditions, events):
        return seen
    done = finish(interest, kind or OutcomeKind.FAILED)
    assert done is not None
    events.append((interest, done))
    return None


def _ends(
    track: JobTrack,
    interest: Interest,
    seen: Submission,
    kind: OutcomeKind | None,
    conditions: Conditions,
    events: list[tuple[Interest, Event]],
) -> bool:
    """Whether ``seen`` ends the interest's watch (with ``kind``, or FAILED when a retry
    awaited did not come): a failure that CDM retries does not (see ``_endings``)."""
    retries = interest.retries
    if retries.until is not None:  # a failed run awaits its retry
        if not is_next_run(retries.failed[-1], seen):
            if conditions.now < retries.until:
                return False
            retries.failed.pop()  # none came: that failure is the final run
            return True
        retries.until = None
    if kind is not OutcomeKind.FAILED:
        return kind is not None
    step = after_failure(track.settings, track.learned, len(retries.failed), seen)
    if step is Step.END:
        return True
    if step is Step.RETRY:
        retries.failed.append(seen)
        retries.until = conditions.now + conditions.policy.retry_grace
        assert track.settings is not None
        expected = RetryExpected(
            interest.job_name, len(retries.failed), track.settings.retries, seen, conditions.at
        )
        events.append((interest, expected))
    return False


def _retry_deadline(interests: Iterable[Interest]) -> float | None:
    """The earliest end of a grace period for a retry, among open interests."""
    ends = [i.retries.until for i in interests if not i.done and i.retries.until is not None]
    return min(ends) if ends else None


def _look_by(track: JobTrack, at: float, decision: Decision) -> None:
    """Make sure the job is looked at by ``at`` (a retry's grace period ends then)."""
    if track.phase is TrackPhase.AWAITING_LIST:
        track.move(TrackPhase.QUEUED)
    if track.phase is TrackPhase.QUEUED:
        decision.poll_at = at if decision.poll_at is None else min(decision.poll_at, at)


def _gone(
    track: JobTrack,
    interests: Iterable[Interest],
    error: JobNotFoundError,
    decision: Decision,
) -> Decision:
    """A job seen to exist answers "not found": what that means to each interest."""
    for interest in interests:
        awaited = interest.retries.until is not None
        kind, deleted = after_deletion(track.settings, track.submission, retry_awaited=awaited)
        if kind is OutcomeKind.FAILED and awaited:
            interest.retries.failed.pop()  # the failure seen is the final run
        reason: BaseException | None = error
        if kind is OutcomeKind.DELETED:
            setting = None if track.settings is None else track.settings.raw_disposable
            reason = JobDeletedError(interest.job_name, interest.submission, setting)
        elif kind is not OutcomeKind.NOT_FOUND:
            reason = None
        done = finish(interest, kind, reason, deleted=deleted)
        if done is not None:
            decision.events.append((interest, done))
    track.move(TrackPhase.AWAITING_LIST if track.via_list else TrackPhase.QUEUED)
    return decision


def _end_all(
    track: JobTrack,
    interests: Iterable[Interest],
    kind: OutcomeKind,
    error: BaseException,
    decision: Decision,
) -> Decision:
    for interest in interests:
        done = finish(interest, kind, error)
        if done is not None:
            decision.events.append((interest, done))
    track.move(TrackPhase.AWAITING_LIST if track.via_list else TrackPhase.QUEUED)
    return decision


def _follow_progress(track: JobTrack, submission: Submission, conditions: Conditions) -> None:
    """Feed a RUNNING answer's progress to the job's end estimate; forget it otherwise."""
    if submission.status is not JobStatus.RUNNING:
        track.progress = None
        return
    started = run_started(
        submission,
        monotonic=conditions.now,
        epoch=conditions.at.timestamp(),
        server_offset=conditions.server_offset,
    )
    if started is None:  # no date to tell runs apart: keep the run we follow
        started = track.progress.started if track.progress is not None else conditions.now
    track.progress = observe(
        track.progress,
        at=conditions.now,
        progress=submission.progress,
        started=started,
        exact_start=starts_exactly(submission),
    )


def _plan_next(
    track: JobTrack, status: JobStatus, conditions: Conditions, demand: Demand, decision: Decision
) -> None:
    """Queue the next routine poll, using spare budget to look sooner; a running job
    is looked at when its progress says it ends (today's interval while it says
    nothing, see :class:`EstimatePolicy`)."""
    policy = conditions.policy
    time_in_status = conditions.now - track.entered_at
    interval = policy.interval(status, time_in_status)
    progress = track.progress if status is JobStatus.RUNNING else None
    waiting = status in _WAITING
    if watch_closely(track.settings, track.submission):
        estimate = NEAR_END
    else:
        estimate = conditions.estimate_busy if conditions.busy else conditions.estimate
    if progress is not None:
        # Demand is what the estimate asks for: a job whose end is far and confirmed
        # leaves its share of the budget to the others.
        interval = estimate.next_look(progress, conditions.now, interval) - conditions.now
    elif waiting:
        interval = _waiting_interval(track, interval, conditions, demand)
    demand.set(track, 1.0 / interval, waiting=waiting)
    scale = policy.spare_budget_scale(demand.total, conditions.per_second)
    track.move(TrackPhase.QUEUED)
    fallback = policy.next_poll(status, time_in_status, conditions.now, conditions.draw(), scale)
    if progress is not None:
        decision.poll_at = estimate.next_look(progress, conditions.now, fallback - conditions.now)
        # A look at the predicted end goes before the routine polls due with it (after
        # the looks the floor owes): while the waiting jobs' floor takes most of the
        # budget, a queue in due order would reach each end minutes late.
        decision.aims_at_end = _aims_at_end(progress, decision.poll_at)
    elif waiting:
        # Never sooner than the bound: the budget the others need stays theirs.
        decision.poll_at = max(
            fallback, conditions.now + policy.jittered(interval, conditions.draw())
        )
        _owe(decision, _owed_wait(demand.waiting, conditions), conditions)
    else:
        decision.poll_at = fallback
    if not waiting:
        _owe(decision, polite_bound(demand.polled, conditions), conditions)


def _owe(decision: Decision, bound: float, conditions: Conditions) -> None:
    """The floor owes the planned look ``bound`` seconds from now: it goes before the
    routine polls from then on, whatever else asks for the budget (never late in a busy
    queue), and one planned later is brought forward to then."""
    assert decision.poll_at is not None
    owed = conditions.now + bound
    if decision.poll_at >= owed:
        decision.poll_at, decision.urgent, decision.aims_at_end = owed, True, False
    elif not decision.urgent:
        decision.owed_at = owed


def polite_bound(polled: int, conditions: Conditions) -> float:
    """The longest a job polled by itself and not waiting to start goes unlooked at: as
    long as a polite loop going round all ``polled`` jobs at the budget's full rate
    leaves each, or ``max_interval`` (stretched by jitter) when that is longer. A look
    the estimate or the siblings planned sooner is served in due order while the budget
    keeps up, and before the routine polls once this long has passed (:func:`_owe`)."""
    policy = conditions.policy
    return max(polled / conditions.per_second, policy.max_interval * (1.0 + policy.jitter))


def _waiting_interval(
    track: JobTrack, interval: float, conditions: Conditions, demand: Demand
) -> float:
    """A job waiting to start: looked at no more often than the waiting jobs can all be
    with what the running ones leave of the budget's share, so that running jobs are
    looked at on time however many wait (siblings of an ended job are looked at sooner,
    see :func:`likely_starts`); and never less often than :func:`waiting_ceiling`, the bound
    every waiting job keeps however busy the running ones are."""
    share = conditions.per_second * conditions.policy.budget_share
    others = demand.total - demand.waiting_total - (0.0 if track.waiting else track.demand)
    left = max(share - others, 0.1 * share)
    count = demand.waiting + (0 if track.waiting else 1)
    wanted = waiting_bound(count, left, floor=interval)
    return min(wanted, waiting_ceiling(count, conditions))


def _owed_wait(waiting: int, conditions: Conditions) -> float:
    """When a waiting job's look is owed: half a jitter past its bound. With 950 tables
    waiting the floor's looks alone fill the budget share; owed at the bound itself,
    they went before every running table's look, which then waited minutes in the
    queue (an end that no progress predicts seen 4 minutes late at p95). Owed later,
    the two share the queue in due order for a while; the other half of the jitter is
    for the owed looks' own queue (a round of first looks still under way when the
    second one comes due), so the floor holds as sent, not only as planned."""
    return waiting_ceiling(waiting, conditions) * (1.0 + conditions.policy.jitter / 2.0)


def waiting_ceiling(waiting: int, conditions: Conditions) -> float:
    """The longest a job waiting to start goes unlooked at: ``waiting_max_interval``, or
    the time one look at each of ``waiting`` jobs takes at the budget share's rate when
    that is longer (with 950 waiting at 1.6 requests a second no schedule does better
    than 594 s). Jitter may add its fraction on top."""
    share = conditions.per_second * conditions.policy.budget_share
    return max(conditions.policy.waiting_max_interval, waiting / share)


def replanned_wait(
    track: JobTrack, due: float, conditions: Conditions, demand: Demand
) -> float | None:
    """A waiting job's queued look, brought forward when demand fell since it was planned
    (running jobs ended): the earlier time its bound now allows, or None to keep ``due``.
    Only ever earlier; a job never looked at keeps its place."""
    if not track.waiting or track.phase is not TrackPhase.QUEUED or track.looked_at is None:
        return None
    status = track.status
    if status is None:
        return None
    interval = conditions.policy.interval(status, conditions.now - track.entered_at)
    bound = _waiting_interval(track, interval, conditions, demand)
    at = max(conditions.now, track.looked_at + bound)
    return at if at < due else None


def _plan_between_sweeps(track: JobTrack, conditions: Conditions, decision: Decision) -> None:
    """A running job the list covers: when to look at it between sweeps."""
    if track.progress is None:
        return
    policy = conditions.policy
    interval = policy.jittered(
        policy.interval(JobStatus.RUNNING, conditions.now - track.entered_at), conditions.draw()
    )
    end = track.progress.predicted_end()
    if end is None:  # nothing to aim at: a plain refresh, at the running interval
        decision.between_sweeps_at = conditions.now + interval
        return
    estimate = conditions.between_sweeps_busy if conditions.busy else conditions.between_sweeps
    # Before the predicted end, the sweeps see the job anyway: no refresh at the running
    # interval, only the looks the estimate asks for (a pace to measure, then the end).
    # Past it, the late looks thin out as they do for per-job polling.
    fallback = interval if track.progress.late else estimate.max_wait
    decision.between_sweeps_at = estimate.next_look(track.progress, conditions.now, fallback)
    # Looks at (or past) the predicted end go first; looks before it wait for what they
    # leave: with 200 tables running and spare budget for 50 looks a minute, a queue in
    # due order would reach each end minutes late.
    decision.aims_at_end = _aims_at_end(track.progress, decision.between_sweeps_at)


def _aims_at_end(progress: ProgressTrack, at: float) -> bool:
    """A look at ``at`` is at (or past) the run's predicted end, not a refresh before it."""
    end = progress.predicted_end()
    return progress.late > 0 or (end is not None and at >= end)


def _fetch_soon(track: JobTrack, conditions: Conditions, decision: Decision) -> None:
    """Ask this job's status before any routine poll (the list saw it change)."""
    if track.phase is TrackPhase.POLLING:
        return  # an answer is already on its way
    track.move(TrackPhase.QUEUED)
    decision.poll_at = conditions.now
    decision.urgent = True


_UNDER_WAY = frozenset({JobStatus.PENDING, JobStatus.BOOTING, JobStatus.RUNNING})
_BEFORE_RUNNING = frozenset({*NOT_STARTED, JobStatus.PENDING, JobStatus.BOOTING})


def _caught_up(status: JobStatus) -> bool:
    """A list row that changed to ``status``, the status the job was last answered in,
    caught up with that answer (an end is always fetched: its counters are final)."""
    return status in _UNDER_WAY


def _list_disagrees(track: JobTrack, submission: Submission) -> bool:
    """The list and the status API differ in a way the next sweep would not settle (the
    list ahead of the answer, or showing an older run): keep polling this job until they
    agree, or a sweep would never look again. A list read before the answer and showing
    the run earlier on (BOOTING where the answer says RUNNING) is only behind: its next
    read says more, and the looks between sweeps follow the run meanwhile."""
    if track.list_status is None:
        return False
    listed_status = JobStatus.parse(track.list_status)
    if listed_status in NOT_STARTED and submission.status in NOT_STARTED:
        return False  # the list says NEW where the status API has no submission
    if listed_status is JobStatus.OTHER:
        return submission.raw_status != track.list_status
    # Only behind a running answer: its progress plans the looks between sweeps.
    behind = submission.status is JobStatus.RUNNING and listed_status in _BEFORE_RUNNING
    return listed_status is not submission.status and not behind
