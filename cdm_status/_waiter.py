"""JobStatusWaiter: poll many jobs at once under one API budget, and report what changes.

Three things are kept apart (as in google-api-core's polling futures):

* retrying one failed request: the client's ``RetryPolicy``;
* how often each job is polled: ``PollPolicy`` in ``_schedule`` (pure);
* how long the whole watch may last: the ``timeout`` of a watch.

The waiter owns what its subscriptions share: the request budgets (a :class:`Budget` per
API, which every attempt goes through, retries included) and one engine (``_engine``)
that polls each watched job once, however many subscriptions want it. ``async with
waiter:`` runs that engine in a task the waiter owns; without it, whoever waits for an
event runs it (see ``_engine``). The decisions are pure (``_tracker``).
"""

from __future__ import annotations

import logging
import random as _random
from collections.abc import Iterable
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from ._batching import STRATEGIES, Strategy
from ._budget import Budget
from ._client import CDMClient
from ._clock import Clock
from ._engine import Engine
from ._errors import CDMError, JobFailedError, WaitTimeoutError
from ._events import JobOutcome, OutcomeKind
from ._models import JobStatus, Submission
from ._ratelimit import RateLimiter
from ._retry import RandomSource
from ._schedule import PollPolicy
from ._subscription import Subscription
from ._telemetry import WaiterStats
from ._tracker import Rules
from ._wire import validate_name

__all__ = ["EventStream", "JobStatusWaiter", "Subscription"]

logger = logging.getLogger("cdm_status")

# From the one status table in _models, so the two can never disagree.
DEFAULT_SUCCESS = frozenset(status for status in JobStatus if status.is_success)
DEFAULT_FAILURE = frozenset(status for status in JobStatus if status.is_failure)


EventStream = Subscription
"""The name of :class:`Subscription` before subscriptions could be shared; still works."""


def _status_set(value: object, what: str) -> frozenset[JobStatus]:
    """``value`` as a set of statuses, or a clear error: a string is not a set of them
    (``success="SUCCEEDED"`` would be the set of its letters, and never end a job)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise TypeError(
            f"{what} must be a collection of JobStatus (e.g. {{JobStatus.SUCCEEDED}}), "
            f"not {type(value).__name__}"
        )
    statuses: set[JobStatus] = set()
    for item in value:
        if isinstance(item, JobStatus):
            statuses.add(item)
        elif isinstance(item, str) and item in JobStatus._value2member_map_:
            statuses.add(JobStatus(item))
        else:
            known = ", ".join(status.value for status in JobStatus)
            raise ValueError(f"{what}: {item!r} is not a job status (one of: {known})")
    return frozenset(statuses)


def _aware_utc(since: datetime) -> datetime:
    if since.tzinfo is None:
        raise ValueError("since must be an aware datetime (e.g. in UTC)")
    try:
        return since.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError(f"since is out of range: {since.isoformat()}") from None


class JobStatusWaiter:
    """Waits for many CDM jobs at once, sharing one request budget between them.

    ``requests_per_minute`` is the status API's budget (CDM allows 120 per user);
    ``max_concurrency`` caps requests in flight (default: the client's
    ``max_connections``); ``poll`` says how often each job is looked at. ``clock`` defaults
    to the client's clock, so the waiter, its rate limiters and the client's retries run on
    one clock; ``clock`` and ``random`` are injectable so tests run on virtual time.
    ``success`` and ``failure`` are the statuses that end a job; everything else keeps it
    watched.

    ``strategy``: ``per_job`` polls each job's status; ``list`` sweeps the job list (100
    jobs a request, from its own budget of ``list_requests_per_minute``) and asks a job's
    status only when the list shows it changed, falling back to per-job polling for jobs
    the list does not show; ``auto`` (the default) lists when that detects changes sooner.

    ``budget`` and ``list_budget`` replace the local :class:`RateLimiter` of each API with
    any :class:`Budget` (one shared across processes, say); ``requests_per_minute`` and
    ``list_requests_per_minute`` are then unused.

    ``meter_provider`` and ``tracer_provider`` (OpenTelemetry's) receive the job metrics
    and the span of each watch; by default the client's. :meth:`stats` gives the same
    figures without OpenTelemetry.
    """

    def __init__(
        self,
        client: CDMClient,
        *,
        requests_per_minute: float = 120,
        max_concurrency: int | None = None,
        poll: PollPolicy | None = None,
        clock: Clock | None = None,
        random: RandomSource | None = None,
        success: Iterable[JobStatus] = DEFAULT_SUCCESS,
        failure: Iterable[JobStatus] = DEFAULT_FAILURE,
        strategy: Strategy = "auto",
        list_requests_per_minute: float = 120,
        budget: Budget | None = None,
        list_budget: Budget | None = None,
        meter_provider: Any = None,
        tracer_provider: Any = None,
    ) -> None:
        if max_concurrency is None:
            max_concurrency = client.max_connections
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}")
        self.strategy: Strategy = strategy
        self._client = client
        self._clock = clock or client.clock
        self._random: RandomSource = random or _random.Random()
        self.poll_policy = poll or PollPolicy()
        self.limiter: Budget = budget or RateLimiter(requests_per_minute, clock=self._clock)
        self.list_limiter: Budget = list_budget or RateLimiter(
            list_requests_per_minute, clock=self._clock
        )
        self.max_concurrency = max_concurrency
        self.success = _status_set(success, "success")
        self.failure = _status_set(failure, "failure")
        if self.success & self.failure:
            raise ValueError("a status cannot be both success and failure")
        self._telemetry = client._telemetry.fork(
            meter_provider=meter_provider, tracer_provider=tracer_provider
        )
        self._engine = Engine(
            client,
            limiter=self.limiter,
            list_limiter=self.list_limiter,
            clock=self._clock,
            random=self._random,
            policy=self.poll_policy,
            strategy=strategy,
            max_concurrency=max_concurrency,
            telemetry=self._telemetry,
        )
        self._group: anyio.abc.TaskGroup | None = None

    def __repr__(self) -> str:
        return (
            f"JobStatusWaiter(requests_per_minute={self.limiter.per_minute}, "
            f"max_concurrency={self.max_concurrency})"
        )

    # ------------------------------------------------------------------ public API

    async def __aenter__(self) -> JobStatusWaiter:
        """Run the engine in a task of the waiter's own until the block ends (an app's
        lifespan, a trigger process): subscriptions then only wait for their events."""
        if self._group is not None:
            raise RuntimeError("this waiter is already running (async with waiter: twice)")
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        self._engine.expect_driver()
        group.start_soon(self._engine.run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        group, self._group = self._group, None
        assert group is not None
        group.cancel_scope.cancel()
        try:
            return await group.__aexit__(exc_type, exc, traceback)
        finally:
            self._engine.driver_gone()

    def watch(
        self,
        job_names: Iterable[str],
        *,
        timeout: float | None = None,
        since: datetime | None = None,
        success: Iterable[JobStatus] | None = None,
        failure: Iterable[JobStatus] | None = None,
    ) -> Subscription:
        """Subscribe to jobs until each has its outcome; returns a :class:`Subscription`.

        ``timeout`` (seconds, from now) ends the jobs still running with ``TIMED_OUT``.
        ``since`` makes submissions created before it count as "not started yet", so a
        wait right after a start request never returns the previous run. ``success`` and
        ``failure`` replace the waiter's sets for this subscription.

        Iterate it (``async for event in sub``), alone or in ``async with sub:``; closing
        it (``await sub.aclose()``, leaving the block) unsubscribes. Jobs that several
        subscriptions want are polled once for all of them. It holds no task group, so it
        works inside an async generator that yields, and may be closed from another task
        or simply dropped.
        """
        names = tuple(dict.fromkeys(job_names))
        for name in names:
            validate_name(name, "job name")
        if timeout is not None and not timeout >= 0:
            raise ValueError("timeout must be a non-negative number of seconds")
        rules = Rules(
            success=self.success if success is None else _status_set(success, "success"),
            failure=self.failure if failure is None else _status_set(failure, "failure"),
            since=None if since is None else _aware_utc(since),
        )
        if rules.success & rules.failure:
            raise ValueError("a status cannot be both success and failure")
        return self._engine.subscribe(names, rules, timeout)

    async def wait_all(
        self,
        job_names: Iterable[str],
        *,
        timeout: float | None = None,
        since: datetime | None = None,
    ) -> dict[str, JobOutcome]:
        """Wait for every job; one outcome per distinct name. Never raises for one job.

        Unlike a subscription, this call may hold a task group: when nothing drives the
        engine for good (no ``async with waiter``), it does, for as long as it waits. A
        driver that stopped at each event would call back the poll waiting for its budget
        slot, and a shared budget (Redis) would lose the slot it had booked: half of it,
        measured with four processes.
        """
        async with (
            self.watch(job_names, timeout=timeout, since=since) as subscription,
            anyio.create_task_group() as group,
        ):
            if self._engine.needs_driver():
                self._engine.expect_driver()
                group.start_soon(self._engine.run)
            async for _ in subscription:
                pass
            group.cancel_scope.cancel()
        return dict(subscription.outcomes)

    async def wait(
        self,
        job_name: str,
        *,
        timeout: float | None = None,
        since: datetime | None = None,
    ) -> Submission:
        """Wait for one job and return its successful terminal submission.

        Raises ``JobFailedError`` (the job failed or was stopped), ``WaitTimeoutError``,
        ``JobNotFoundError``, or the permanent API error that ended the wait.
        """
        started = self._clock.monotonic()
        outcome = (await self.wait_all([job_name], timeout=timeout, since=since))[job_name]
        if outcome.kind is OutcomeKind.SUCCEEDED and outcome.submission is not None:
            return outcome.submission
        if outcome.kind is OutcomeKind.FAILED and outcome.submission is not None:
            raise JobFailedError(outcome.submission)
        if outcome.kind is OutcomeKind.TIMED_OUT:
            elapsed = self._clock.monotonic() - started
            raise WaitTimeoutError(job_name, outcome.submission, elapsed)
        if outcome.error is not None:
            raise outcome.error
        raise CDMError(f"watch of {job_name!r} ended {outcome.kind}")  # pragma: no cover

    def stats(self) -> WaiterStats:
        """What this waiter and its client have done so far, as a plain snapshot.

        The figures the OpenTelemetry metrics report (requests by API, answers by status
        code, budget wait, throttle pauses, jobs active and finished, status changes, poll
        failures), counted whether or not OpenTelemetry is installed. Request figures are
        the client's: every waiter and direct call on it.
        """
        return self._telemetry.stats(requests=self._client._telemetry)
