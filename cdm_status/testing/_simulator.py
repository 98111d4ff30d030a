"""CDMSimulator: a stand-in for the CDM job API, as a plain ASGI app.

A request passes the same gates as at Huawei Cloud, in this order::

    route (404 APIG.0101 / 405) -> auth (401 APIG.0301) -> rate limit (429 APIG.0308)
      -> injected fault -> project/cluster (404 Cdm.0001) -> the job API (Cdm.0100 ...)

Job state is a pure function of the simulator clock (see ``_timeline``), so there is no
background task: a test may jump a ``FakeClock`` hours ahead between two requests.

Two clocks: ``clock`` drives the jobs; ``gateway_clock`` (default: the same clock) dates
signatures, counts rate-limit windows and outages. A demo plays jobs fast on a
``ScaledClock`` while the gateway keeps real time, so real clients' signatures and request
pacing still check out.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

import httpx

from .._clock import Clock, LoopClock
from .._models import JobStatus
from ._asgi import (
    Encoded,
    Receive,
    Request,
    Scope,
    Send,
    encode,
    lifespan,
    read_request,
    respond,
)
from ._faults import FaultKind, Faults
from ._jobs import (
    START_ORDERS,
    DatabaseSpec,
    Job,
    JobError,
    JobRegistry,
    StartOrder,
    table_names,
)
from ._limits import RateLimits, ServerStats, SlidingWindow, retry_after_header
from ._progress import PROGRESS_SHAPES, ProgressShape
from ._render import (
    cdm_error,
    gateway_error,
    job_configs,
    list_entry,
    submission,
)
from ._setup import DEFAULT_SETUP, JobSetup
from ._timeline import JobPlan, LogNormal, Run, Transition
from ._transport import SimulatorTransport
from ._verify import SimulatorAuth, verify

if TYPE_CHECKING:
    from .._client import CDMClient

__all__ = ["DEFAULT_CLUSTER_ID", "DEFAULT_PROJECT_ID", "CDMSimulator"]

DEFAULT_PROJECT_ID = "1551c7f6c808414d8e9f3c514a170f2e"
"""The project a ``CDMSimulator`` serves unless told otherwise."""
DEFAULT_CLUSTER_ID = "6ec9a0a4-76be-4262-8697-e7af1fac7920"
"""The cluster a ``CDMSimulator`` serves unless told otherwise."""
JOB_TYPES = ("NORMAL_JOB", "BATCH_JOB", "SCENARIO_JOB")
NOT_JSON_PAGE = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>nginx</center></body></html>"
)


class _Reply(Exception):
    """Short-circuits request handling with an answer."""

    def __init__(self, status: int, body: dict[str, Any], headers: Sequence[tuple[str, str]] = ()):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = list(headers)


class CDMSimulator:
    """A simulated CDM cluster serving the job-status, job-list, job, start and stop APIs.

    An ASGI app: use it in-process through ``http_client()`` / ``client()``, or over a
    socket with ``cdm_status.testing.serve``. Jobs play on ``clock``; the ground-truth
    methods (``transitions()``, ``status()``, ``final_status()``...) tell what they do,
    whatever a client saw.

    Args:
        clock: Drives the jobs (a ``FakeClock`` in tests); the running event loop's clock
            by default.
        seed: Fixes every random draw (job durations, outcomes, progress, faults, request
            ids).
        project_id: The project the API serves; any other answers ``Cdm.0001``.
        cluster_id: The cluster the API serves; any other answers ``Cdm.0001``.
        auth: The credentials it accepts; None accepts any request.
        limits: Rate limits per API (``RateLimits.cdm_defaults()`` for CDM's); none by
            default.
        faults: Faults to inject; none by default.
        not_found_status: The HTTP status of ``Cdm.0100`` (400, or 500 as one CDM page
            documents).
        user_key: How the last-update-user field is spelled: Sqoop's ``last-udpate-user``
            typo by default; ``last-update-user`` is the other reading.
        gateway_clock: Dates signatures, counts rate-limit windows and outages (default:
            ``clock``). A demo plays jobs fast on a ``ScaledClock`` while the gateway
            keeps real time.
        progress: How running jobs report progress: one of ``PROGRESS_SHAPES``
            (``linear`` by default); it never changes when jobs start or end.
        log_requests: Keep every request in ``request_log``, to compare what two clients
            sent byte for byte.
        clock_offset: Seconds the server's clock is ahead of ``clock`` (negative: behind).
            Every date served (``creation-date``, ``execute-date``, ``last-update-date``,
            the HTTP ``Date`` header) is shifted by it, while the jobs still play on
            ``clock`` (ground truth stays on it). AK/SK signatures are still checked
            against the gateway clock itself.
        date_resolution: The ``Date`` header of every answer (the gateway clock's time,
            shifted) in steps of this many seconds (1, as HTTP writes it; more for a
            coarser one), or None to send none.
        list_settings: The job list's rows carry each job's parameters
            (``driver-config-values``), as CDM's documented sample does (its rows carry
            the whole definition; these keep only the parameters, so that pages stay
            small). False leaves them out, so a client must read each job
            (``GET .../cdm/job/{job_name}``, which always has the whole definition).

    Raises:
        ValueError: An unknown ``progress``, a ``clock_offset`` that is not finite, or a
            ``date_resolution`` under 1 second.
    """

    endpoint = "http://cdm-simulator.local"
    """The base URL of the in-process transport."""

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        seed: int = 0,
        project_id: str = DEFAULT_PROJECT_ID,
        cluster_id: str = DEFAULT_CLUSTER_ID,
        auth: SimulatorAuth | None = None,
        limits: RateLimits | None = None,
        faults: Faults | None = None,
        not_found_status: int = 400,
        user_key: str = "last-udpate-user",
        gateway_clock: Clock | None = None,
        progress: ProgressShape = "linear",
        log_requests: bool = False,
        clock_offset: float = 0.0,
        date_resolution: float | None = 1.0,
        list_settings: bool = True,
    ) -> None:
        if progress not in PROGRESS_SHAPES:
            raise ValueError(f"progress must be one of {', '.join(PROGRESS_SHAPES)}")
        if not math.isfinite(clock_offset):
            raise ValueError("clock_offset must be a finite number of seconds")
        if date_resolution is not None and not (
            math.isfinite(date_resolution) and date_resolution >= 1
        ):
            raise ValueError("date_resolution must be at least 1 second (or None)")
        self.clock_offset = clock_offset
        self.date_resolution = date_resolution
        self.clock: Clock = clock or LoopClock()
        """The clock the jobs play on."""
        self.gateway_clock: Clock = gateway_clock or self.clock
        """The clock that dates signatures, rate-limit windows and outages."""
        self.seed = seed
        self.project_id = project_id
        self.cluster_id = cluster_id
        self.auth = auth
        self.limits = limits or RateLimits()
        """The rate limits; replace it (``sim.limits = RateLimits(...)``) between requests
        to change them."""
        self.faults = faults or Faults()
        """The faults to inject; script them as a test goes (``sim.faults.script(...)``)."""
        self.not_found_status = not_found_status
        self.user_key = user_key
        self.list_settings = list_settings
        self.stats = ServerStats()
        """What was served so far: requests per API, per status, per fault, their times."""
        # Separate generators, so that turning faults on does not change job plans.
        self.progress: ProgressShape = progress
        self._jobs = JobRegistry(
            random.Random(f"{seed}:jobs"),
            progress=progress,
            progress_rng=random.Random(f"{seed}:progress"),
            order_rng=random.Random(f"{seed}:order"),
        )
        self._fault_rng = random.Random(f"{seed}:faults")
        self._id_rng = random.Random(f"{seed}:ids")
        self._windows: dict[str, SlidingWindow] = {}
        self.request_log: list[str] | None = [] if log_requests else None
        """With ``log_requests``: ``"<arrival> <METHOD> <path>[?query] <status>"`` for
        every request, in arrival order (status 0: the connection was dropped)."""
        self._configs: dict[str, tuple[Job, dict[str, Any]]] = {}
        self._rows: dict[str, tuple[Job, Run | None, tuple[Any, ...], bytes]] = {}
        """Each job's row of the job list as last encoded, and what it was encoded from."""

    def __repr__(self) -> str:
        return (
            f"CDMSimulator(jobs={len(self._jobs.names())}, clock={self.clock!r}, "
            f"auth={self.auth!r}, limits={self.limits!r}, faults={self.faults!r})"
        )

    # ------------------------------------------------------------------ jobs

    def add_job(
        self,
        name: str,
        *,
        plan: JobPlan | None = None,
        started: bool = True,
        job_type: str = "NORMAL_JOB",
        failure_rate: float = 0.0,
        setup: JobSetup | None = None,
    ) -> str:
        """Create a job (and start it now unless ``started=False``); returns its name.

        Without a ``plan`` each run is drawn from the seeded generator: boot 5-60 s, run
        one minute to an hour, failing with probability ``failure_rate``. ``setup``: its
        delete-after-run and retry settings (see ``JobSetup``; default: neither).

        Args:
            name: The job's name.
            plan: How it runs (boot and run times, final status, counters, progress);
                drawn from the seeded generator when None.
            started: Start the first run now; False leaves it ``NEVER_EXECUTED``.
            job_type: ``NORMAL_JOB``, ``BATCH_JOB`` or ``SCENARIO_JOB``.
            failure_rate: Probability that a drawn run fails.
            setup: Delete-after-run and retry settings.

        Returns:
            The name.

        Raises:
            ValueError: An unknown ``job_type``, a name CDM would refuse, a job of that
                name that exists, or a ``failure_rate`` outside 0..1 (for a run drawn
                now).
        """
        if job_type not in JOB_TYPES:
            raise ValueError(f"job_type must be one of {', '.join(JOB_TYPES)}")
        now = self.clock.time()
        self._jobs.add(
            name,
            now=now,
            job_type=job_type,
            plan=plan,
            failure_rate=failure_rate,
            started=started,
            setup=setup or DEFAULT_SETUP,
        )
        return name

    def add_database_job(
        self,
        parent: str,
        tables: Sequence[str] | int,
        *,
        parallelism: int = 10,
        failure_rate: float = 0.0,
        plans: Mapping[str, JobPlan] | None = None,
        run_seconds: tuple[float, float] | LogNormal = (30.0, 1800.0),
        listed: bool = True,
        started: bool = True,
        start_order: StartOrder = "in_order",
        boot_seconds: tuple[float, float] = (5.0, 60.0),
        setup: JobSetup | None = None,
        setups: Mapping[str, JobSetup] | None = None,
    ) -> list[str]:
        """A whole-database job ``parent`` migrating ``tables`` (names, or a count giving
        ``table_0001``...): one subjob ``<parent>_<table>`` per table, at most
        ``parallelism`` running at once, each started as a slot frees up. Returns the
        subjob names in table order.

        Subjobs waiting for a slot are ``NEVER_EXECUTED``. ``plans`` fixes some tables'
        runs; the others are drawn (``boot_seconds`` range, ``run_seconds`` range or
        ``LogNormal`` spread, ``failure_rate``). The parent
        runs from the first subjob's start to the last one's end and fails if any table
        failed. ``listed=False`` hides the subjobs from the job list (CDM does not
        document that they appear in it). ``start_order`` is the order in which tables
        take free slots: ``in_order`` (table order), ``shuffled`` (seeded; the same
        durations in slot order, so only which table runs when changes) or
        ``longest_first`` (the longest planned run first). ``setup`` is the subjobs'
        delete-after-run and retry settings, ``setups`` those of some tables (a subjob
        holds its slot through its retries).

        Args:
            parent: The whole-database job's name.
            tables: The table names, or how many ``table_0001``... to make.
            parallelism: Subjobs running at once, at most.
            failure_rate: Probability that a drawn table run fails.
            plans: Fixed runs of some tables, by table name.
            run_seconds: Drawn run times: a ``(min, max)`` range, log-uniform, or a
                ``LogNormal`` spread.
            listed: Show the subjobs in the job list.
            started: Start the parent (and so the tables) now; False leaves every job
                ``NEVER_EXECUTED`` until ``start_job(parent)``.
            start_order: ``in_order``, ``shuffled`` or ``longest_first``.
            boot_seconds: Drawn boot times, a ``(min, max)`` range.
            setup: The subjobs' delete-after-run and retry settings.
            setups: Settings of some tables, by table name, instead of ``setup``.

        Returns:
            The subjob names (``<parent>_<table>``), in table order.

        Raises:
            ValueError: ``parallelism`` under 1, an unknown ``start_order``, no table,
                duplicate tables, ``plans`` or ``setups`` for tables not in the job, a
                name CDM would refuse, a job of one of these names that exists, or (for
                runs drawn now) a ``failure_rate`` or ``run_seconds`` out of bounds.
        """
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        if start_order not in START_ORDERS:
            raise ValueError(f"start_order must be one of {', '.join(START_ORDERS)}")
        names = table_names(tables)
        spec = DatabaseSpec(
            tables=names,
            parallelism=parallelism,
            failure_rate=failure_rate,
            plans=dict(plans or {}),
            run_seconds=run_seconds,
            start_order=start_order,
            boot_seconds=boot_seconds,
            setup=setup or DEFAULT_SETUP,
            setups=dict(setups or {}),
        )
        unknown = (set(spec.plans) | set(spec.setups)) - set(names)
        if unknown:
            raise ValueError(f"plans or setups for tables not in the job: {sorted(unknown)}")
        now = self.clock.time()
        _, children = self._jobs.add_database(parent, spec, now=now, listed=listed, started=started)
        return [child.name for child in children]

    def start_job(self, name: str) -> None:
        """Start a new run now (a whole-database job reschedules every table).

        As the start API does, but without a request: nothing is counted or limited.

        Args:
            name: The job.

        Raises:
            KeyError: The job does not exist (never added, or deleted).
            RuntimeError: The job is running (CDM's ``Cdm.0052``).
        """
        self._call(self._jobs.start, name)

    def stop_job(self, name: str) -> None:
        """Stop the running run now (with a whole-database job's running subjobs).

        Args:
            name: The job.

        Raises:
            KeyError: The job does not exist (never added, or deleted).
            RuntimeError: The job is not running (CDM's ``Cdm.0053``).
        """
        self._call(self._jobs.stop, name)

    def delete_job(self, name: str, *, at: float | None = None) -> None:
        """Delete a job (and its subjobs) now, or at ``at``: from then on every request
        about it answers ``Cdm.0100``.

        Args:
            name: The job.
            at: When, in epoch seconds on the simulator clock; None: now.

        Raises:
            KeyError: The job does not exist (never added, or already deleted).
        """
        now = self.clock.time()
        try:
            self._jobs.delete(name, now, at)
        except JobError as error:
            raise KeyError(name) from error

    def _call(self, operation: Any, name: str) -> None:
        try:
            operation(name, self.clock.time())
        except JobError as error:
            if error.code == "Cdm.0100":
                raise KeyError(name) from error
            raise RuntimeError(error.message) from error

    # ------------------------------------------------------------------ ground truth

    def jobs(self) -> list[str]:
        """Every job name ever added (deleted ones included), sorted."""
        return self._jobs.names()

    def transitions(self, name: str, *, upcoming: bool = False) -> list[Transition]:
        """Every state ``name`` has entered by now, in order.

        Args:
            name: The job (deleted ones included).
            upcoming: Also the states already scheduled for later.

        Returns:
            Each status the job entered, with when (``at``: epoch seconds on ``clock``).

        Raises:
            KeyError: No job of that name was ever added.
        """
        steps = self._jobs.transitions(name)
        if upcoming:
            return steps
        now = self.clock.time()
        return [step for step in steps if step.at <= now]

    def status(self, name: str) -> JobStatus:
        """The job's status now (``NEVER_EXECUTED`` before its first run).

        Raises:
            KeyError: No job of that name was ever added.
        """
        return self._jobs.record(name).status(self.clock.time())

    def final_status(self, name: str) -> JobStatus | None:
        """How the job's latest run ends (or ended), known from the start; None if it has
        no run.

        Raises:
            KeyError: No job of that name was ever added.
        """
        runs = self._jobs.record(name).runs
        return runs[-1].outcome if runs else None

    def finished_at(self, name: str) -> float | None:
        """When the latest run ends (or ended), epoch seconds; None without a run.

        Raises:
            KeyError: No job of that name was ever added.
        """
        runs = self._jobs.record(name).runs
        return runs[-1].end() if runs else None

    def attempts(self, name: str) -> list[JobStatus]:
        """How each run of the latest start ends (or ended): the first run, then the
        retries CDM makes of it (``RETRY_TRIPLE``).

        Raises:
            KeyError: No job of that name was ever added.
        """
        job = self._jobs.record(name)
        return [run.outcome for run in job.runs[job.chain_from :]]

    def deleted_at(self, name: str) -> float | None:
        """When CDM deletes the job after its latest run (its ``disposable`` setting),
        epoch seconds; None when it keeps it.

        Raises:
            KeyError: No job of that name was ever added.
        """
        return self._jobs.record(name).disposed_at

    def setup(self, name: str) -> JobSetup:
        """The job's delete-after-run and retry settings.

        Raises:
            KeyError: No job of that name was ever added.
        """
        return self._jobs.record(name).setup

    # ------------------------------------------------------------------ clients

    def transport(self) -> SimulatorTransport:
        """An httpx transport to this app that raises real ``httpx.TransportError``s for
        dropped connections and truncated bodies."""
        return SimulatorTransport(self)

    def http_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """An ``httpx.AsyncClient`` talking to this simulator in-process.

        Args:
            **kwargs: ``httpx.AsyncClient`` arguments (``base_url`` defaults to
                ``endpoint``).
        """
        kwargs.setdefault("base_url", self.endpoint)
        return httpx.AsyncClient(transport=self.transport(), **kwargs)

    def client(self, **kwargs: Any) -> CDMClient:
        """A ``CDMClient`` bound to this simulator: endpoint, ids, credentials, the
        simulator's clock (its retries, and a waiter on it, run on that clock) and a retry
        policy seeded like the simulator.

        Args:
            **kwargs: ``CDMClient`` arguments, winning over those (``auth``, ``retry``,
                ``clock``, ``http_client``, ``requests_per_minute``...).

        Returns:
            A client to use as ``async with sim.client() as client:``.
        """
        from .._auth import AKSKAuth, TokenAuth
        from .._client import CDMClient
        from .._retry import RetryPolicy

        if "auth" not in kwargs and self.auth is not None:
            if self.auth.token is not None:
                kwargs["auth"] = TokenAuth(self.auth.token)
            elif self.auth.ak is not None and self.auth.sk is not None:
                kwargs["auth"] = AKSKAuth(
                    self.auth.ak,
                    self.auth.sk,
                    project_id=self.project_id,
                    clock=self.auth.clock or self.gateway_clock,
                )
        kwargs.setdefault("retry", RetryPolicy(random=random.Random(self.seed)))
        kwargs.setdefault("clock", self.clock)
        kwargs.setdefault("http_client", self.http_client())
        return CDMClient(self.endpoint, self.project_id, self.cluster_id, **kwargs)

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise RuntimeError(f"the simulator serves HTTP only, not {scope['type']!r}")
        request, decoded = await read_request(scope, receive)
        request_id = f"{self._id_rng.getrandbits(128):032x}"
        endpoint, route = self._route(request, decoded)
        arrived = self.gateway_clock.time()
        headers = [("X-Request-Id", request_id)]
        if self.date_resolution is not None:
            headers.append(("Date", self._date_header(arrived)))
        fault: FaultKind | None = None
        try:
            try:
                self._gate(request, endpoint, route, request_id, arrived)
                fault = self.faults.draw(self._fault_rng, arrived)
                if fault is not None:
                    self.stats.faults[fault.value] += 1
                    fault = await self._pre_fault(fault, request_id)
                status, body = 200, self._handle(request, endpoint, route)
            except _Reply as reply:
                status, body = reply.status, reply.body
                headers.extend(reply.headers)
            payload = encode(body)
            if fault is FaultKind.NOT_JSON:
                await respond(
                    send, status, NOT_JSON_PAGE, headers=headers, content_type="text/html"
                )
            elif fault in (FaultKind.TRUNCATE, FaultKind.DROP):
                # An ASGI server can only close a connection once the response has started:
                # a drop sends the headers, then nothing; a truncation half the body.
                sent = payload[: len(payload) // 2] if fault is FaultKind.TRUNCATE else b""
                await respond(send, status, sent, headers=headers, declared_length=len(payload))
            else:
                await respond(send, status, payload, headers=headers)
        except BaseException:
            self._record(request, endpoint, 0, arrived)
            raise
        self._record(request, endpoint, status, arrived)

    def _record(self, request: Request, endpoint: str, status: int, arrived: float) -> None:
        self.stats.record(endpoint, status, arrived)
        if self.request_log is not None:
            target = f"{request.raw_path}?{request.query}" if request.query else request.raw_path
            self.request_log.append(f"{arrived!r} {request.method} {target} {status}")

    def _date_header(self, arrived: float) -> str:
        """The server's time at ``arrived`` (the gateway clock, as the requests' own
        dates), as an HTTP date in steps of ``date_resolution``."""
        assert self.date_resolution is not None
        now = arrived + self.clock_offset
        return formatdate(now - now % self.date_resolution, usegmt=True)

    def _route(self, request: Request, decoded: bool) -> tuple[str, tuple[str, ...]]:
        """(endpoint name, path parameters) or ("other", ()) when no API matches."""
        parts = request.segments
        if not decoded or len(parts) < 7 or parts[0] != "v1.1" or parts[2] != "clusters":
            return "other", ()
        if parts[4] != "cdm" or parts[5] != "job":
            return "other", ()
        ids = (parts[1], parts[3])
        if len(parts) == 7 and parts[6] == "all":
            return "list", ids
        if len(parts) == 7 and parts[6]:
            return "job", (*ids, parts[6])
        if len(parts) == 8 and parts[7] in ("status", "start", "stop") and parts[6]:
            return parts[7], (*ids, parts[6])
        return "other", ()

    def _gate(
        self, request: Request, endpoint: str, route: tuple[str, ...], rid: str, now: float
    ) -> None:
        if endpoint == "other":
            message = "The API does not exist or has not been published in the environment"
            raise _Reply(404, gateway_error("APIG.0101", message, rid))
        wanted = "PUT" if endpoint in ("start", "stop") else "GET"
        if request.method != wanted:
            raise _Reply(405, gateway_error("APIG.0101", "Method not allowed", rid))
        if self.auth is not None:
            auth_clock = self.auth.clock or self.gateway_clock
            problem = verify(
                self.auth,
                method=request.method,
                raw_path=request.raw_path,
                query=request.query,
                headers=request.headers,
                body=request.body,
                now=auth_clock.time(),
            )
            if problem is not None:
                message = f"Incorrect IAM authentication information: {problem}"
                raise _Reply(401, gateway_error("APIG.0301", message, rid))
        budget, limit = self.limits.budget(endpoint)
        if limit is not None:
            window = self._windows.get(budget)
            if window is None or window.limit != limit or window.window != self.limits.window:
                window = self._windows[budget] = SlidingWindow(limit, self.limits.window)
            wait = window.admit(now)
            if wait is not None:
                extra = (
                    [("Retry-After", retry_after_header(wait))] if self.limits.retry_after else []
                )
                raise _Reply(429, throttled_body(limit, rid), extra)

    async def _pre_fault(self, fault: FaultKind, rid: str) -> FaultKind | None:
        """Apply a fault that replaces or delays the answer; return one that mangles the
        body on its way out."""
        if fault is FaultKind.SLOW:
            await self.clock.sleep(self.faults.latency)
            return None
        if fault is FaultKind.UNAVAILABLE:
            raise _Reply(503, gateway_error("APIG.0202", "Backend unavailable", rid))
        if fault is FaultKind.UNAVAILABLE_RETRY_AFTER:
            seconds = retry_after_header(self.faults.retry_after)
            body = gateway_error("APIG.0202", "Backend unavailable", rid)
            raise _Reply(503, body, [("Retry-After", seconds)])
        if fault is FaultKind.SERVER_ERROR:
            raise _Reply(500, cdm_error("Cdm.0000", "System error."))
        if fault is FaultKind.GATEWAY_TIMEOUT:
            raise _Reply(504, gateway_error("APIGW.0201", "Request timeout.", rid))
        if fault is FaultKind.THROTTLED:
            raise _Reply(429, throttled_body(120, rid))
        return fault

    def _handle(
        self, request: Request, endpoint: str, route: tuple[str, ...]
    ) -> dict[str, Any] | Encoded:
        project_id, cluster_id = route[0], route[1]
        if project_id != self.project_id:
            message = f"Project[{project_id}] doesn't exist or you have no permission."
            raise _Reply(404, cdm_error("Cdm.0001", message))
        if cluster_id != self.cluster_id:
            message = f"Cluster[{cluster_id}] doesn't exist or you have no permission."
            raise _Reply(404, cdm_error("Cdm.0001", message))
        now = self.clock.time()
        try:
            if endpoint == "list":
                return self._list(request.params, now)
            name = route[2]
            if endpoint == "job":
                entry = self._entry(self._jobs.get(name, now), now, full=True)
                return {"total": 1, "jobs": [entry], "page_no": 1, "page_size": 10}
            if endpoint == "status":
                return self._status_body(name, now)
            if endpoint == "start":
                # Dated by the request's (real) time, as CDM dates it: a client compares
                # it with its own clock (``since``), whatever speed the jobs play at.
                self._jobs.start(name, now, requested_at=self.gateway_clock.time())
            else:
                self._jobs.stop(name, now)
            return self._status_body(name, now)
        except JobError as error:
            status = self.not_found_status if error.code == "Cdm.0100" else 400
            raise _Reply(status, cdm_error(error.code, error.message)) from None

    def _status_body(self, name: str, now: float) -> dict[str, Any]:
        job = self._jobs.get(name, now)
        current = job.current(now)
        if current is None:
            return {"submissions": []}
        run, state = current
        body = submission(
            run,
            state,
            user_key=self.user_key,
            shift=self.clock_offset,
            delete_job=job.setup.deletes,
        )
        return {"submissions": [body]}

    def _list(self, params: Mapping[str, str], now: float) -> Encoded:
        try:
            page_no = int(params.get("page_no", "1"))
            page_size = int(params.get("page_size", "10"))
        except ValueError:
            message = "page_no and page_size must be integers."
            raise _Reply(400, cdm_error("Cdm.0002", message)) from None
        if page_no < 1:
            raise _Reply(400, cdm_error("Cdm.0002", "page_no must be at least 1."))
        if not 10 <= page_size <= 100:
            raise _Reply(400, cdm_error("Cdm.0002", "page_size must be between 10 and 100."))
        job_type = params.get("jobType") or "NORMAL_JOB"
        if job_type not in JOB_TYPES:
            raise _Reply(400, cdm_error("Cdm.0002", f"jobType {job_type} is not supported."))
        needle = params.get("filter", "").lower()
        matching = self._jobs.listed(needle, job_type, now)
        page = matching[(page_no - 1) * page_size : page_no * page_size]
        # Pages are read again and again while few of their rows change: each row is
        # encoded once per change, and the page is put together from the rows (the same
        # bytes as encoding it whole).
        rows = b",".join([self._list_row(job, now) for job in page])
        return Encoded(
            b'{"total":%d,"jobs":[%b],"page_no":%d,"page_size":%d}'
            % (len(matching), rows, page_no, page_size)
        )

    def _list_row(self, job: Job, now: float) -> bytes:
        """``job``'s row of the job list, encoded (see ``_entry``)."""
        current = job.current(now)
        run, state = current if current is not None else (None, None)
        # What list_entry reads of the run's state (not its progress, which a row does
        # not show), and the settings that shape every row.
        shown = (
            None if state is None else (state.status, state.updated_at),
            self.user_key,
            self.clock_offset,
            self.list_settings,
        )
        cached = self._rows.get(job.name)
        if cached is not None and cached[0] is job and cached[1] is run and cached[2] == shown:
            return cached[3]
        row = encode(self._entry(job, now, full=False))
        self._rows[job.name] = (job, run, shown, row)
        return row

    def _entry(self, job: Job, now: float, *, full: bool) -> dict[str, Any]:
        """A job as "Querying a Job" shows it: by name (``full``), with its whole
        definition (links, what it reads and writes, its parameters); in the list, with
        its parameters only (``list_settings``), which keeps a page of 100 small."""
        current = job.current(now)
        run, state = current if current is not None else (None, None)
        entry = list_entry(
            job.name,
            job.job_type,
            job.created_at,
            run,
            state,
            user_key=self.user_key,
            shift=self.clock_offset,
        )
        if full or self.list_settings:
            configs = self._configs.get(job.name)
            if configs is None or configs[0] is not job:  # the same for the job's life
                table = job.name[len(job.parent) + 1 :] if job.parent else job.name
                configs = self._configs[job.name] = (job, job_configs(table, job.setup))
            if full:
                entry.update(configs[1])
            else:
                entry["driver-config-values"] = configs[1]["driver-config-values"]
        return entry


def throttled_body(limit: int, request_id: str) -> dict[str, Any]:
    message = (
        "The throttling threshold has been reached: "
        f"policy user over ratelimit,limit:{limit},time:1 minute"
    )
    return gateway_error("APIG.0308", message, request_id)
