"""JobStatusWaiter: poll many jobs at once under one API budget, and report what changes.

Three things are kept apart (as in google-api-core's polling futures):

* retrying one failed request: the client's ``RetryPolicy``;
* how often each job is polled: ``PollPolicy`` in ``_schedule`` (pure);
* how long the whole watch may last: the ``timeout`` of a watch.

The waiter owns what its watches share: the request budgets (a :class:`RateLimiter` per
API, which every attempt goes through, retries included) and single-flight status
requests. Each ``watch()`` runs its own dispatcher and polls (``_watch``).
"""

from __future__ import annotations

import logging
import math
import random as _random
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from ._batching import STRATEGIES, Strategy
from ._budget import Budget
from ._client import CDMClient
from ._clock import Clock
from ._errors import CDMError, JobFailedError, WaitTimeoutError
from ._events import Event, JobOutcome, OutcomeKind
from ._models import JobStatus, Submission
from ._ratelimit import RateLimiter
from ._retry import RandomSource
from ._schedule import PollPolicy
from ._telemetry import WaiterStats
from ._watch import Watch
from ._wire import validate_name

__all__ = ["EventStream", "JobStatusWaiter"]

logger = logging.getLogger("cdm_status")

# From the one status table in _models, so the two can never disagree.
DEFAULT_SUCCESS = frozenset(status for status in JobStatus if status.is_success)
DEFAULT_FAILURE = frozenset(status for status in JobStatus if status.is_failure)


@dataclass(slots=True)
class _Flight:
    """One status request shared by every concurrent asker of the same job."""

    finished: anyio.Event = field(default_factory=anyio.Event)
    result: Submission | None = None
    error: BaseException | None = None


class EventStream:
    """The events of one watch, as an async iterator; ends when every job has its outcome.

    ``outcomes`` fills in as jobs finish. ``cancel(name)`` stops watching a job: it ends
    with a ``CANCELLED`` outcome.
    """

    def __init__(self, watch: Watch, receive: MemoryObjectReceiveStream[Event]) -> None:
        self._watch = watch
        self._receive = receive

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    @property
    def outcomes(self) -> Mapping[str, JobOutcome]:
        """Outcomes of the jobs that have ended so far, by job name."""
        return self._watch.outcomes

    @property
    def job_names(self) -> tuple[str, ...]:
        """Every watched job (duplicates removed, first-seen order)."""
        return tuple(self._watch.tracks)

    def cancel(self, *job_names: str) -> None:
        """Stop watching these jobs; each ends with a ``CANCELLED`` outcome."""
        self._watch.cancel(job_names)


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
        self.success = frozenset(success)
        self.failure = frozenset(failure)
        if self.success & self.failure:
            raise ValueError("a status cannot be both success and failure")
        self._flights: dict[str, _Flight] = {}
        self._telemetry = client._telemetry.fork(
            meter_provider=meter_provider, tracer_provider=tracer_provider
        )

    def __repr__(self) -> str:
        return (
            f"JobStatusWaiter(requests_per_minute={self.limiter.per_minute}, "
            f"max_concurrency={self.max_concurrency})"
        )

    # ------------------------------------------------------------------ public API

    @asynccontextmanager
    async def watch(
        self,
        job_names: Iterable[str],
        *,
        timeout: float | None = None,
        since: datetime | None = None,
    ) -> AsyncIterator[EventStream]:
        """Watch jobs until each has its outcome; yields an :class:`EventStream`.

        ``timeout`` (seconds) ends the jobs still running with ``TIMED_OUT``. ``since``
        makes submissions created before it count as "not started yet", so a wait right
        after a start request never returns the previous run. Leaving the block (a
        ``break``, an exception, a cancellation) stops every poll at once.
        """
        names = list(dict.fromkeys(job_names))
        for name in names:
            validate_name(name, "job name")
        if timeout is not None and not timeout >= 0:
            raise ValueError("timeout must be a non-negative number of seconds")
        if since is not None and since.tzinfo is None:
            raise ValueError("since must be an aware datetime (e.g. in UTC)")
        send, receive = anyio.create_memory_object_stream[Event](math.inf)
        watch = Watch(self, names, timeout=timeout, since=since, send=send)
        with receive:
            async with anyio.create_task_group() as group:
                group.start_soon(watch.run)
                try:
                    yield EventStream(watch, receive)
                finally:
                    group.cancel_scope.cancel()

    async def wait_all(
        self,
        job_names: Iterable[str],
        *,
        timeout: float | None = None,
        since: datetime | None = None,
    ) -> dict[str, JobOutcome]:
        """Wait for every job; one outcome per distinct name. Never raises for one job."""
        async with self.watch(job_names, timeout=timeout, since=since) as events:
            async for _ in events:
                pass
        return dict(events.outcomes)

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

    # ------------------------------------------------------------------ polling

    async def fetch_status(self, job_name: str) -> Submission:
        """One status request through the waiter's budget; concurrent askers of the same
        job share it (single flight)."""
        while True:
            flight = self._flights.get(job_name)
            if flight is None:
                break
            await flight.finished.wait()
            if flight.error is not None:
                raise flight.error
            if flight.result is not None:
                return flight.result
            # The leader was cancelled before an answer: ask again ourselves.
        flight = _Flight()
        self._flights[job_name] = flight
        try:
            flight.result = await self._client.get_status(job_name, limiter=self.limiter)
            return flight.result
        except Exception as error:
            flight.error = error
            raise
        finally:
            del self._flights[job_name]
            flight.finished.set()
