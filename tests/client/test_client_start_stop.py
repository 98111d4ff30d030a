"""Starting and stopping jobs through CDMClient, against the simulator (asyncio and trio)."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from cdm_status import (
    BadRequestError,
    CDMClient,
    JobNotFoundError,
    JobStatus,
    JobStatusWaiter,
    RetryPolicy,
    ServiceUnavailableError,
)
from cdm_status._clock import utc_datetime
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, SimulatorAuth

pytestmark = pytest.mark.anyio


def simulator(**options: object) -> CDMSimulator:
    return CDMSimulator(clock=FakeClock(), **options)  # type: ignore[arg-type]


async def test_start_then_wait_for_that_run() -> None:
    sim = simulator()
    sim.add_job("nightly", plan=JobPlan(boot_seconds=20, run_seconds=300), started=False)
    clock = sim.clock
    assert isinstance(clock, FakeClock)
    async with sim.client() as client:
        assert (await client.get_status("nightly")).status is JobStatus.NEVER_EXECUTED
        since = utc_datetime(clock.time())
        started = await client.start_job("nightly")
        assert started.status is JobStatus.BOOTING
        assert started.job_name == "nightly"
        waiter = JobStatusWaiter(client, clock=clock, random=random.Random(1))
        async with clock.autojump():
            done = await waiter.wait("nightly", since=since)
    assert done.status is JobStatus.SUCCEEDED
    assert done.submission_id == started.submission_id


async def test_starting_a_running_job_is_refused_with_cdm_0052() -> None:
    sim = simulator()
    sim.add_job("busy", plan=JobPlan(boot_seconds=20, run_seconds=300))
    async with sim.client() as client:
        with pytest.raises(BadRequestError) as refused:
            await client.start_job("busy")
    assert refused.value.error_code == "Cdm.0052"
    assert refused.value.job_name == "busy"


async def test_stop_ends_the_run_stopped_and_a_second_stop_is_refused() -> None:
    sim = simulator()
    sim.add_job("long", plan=JobPlan(boot_seconds=5, run_seconds=3600))
    clock = sim.clock
    assert isinstance(clock, FakeClock)
    async with sim.client() as client:
        await clock.advance(60)
        await client.stop_job("long")
        assert (await client.get_status("long")).status is JobStatus.STOPPED
        with pytest.raises(BadRequestError) as refused:
            await client.stop_job("long")
    assert refused.value.error_code == "Cdm.0053"


async def test_unknown_jobs_cannot_be_started() -> None:
    async with simulator().client() as client:
        with pytest.raises(JobNotFoundError):
            await client.start_job("ghost")


async def test_a_start_is_never_sent_twice_after_an_ambiguous_failure() -> None:
    sim = simulator()
    sim.add_job("once", started=False)
    sim.faults.script(["503"])
    async with sim.client() as client:
        with pytest.raises(ServiceUnavailableError):
            await client.start_job("once")
    assert sim.stats.by_endpoint["start"] == 1


async def test_a_throttled_start_did_nothing_and_is_retried() -> None:
    sim = simulator()
    sim.add_job("once", plan=JobPlan(boot_seconds=10, run_seconds=60), started=False)
    sim.faults.script(["429"])
    clock = sim.clock
    assert isinstance(clock, FakeClock)
    retry = RetryPolicy(sleep=clock.sleep, random=random.Random(0))
    async with sim.client(retry=retry) as client, clock.autojump():
        started = await client.start_job("once")
    assert started.status is JobStatus.BOOTING
    assert sim.stats.by_endpoint["start"] == 2


async def test_a_signed_start_carries_its_variables_and_passes_signature_checks() -> None:
    sim = simulator(auth=SimulatorAuth(ak="AK4TESTING0000000000", sk="s3cret-sk"))
    sim.add_job("templated", started=False)
    seen: list[httpx.Request] = []
    inner = sim.transport()

    class Recording(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return await inner.handle_async_request(request)

    http = httpx.AsyncClient(transport=Recording(), base_url=sim.endpoint)
    async with sim.client(http_client=http) as client:
        started = await client.start_job("templated", variables={"date": "2026-11-25"})
    await http.aclose()
    assert started.status is JobStatus.BOOTING
    request = seen[-1]
    assert request.method == "PUT"
    assert request.url.raw_path.decode().endswith("/cdm/job/templated/start")
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {"variables": {"date": "2026-11-25"}}
    assert "content-type" in request.headers["authorization"]


async def test_start_and_stop_validate_the_name_before_any_request() -> None:
    async with CDMClient("http://cdm.test", "p", "c") as client:
        with pytest.raises(ValueError, match="empty"):
            await client.start_job("")
        with pytest.raises(ValueError, match="control character"):
            await client.stop_job("a\nb")
