"""Telemetry: OpenTelemetry metrics and spans, and the plain tallies behind ``stats()``.

A library depends on the OpenTelemetry *API* only (the ``cdm-status[otel]`` extra); the
application installs the SDK and an exporter. Without the API every hook below only updates
the plain tallies; with the API but no SDK, OpenTelemetry's own no-ops take the calls. The
API is imported when the first :class:`Telemetry` is made, never by ``import cdm_status``.

Instruments (meter ``cdm_status``):

====================================  ============  =========================================
``cdm_status.requests``               counter       ``cdm.api``, and
                                                    ``http.response.status_code`` (answered)
                                                    or ``error.type`` (not answered)
``cdm_status.request.duration``       histogram, s  ``cdm.api``
``cdm_status.budget.wait``            histogram, s  ``cdm.api``
``cdm_status.throttle.pauses``        counter       ``cdm.api``
``cdm_status.jobs.active``            up-down       (none)
``cdm_status.jobs.finished``          counter       ``cdm.outcome``
``cdm_status.status.changes``         counter       ``cdm.status``
``cdm_status.poll.failures``          counter       ``error.type``
====================================  ============  =========================================

Spans (tracer ``cdm_status``): one ``cdm_status.watch`` span per watch (and so per
``wait()``), made current for the watch's tasks; under it one CLIENT span per API call,
named ``GET /v1.1/{project_id}/clusters/{cluster_id}/cdm/job/{job_name}/status`` (method +
``url.template``), with ``http.request.method``, ``url.template``, ``server.address``,
``server.port``, ``cdm.api``, ``cdm.job.name``, ``http.response.status_code`` or
``error.type``, and one ``cdm_status.retry`` event per retry. No URL, header, query or
credential is ever put in an attribute: the template and the job name say which call it was.

Where the hooks are called:

* the client: :meth:`Telemetry.call` around one API call (its retries included);
  :meth:`Call.budget_wait` around taking a budget slot; :meth:`Call.attempt` around one
  attempt, with :meth:`Telemetry.sending` once the connection slot is taken (the duration
  starts there, so time queued for a connection is not counted as the server's);
  :meth:`Call.throttled` when a 429/``Retry-After`` pauses the budget; :meth:`Call.retrying`
  before a retry's wait;
* the waiter: :meth:`Telemetry.watch` for each watch, whose :class:`WatchRecord` is told
  :meth:`~WatchRecord.start` (its task runs), :meth:`~WatchRecord.status_changed`,
  :meth:`~WatchRecord.poll_failed`, :meth:`~WatchRecord.job_finished` and
  :meth:`~WatchRecord.end`.

Telemetry never changes an outcome: every call into OpenTelemetry (the application's
span processors run inside ``start_span`` and ``end``, its meter inside ``add`` and
``record``) goes through a guard that catches any exception, logs it once per client at
WARNING, and carries on; the plain tallies count regardless.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from ._clock import Clock
from ._errors import APIError, TransportError

__all__ = ["Call", "Telemetry", "WaiterStats", "WatchRecord", "api_of", "error_type"]

logger = logging.getLogger("cdm_status")

METER_NAME = "cdm_status"

URL_TEMPLATES = {
    "status": "/v1.1/{project_id}/clusters/{cluster_id}/cdm/job/{job_name}/status",
    "start": "/v1.1/{project_id}/clusters/{cluster_id}/cdm/job/{job_name}/start",
    "stop": "/v1.1/{project_id}/clusters/{cluster_id}/cdm/job/{job_name}/stop",
    "list": "/v1.1/{project_id}/clusters/{cluster_id}/cdm/job/all",
    "job": "/v1.1/{project_id}/clusters/{cluster_id}/cdm/job/{job_name}",
}
"""``url.template`` of each API (``cdm.api``): the path with its variable parts named."""

# OpenTelemetry's recommended buckets for HTTP client durations (seconds).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
# A budget wait runs from nothing (a free slot) to a minute or more (a spent budget, a pause).
BUDGET_BUCKETS = (0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)

_attempt: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar(
    "cdm_status_attempt", default=None
)


def api_of(path: str) -> str:
    """``cdm.api`` of a request path: ``status``, ``start``, ``stop``, ``list``, or ``job``
    (one job's definition: the list's API and budget, by name)."""
    parts = path.split("?", 1)[0].split("/")
    if len(parts) == 8 and parts[5:7] == ["cdm", "job"] and parts[7] != "all":
        return "job"  # /v1.1/{project}/clusters/{cluster}/cdm/job/{job_name}
    last = parts[-1]
    return last if last in ("status", "start", "stop") else "list"


def error_type(error: BaseException) -> str:
    """``error.type`` of a failure: the HTTP status of an answered one, else a class name.

    A transport error is named by the httpx error under it (``ConnectError``,
    ``ReadTimeout``), which says more than the one class the client raises for all of them.
    """
    if isinstance(error, APIError) and error.status_code is not None:
        return str(error.status_code)
    if isinstance(error, TransportError) and isinstance(error.__cause__, httpx.HTTPError):
        return type(error.__cause__).__name__
    if not isinstance(error, Exception):
        return "cancelled"
    return type(error).__name__


@dataclass(frozen=True, slots=True)
class WaiterStats:
    """What a waiter and its client have done so far: the figures its metrics report.

    Request figures are the client's (every waiter and direct call on that client, every
    attempt a separate request); job figures are this waiter's watches'. Plain values, so
    they work without OpenTelemetry.
    """

    requests: Mapping[str, int]
    """Requests sent, by API (``status``, ``list``, ``start``, ``stop``)."""
    responses: Mapping[int, int]
    """Answered requests, by HTTP status code."""
    request_errors: Mapping[str, int]
    """Requests that got no answer, by ``error.type`` (``ConnectError``, ``ReadTimeout``...)."""
    budget_wait: float
    """Seconds spent waiting for budget slots, summed over every request."""
    throttle_pauses: int
    """Pauses of the budget imposed by a 429 or a ``Retry-After``."""
    jobs_active: int
    """Jobs being watched now."""
    jobs_finished: Mapping[str, int]
    """Jobs that ended, by outcome (``succeeded``, ``failed``, ``not_found``, ``error``,
    ``timed_out``, ``cancelled``)."""
    status_changes: Mapping[str, int]
    """Status changes seen, by new status (``RUNNING``, ``SUCCEEDED``...)."""
    poll_failures: Mapping[str, int]
    """Polls that failed and were ridden out, by ``error.type``."""

    @property
    def requests_sent(self) -> int:
        """Every request sent, all APIs together."""
        return sum(self.requests.values())


class _Tallies:
    """Plain counters: the same figures as the instruments, for :class:`WaiterStats`."""

    def __init__(self) -> None:
        self.requests: collections.Counter[str] = collections.Counter()
        self.responses: collections.Counter[int] = collections.Counter()
        self.request_errors: collections.Counter[str] = collections.Counter()
        self.budget_wait = 0.0
        self.throttle_pauses = 0
        self.jobs_active = 0
        self.jobs_finished: collections.Counter[str] = collections.Counter()
        self.status_changes: collections.Counter[str] = collections.Counter()
        self.poll_failures: collections.Counter[str] = collections.Counter()


class _Guard:
    """``with telemetry.guard("span end"):`` around a call into OpenTelemetry: any
    exception it raises is swallowed, and logged at WARNING the first time each place
    fails with each kind of exception (per client: its waiters share the record)."""

    __slots__ = ("_seen", "_where")

    def __init__(self, seen: set[tuple[str, str]], where: str) -> None:
        self._seen = seen
        self._where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        if exc is None or not isinstance(exc, Exception):
            return False  # a cancellation, a KeyboardInterrupt: not telemetry's to stop
        key = (self._where, type(exc).__name__)
        if key not in self._seen and len(self._seen) < _MAX_WARNED:
            self._seen.add(key)
            logger.warning(
                "telemetry (OpenTelemetry %s) raised %s: %s; ignored, the watch goes on",
                self._where,
                type(exc).__name__,
                exc,
            )
        return True


_MAX_WARNED = 64
"""Kinds of telemetry failure warned about per client, at most (a bounded record)."""


class _Instruments:
    """The OpenTelemetry meter's instruments and the tracer."""

    def __init__(self, otel: Any, meter_provider: Any, tracer_provider: Any, version: str) -> None:
        context, metrics, trace = otel
        self.context = context
        meter = metrics.get_meter(METER_NAME, version, meter_provider=meter_provider)
        self.tracer = trace.get_tracer(METER_NAME, version, tracer_provider=tracer_provider)
        self.span_kind_client = trace.SpanKind.CLIENT
        self.status_error = trace.Status(trace.StatusCode.ERROR)
        self.set_span_in_context = trace.set_span_in_context
        self.requests = meter.create_counter(
            "cdm_status.requests", unit="{request}", description="Requests sent to the CDM API."
        )
        self.duration = meter.create_histogram(
            "cdm_status.request.duration",
            unit="s",
            description="Time from sending a request to its answer or failure.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self.budget_wait = meter.create_histogram(
            "cdm_status.budget.wait",
            unit="s",
            description="Time spent waiting for a slot of the request budget.",
            explicit_bucket_boundaries_advisory=BUDGET_BUCKETS,
        )
        self.throttle_pauses = meter.create_counter(
            "cdm_status.throttle.pauses",
            unit="{pause}",
            description="Pauses of the request budget imposed by a 429 or Retry-After.",
        )
        self.jobs_active = meter.create_up_down_counter(
            "cdm_status.jobs.active", unit="{job}", description="Jobs being watched now."
        )
        self.jobs_finished = meter.create_counter(
            "cdm_status.jobs.finished", unit="{job}", description="Watched jobs that ended."
        )
        self.status_changes = meter.create_counter(
            "cdm_status.status.changes",
            unit="{change}",
            description="Status changes seen on watched jobs.",
        )
        self.poll_failures = meter.create_counter(
            "cdm_status.poll.failures",
            unit="{failure}",
            description="Polls that failed and were ridden out (the job stays watched).",
        )


_OTEL: list[tuple[Any, ...] | None] = []  # empty until looked for


def _load_otel() -> tuple[Any, ...] | None:
    """The OpenTelemetry API modules, or None when the API is not installed (looked for
    once: a failed import scans sys.path every time)."""
    if not _OTEL:
        try:
            from opentelemetry import context, metrics, trace
        except ImportError:
            _OTEL.append(None)
        else:
            _OTEL.append((context, metrics, trace))
    return _OTEL[0]


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cdm-status")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


class Telemetry:
    """The recorder the client and the waiter report to (see the module docstring).

    ``meter_provider`` and ``tracer_provider`` default to OpenTelemetry's global ones.
    ``endpoint`` is the API's base URL: only its host and port are recorded.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        endpoint: str = "",
        meter_provider: Any = None,
        tracer_provider: Any = None,
    ) -> None:
        self.clock = clock
        self.meter_provider = meter_provider
        self.tracer_provider = tracer_provider
        self.tallies = _Tallies()
        self._server: dict[str, Any] = {}
        if endpoint:
            url = httpx.URL(endpoint)
            port = url.port or (443 if url.scheme == "https" else 80)
            self._server = {"server.address": url.host, "server.port": port}
        self._otel: _Instruments | None = None
        self._warned: set[tuple[str, str]] = set()
        otel = _load_otel()
        if otel is not None:
            with self.guard("setup"):  # without instruments, the tallies still count
                self._otel = _Instruments(otel, meter_provider, tracer_provider, _version())

    def guard(self, where: str) -> _Guard:
        """A guard around a call into OpenTelemetry (see :class:`_Guard`)."""
        return _Guard(self._warned, where)

    @property
    def enabled(self) -> bool:
        """True when the OpenTelemetry API is installed (it may still have no SDK)."""
        return self._otel is not None

    def fork(self, *, meter_provider: Any = None, tracer_provider: Any = None) -> Telemetry:
        """A recorder with tallies of its own, on the same providers unless given others."""
        if meter_provider is not None or tracer_provider is not None:
            fork = Telemetry(
                self.clock,
                meter_provider=meter_provider or self.meter_provider,
                tracer_provider=tracer_provider or self.tracer_provider,
            )
            fork._warned = self._warned
            return fork
        fork = Telemetry.__new__(Telemetry)
        fork.clock, fork._server, fork._otel = self.clock, self._server, self._otel
        fork._warned = self._warned
        fork.meter_provider, fork.tracer_provider = self.meter_provider, self.tracer_provider
        fork.tallies = _Tallies()  # the instruments are shared; the tallies are not
        return fork

    # ------------------------------------------------------------------ client side

    def call(self, method: str, path: str, job_name: str | None) -> Call:
        """The record of one API call (all its attempts): a span while it runs."""
        return Call(self, method, api_of(path), job_name)

    def sending(self) -> None:
        """The current attempt has its connection slot: the request goes out now."""
        attempt = _attempt.get()
        if attempt is not None:
            attempt.sent_at = self.clock.monotonic()

    # ------------------------------------------------------------------ waiter side

    def watch(self, job_count: int) -> WatchRecord:
        """The record of one watch of ``job_count`` jobs."""
        return WatchRecord(self, job_count)

    def stats(self, requests: Telemetry | None = None) -> WaiterStats:
        """A snapshot; request figures from ``requests`` (the client's recorder) if given."""
        jobs = self.tallies
        calls = (requests or self).tallies
        return WaiterStats(
            requests=dict(calls.requests),
            responses=dict(calls.responses),
            request_errors=dict(calls.request_errors),
            budget_wait=calls.budget_wait,
            throttle_pauses=calls.throttle_pauses,
            jobs_active=jobs.jobs_active,
            jobs_finished=dict(jobs.jobs_finished),
            status_changes=dict(jobs.status_changes),
            poll_failures=dict(jobs.poll_failures),
        )


class _Scope:
    """A ``with`` block that reports how it ended."""

    __slots__ = ()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close(exc)

    def _close(self, exc: BaseException | None) -> None:
        raise NotImplementedError


class Call(_Scope):
    """One API call: ``with call:`` spans it; attempts, budget waits and retries inside."""

    __slots__ = ("_api", "_job_name", "_method", "_span", "_telemetry", "attributes")

    def __init__(self, telemetry: Telemetry, method: str, api: str, job_name: str | None) -> None:
        self._telemetry = telemetry
        self._method = method
        self._api = api
        self._job_name = job_name
        self._span: Any = None
        self.attributes = {"cdm.api": api}

    def __enter__(self) -> Call:
        otel = self._telemetry._otel
        if otel is not None:
            template = URL_TEMPLATES[self._api]
            attributes: dict[str, Any] = {
                "http.request.method": self._method,
                "url.template": template,
                "cdm.api": self._api,
                **self._telemetry._server,
            }
            if self._job_name is not None:
                attributes["cdm.job.name"] = self._job_name
            with self._telemetry.guard("span start"):
                self._span = otel.tracer.start_span(
                    f"{self._method} {template}", kind=otel.span_kind_client, attributes=attributes
                )
        return self

    def _close(self, exc: BaseException | None) -> None:
        span = self._span
        if span is None:
            return
        with self._telemetry.guard("span end"):
            if exc is None:
                span.set_attribute("http.response.status_code", 200)
            else:
                if isinstance(exc, APIError) and exc.status_code is not None:
                    span.set_attribute("http.response.status_code", exc.status_code)
                span.set_attribute("error.type", error_type(exc))
                span.set_status(self._telemetry._otel.status_error)  # type: ignore[union-attr]
            span.end()

    def attempt(self) -> _Attempt:
        """One attempt: counted as a request once :meth:`Telemetry.sending` was called."""
        return _Attempt(self)

    def budget_wait(self) -> _BudgetWait:
        """Around taking a budget slot: the time it took."""
        return _BudgetWait(self)

    def throttled(self) -> None:
        """A 429 or ``Retry-After`` paused the budget."""
        self._telemetry.tallies.throttle_pauses += 1
        otel = self._telemetry._otel
        if otel is not None:
            with self._telemetry.guard("metric"):
                otel.throttle_pauses.add(1, self.attributes)

    def retrying(self, error: BaseException, delay: float) -> None:
        """The call failed with ``error`` and is retried after ``delay`` seconds."""
        if self._span is not None:
            attributes: dict[str, Any] = {"error.type": error_type(error), "cdm.retry.delay": delay}
            if isinstance(error, APIError) and error.status_code is not None:
                attributes["http.response.status_code"] = error.status_code
            with self._telemetry.guard("span event"):
                self._span.add_event("cdm_status.retry", attributes)


class _Attempt(_Scope):
    __slots__ = ("_call", "_token", "sent_at")

    def __init__(self, call: Call) -> None:
        self._call = call
        self.sent_at: float | None = None
        self._token: contextvars.Token[_Attempt | None] | None = None

    def __enter__(self) -> _Attempt:
        self._token = _attempt.set(self)
        return self

    def _close(self, exc: BaseException | None) -> None:
        assert self._token is not None
        _attempt.reset(self._token)
        if self.sent_at is None:
            return  # never left this process (cancelled while queued for a connection)
        call = self._call
        telemetry = call._telemetry
        elapsed = telemetry.clock.monotonic() - self.sent_at
        tallies = telemetry.tallies
        tallies.requests[call._api] += 1
        attributes: dict[str, Any]
        if exc is None:
            tallies.responses[200] += 1
            attributes = {"cdm.api": call._api, "http.response.status_code": 200}
        elif isinstance(exc, APIError) and exc.status_code is not None:
            tallies.responses[exc.status_code] += 1
            attributes = {"cdm.api": call._api, "http.response.status_code": exc.status_code}
        else:
            kind = error_type(exc)
            tallies.request_errors[kind] += 1
            attributes = {"cdm.api": call._api, "error.type": kind}
        otel = telemetry._otel
        if otel is not None:
            with telemetry.guard("metric"):
                otel.requests.add(1, attributes)
                otel.duration.record(elapsed, call.attributes)


class _BudgetWait(_Scope):
    __slots__ = ("_call", "_started")

    def __init__(self, call: Call) -> None:
        self._call = call
        self._started = 0.0

    def __enter__(self) -> _BudgetWait:
        self._started = self._call._telemetry.clock.monotonic()
        return self

    def _close(self, exc: BaseException | None) -> None:
        if exc is not None:
            # No slot was taken (the waiter stopped before one came): no request follows,
            # so there is no wait to count for one.
            return
        telemetry = self._call._telemetry
        waited = telemetry.clock.monotonic() - self._started
        telemetry.tallies.budget_wait += waited
        if telemetry._otel is not None:
            with telemetry.guard("metric"):
                telemetry._otel.budget_wait.record(waited, self._call.attributes)


class WatchRecord:
    """One watch: its span, and the job figures (active, finished, changes, failures)."""

    __slots__ = ("_context_token", "_span", "_telemetry", "job_count", "remaining", "started")

    def __init__(self, telemetry: Telemetry, job_count: int) -> None:
        self._telemetry = telemetry
        self.job_count = job_count
        self.remaining = 0
        self.started = False
        self._span: Any = None
        self._context_token: Any = None

    def start(self, unfinished: int, *, attach: bool = True) -> None:
        """The watch runs, with ``unfinished`` jobs still to end: its span opens and they
        count as active. With ``attach``, the span becomes the current one of this task
        (the parent of the requests it makes); else see :meth:`activated`."""
        self.started = True
        self.remaining = unfinished
        self._telemetry.tallies.jobs_active += unfinished
        otel = self._telemetry._otel
        if otel is not None:
            with self._telemetry.guard("metric"):
                otel.jobs_active.add(unfinished)
            with self._telemetry.guard("span start"):
                self._span = otel.tracer.start_span(
                    "cdm_status.watch", attributes={"cdm.jobs.count": self.job_count}
                )
            if attach and self._span is not None:
                with self._telemetry.guard("context"):
                    self._context_token = otel.context.attach(otel.set_span_in_context(self._span))

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """While inside, the watch's span is the current one of this task: requests
        made meanwhile nest under it (a shared poll made on behalf of this watch)."""
        otel = self._telemetry._otel
        if otel is None or self._span is None or not self.started:
            yield
            return
        token = None
        with self._telemetry.guard("context"):
            token = otel.context.attach(otel.set_span_in_context(self._span))
        try:
            yield  # what the block raises is the block's: never swallowed here
        finally:
            if token is not None:
                with self._telemetry.guard("context"):
                    otel.context.detach(token)

    def end(self) -> None:
        """The watch ends: jobs never finished (the reader left) are no longer active;
        the span closes."""
        if not self.started:
            return
        self.started = False
        self._telemetry.tallies.jobs_active -= self.remaining
        otel = self._telemetry._otel
        if otel is not None:
            with self._telemetry.guard("metric"):
                otel.jobs_active.add(-self.remaining)
            if self._context_token is not None:
                with self._telemetry.guard("context"):
                    otel.context.detach(self._context_token)
                self._context_token = None
            if self._span is not None:
                with self._telemetry.guard("span end"):
                    self._span.end()
        self.remaining = 0

    def status_changed(self, status: str) -> None:
        """A job was seen in a new status (``JobStatus`` value)."""
        self._telemetry.tallies.status_changes[status] += 1
        otel = self._telemetry._otel
        if otel is not None:
            with self._telemetry.guard("metric"):
                otel.status_changes.add(1, {"cdm.status": status})

    def poll_failed(self, error: BaseException) -> None:
        """A poll failed and the job stays watched."""
        kind = error_type(error)
        self._telemetry.tallies.poll_failures[kind] += 1
        otel = self._telemetry._otel
        if otel is not None:
            with self._telemetry.guard("metric"):
                otel.poll_failures.add(1, {"error.type": kind})

    def job_finished(self, outcome: str) -> None:
        """A job ended with ``outcome`` (``OutcomeKind`` value)."""
        tallies = self._telemetry.tallies
        tallies.jobs_finished[outcome] += 1
        otel = self._telemetry._otel
        if otel is not None:
            with self._telemetry.guard("metric"):
                otel.jobs_finished.add(1, {"cdm.outcome": outcome})
        if self.started:
            self.remaining -= 1
            tallies.jobs_active -= 1
            if otel is not None:
                with self._telemetry.guard("metric"):
                    otel.jobs_active.add(-1)
