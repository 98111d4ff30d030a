"""A Starlette server-sent-events endpoint streaming a subscription over a real socket:
a client that disconnects midway ends the subscription, and its jobs stop being polled."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from cdm_status import JobStatusWaiter, StatusChanged
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, serve
from tests.support.simulated import CountingTransport

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    # uvicorn serves in the test's own event loop only on asyncio (on trio it would run
    # in a thread, where the virtual clock must not be slept on).
    return "asyncio"


def sse_app(waiter: JobStatusWaiter, *, ended: list[str]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with waiter:  # the application's lifespan runs the engine for every request
            yield

    async def events(request: Request) -> StreamingResponse:
        names = request.query_params["jobs"].split(",")

        async def stream() -> AsyncIterator[str]:
            try:
                async with waiter.watch(names) as subscription:
                    async for event in subscription:
                        if isinstance(event, StatusChanged):
                            data = {"job": event.job_name, "status": event.current.value}
                            yield f"data: {json.dumps(data)}\n\n"
            finally:
                ended.append(",".join(names))

        return StreamingResponse(stream(), media_type="text/event-stream")

    return Starlette(routes=[Route("/events", events)], lifespan=lifespan)


async def test_a_client_leaving_an_sse_stream_stops_the_polling() -> None:
    clock = FakeClock()
    sim = CDMSimulator(clock=clock, seed=1)
    names = [
        sim.add_job(f"load_{i}", plan=JobPlan(boot_seconds=5, run_seconds=7200)) for i in range(3)
    ]
    counting = CountingTransport(sim.transport())
    ended: list[str] = []
    async with httpx.AsyncClient(transport=counting, base_url=sim.endpoint) as http:
        waiter = JobStatusWaiter(
            sim.client(http_client=http), clock=clock, random=random.Random(3), strategy="per_job"
        )
        app = sse_app(waiter, ended=ended)
        async with (
            clock.autojump(),
            serve(app) as url,  # type: ignore[arg-type]
            httpx.AsyncClient(base_url=url) as browser,
        ):
            received = []
            with anyio.fail_after(30):
                async with browser.stream("GET", "/events", params={"jobs": ",".join(names)}) as r:
                    assert r.headers["content-type"].startswith("text/event-stream")
                    async for line in r.aiter_lines():
                        if line.startswith("data: "):
                            received.append(json.loads(line[6:]))
                        if len(received) == 4:
                            break  # the client leaves midway: the connection closes
                # The server notices the disconnect and ends the subscription.
                while not ended:
                    await clock.sleep(1)
            assert ended == [",".join(names)]
            polled = counting.status_requests.copy()
            await clock.sleep(3600)
            assert counting.status_requests == polled  # nobody wants those jobs any more
    statuses = {(e["job"], e["status"]) for e in received}
    assert len(statuses) == 4
    assert {job for job, _ in statuses} <= set(names)
    assert sum(polled.values()) >= 3
