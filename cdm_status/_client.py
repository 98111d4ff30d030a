"""CDMClient: the async transport layer. It sends what ``_wire`` builds and nothing else.

One place talks to the network: :meth:`CDMClient._send_once`. Around it sit the retry
policy (one request's transient failures), the client's request budgets (one per rate
limit of the API: every call made through the client, by any waiter or directly, takes
its slot from them, so one client is one account's view of CDM's per-user limits) and a
capacity limiter that caps requests in flight *outside* httpx, so a thousand concurrent
callers queue here instead of timing out in httpx's pool.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx

from ._auth import SECRET_HEADERS, AKSKAuth, TokenAuth, check_header_value
from ._budget import Budget
from ._clock import Clock, LoopClock, loop_deadline
from ._config import normalise_endpoint, resolve_settings
from ._definition import JobDefinition
from ._errors import (
    APIError,
    CDMError,
    RateLimitedError,
    ResponseFormatError,
    TransportError,
    error_from_response,
)
from ._models import JobStatus, JobSummary, Submission
from ._ratelimit import RateLimiter
from ._retry import RetryPolicy, is_retryable, was_not_acted_on
from ._schedule import RequestWindow
from ._server_time import ServerClock
from ._signer import canonical_query
from ._telemetry import Call, Telemetry
from ._wire import (
    MAX_BODY_BYTES,
    cluster_path,
    job_definition_path,
    job_list_path,
    job_path,
    parse_job_definition,
    parse_job_list,
    parse_submissions,
    validate_name,
)

__all__ = ["CDMClient", "JobPage"]

logger = logging.getLogger("cdm_status")

_BOOTING, _RUNNING = JobStatus.BOOTING, JobStatus.RUNNING

THROTTLE_PAUSE = 3.0
"""Seconds the shared budget pauses after a 429 without ``Retry-After`` (Huawei: 2-5 s)."""

JOB_TYPES = ("NORMAL_JOB", "BATCH_JOB", "SCENARIO_JOB")


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of the job list."""

    total: int
    jobs: list[JobSummary]
    page_no: int
    page_size: int


class CDMClient:
    """Async client for CDM's job APIs.

    ``endpoint`` is the base URL (``https://cdm.cn-north-4.myhuaweicloud.com``, or a local
    stand-in such as ``http://127.0.0.1:8088``). ``auth`` is a
    [`TokenAuth`][cdm_status.TokenAuth], an [`AKSKAuth`][cdm_status.AKSKAuth] or any
    ``httpx.Auth``. A user-supplied ``http_client`` is used as it is and never closed by
    this object; otherwise one is created with ``request_timeout`` (seconds for each HTTP
    request; a watch's ``timeout`` is the whole wait) and a pool of ``max_connections``
    (requests beyond that wait here, never in httpx's pool). ``request_timeout`` also bounds
    each attempt as a whole, a slowly trickling answer included. A ``JobStatusWaiter`` keeps
    as many polls in flight as the client has connections. ``meter_provider`` and
    ``tracer_provider`` (OpenTelemetry's) receive its metrics and request spans;
    OpenTelemetry's global providers by default (see ``_telemetry``).

    ``clock`` is the one clock of everything built on this client: retry waits, its
    budgets, and the waiter's schedule and deadlines unless it is given its own. The
    default reads the running event loop's clock, so a virtual loop clock moves them all.

    The client owns the request budgets, because CDM counts requests per user: every
    waiter, subscription and direct call made through one client shares them, and a 429
    seen by any of them pauses them all. ``requests_per_minute`` is the status API's
    budget and ``list_requests_per_minute`` the job list's (and job definitions'): CDM
    allows 120 of each per user. ``budget`` and ``list_budget`` replace those local
    [`RateLimiter`][cdm_status.RateLimiter]s with any [`Budget`][cdm_status.Budget] (a
    [`RedisBudget`][cdm_status.RedisBudget] shared by every process of the account, say).

    [`server_clock`][cdm_status.CDMClient.server_clock] estimates how far the server's
    clock is from this host's, from the answers (their ``Date`` header, the dates of
    running and just-started runs), for everything that compares a server date with local
    time.

    Use it as ``async with CDMClient(...) as client:`` or call
    [`aclose()`][cdm_status.CDMClient.aclose].
    """

    def __init__(
        self,
        endpoint: str,
        project_id: str,
        cluster_id: str,
        *,
        auth: httpx.Auth | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        request_timeout: float = 30.0,
        max_connections: int = 2,
        clock: Clock | None = None,
        requests_per_minute: float = 120,
        list_requests_per_minute: float = 120,
        budget: Budget | None = None,
        list_budget: Budget | None = None,
        meter_provider: Any = None,
        tracer_provider: Any = None,
    ) -> None:
        self._endpoint = normalise_endpoint(endpoint)
        self._project_id = validate_name(project_id, "project_id")
        self._cluster_id = validate_name(cluster_id, "cluster_id")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if not (
            isinstance(request_timeout, int | float)
            and math.isfinite(request_timeout)
            and request_timeout > 0
        ):
            raise ValueError("request_timeout must be a positive, finite number of seconds")
        self.max_connections = max_connections
        self._auth = auth
        # httpx's timeouts count each read apart: a body trickling one byte at a time never
        # ends. This one bounds the whole attempt, from sending to the last byte.
        self._request_timeout = float(request_timeout)
        self._closed = False
        self._retry = retry or RetryPolicy()
        self._clock = clock or LoopClock()
        self._server_clock = ServerClock()
        self._budget: Budget = budget or RateLimiter(requests_per_minute, clock=self._clock)
        self._list_budget: Budget = list_budget or RateLimiter(
            list_requests_per_minute, clock=self._clock
        )
        self._sent_any = False
        self._status_window = RequestWindow()
        """Status requests sent through this client over the last minute (any caller)."""
        self._owns_http = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(
                timeout=httpx.Timeout(request_timeout, pool=None),
                limits=httpx.Limits(
                    max_connections=max_connections,
                    max_keepalive_connections=max_connections,
                ),
                follow_redirects=False,
            )
        self._http = http_client
        self._cluster = cluster_path(self.project_id, self.cluster_id)
        # fast_acquire: no scheduling round trip when a slot is free (most requests).
        self._in_flight = anyio.Semaphore(max_connections, fast_acquire=True)
        self._telemetry = Telemetry(
            self._clock,
            endpoint=self._endpoint,
            meter_provider=meter_provider,
            tracer_provider=tracer_provider,
        )

    # Read-only: the request paths are built from them once, here.

    @property
    def endpoint(self) -> str:
        """The base URL, without a trailing slash."""
        return self._endpoint

    @property
    def clock(self) -> Clock:
        """The clock that retries wait on, and that a waiter on this client uses by default."""
        return self._clock

    @property
    def budget(self) -> Budget:
        """The status API's request budget: every status request through this client
        (retries included) takes a slot from it."""
        return self._budget

    @property
    def list_budget(self) -> Budget:
        """The budget of the job list and job definition reads."""
        return self._list_budget

    @property
    def server_clock(self) -> ServerClock:
        """The server's clock offset as the answers so far tell it (shared by every waiter
        on this client)."""
        return self._server_clock

    @property
    def project_id(self) -> str:
        return self._project_id

    @property
    def cluster_id(self) -> str:
        return self._cluster_id

    @property
    def auth(self) -> httpx.Auth | None:
        """How requests are authenticated (its repr never shows a secret)."""
        return self._auth

    def __repr__(self) -> str:
        return (
            f"CDMClient(endpoint={self.endpoint!r}, project_id={self.project_id!r}, "
            f"cluster_id={self.cluster_id!r}, auth={self._auth!r})"
        )

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        project_id: str | None = None,
        cluster_id: str | None = None,
        auth: httpx.Auth | None = None,
        http_client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        request_timeout: float = 30.0,
        max_connections: int = 2,
        clock: Clock | None = None,
        requests_per_minute: float = 120,
        list_requests_per_minute: float = 120,
        budget: Budget | None = None,
        list_budget: Budget | None = None,
        meter_provider: Any = None,
        tracer_provider: Any = None,
    ) -> CDMClient:
        """A client configured from the environment; keyword arguments win over it.

        ``endpoint`` / ``CDM_ENDPOINT``, or ``region`` / ``HUAWEICLOUD_SDK_REGION`` (one of
        the official SDK's regions, giving ``https://cdm.{region}.myhuaweicloud.com``; an
        unknown one is a ``ValueError`` naming the known ones), ``project_id`` /
        ``HUAWEICLOUD_SDK_PROJECT_ID``, ``cluster_id`` / ``CDM_CLUSTER_ID``, and the
        credentials: ``HUAWEICLOUD_SDK_AK`` with ``HUAWEICLOUD_SDK_SK`` (plus
        ``HUAWEICLOUD_SDK_SECURITY_TOKEN`` for temporary ones), or ``CDM_AUTH_TOKEN``. A
        missing setting raises ``ValueError`` naming the variable. The other arguments are
        the constructor's.

        Args:
            environ: Where to read the variables; ``os.environ`` when None.
            endpoint: The API's base URL, winning over ``CDM_ENDPOINT`` and the region.
            region: A Huawei Cloud region such as ``cn-north-4``.
            project_id: The project (in the cluster's region).
            cluster_id: The CDM cluster whose jobs are asked about.

        Returns:
            A client that is not yet connected; use it as ``async with``.

        Raises:
            ValueError: A setting is missing, or cannot be sent (control characters,
                spaces, non-ASCII: the message names the variable, never the value), or
                the region is unknown.
        """
        env = os.environ if environ is None else environ
        settings = resolve_settings(
            env, endpoint=endpoint, region=region, project_id=project_id, cluster_id=cluster_id
        )
        return cls(
            settings.endpoint,
            # Ids are plain ASCII; the project id is also a header (X-Project-Id).
            check_header_value(settings.project_id, "HUAWEICLOUD_SDK_PROJECT_ID"),
            check_header_value(settings.cluster_id, "CDM_CLUSTER_ID"),
            auth=auth or auth_from_env(env, project_id=settings.project_id),
            http_client=http_client,
            retry=retry,
            request_timeout=request_timeout,
            max_connections=max_connections,
            clock=clock,
            requests_per_minute=requests_per_minute,
            list_requests_per_minute=list_requests_per_minute,
            budget=budget,
            list_budget=list_budget,
            meter_provider=meter_provider,
            tracer_provider=tracer_provider,
        )

    def share_budget(self, budget: Budget, list_budget: Budget | None = None) -> None:
        """Draw this client's requests from ``budget`` (status) and ``list_budget`` (job
        list; unchanged when None) instead of its own, for a budget that is named after
        the client itself::

            budget = RedisBudget.from_url(url, client=client)
            client.share_budget(budget, budget.list_budget)

        Only before the client's first request: raises ``RuntimeError`` after it (a
        waiter running on the old budget would go on spending it).

        Args:
            budget: The status API's budget from now on.
            list_budget: The job list's budget from now on (unchanged when None).

        Raises:
            RuntimeError: The client has already sent a request.
        """
        if self._sent_any:
            raise RuntimeError("share_budget() must come before the client's first request")
        self._budget = budget
        if list_budget is not None:
            self._list_budget = list_budget

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> CDMClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it; later calls raise CDMError."""
        self._closed = True
        if self._owns_http:
            await self._http.aclose()

    # ------------------------------------------------------------------ the API

    async def get_submissions(self, job_name: str) -> list[Submission]:
        """Every submission the status API returns for ``job_name``, newest first.

        Every attempt (retries included) first takes a slot from
        [`budget`][cdm_status.CDMClient.budget], and a 429 or ``Retry-After`` pauses it for
        every caller of this client.

        Args:
            job_name: The job, sent as one percent-encoded path segment.

        Returns:
            Every submission, newest first; empty when the job never ran.

        Raises:
            ValueError: The name is empty, over 1,024 characters, holds control
                characters, or is ``.`` or ``..`` (nothing is sent).
            JobNotFoundError: The job does not exist (404, ``Cdm.0100``, ``Cdm.0054``).
            APIError: Another error answer, once its retries (429, 502, 503, 504) ran out.
            TransportError: No answer (connection, TLS, timeout) after the retries.
            ResponseFormatError: The answer is not the documented shape.
        """
        return await self._submissions(job_name)

    async def get_status(self, job_name: str) -> Submission:
        """The newest submission of ``job_name``.

        A job that never ran (an empty ``submissions`` list) gives a submission with status
        ``NEVER_EXECUTED`` and only ``job_name`` set.

        Args:
            job_name: The job.

        Returns:
            The newest submission, or the ``NEVER_EXECUTED`` stand-in.

        Raises:
            JobNotFoundError: The job does not exist. Other errors as for
                [`get_submissions()`][cdm_status.CDMClient.get_submissions].
        """
        submissions = await self.get_submissions(job_name)
        return submissions[0] if submissions else Submission.never_executed(job_name)

    async def _poll_status(self, job_name: str, *, on_slot: Callable[[], None]) -> Submission:
        """:meth:`get_status` for the waiter's engine: ``on_slot`` is called each time an
        attempt has taken its budget slot (the request is on its way), so the engine
        chooses the next job to poll only when a slot is near."""
        submissions = await self._submissions(job_name, on_slot=on_slot)
        return submissions[0] if submissions else Submission.never_executed(job_name)

    async def _submissions(
        self, job_name: str, *, on_slot: Callable[[], None] | None = None
    ) -> list[Submission]:
        path = job_path(self._cluster, job_name, "status")
        body = await self._call(
            "GET", path, job_name=job_name, budget=self._budget, on_slot=on_slot
        )
        submissions = parse_submissions(body, job_name=job_name)
        dates: list[tuple[float, bool]] = []
        for each in submissions:
            # A booting run's creation, a running one's last update: moments ago.
            if each.creation_date is not None:
                dates.append((each.creation_date.timestamp(), each.status is _BOOTING))
            if each.last_update_date is not None:
                dates.append((each.last_update_date.timestamp(), each.status is _RUNNING))
        self._dates_written(dates)
        return submissions

    async def list_jobs(
        self,
        *,
        filter: str = "",
        page_no: int = 1,
        page_size: int = 100,
        job_type: str = "NORMAL_JOB",
    ) -> JobPage:
        """One page of the job list (``GET .../cdm/job/all``): names and last statuses.

        ``filter`` is CDM's fuzzy name match; ``page_size`` is 10..100; ``job_type`` is
        ``NORMAL_JOB``, ``BATCH_JOB`` (whole-database) or ``SCENARIO_JOB``. Takes its slot
        from [`list_budget`][cdm_status.CDMClient.list_budget].

        Args:
            filter: Part of the names to match (empty: every job).
            page_no: The page, from 1.
            page_size: Jobs per page, 10 to 100.
            job_type: Which kind of job to list.

        Returns:
            The page: the total count, and a ``JobSummary`` per job.

        Raises:
            ValueError: An argument out of range (nothing is sent).
            APIError: An error answer, once its retries ran out; ``TransportError`` and
                ``ResponseFormatError`` as for
                [`get_submissions()`][cdm_status.CDMClient.get_submissions].
        """
        if not 10 <= page_size <= 100:
            raise ValueError("page_size must be between 10 and 100")
        if page_no < 1:
            raise ValueError("page_no must be at least 1")
        if job_type not in JOB_TYPES:
            raise ValueError(f"job_type must be one of {', '.join(JOB_TYPES)}")
        if filter and any(ord(char) < 0x20 for char in filter):
            raise ValueError("filter must not contain control characters")
        params = {
            "filter": filter,
            "page_no": str(page_no),
            "page_size": str(page_size),
            "jobType": job_type,
        }
        body = await self._call(
            "GET", job_list_path(self._cluster), params=params, budget=self._list_budget
        )
        total, jobs = parse_job_list(body)
        dates: list[tuple[float, bool]] = []
        for job in jobs:
            for key in ("creation-date", "last-update-date"):
                date = _epoch_ms(job.raw.get(key))
                if date is not None:
                    dates.append((date, key == "last-update-date" and job.status is _RUNNING))
        self._dates_written(dates)
        return JobPage(total=total, jobs=jobs, page_no=page_no, page_size=page_size)

    async def get_job(self, job_name: str) -> JobDefinition:
        """The definition of ``job_name`` ("Querying a Job", ``GET .../cdm/job/{job_name}``):
        its settings (delete after run, automatic retry), source and destination.

        The same API as the job list: takes its slot from
        [`list_budget`][cdm_status.CDMClient.list_budget]. A job that does not exist raises
        ``JobNotFoundError``; the name ``all`` (which asks for the list) raises
        ``ValueError``.

        Args:
            job_name: The job.

        Returns:
            Its definition: ``settings``, ``source`` and ``destination``.

        Raises:
            ValueError: The name cannot be a job's (``all``, empty, control characters).
            JobNotFoundError: The job does not exist. Other errors as for
                [`get_submissions()`][cdm_status.CDMClient.get_submissions].
        """
        path = job_definition_path(self._cluster, job_name)
        body = await self._call("GET", path, job_name=job_name, budget=self._list_budget)
        return parse_job_definition(body, job_name=job_name)

    async def start_job(
        self, job_name: str, *, variables: Mapping[str, str] | None = None
    ) -> Submission:
        """Start a run of ``job_name`` (``PUT .../job/{job_name}/start``); its submission.

        ``variables`` fills the job's ``${name}`` placeholders. CDM answers ``Cdm.0052``
        (a ``BadRequestError``) when the job is already running. Only a request that surely
        did nothing (throttled, or never connected) is retried: a start is never sent twice.
        To wait for this run, pass ``since`` a moment taken just before the start.

        Args:
            job_name: The job to start.
            variables: Values of the job's ``${name}`` placeholders.

        Returns:
            The new run's submission; pass its ``creation_date`` (the server's clock) as
            ``since`` to wait for this run.

        Raises:
            BadRequestError: ``Cdm.0052``: the job is already running (nothing started).
            JobNotFoundError: The job does not exist.
            TransportError: No answer: whether the job started is unknown (ask
                [`get_status()`][cdm_status.CDMClient.get_status]). Other errors as for
                [`get_submissions()`][cdm_status.CDMClient.get_submissions].
        """
        payload = json.dumps({"variables": dict(variables or {})}).encode()
        path = job_path(self._cluster, job_name, "start")
        sent = self._clock.time()
        body = await self._call("PUT", path, job_name=job_name, content=payload)
        submissions = parse_submissions(body, job_name=job_name)
        if not submissions:
            return Submission.never_executed(job_name)
        created = submissions[0].creation_date
        if created is not None:  # dated by the server while the start was on its way
            self._server_clock.stamped_during(
                created.timestamp(), sent=sent, received=self._clock.time()
            )
        return submissions[0]

    async def stop_job(self, job_name: str) -> None:
        """Stop the running run of ``job_name`` (``PUT .../job/{job_name}/stop``).

        CDM answers ``Cdm.0053`` (a ``BadRequestError``) when the job is not running.

        Args:
            job_name: The job to stop.

        Raises:
            BadRequestError: ``Cdm.0053``: the job is not running.
            JobNotFoundError: The job does not exist. Other errors as for
                [`get_submissions()`][cdm_status.CDMClient.get_submissions].
        """
        path = job_path(self._cluster, job_name, "stop")
        await self._call("PUT", path, job_name=job_name, content=b"{}")

    # ------------------------------------------------------------------ plumbing

    def _dates_written(self, dates: list[tuple[float, bool]]) -> None:
        """The dates (epoch seconds) of an answer just received, each with whether it was
        written moments before (see ``ServerClock.stamped_before``): the latest of each."""
        received = self._clock.time()
        for recent in (True, False):
            latest = max((date for date, kind in dates if kind is recent), default=None)
            if latest is not None:
                self._server_clock.stamped_before(latest, received=received, recent=recent)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        job_name: str | None = None,
        params: Mapping[str, str] | None = None,
        budget: Budget | None = None,
        on_slot: Callable[[], None] | None = None,
        content: bytes | None = None,
    ) -> bytes:
        """Send one API call with the retry policy; the body of its 200 answer."""
        url = self.endpoint + path
        if params:
            # Encoded as the official SDK does (sorted, quote(safe="~"): a space is %20).
            # httpx would write "+" for a space, which a gateway may read back as "+" or
            # " ": the signature would then cover a different query than the one checked.
            url += "?" + canonical_query(params.items())
        call = self._telemetry.call(method, path, job_name)

        async def attempt() -> bytes:
            try:
                with call.attempt():
                    return await self._send_once(
                        method,
                        url,
                        job_name=job_name,
                        content=content,
                        budget=budget,
                        on_slot=on_slot,
                        call=call,
                    )
            except APIError as error:
                if budget is not None and (
                    isinstance(error, RateLimitedError) or error.retry_after is not None
                ):
                    call.throttled()
                    # The budget is per user: one 429 means everybody waits. The server's
                    # Retry-After is capped like the retry policy caps it, so that one
                    # absurd header cannot stall every caller for hours.
                    budget.pause(
                        THROTTLE_PAUSE
                        if error.retry_after is None
                        else min(error.retry_after, self._retry.max_retry_after)
                    )
                raise

        def on_retry(error: BaseException, delay: float) -> None:
            call.retrying(error, delay)
            logger.debug("%s %s failed (%s); retrying in %.2fs", method, path, _brief(error), delay)

        # GETs change nothing and may be repeated; a start or stop may not.
        retry_if = is_retryable if method == "GET" else was_not_acted_on
        with call:
            return await self._retry.call(
                attempt, on_retry=on_retry, retry_if=retry_if, clock=self._clock
            )

    async def _within_deadline(self, work: Callable[[], Awaitable[_T]]) -> _T:
        """``work()``, or ``_Expired`` once ``request_timeout`` passes on the client's clock."""
        if type(self._clock) is LoopClock:
            # LoopClock waits on the event loop's clock: a cancel scope's deadline is the
            # same wait, without a task per request.
            with loop_deadline(self._request_timeout):
                return await work()
            raise _Expired
        done: list[_T] = []
        failure: Exception | None = None
        async with anyio.create_task_group() as group:

            async def watchdog() -> None:
                await self._clock.sleep(self._request_timeout)
                group.cancel_scope.cancel()

            group.start_soon(watchdog)
            try:
                done.append(await work())
            except Exception as error:  # re-raised below, not wrapped in an ExceptionGroup
                failure = error
            group.cancel_scope.cancel()
        if done:
            return done[0]
        if failure is not None:
            raise failure
        raise _Expired

    async def _send_once(
        self,
        method: str,
        url: str,
        *,
        job_name: str | None,
        call: Call,
        content: bytes | None = None,
        budget: Budget | None = None,
        on_slot: Callable[[], None] | None = None,
    ) -> bytes:
        if self._closed or self._http.is_closed:
            raise CDMError("the client is closed; open a new CDMClient")
        # CDM's answers are small: asking for them uncompressed keeps a hostile or broken
        # server from handing us a decompression bomb (the size cap counts decoded bytes).
        headers = {"Accept": "application/json", "Accept-Encoding": "identity"}
        if content is not None:
            headers["Content-Type"] = "application/json"
        self._sent_any = True
        async with self._in_flight:
            # The budget slot is taken only once a connection is free: a slot taken while
            # waiting for one would be spent late, bunching requests into one server window.
            if budget is not None:
                with call.budget_wait():
                    await budget.acquire()
                if budget is self._budget:
                    self._status_window.sent(self._clock.monotonic())
                if on_slot is not None:
                    on_slot()
            self._telemetry.sending()
            request = self._http.build_request(method, url, headers=headers, content=content)
            debug = logger.isEnabledFor(logging.DEBUG)
            started = self._clock.monotonic() if debug else 0.0

            async def exchange() -> tuple[httpx.Response, bytes]:
                response = await self._http.send(
                    request,
                    auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                    follow_redirects=False,
                    stream=True,
                )
                try:
                    return response, await _read_capped(response)
                finally:
                    await response.aclose()

            scrubbed: str | None = None
            sent = self._clock.time()
            try:
                response, body = await self._within_deadline(exchange)
            except httpx.HTTPError as exc:
                error = _translate(exc, method, request.url)
                text = str(error)
                scrubbed = _scrub(text, request)
                if scrubbed == text:
                    raise error from exc
            except _Expired:
                raise TransportError(
                    f"{method} {_host_port(request.url)}{request.url.path}: no complete answer "
                    f"within {self._request_timeout:g}s",
                    endpoint=_host_port(request.url),
                ) from None
            if scrubbed is not None:  # set only when the text held a secret
                # The HTTP library quoted a header value: its exception is left behind
                # (raised outside the except block, it is not even the context), so no
                # traceback or log record can show it.
                if isinstance(error, TransportError):
                    raise TransportError(
                        scrubbed, endpoint=error.endpoint, connected=error.connected
                    )
                raise ResponseFormatError(scrubbed)
        self._server_clock.date_header(
            response.headers.get("date"), sent=sent, received=self._clock.time()
        )
        if debug:
            logger.debug(
                "%s %s -> %d in %.3fs",
                method,
                request.url.raw_path.decode("ascii"),
                response.status_code,
                self._clock.monotonic() - started,
            )
        if response.status_code == 200:
            return body
        raise error_from_response(
            response.status_code,
            body,
            response.headers,
            job_name=job_name,
            now=self._server_clock.server_time(self._clock.time()),  # a Retry-After date's
        )


def _epoch_ms(value: object) -> float | None:
    """Epoch seconds of a list row's epoch-milliseconds field; None if it is not one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000.0
        if math.isfinite(seconds) and seconds > 0:
            return seconds
    return None


class _Expired(Exception):
    """The overall deadline of one attempt passed."""


_T = TypeVar("_T")

# Pieces of a header value as they may appear in an error text (which may show the value
# as a bytes literal, with escapes): a run of visible characters other than \ ' ".
_VISIBLE_RUN = re.compile(r"[\x21-\x7e]+")
_MIN_SECRET_PIECE = 4


def _scrub(text: str, request: httpx.Request) -> str:
    """``text`` with every piece of a secret header value of ``request`` hidden."""
    for name in SECRET_HEADERS:
        raw = request.headers.get_list(name)
        for value in raw:
            for piece in sorted(_VISIBLE_RUN.findall(value), key=len, reverse=True):
                for part in re.split(r"[\\'\"]", piece):
                    if len(part) >= _MIN_SECRET_PIECE:
                        text = text.replace(part, "<hidden>")
    return text


def _translate(exc: httpx.HTTPError, method: str, url: httpx.URL) -> CDMError:
    """The one place where httpx's exceptions become this library's errors."""
    if isinstance(exc, httpx.DecodingError):
        return ResponseFormatError(f"{method} {url.path}: {exc}")
    if not isinstance(exc, httpx.TransportError):
        return TransportError(f"{method} {url.path}: {type(exc).__name__}: {exc}")
    endpoint = _host_port(url)
    # Refused, unresolvable, TLS refused or connect timeout: the request never left.
    connected = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
    cause = str(exc) or type(exc).__name__
    if not connected:
        message = f"cannot connect to {endpoint}: {type(exc).__name__}: {cause}"
    else:
        message = f"{method} {endpoint}{url.path}: {type(exc).__name__}: {cause}"
    return TransportError(message, endpoint=endpoint, connected=connected)


def _host_port(url: httpx.URL) -> str:
    """``host:port`` of a URL, the port filled in from the scheme when implicit."""
    return f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"


async def _read_capped(response: httpx.Response) -> bytes:
    """The body, refusing (without reading it whole) one larger than MAX_BODY_BYTES."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ResponseFormatError(f"response body of {declared} bytes exceeds the limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ResponseFormatError(f"response body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _brief(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if isinstance(error, CDMError) else repr(error)


def _env(name: str, environ: Mapping[str, str]) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def auth_from_env(environ: Mapping[str, str], *, project_id: str | None) -> httpx.Auth:
    """AK/SK (preferred) or token credentials from the official SDK's variables.

    A credential that cannot be sent in a header raises ``ValueError`` naming its
    variable, never quoting its value.
    """
    ak = _env("HUAWEICLOUD_SDK_AK", environ)
    sk = _env("HUAWEICLOUD_SDK_SK", environ)
    if ak or sk:
        if not (ak and sk):
            missing = "HUAWEICLOUD_SDK_SK" if ak else "HUAWEICLOUD_SDK_AK"
            raise ValueError(f"set {missing} (AK and SK go together)")
        security_token = _env("HUAWEICLOUD_SDK_SECURITY_TOKEN", environ)
        for variable, value in (
            ("HUAWEICLOUD_SDK_AK", ak),
            ("HUAWEICLOUD_SDK_SK", sk),
            ("HUAWEICLOUD_SDK_SECURITY_TOKEN", security_token),
        ):
            if value is not None:
                check_header_value(value, variable)
        return AKSKAuth(ak, sk, project_id=project_id, security_token=security_token)
    token = _env("CDM_AUTH_TOKEN", environ)
    if token:
        return TokenAuth(token, setting="CDM_AUTH_TOKEN")
    raise ValueError("set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or CDM_AUTH_TOKEN")
