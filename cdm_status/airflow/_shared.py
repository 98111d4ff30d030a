"""One waiter per account and cluster for the whole process, and the one way a trigger waits.

Airflow's triggerer runs every deferred task's trigger on one event loop. CDM counts
requests per user, so every trigger of the process that uses the same endpoint, project and
credentials must draw on one budget: :class:`SharedWaiters` keeps, per account (endpoint,
project, credentials, budget URL), one status budget and one list budget (a
:class:`~cdm_status.RedisBudget` shared with other processes when the connection has a
``budget`` URL, kept entered by a task of its own), and per cluster
one :class:`~cdm_status.CDMClient` with its :class:`~cdm_status.JobStatusWaiter` on those
budgets (a client, and so a waiter, talks to one cluster; a trigger process usually
watches one). Each waiter's engine runs in a task of the registry's own, started in a
fresh ``contextvars.Context()``: it is shared by every trigger, so it must not run in (and
log into) the context of whichever trigger came first; Airflow routes a trigger's log
records by its context. Entries are reference-counted; an entry nobody has used for
``linger`` seconds is closed by a timer (and its account, the shared budget's
registration with it, once its last entry is).

An entry belongs to the event loop that created it: ``dag.test()`` runs each trigger in a
fresh ``asyncio.run``, and an HTTP client cannot move between loops (nor be closed from
another one), so an entry of another loop is never reused. On asyncio the registry closes
a loop's entries while that loop ends (a task of its own, waiting for the cancellation
``asyncio.run`` and the triggerer's shutdown give every task left); on trio an entry of an
ended run is only dropped, its connections left to the garbage collector.

:func:`watch` is the only place a trigger (or a worker in non-deferrable mode) waits.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

import anyio.lowlevel
import httpx

from .._budget import Budget
from .._client import CDMClient
from .._clock import Clock, LoopClock
from .._definition import JobDefinition
from .._events import Event, JobOutcome, PollFailed
from .._models import JobSummary, Submission
from .._ratelimit import RateLimiter
from .._redis_budget import RedisBudget
from .._waiter import JobStatusWaiter
from ._settings import AccountKey, ConnectionSettings

__all__ = [
    "REGISTRY",
    "Lease",
    "SharedWaiters",
    "WatchRequest",
    "WatchResult",
    "check",
    "definitions",
    "listed",
    "subjobs",
    "watch",
]

logger = logging.getLogger("cdm_status.airflow")

HttpFactory = Callable[[ConnectionSettings], "httpx.AsyncClient | None"]


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """What one trigger waits for."""

    job_names: tuple[str, ...]
    cluster_id: str | None = None
    since: datetime | None = None
    timeout: float | None = None
    give_up_after: int | None = None
    """Consecutive failed polls of one job (each already retried) after which it is
    given up as unreachable; None rides failures out until the timeout."""


@dataclass(frozen=True, slots=True)
class WatchResult:
    """Every job's outcome, and the last error of the jobs given up as unreachable."""

    outcomes: dict[str, JobOutcome]
    gave_up: dict[str, BaseException] = field(default_factory=dict)


@dataclass(slots=True)
class Lease:
    """A shared client and its waiter, for one account and cluster."""

    client: CDMClient
    waiter: JobStatusWaiter
    http: httpx.AsyncClient | None = None
    """The HTTP client the registry's ``http_factory`` gave (closed with the lease)."""
    users: int = 0
    idle_since: float = 0.0
    runner: asyncio.Task[None] | None = None
    """The task that runs the waiter's engine (``async with waiter``)."""
    running: asyncio.Future[None] | None = None
    """Done once the engine runs: a watch starts only then."""
    closer: asyncio.Task[None] | None = None
    """The timer that closes the entry once idle for ``linger`` seconds."""

    async def aclose(self) -> None:
        for task in (self.closer, self.runner):
            if task is not None and task is not _current_task():
                task.cancel()
                await asyncio.wait([task])
        await self.client.aclose()
        if self.http is not None:
            await self.http.aclose()


@dataclass(slots=True)
class _Account:
    loop: object
    budget: Budget
    list_budget: Budget
    clusters: dict[str, Lease] = field(default_factory=dict)
    holder: asyncio.Task[None] | None = None
    """The task keeping a shared (Redis) budget entered, if the account has one."""

    async def aclose(self) -> None:
        for entry in list(self.clusters.values()):
            await entry.aclose()
        if self.holder is not None:
            self.holder.cancel()  # leaves the shared budget (its exit is shielded)
            await asyncio.wait([self.holder])


class SharedWaiters:
    """A process-wide registry of waiters, keyed by account (see the module docstring).

    ``clock`` drives every waiter, client and budget it makes (virtual in tests);
    ``http_factory`` may give the HTTP client for a connection (an in-process simulator in
    tests; None: the client makes its own). ``linger``: seconds an unused waiter is kept.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        linger: float = 300.0,
        http_factory: HttpFactory | None = None,
        requests_per_minute: float = 120,
        list_requests_per_minute: float = 120,
    ) -> None:
        self.clock: Clock = clock or LoopClock()
        self.linger = linger
        self._http_factory = http_factory
        self._per_minute = requests_per_minute
        self._list_per_minute = list_requests_per_minute
        self._accounts: dict[AccountKey, _Account] = {}
        self._loop_guards: dict[object, asyncio.Task[None]] = {}
        self._opening: dict[AccountKey, anyio.Event] = {}

    def __repr__(self) -> str:
        return f"SharedWaiters(accounts={len(self._accounts)}, waiters={self.waiters})"

    @property
    def waiters(self) -> int:
        """How many waiters are open (in use or lingering)."""
        return sum(len(account.clusters) for account in self._accounts.values())

    def users(self, settings: ConnectionSettings, cluster_id: str | None = None) -> int:
        """How many watches use the waiter of this account and cluster right now."""
        account = self._accounts.get(settings.account())
        entry = account.clusters.get(settings.cluster(cluster_id)) if account else None
        return entry.users if entry else 0

    def budget(self, settings: ConnectionSettings) -> Budget | None:
        """The status budget this account's waiters share (None before the first lease)."""
        account = self._accounts.get(settings.account())
        return account.budget if account else None

    @asynccontextmanager
    async def lease(
        self, settings: ConnectionSettings, cluster_id: str | None = None
    ) -> AsyncIterator[Lease]:
        """The shared client and waiter of this account and cluster, for the block."""
        cluster = settings.cluster(cluster_id)
        account = await self._account(settings)
        entry = account.clusters.get(cluster)
        if entry is None:
            http = self._http_factory(settings) if self._http_factory else None
            client = settings.client(
                cluster,
                clock=self.clock,
                http_client=http,
                budget=account.budget,
                list_budget=account.list_budget,
            )
            waiter = JobStatusWaiter(client, clock=self.clock)
            entry = account.clusters[cluster] = Lease(client, waiter, http)
            entry.running = asyncio.get_running_loop().create_future()
            entry.runner = _spawn(_run_waiter(waiter, entry.running))
        if entry.running is not None:
            await entry.running  # a trigger that came meanwhile waits for it too
        if entry.closer is not None:
            entry.closer.cancel()
            entry.closer = None
        entry.users += 1
        try:
            yield entry
        finally:
            entry.users -= 1
            entry.idle_since = self.clock.monotonic()
            if entry.users == 0:
                entry.closer = _spawn(self._close_when_idle(settings.account(), cluster, entry))

    async def _close_when_idle(self, key: AccountKey, cluster: str, entry: Lease) -> None:
        """Close ``entry`` once nobody used it for ``linger`` seconds (and its account,
        leaving the shared budget, when it was the account's last entry)."""
        await self.clock.sleep(self.linger)
        account = self._accounts.get(key)
        if entry.users or account is None or account.clusters.get(cluster) is not entry:
            return
        entry.closer = None  # this task: not to be cancelled by the close below
        del account.clusters[cluster]
        await entry.aclose()
        if not account.clusters and self._accounts.get(key) is account:
            del self._accounts[key]
            await account.aclose()

    @asynccontextmanager
    async def own_client(
        self, settings: ConnectionSettings, cluster_id: str | None = None
    ) -> AsyncIterator[CDMClient]:
        """A client of the block's own, outside the registry (on its clock and HTTP
        factory): for a call from another thread or event loop than the registry's."""
        http = self._http_factory(settings) if self._http_factory else None
        client = settings.client(cluster_id, clock=self.clock, http_client=http)
        try:
            yield client
        finally:
            await client.aclose()
            if http is not None:
                await http.aclose()

    async def _account(self, settings: ConnectionSettings) -> _Account:
        key = settings.account()
        loop = anyio.lowlevel.current_token()
        while key in self._opening:  # another trigger is entering this account's budget
            await self._opening[key].wait()
        account = self._accounts.get(key)
        if account is not None and account.loop != loop:
            # Made on a loop that has ended (dag.test runs each trigger in asyncio.run):
            # its HTTP connections cannot be used, or closed, from this loop (on asyncio
            # they were closed as that loop ended).
            del self._accounts[key]
            account = None
        if account is None:
            self._opening[key] = opened = anyio.Event()
            try:
                account = await self._open(settings, loop)
                self._accounts[key] = account
            finally:
                del self._opening[key]
                opened.set()
            self._guard(loop)
        return account

    def _guard(self, loop: object) -> None:
        """On asyncio, close this loop's entries when the loop ends (module docstring)."""
        if loop in self._loop_guards:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:  # trio: no task can outlive its nursery, so nothing to hook
            return
        # A bare asyncio task on purpose: Airflow's triggerer and dag.test() are asyncio
        # only, and this task must outlive every caller's task group to see the loop end.
        self._loop_guards[loop] = running.create_task(self._close_when_ended(loop))

    async def _close_when_ended(self, loop: object) -> None:
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            self._loop_guards.pop(loop, None)
            for key, account in list(self._accounts.items()):
                if account.loop == loop:
                    del self._accounts[key]
                    await account.aclose()

    async def _open(self, settings: ConnectionSettings, loop: object) -> _Account:
        """A new account: on the shared budget of its ``budget`` URL when it has one and
        it can be entered, else on budgets of this process's own."""
        if settings.budget_url is not None:
            try:
                return await self._open_shared(settings, loop, settings.budget_url)
            except Exception as error:
                # Never the URL itself: it may hold the store's password.
                logger.warning(
                    "the connection's shared budget could not be used (%s: %s): this "
                    "process counts its own requests",
                    type(error).__name__,
                    error,
                )
        return _Account(
            loop,
            RateLimiter(self._per_minute, clock=self.clock),
            RateLimiter(self._list_per_minute, clock=self.clock),
        )

    async def _open_shared(self, settings: ConnectionSettings, loop: object, url: str) -> _Account:
        from .._redis_budget import budget_id_for

        if not settings.ak:
            raise ValueError("a shared budget needs an access key (a token rotates)")
        budget = RedisBudget.from_url(
            url,
            budget_id=budget_id_for(settings.endpoint, settings.project_id, settings.ak),
            per_minute=self._per_minute,
            list_per_minute=self._list_per_minute,
            clock=self.clock,
        )
        # The budget stays entered (registered, with its heartbeat) for the account's life,
        # across triggers that come and go: a task of its own holds it. A bare asyncio task,
        # as for the loop guard: Airflow's triggerer is asyncio only.
        running = asyncio.get_running_loop()  # RuntimeError under trio: local budgets
        entered: asyncio.Future[None] = running.create_future()
        holder = _spawn(_hold(budget, entered))
        await entered
        return _Account(loop, budget, budget.list_budget, holder=holder)

    async def aclose(self) -> None:
        """Close every waiter of this loop's accounts, in use or not."""
        loop = anyio.lowlevel.current_token()
        for key, account in list(self._accounts.items()):
            del self._accounts[key]
            if account.loop == loop:
                await account.aclose()


def _current_task() -> asyncio.Task[object] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def _spawn(work: Coroutine[object, object, None]) -> asyncio.Task[None]:
    """A task of the registry's own, in a fresh context: nothing of the caller's task
    context (an Airflow trigger's log routing) is copied into it. A bare asyncio task on
    purpose: the triggerer is asyncio only, and these tasks outlive every trigger."""
    return contextvars.Context().run(asyncio.get_running_loop().create_task, work)


async def _run_waiter(waiter: JobStatusWaiter, started: asyncio.Future[None]) -> None:
    """Run ``waiter``'s engine until cancelled; ``started`` says when it runs."""
    async with waiter:
        started.set_result(None)
        await asyncio.get_running_loop().create_future()  # until cancelled


async def _hold(budget: RedisBudget, entered: asyncio.Future[None]) -> None:
    """Keep ``budget`` entered until cancelled; ``entered`` says when it is (or why not)."""
    try:
        async with budget:
            entered.set_result(None)
            await asyncio.get_running_loop().create_future()  # until cancelled
    except Exception as error:
        if not entered.done():
            entered.set_exception(error)
            return
        raise


_T = TypeVar("_T")

REGISTRY = SharedWaiters()
"""The registry of this process (the triggerer's, or a worker's)."""


async def watch(
    settings: ConnectionSettings,
    request: WatchRequest,
    on_event: Callable[[Event], None],
    *,
    registry: SharedWaiters | None = None,
) -> WatchResult:
    """Wait for ``request``'s jobs on the shared waiter; ``on_event`` sees every event.

    Returns once every job has its outcome. The watch is one subscription to the engine
    of the shared waiter, which runs in a task of the registry's: jobs that several
    triggers want are polled once for all of them, and this call only reads events. The
    subscription is closed before this returns, so a trigger yields its event with
    nothing open.
    """
    registry = registry or REGISTRY
    gave_up: dict[str, BaseException] = {}
    async with (
        registry.lease(settings, request.cluster_id) as lease,
        lease.waiter.watch(
            request.job_names, timeout=request.timeout, since=request.since
        ) as events,
    ):
        async for event in events:
            on_event(event)
            limit = request.give_up_after
            if (
                isinstance(event, PollFailed)
                and limit is not None
                and event.consecutive >= limit
                and event.job_name not in events.outcomes
            ):
                gave_up[event.job_name] = event.error
                events.cancel(event.job_name)
        outcomes = dict(events.outcomes)
    return WatchResult(outcomes, gave_up)


async def _per_job(
    settings: ConnectionSettings,
    job_names: Iterable[str],
    ask: Callable[[Lease, str], Awaitable[_T]],
    *,
    cluster_id: str | None,
    registry: SharedWaiters | None,
) -> dict[str, _T | Exception]:
    """One request per job on the shared waiter's client: ``{name: answer or error}``."""
    registry = registry or REGISTRY
    found: dict[str, _T | Exception] = {}
    async with registry.lease(settings, cluster_id) as lease:
        for name in job_names:
            try:
                found[name] = await ask(lease, name)
            except Exception as error:
                found[name] = error
    return found


async def check(
    settings: ConnectionSettings,
    job_names: Iterable[str],
    *,
    cluster_id: str | None = None,
    registry: SharedWaiters | None = None,
) -> dict[str, Submission | Exception]:
    """One status request per job through the shared budget: ``{name: Submission or
    the error}`` (the status check a task makes before it defers)."""

    async def status(lease: Lease, name: str) -> Submission:
        return await lease.client.get_status(name)

    return await _per_job(settings, job_names, status, cluster_id=cluster_id, registry=registry)


async def definitions(
    settings: ConnectionSettings,
    job_names: Iterable[str],
    *,
    cluster_id: str | None = None,
    registry: SharedWaiters | None = None,
) -> dict[str, JobDefinition | Exception]:
    """Each job's definition (its settings, source and destination: ``client.get_job``),
    one request per job from the list budget: ``{name: JobDefinition or the error}``."""

    async def definition(lease: Lease, name: str) -> JobDefinition:
        return await lease.client.get_job(name)

    return await _per_job(settings, job_names, definition, cluster_id=cluster_id, registry=registry)


async def listed(lease: Lease, filter_: str, job_type: str) -> AsyncGenerator[JobSummary, None]:
    """Every row of the job list that CDM's fuzzy ``filter_`` matches, for ``job_type``,
    read 100 a page from the list budget."""
    page_no = 1
    while True:
        page = await lease.client.list_jobs(
            filter=filter_,
            page_no=page_no,
            page_size=100,
            job_type=job_type,
        )
        for job in page.jobs:
            yield job
        if not page.jobs or page_no * page.page_size >= page.total:
            return
        page_no += 1


async def subjobs(
    settings: ConnectionSettings,
    parent: str,
    *,
    cluster_id: str | None = None,
    registry: SharedWaiters | None = None,
) -> list[str]:
    """The subjob names of whole-database job ``parent`` (``<parent>_<table>``) that the
    job list shows, in list order, read 100 a page from the list budget."""
    registry = registry or REGISTRY
    prefix = parent + "_"
    async with registry.lease(settings, cluster_id) as lease:
        for job_type in ("BATCH_JOB", "NORMAL_JOB"):
            names = [j.name async for j in listed(lease, prefix, job_type)]
            names = [name for name in names if name.startswith(prefix)]
            if names:
                return list(dict.fromkeys(names))
    return []
