"""Shared set-up for waiter tests on the simulator: a watch run to its end, with counts."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import httpx

from cdm_status import JobDone, JobStatusWaiter, OutcomeKind, StatusChanged
from cdm_status._events import Event
from cdm_status.testing import CDMSimulator, FakeClock


class CountingTransport(httpx.AsyncBaseTransport):
    """Passes requests to the simulator, counting status requests per job."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.status_requests: Counter[str] = Counter()
        self.list_requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().split("?")[0]
        if path.endswith("/status"):
            self.status_requests[unquote(path.split("/")[-2])] += 1
        elif path.endswith("/job/all"):
            self.list_requests += 1
        return await self.inner.handle_async_request(request)


@dataclass
class WatchRun:
    simulator: CDMSimulator
    events: list[Event]
    counting: CountingTransport
    waiter: JobStatusWaiter
    outcomes: dict[str, OutcomeKind] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for event in self.events:
            if isinstance(event, JobDone):
                assert event.job_name not in self.outcomes, f"two JobDone for {event.job_name}"
                self.outcomes[event.job_name] = event.outcome.kind

    def changes(self, job: str) -> list[StatusChanged]:
        return [e for e in self.events if isinstance(e, StatusChanged) and e.job_name == job]


def expected_kind(simulator: CDMSimulator, name: str) -> OutcomeKind:
    final = simulator.final_status(name)
    assert final is not None
    return OutcomeKind.SUCCEEDED if final.is_success else OutcomeKind.FAILED


CLIENT_OPTIONS = ("requests_per_minute", "list_requests_per_minute", "budget", "list_budget")
"""Options of a watch that belong to the client: the budgets are the client's."""


async def run_watch(
    simulator: CDMSimulator,
    names: list[str],
    *,
    timeout: float | None = None,
    since: datetime | None = None,
    **options: Any,
) -> WatchRun:
    """Watch ``names`` on ``simulator`` (whose clock must be a FakeClock) to the end, as
    services do: inside ``async with waiter:``, reading one subscription.

    ``options`` go to the waiter, except the budget's (``requests_per_minute``,
    ``list_requests_per_minute``, ``budget``, ``list_budget``), which go to the client."""
    clock = simulator.clock
    assert isinstance(clock, FakeClock)
    counting = CountingTransport(simulator.transport())
    http = httpx.AsyncClient(transport=counting, base_url=simulator.endpoint)
    client_options = {name: options.pop(name) for name in CLIENT_OPTIONS if name in options}
    options.setdefault("random", random.Random(3))
    client = simulator.client(http_client=http, **client_options)
    waiter = JobStatusWaiter(client, clock=clock, **options)
    async with (
        client,
        clock.autojump(),
        waiter,
        waiter.watch(names, timeout=timeout, since=since) as stream,
    ):
        events = [event async for event in stream]
    await http.aclose()
    return WatchRun(simulator, events, counting, waiter)
