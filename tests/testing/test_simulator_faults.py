"""Injected faults reach the client as the errors a real network and gateway produce."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from cdm_status import (
    JobStatus,
    RateLimitedError,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    ServiceUnavailableError,
    TransportError,
)
from cdm_status.testing import CDMSimulator, FakeClock, FaultKind, Faults, JobPlan
from tests.support.budgets import UNMETERED

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> CDMSimulator:
    sim = CDMSimulator(clock=clock)
    sim.add_job("j", plan=JobPlan(5, 500))
    return sim


async def fails_with(sim: CDMSimulator, fault: str, error: type[Exception]) -> Exception:
    sim.faults.script([fault])
    with pytest.raises(error) as raised:
        await sim.client(
            budget=UNMETERED, list_budget=UNMETERED, retry=RetryPolicy.never()
        ).get_status("j")
    assert sim.faults.scripted == 0
    assert sim.stats.faults[fault] == 1
    return raised.value


async def test_503_with_and_without_retry_after(sim: CDMSimulator) -> None:
    plain = await fails_with(sim, "503", ServiceUnavailableError)
    assert getattr(plain, "retry_after", None) is None
    sim.faults.retry_after = 7
    asked = await fails_with(sim, "503-retry-after", ServiceUnavailableError)
    assert getattr(asked, "retry_after", None) == 7.0


async def test_500_is_cdm_system_error(sim: CDMSimulator) -> None:
    error = await fails_with(sim, "500", ServerError)
    assert getattr(error, "error_code", None) == "Cdm.0000"
    assert getattr(error, "status_code", None) == 500


async def test_504_is_the_gateway_backend_timeout(sim: CDMSimulator) -> None:
    error = await fails_with(sim, "504", ServerError)
    assert getattr(error, "error_code", None) == "APIGW.0201"
    assert getattr(error, "request_id", None)


async def test_429_fault(sim: CDMSimulator) -> None:
    error = await fails_with(sim, "429", RateLimitedError)
    assert getattr(error, "error_code", None) == "APIG.0308"


@pytest.mark.parametrize("fault", ["drop", "truncate"])
async def test_broken_connections_are_transport_errors(sim: CDMSimulator, fault: str) -> None:
    error = await fails_with(sim, fault, TransportError)
    assert isinstance(error.__cause__, httpx.RemoteProtocolError)
    assert sim.stats.by_status[0] == 1  # no complete answer was served


async def test_transport_raises_httpx_errors(sim: CDMSimulator) -> None:
    sim.faults.script(["drop"])
    async with sim.http_client() as http:
        with pytest.raises(httpx.TransportError):
            await http.get(f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/j/status")


async def test_non_json_body(sim: CDMSimulator) -> None:
    await fails_with(sim, "not-json", ResponseFormatError)


async def test_latency_is_spent_on_the_simulator_clock(sim: CDMSimulator, clock: FakeClock) -> None:
    sim.faults.latency = 12.5
    sim.faults.script([FaultKind.SLOW])
    async with clock.autojump():
        submission = await sim.client(budget=UNMETERED, list_budget=UNMETERED).get_status("j")
    assert clock.monotonic() == 12.5
    assert submission.status is JobStatus.RUNNING  # answered as of its arrival + latency


async def test_a_script_then_normal_service_and_retries_recover(
    sim: CDMSimulator, clock: FakeClock
) -> None:
    sim.faults.script(["503", "504", None, "429"])
    async with clock.autojump():
        first = await sim.client(budget=UNMETERED, list_budget=UNMETERED).get_status(
            "j"
        )  # retried twice on the fake clock
        second = await sim.client(budget=UNMETERED, list_budget=UNMETERED).get_status("j")
    assert first.job_name == second.job_name == "j"
    assert sim.stats.by_status == {503: 1, 504: 1, 200: 2, 429: 1}


async def test_an_outage_window(sim: CDMSimulator, clock: FakeClock) -> None:
    window = sim.faults.outage(clock.time() + 10, 30)
    client = sim.client(budget=UNMETERED, list_budget=UNMETERED, retry=RetryPolicy.never())
    await client.get_status("j")
    await clock.advance(10)
    assert window.covers(clock.time())
    for _ in range(3):
        with pytest.raises(ServiceUnavailableError):
            await client.get_status("j")
        await clock.advance(9.9)
    await clock.advance(0.3)
    await client.get_status("j")
    assert sim.stats.by_status == {200: 2, 503: 3}


async def test_random_faults_are_seeded(clock: FakeClock) -> None:
    async def run(seed: int) -> list[bool]:
        sim = CDMSimulator(clock=clock, seed=seed, faults=Faults(unavailable=0.3, drop=0.1))
        sim.add_job("j")
        client = sim.client(budget=UNMETERED, list_budget=UNMETERED, retry=RetryPolicy.never())
        outcomes = []
        for _ in range(30):
            try:
                await client.get_status("j")
                outcomes.append(True)
            except (ServiceUnavailableError, TransportError):
                outcomes.append(False)
        return outcomes

    first = await run(3)
    assert first == await run(3)
    assert first != await run(4)


async def test_probabilities_reach_the_client(clock: FakeClock) -> None:
    sim = CDMSimulator(clock=clock, faults=Faults(unavailable=0.5))
    sim.add_job("j")
    client = sim.client(budget=UNMETERED, list_budget=UNMETERED, retry=RetryPolicy.never())
    for _ in range(40):
        with contextlib.suppress(ServiceUnavailableError):
            await client.get_status("j")
    assert 8 < sim.stats.by_status[503] < 32
    sim.faults.clear()
    await client.get_status("j")


def test_fault_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(drop=1.5)
    with pytest.raises(ValueError, match="more than 1"):
        Faults(drop=0.6, unavailable=0.6)
    with pytest.raises(ValueError):  # noqa: PT011
        Faults().script(["418"])
