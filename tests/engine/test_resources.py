"""A long watch holds no more memory than a short one: every per-request structure of the
library is bounded, whatever the strategy.

A service watches for months: 8 bytes kept per poll is tens of megabytes a month. Here
jobs that run for days are polled thousands of times on a virtual clock, and the memory held by
the library's own objects (everything reachable from the waiter and its client through
the library's objects and plain containers; not the HTTP library, the event loop or the
test kit's simulator, which keeps a history on purpose) is weighed again and again. What
a watch holds goes up and down with its phase (a sweep under way, a job's latest
estimate); what it keeps per request only goes up. So the highest weight of the last
requests must not pass the highest of the first ones. (Walking the objects costs nothing
while the watch runs; tracing every allocation would make this test several times slower.)
"""

from __future__ import annotations

import gc
import random

import anyio
import httpx
import pytest

from cdm_status import JobStatusWaiter
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, RateLimits
from tests.support.resources import held_bytes

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

WARM_UP = 1_000
"""Requests before the first weighing: every job seen, every page read, every table sized."""
POLLS = 3_000
"""Requests from the first weighing to the last."""
EVERY = 250
"""Requests between two weighings, over the first and the last ``SPAN`` requests."""
SPAN = 1_000
SLACK = 2_048
"""Bytes the last weighings may pass the first ones by: state a job gets once, later on
(a float or two of its estimate, 48 bytes), or a sweep under way; against as
little as 1 byte kept per request (3 KB over ``POLLS``)."""


class Milestones(httpx.AsyncBaseTransport):
    """The simulator's transport, setting an event when the requests reach each count."""

    def __init__(self, inner: httpx.AsyncBaseTransport, counts: list[int]) -> None:
        self.inner = inner
        self.sent = 0
        self.reached = {count: anyio.Event() for count in counts}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        event = self.reached.get(self.sent)
        if event is not None:
            event.set()
        return await self.inner.handle_async_request(request)


# Each strategy on one backend: both are covered (the engine's objects, weighed here, are
# the same on either), at half the cost.
@pytest.mark.parametrize(
    ("strategy", "anyio_backend"), [("per_job", "asyncio"), ("list", "asyncio"), ("auto", "trio")]
)
async def test_thousands_of_polls_leave_nothing_behind(strategy: str, anyio_backend: str) -> None:
    clock = FakeClock()
    simulator = CDMSimulator(clock=clock, seed=7, limits=RateLimits.cdm_defaults())
    # Running for months: nothing ends, every strategy keeps polling. Twelve jobs: more
    # than per-job polling can look at within their starting interval, so "auto" sweeps
    # the list (and looks at running jobs between sweeps).
    names = [
        simulator.add_job(f"etl_{index:02d}", plan=JobPlan(5.0 + index, 1e7)) for index in range(12)
    ]
    last = WARM_UP + POLLS
    first_counts = list(range(WARM_UP, WARM_UP + SPAN + 1, EVERY))
    last_counts = list(range(last - SPAN, last + 1, EVERY))
    milestones = Milestones(simulator.transport(), first_counts + last_counts)
    http = httpx.AsyncClient(transport=milestones, base_url=simulator.endpoint)
    weights: dict[int, int] = {}
    async with (
        simulator.client(http_client=http) as client,
        clock.autojump(),
        JobStatusWaiter(client, strategy=strategy, random=random.Random(3)) as waiter,  # type: ignore[arg-type]
        anyio.create_task_group() as group,
    ):

        async def watch() -> None:
            await waiter.wait_all(names)
            for event in milestones.reached.values():  # ended early: never wait for ever
                event.set()

        group.start_soon(watch)
        for count in first_counts + last_counts:
            await milestones.reached[count].wait()
            gc.collect()
            weights[count] = held_bytes(waiter, client)
        group.cancel_scope.cancel()
    await http.aclose()
    first = max(weights[count] for count in first_counts)
    latest = max(weights[count] for count in last_counts)
    assert milestones.sent >= last  # the watch went on to the end
    assert first > 10_000  # the walk does reach the library's structures
    assert latest <= first + SLACK, (
        f"{latest - first:,} bytes more after {POLLS:,} {strategy} requests: {weights}"
    )
