"""OpenTelemetry metrics and spans, read back through the SDK's in-memory reader and
exporter, against the simulator's own counts; and ``waiter.stats()``."""

from __future__ import annotations

import copy
import logging
import pickle
import random
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from cdm_status import (
    JobDone,
    JobStatusWaiter,
    OutcomeKind,
    PollFailed,
    RateLimitedError,
    ServiceUnavailableError,
    StatusChanged,
    TransportError,
    WaiterStats,
)
from cdm_status._events import Event
from cdm_status._telemetry import error_type
from cdm_status.testing import (
    CDMSimulator,
    FakeClock,
    Faults,
    JobPlan,
    RateLimits,
    SimulatorAuth,
)
from tests.support.simulated import expected_kind

pytestmark = pytest.mark.anyio

AK, SK, TOKEN = "AKTELEMETRY000000000", "telemetry-sk-s3cret", "telemetry-token-s3cret"
STATUS_TEMPLATE = "/v1.1/{project_id}/clusters/{cluster_id}/cdm/job/{job_name}/status"


@dataclass
class Recorded:
    simulator: CDMSimulator
    waiter: JobStatusWaiter
    events: list[Event]
    metrics: dict[str, Counter[tuple[tuple[str, Any], ...]]]
    sums: dict[str, float]
    spans: list[ReadableSpan]

    def points(self, metric: str, *keys: str) -> Counter[tuple[Any, ...]]:
        """The metric's values by the given attributes (summed over the others)."""
        out: Counter[tuple[Any, ...]] = Counter()
        for attributes, value in self.metrics.get(metric, Counter()).items():
            found = dict(attributes)
            out[tuple(found.get(key) for key in keys)] += value
        return out


def read_metrics(
    reader: InMemoryMetricReader,
) -> tuple[dict[str, Counter[tuple[tuple[str, Any], ...]]], dict[str, float]]:
    """Counter values by attribute set; histogram counts the same way, sums apart."""
    data = reader.get_metrics_data()
    values: dict[str, Counter[tuple[tuple[str, Any], ...]]] = {}
    sums: dict[str, float] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "cdm_status"
            for metric in scope.metrics:
                counter = values.setdefault(metric.name, Counter())
                for point in metric.data.data_points:
                    key = tuple(sorted((point.attributes or {}).items()))
                    if hasattr(point, "bucket_counts"):
                        counter[key] += point.count
                        sums[metric.name] = sums.get(metric.name, 0.0) + point.sum
                    else:
                        counter[key] += point.value
    return values, sums


async def watch_recorded(
    simulator: CDMSimulator, names: list[str], *, timeout: float | None = None, **options: Any
) -> Recorded:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    exporter = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(exporter))
    clock = simulator.clock
    assert isinstance(clock, FakeClock)
    options.setdefault("random", random.Random(3))
    client = simulator.client(meter_provider=meters, tracer_provider=tracers)
    async with client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock, **options)
        # The engine runs in the waiter: a reader that drives it would call back, each
        # time it takes an event, the one call still waiting for its budget slot, and
        # that call would show as cancelled without a request on the server's side.
        async with waiter, waiter.watch(names, timeout=timeout) as stream:
            events = [event async for event in stream]
    metrics, sums = read_metrics(reader)
    return Recorded(simulator, waiter, events, metrics, sums, list(exporter.get_finished_spans()))


def faulty_simulator(**options: Any) -> CDMSimulator:
    return CDMSimulator(
        clock=FakeClock(), seed=5, limits=RateLimits.cdm_defaults(), faults=Faults(), **options
    )


async def test_requests_and_outcomes_match_the_simulators_own_counts() -> None:
    simulator = faulty_simulator()
    names = simulator.add_database_job(
        "db", 30, parallelism=10, failure_rate=0.2, run_seconds=(30.0, 300.0)
    )
    simulator.faults.script(["503"] * 12 + ["503-retry-after"] * 2 + ["429"] * 6)
    run = await watch_recorded(simulator, [*names, "no_such_job"], strategy="per_job")

    # Every request the simulator served, by API and status code, and nothing else.
    served = simulator.stats.by_endpoint_status
    assert served[("status", 503)] >= 14
    assert served[("status", 429)] >= 6
    requests = run.points("cdm_status.requests", "cdm.api", "http.response.status_code")
    assert requests == Counter({key: value for key, value in served.items() if value})
    assert run.points("cdm_status.requests", "error.type") == Counter({(None,): served.total()})
    # Polled one by one, a job's settings are read at most once (does CDM delete it after
    # its run, or retry it?), and surely for each failed job.
    definitions = served[("job", 200)]
    failures = sum(expected_kind(simulator, n) is OutcomeKind.FAILED for n in names)
    assert failures <= definitions <= len(names)
    by_api = Counter({("status",): served.total() - definitions, ("job",): definitions})
    assert run.points("cdm_status.request.duration", "cdm.api") == by_api

    # Outcomes by kind: the ground truth of the simulator's plans.
    truth = Counter(expected_kind(simulator, name).value for name in names)
    truth["not_found"] += 1
    assert OutcomeKind.FAILED.value in truth
    assert run.points("cdm_status.jobs.finished", "cdm.outcome") == Counter(
        {(kind,): count for kind, count in truth.items()}
    )
    assert run.points("cdm_status.jobs.active") == Counter({(): 0})

    changes = Counter(e.current.value for e in run.events if isinstance(e, StatusChanged))
    assert run.points("cdm_status.status.changes", "cdm.status") == Counter(
        {(status,): count for status, count in changes.items()}
    )
    failures = [e for e in run.events if isinstance(e, PollFailed)]
    assert failures  # the 503s ran some polls out of retries
    assert run.points("cdm_status.poll.failures", "error.type") == Counter(
        {(kind,): count for kind, count in Counter(error_type(e.error) for e in failures).items()}
    )
    limiter_pauses = run.waiter._client.budget.pauses  # type: ignore[attr-defined]
    assert limiter_pauses >= 1
    assert run.points("cdm_status.throttle.pauses", "cdm.api") == Counter(
        {("status",): served[("status", 429)] + 2}  # every 429, and each 503 Retry-After
    )
    assert run.points("cdm_status.budget.wait", "cdm.api") == by_api
    assert run.sums["cdm_status.budget.wait"] > 0  # the pauses held requests back

    # stats(): the same figures, without OpenTelemetry in the way.
    stats = run.waiter.stats()
    assert isinstance(stats, WaiterStats)
    assert stats.requests == {"status": served.total() - definitions, "job": definitions}
    assert stats.requests_sent == served.total()
    responses: Counter[int] = Counter()
    for (_, code), count in served.items():
        responses[code] += count
    assert stats.responses == {code: count for code, count in responses.items() if count}
    assert stats.request_errors == {}
    assert stats.jobs_finished == dict(truth)
    assert stats.jobs_active == 0
    assert stats.status_changes == dict(changes)
    assert sum(stats.poll_failures.values()) == len(failures)
    assert stats.throttle_pauses == served[("status", 429)] + 2
    assert stats.budget_wait == pytest.approx(run.sums["cdm_status.budget.wait"])


async def test_list_sweeps_are_counted_under_the_list_api() -> None:
    simulator = faulty_simulator()
    names = simulator.add_database_job("big", 150, parallelism=30, run_seconds=(60.0, 240.0))
    simulator.faults.script([None] * 3 + ["503"] * 4 + ["429"] * 2)
    run = await watch_recorded(simulator, names, strategy="list")
    served = simulator.stats.by_endpoint_status
    assert served[("list", 200)] > 0
    requests = run.points("cdm_status.requests", "cdm.api", "http.response.status_code")
    # A sweep still in flight when the last job ends is cancelled: the simulator counts it
    # under status 0, the client under error.type "cancelled".
    cancelled = run.points("cdm_status.requests", "cdm.api", "error.type")
    assert {(api, code): count for (api, code), count in requests.items() if code is not None} == {
        (api, code): count for (api, code), count in served.items() if count and code
    }
    assert sum(c for (api, kind), c in cancelled.items() if kind == "cancelled") == served.get(
        ("list", 0), 0
    ) + served.get(("status", 0), 0)
    assert run.points("cdm_status.jobs.finished", "cdm.outcome") == Counter({("succeeded",): 150})


async def test_leaving_a_watch_early_leaves_no_job_active() -> None:
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(exporter))
    clock = FakeClock()
    simulator = CDMSimulator(clock=clock)
    for name in ("a", "b", "c"):
        simulator.add_job(name, plan=JobPlan(boot_seconds=10, run_seconds=3600))
    client = simulator.client()
    async with client, clock.autojump():
        meters = MeterProvider(metric_readers=[reader])
        waiter = JobStatusWaiter(
            client, clock=clock, meter_provider=meters, tracer_provider=tracers
        )
        async with waiter, waiter.watch(["a", "b", "c"]) as stream:
            async for event in stream:
                if isinstance(event, StatusChanged) and event.current.value == "RUNNING":
                    assert waiter.stats().jobs_active == 3
                    stream.cancel("a")
                if isinstance(event, JobDone):
                    break  # b and c never end
    metrics, _ = read_metrics(reader)
    assert metrics["cdm_status.jobs.active"] == Counter({(): 0})
    assert metrics["cdm_status.jobs.finished"] == Counter({(("cdm.outcome", "cancelled"),): 1})
    stats = waiter.stats()
    assert stats.jobs_active == 0
    assert stats.jobs_finished == {"cancelled": 1}
    assert pickle.loads(pickle.dumps(stats)) == stats == copy.deepcopy(stats)
    # The waiter's own providers took the watch; the client's (global, no SDK) the requests.
    assert [span.name for span in exporter.get_finished_spans()] == ["cdm_status.watch"]


def attribute_values(span: ReadableSpan) -> list[str]:
    values = [str(v) for v in (span.attributes or {}).values()]
    values += [str(k) for k in (span.attributes or {})]
    for event in span.events:
        values += [str(v) for v in (event.attributes or {}).values()]
        values.append(event.name)
    values.append(span.name)
    return values


@pytest.mark.parametrize(
    "auth", [SimulatorAuth(token=TOKEN), SimulatorAuth(ak=AK, sk=SK)], ids=["token", "aksk"]
)
async def test_spans_nest_under_the_watch_and_carry_no_secret(auth: SimulatorAuth) -> None:
    simulator = faulty_simulator(auth=auth)
    simulator.add_job("orders", plan=JobPlan(boot_seconds=10, run_seconds=90))
    simulator.add_job("users", plan=JobPlan(boot_seconds=10, run_seconds=30))
    simulator.faults.script(["503", "429", None, "503-retry-after"])
    run = await watch_recorded(simulator, ["orders", "users"], strategy="per_job")
    assert {e.job_name for e in run.events if isinstance(e, JobDone)} == {"orders", "users"}

    (watch,) = [span for span in run.spans if span.name == "cdm_status.watch"]
    requests = [span for span in run.spans if span is not watch]
    assert requests
    assert all(span.kind is SpanKind.CLIENT for span in requests)
    assert watch.attributes == {"cdm.jobs.count": 2}
    for span in requests:
        assert span.parent is not None
        assert span.parent.span_id == watch.context.span_id
        assert span.context.trace_id == watch.context.trace_id
        assert span.name == f"GET {STATUS_TEMPLATE}"
        attributes = dict(span.attributes or {})
        assert attributes["http.request.method"] == "GET"
        assert attributes["url.template"] == STATUS_TEMPLATE
        assert attributes["cdm.api"] == "status"
        assert attributes["cdm.job.name"] in ("orders", "users")
        assert attributes["server.address"] == "cdm-simulator.local"
        assert attributes["server.port"] == 80
    # One span per call; the retries it rode out are its events, with what failed.
    retries = [event for span in requests for event in span.events]
    assert sorted(str((event.attributes or {})["error.type"]) for event in retries) == [
        "429",
        "503",
        "503",
    ]
    assert all(event.name == "cdm_status.retry" for event in retries)
    answered = Counter((span.attributes or {})["http.response.status_code"] for span in requests)
    assert answered == Counter({200: len(requests)})
    assert simulator.stats.total == len(requests) + 3  # the calls plus their retries

    secrets = [TOKEN, AK, SK, simulator.project_id, "Authorization", "X-Auth-Token"]
    seen = " ".join(value for span in run.spans for value in attribute_values(span))
    for secret in secrets:
        assert secret.lower() not in seen.lower()
    for span in run.spans:
        for key in span.attributes or {}:
            assert "signature" not in key
            assert "header" not in key
            assert key != "url.full"


async def test_a_call_that_fails_for_good_is_an_error_span() -> None:
    simulator = faulty_simulator()
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(exporter))
    simulator.faults.script(["503"] * 4)
    simulator.add_job("orders")
    clock = simulator.clock
    assert isinstance(clock, FakeClock)
    client = simulator.client(
        meter_provider=MeterProvider(metric_readers=[reader]), tracer_provider=tracers
    )
    async with client, clock.autojump():
        with pytest.raises(ServiceUnavailableError):
            await client.get_status("orders")
    (span,) = exporter.get_finished_spans()
    assert not span.status.is_ok
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 503
    assert span.attributes["error.type"] == "503"
    assert len(span.events) == 3  # four attempts: three retries
    metrics, _ = read_metrics(reader)
    assert metrics["cdm_status.requests"] == Counter(
        {(("cdm.api", "status"), ("http.response.status_code", 503)): 4}
    )


async def test_a_request_that_never_got_an_answer_counts_by_error_type() -> None:
    reader = InMemoryMetricReader()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    clock = FakeClock()
    simulator = CDMSimulator(clock=clock)
    http = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    client = simulator.client(
        http_client=http, meter_provider=MeterProvider(metric_readers=[reader])
    )
    async with client, clock.autojump():
        with pytest.raises(TransportError):
            await client.get_status("orders")
    await http.aclose()
    metrics, _ = read_metrics(reader)
    assert metrics["cdm_status.requests"] == Counter(
        {(("cdm.api", "status"), ("error.type", "ConnectError")): 4}
    )


def test_error_types_are_low_cardinality_names() -> None:
    assert error_type(ServiceUnavailableError("down", status_code=503)) == "503"
    assert error_type(RateLimitedError("slow down", status_code=429)) == "429"
    cause = httpx.ReadTimeout("slow")
    error = TransportError("GET /x: ReadTimeout")
    error.__cause__ = cause
    assert error_type(error) == "ReadTimeout"
    assert error_type(ValueError("x")) == "ValueError"


WITHOUT_OTEL = """
import sys, importlib.abc

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"{name} is not installed")
        return None

sys.meta_path.insert(0, Refuse())
import anyio
from cdm_status import JobStatusWaiter
from cdm_status.testing import CDMSimulator, FakeClock, Faults, JobPlan

async def main():
    clock = FakeClock()
    simulator = CDMSimulator(clock=clock, faults=Faults())
    simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=40))
    simulator.faults.script(["503"])
    async with simulator.client() as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock)
        outcomes = await waiter.wait_all(["orders"])
    stats = waiter.stats()
    print(outcomes["orders"].kind.value, stats.requests_sent, stats.responses.get(503),
          stats.jobs_finished, stats.jobs_active)
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))

anyio.run(main)
"""


def test_without_the_api_nothing_is_imported_and_stats_still_count() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_OTEL], capture_output=True, text=True, check=True
    )
    first, second = done.stdout.strip().splitlines()
    kind, sent, unavailable, *rest = first.split(" ", 3)
    assert kind == "succeeded"
    assert int(sent) >= 3
    assert unavailable == "1"
    assert rest == ["{'succeeded': 1} 0"]
    assert second == "[]"


# ---------------------------------------------------------------------- isolation


class Hooked(Exception):
    """What the application's own telemetry hook raises."""


class FailingProcessor(SpanProcessor):
    """An application's span processor with a bug in one of its hooks."""

    def __init__(self, hook: str) -> None:
        self.hook = hook
        self.calls = 0

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if self.hook == "on_start":
            self.calls += 1
            raise Hooked("on_start")

    def on_end(self, span: ReadableSpan) -> None:
        if self.hook == "on_end":
            self.calls += 1
            raise Hooked("on_end")


class FailingInstrument:
    def __init__(self, calls: list[str]) -> None:
        self._calls = calls

    def add(self, *args: Any, **kwargs: Any) -> None:
        self._calls.append("add")
        raise Hooked("add")

    record = add


class FailingMeterProvider:
    """An application's meter whose instruments raise (or whose meter cannot be made)."""

    def __init__(self, *, on: str) -> None:
        self.on = on
        self.calls: list[str] = []

    def get_meter(self, *args: Any, **kwargs: Any) -> Any:
        if self.on == "get_meter":
            self.calls.append("get_meter")
            raise Hooked("get_meter")
        provider = self

        class Meter:
            def __getattr__(self, name: str) -> Any:  # create_counter, create_histogram...
                return lambda *args, **kwargs: FailingInstrument(provider.calls)

        return Meter()


@pytest.mark.parametrize(
    "hook", ["on_start", "on_end", "instrument", "get_meter"], ids=lambda hook: hook
)
async def test_a_telemetry_hook_that_raises_changes_no_outcome(
    hook: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cdm_status")
    simulator = faulty_simulator()
    names = [simulator.add_job(f"job_{index}", failure_rate=0.3) for index in range(6)]
    tracers = TracerProvider()
    processor = FailingProcessor(hook)
    tracers.add_span_processor(processor)
    meters: Any = (
        FailingMeterProvider(on=hook) if hook in ("instrument", "get_meter") else MeterProvider()
    )
    clock = simulator.clock
    assert isinstance(clock, FakeClock)
    client = simulator.client(meter_provider=meters, tracer_provider=tracers)
    async with client, clock.autojump():
        waiter = JobStatusWaiter(client, random=random.Random(3))
        outcomes = await waiter.wait_all(names)
        async with waiter, waiter.watch(names[:1]) as sub:
            events = [event async for event in sub]
    assert {name: outcome.kind for name, outcome in outcomes.items()} == {
        name: expected_kind(simulator, name) for name in names
    }
    assert isinstance(events[-1], JobDone)
    raised = processor.calls + len(getattr(meters, "calls", []))
    assert raised >= 1  # the hook was called, and raised
    assert waiter.stats().jobs_finished == Counter(
        kind.value for kind in (*(o.kind for o in outcomes.values()), events[-1].outcome.kind)
    )
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # once, however often
    assert "telemetry" in warnings[0].getMessage()
    assert "Hooked" in warnings[0].getMessage()
