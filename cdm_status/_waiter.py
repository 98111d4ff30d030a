"""JobStatusWaiter: poll many jobs at once under one API budget, and report what changes.

Three things are kept apart (as in google-api-core's polling futures):

* retrying one failed request: the client's ``RetryPolicy``;
* how often each job is polled: ``PollPolicy`` in ``_schedule`` (pure);
* how long the whole watch may last: the ``timeout`` of a watch.

The client owns the request budgets (CDM counts per user: every waiter and direct call
on one client shares them). The waiter owns one engine (``_engine``) that polls each
watched job once, however many subscriptions want it, and it runs that engine only in a
task group somebody owns for its whole life: ``async with waiter:``, or a ``wait()`` /
``wait_all()`` call on a waiter that is not entered, for as long as it waits. A
subscription only reads. The decisions are pure (``_tracker``).
"""

from __future__ import annotations

import contextlib
import logging
import random as _random
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from ._batching import STRATEGIES, Strategy
from ._client import CDMClient
from ._clock import Clock
from ._engine import Engine
from ._errors import CDMError, JobFailedError, WaitTimeoutError
from ._events import JobOutcome, OutcomeKind
from ._models import JobStatus, Submission
from ._retry import RandomSource
from ._schedule import PollPolicy
from ._subscription import Subscription
from ._tasks import BackgroundTasks
from ._telemetry import WaiterStats
from ._tracker import Rules
from ._wire import validate_name

__all__ = ["JobStatusWaiter", "Subscription"]

logger = logging.getLogger("cdm_status")

# From the one status table in _models, so the two can never disagree.
DEFAULT_SUCCESS = frozenset(status for status in JobStatus if status.is_success)
DEFAULT_FAILURE = frozenset(status for status in JobStatus if status.is_failure)


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
    """Waits for many CDM jobs at once, within the client's request budget.

    The engine runs while somebody owns it::

        async with JobStatusWaiter(client) as waiter:
            async for event in waiter.watch(names):
                ...

    or, for a single wait, without the block: ``await JobStatusWaiter(client).wait(job)``
    (the call runs the engine for as long as it waits).

    The budgets are the client's ([`CDMClient.budget`][cdm_status.CDMClient.budget] for
    status requests, [`CDMClient.list_budget`][cdm_status.CDMClient.list_budget] for the job
    list): every waiter and direct call on one client shares them, as CDM's per-user limit
    requires. ``max_concurrency`` caps requests in flight (default: the client's
    ``max_connections``); ``poll`` says how often each job is looked at. ``clock`` defaults
    to the client's clock, so the waiter, the budgets and the client's retries run on one
    clock; ``clock`` and ``random`` are injectable so tests run on virtual time, and the
    same ``random`` seed, clock and server give the same requests in the same order.
    ``success`` and ``failure`` are the statuses that end a job; everything else keeps it
    watched.

    ``strategy``: ``per_job`` polls each job's status; ``list`` sweeps the job list (100
    jobs a request) and asks a job's status only when the list shows it changed, falling
    back to per-job polling for jobs the list does not show; ``auto`` (the default) lists
    when that detects changes sooner, and spends the status budget the list leaves on
    looks at running jobs' predicted ends.

    ``meter_provider`` and ``tracer_provider`` (OpenTelemetry's) receive the job metrics
    and the span of each watch; by default the client's.
    [`stats()`][cdm_status.JobStatusWaiter.stats] gives the same figures without
    OpenTelemetry.
    """

    def __init__(
        self,
        client: CDMClient,
        *,
        max_concurrency: int | None = None,
        poll: PollPolicy | None = None,
        clock: Clock | None = None,
        random: RandomSource | None = None,
        success: Iterable[JobStatus] = DEFAULT_SUCCESS,
        failure: Iterable[JobStatus] = DEFAULT_FAILURE,
        strategy: Strategy = "auto",
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
        self.max_concurrency = max_concurrency
        self.success = _status_set(success, "success")
        self.failure = _status_set(failure, "failure")
        if self.success & self.failure:
            raise ValueError("a status cannot be both success and failure")
        self._telemetry = client._telemetry.fork(
            meter_provider=meter_provider, tracer_provider=tracer_provider
        )
        self._engine: Engine | None = None
        """The engine of the ``async with`` block in progress."""
        self._tasks: BackgroundTasks | None = None

    def _new_engine(self) -> Engine:
        return Engine(
            self._client,
            clock=self._clock,
            random=self._random,
            policy=self.poll_policy,
            strategy=self.strategy,
            max_concurrency=self.max_concurrency,
            telemetry=self._telemetry,
        )

    def __repr__(self) -> str:
        return (
            f"JobStatusWaiter(strategy={self.strategy!r}, "
            f"max_concurrency={self.max_concurrency}, running={self._engine is not None})"
        )

    # ------------------------------------------------------------------ public API

    async def __aenter__(self) -> JobStatusWaiter:
        """Run the engine in a task of the waiter's own until the block ends (an app's
        lifespan, a trigger process): subscriptions only wait for their events. The
        engine's tasks run in the context of the task that enters the block.

        When the block ends, subscriptions still waiting raise
        :class:`WaiterClosedError`; an exception raised in the block leaves it as it was
        raised (never wrapped in an exception group)."""
        if self._tasks is not None:
            raise RuntimeError("this waiter is already running (async with waiter: twice)")
        engine = self._new_engine()
        tasks = BackgroundTasks()
        group = await tasks.__aenter__()
        try:
            await group.start(engine.run)
        except BaseException as error:
            await tasks.__aexit__(type(error), error, error.__traceback__)
            raise
        self._tasks, self._engine = tasks, engine
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        tasks, self._tasks, self._engine = self._tasks, None, None
        assert tasks is not None
        # The block's own exception is not handed to the task group: it would come back
        # wrapped in an exception group, and `except JobFailedError:` around the block
        # would never match. Only the engine's own failure (a bug) can come out of it.
        await tasks.__aexit__(exc_type, exc, traceback)

    def watch(
        self,
        job_names: Iterable[str],
        *,
        timeout: float | None = None,
        since: datetime | None = None,
        success: Iterable[JobStatus] | None = None,
        failure: Iterable[JobStatus] | None = None,
    ) -> Subscription:
        """Subscribe to jobs until each has its outcome; returns a
        [`Subscription`][cdm_status.Subscription].

        ``timeout`` (seconds, from now) ends the jobs still running with ``TIMED_OUT``.
        ``since`` makes submissions created before it count as "not started yet", so a
        wait right after a start request never returns the previous run. ``success`` and
        ``failure`` replace the waiter's sets for this subscription.

        Iterate it (``async for event in sub``), alone or in ``async with sub:``; closing
        it (``await sub.aclose()``, leaving the block) unsubscribes. Jobs that several
        subscriptions want are polled once for all of them. It holds no task group, so it
        works inside an async generator that yields, and may be closed from another task
        or simply dropped.

        Raises ``RuntimeError`` when the waiter is not running: a subscription is read
        inside ``async with JobStatusWaiter(client) as waiter:``, the block that runs it.

        Args:
            job_names: The jobs (duplicates count once).
            timeout: Seconds from now on the waiter's clock; None waits until each ends.
            since: Ignore submissions created before it (an aware datetime).
            success: Statuses that end a job in success, for this subscription.
            failure: Statuses that end a job in failure, for this subscription.

        Returns:
            The subscription: its events (``StatusChanged``, ``PollFailed``,
            ``RetryExpected``, ``JobDone``), then its ``outcomes``.

        Raises:
            RuntimeError: The waiter is not running (not inside ``async with waiter:``).
            ValueError: A job name is not valid (nothing is sent).
        """
        request = self._request(job_names, timeout, since, success, failure)
        if self._engine is None:
            raise RuntimeError(
                "watch() needs a running waiter: use it inside "
                "`async with JobStatusWaiter(client) as waiter:`"
            )
        return self._engine.subscribe(*request)

    def _request(
        self,
        job_names: Iterable[str],
        timeout: float | None,
        since: datetime | None,
        success: Iterable[JobStatus] | None = None,
        failure: Iterable[JobStatus] | None = None,
    ) -> tuple[tuple[str, ...], Rules, float | None]:
        """A watch's arguments, checked: the names, the rules and the timeout."""
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
        return names, rules, timeout

    async def wait_all(
        self,
        job_names: Iterable[str],
        *,
        timeout: float | None = None,
        since: datetime | None = None,
    ) -> dict[str, JobOutcome]:
        """Wait for every job; one outcome per distinct name. Never raises for one job.

        Inside ``async with waiter:`` it subscribes to the waiter's engine. On a waiter
        that is not entered, the call runs an engine of its own for as long as it waits
        (two such calls at once each run one, on the client's shared budgets).

        Args:
            job_names: The jobs (duplicates count once).
            timeout: Seconds from now on the waiter's clock; jobs still running then end
                ``TIMED_OUT``. None waits until each ends.
            since: Ignore submissions created before it (an aware datetime).

        Returns:
            One ``JobOutcome`` per distinct name: ``SUCCEEDED``, ``FAILED``,
            ``NOT_FOUND``, ``DELETED``, ``ERROR``, ``TIMED_OUT`` or ``CANCELLED``.

        Raises:
            ValueError: A job name is not valid (nothing is sent).
        """
        request = self._request(job_names, timeout, since)
        async with self._running_engine() as engine:
            async with engine.subscribe(*request) as subscription:
                async for _ in subscription:
                    pass
            return dict(subscription.outcomes)

    @contextlib.asynccontextmanager
    async def _running_engine(self) -> AsyncIterator[Engine]:
        """The engine of ``async with waiter:``, or one run by the caller meanwhile."""
        if self._engine is not None:
            yield self._engine
            return
        engine = self._new_engine()
        async with BackgroundTasks() as group:  # the caller's exception leaves as raised
            await group.start(engine.run)
            yield engine

    async def wait(
        self,
        job_name: str,
        *,
        timeout: float | None = None,
        since: datetime | None = None,
        deleted_ok: bool = False,
    ) -> Submission:
        """Wait for one job and return its successful terminal submission.

        Raises ``JobFailedError`` (the job failed or was stopped, after CDM's automatic
        retries if it has them), ``JobDeletedError`` (CDM deleted the job after its run
        before its result was read: ``disposableType`` ``DELETE``), ``WaitTimeoutError``,
        ``JobNotFoundError``, or the permanent API error that ended the wait.

        A job that CDM deletes after a success (``DELETE_AFTER_SUCCEED``) and that is
        gone when looked at returns the last submission seen (``outcome.inferred``).
        ``deleted_ok``: a job deleted before its result was read returns the last
        submission seen too, rather than raise.

        Args:
            job_name: The job.
            timeout: Seconds from now on the waiter's clock; None waits until it ends.
            since: Ignore submissions created before it: pass the ``creation_date`` that
                ``client.start_job()`` returned to wait for that run.
            deleted_ok: Return, rather than raise, for a job CDM deleted unread.

        Returns:
            The job's successful terminal submission (for a job deleted after success,
            the last one seen).

        Raises:
            JobFailedError: The job ended ``FAILED``, ``FAILURE_ON_SUBMIT`` or ``STOPPED``.
            JobDeletedError: CDM deleted the job before its result was read.
            WaitTimeoutError: ``timeout`` passed first.
            JobNotFoundError: The job does not exist.
            APIError: A permanent error ended the wait (credentials refused, say).
        """
        started = self._clock.monotonic()
        outcome = (await self.wait_all([job_name], timeout=timeout, since=since))[job_name]
        if outcome.kind is OutcomeKind.SUCCEEDED and outcome.submission is not None:
            return outcome.submission
        if outcome.kind is OutcomeKind.DELETED and deleted_ok and outcome.submission is not None:
            return outcome.submission
        if outcome.kind is OutcomeKind.FAILED and outcome.submission is not None:
            raise JobFailedError(outcome.submission, outcome.attempts)
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
