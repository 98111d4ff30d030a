"""Per-user rate limits over any 60-second window, with the gateway's 429 body."""

from __future__ import annotations

import anyio
import pytest

from cdm_status import RateLimitedError, RetryPolicy
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, RateLimits
from tests.support.budgets import UNMETERED

pytestmark = pytest.mark.anyio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_beyond_the_limit_is_429_apig_0308(clock: FakeClock) -> None:
    sim = CDMSimulator(clock=clock, limits=RateLimits(status=5, retry_after=True))
    sim.add_job("j", plan=JobPlan(5, 500))
    client = sim.client(retry=RetryPolicy.never(), budget=UNMETERED, list_budget=UNMETERED)
    for _ in range(5):
        await client.get_status("j")
        await clock.advance(1)
    with pytest.raises(RateLimitedError) as raised:
        await client.get_status("j")
    error = raised.value
    assert error.status_code == 429
    assert error.error_code == "APIG.0308"
    assert error.error_msg == (
        "The throttling threshold has been reached: "
        "policy user over ratelimit,limit:5,time:1 minute"
    )
    assert error.request_id
    assert error.retry_after == 55.0  # the first request leaves the window at 60 s
    await clock.advance(55)
    await client.get_status("j")  # a slot freed up
    assert sim.stats.by_endpoint_status["status", 429] == 1
    assert sim.stats.max_in_window("status") == 6  # arrivals, the refused one included


async def test_limits_are_per_api(clock: FakeClock) -> None:
    sim = CDMSimulator(clock=clock, limits=RateLimits(status=2, list=10))
    sim.add_job("j")
    client = sim.client(retry=RetryPolicy.never(), budget=UNMETERED, list_budget=UNMETERED)
    await client.get_status("j")
    await client.get_status("j")
    await client.list_jobs(page_size=10)  # the list has a budget of its own
    with pytest.raises(RateLimitedError) as raised:
        await client.get_status("j")
    assert raised.value.retry_after is None  # CDM's gateway promises no Retry-After


async def test_cdm_defaults_allow_120_status_requests_a_minute(clock: FakeClock) -> None:
    sim = CDMSimulator(clock=clock, limits=RateLimits.cdm_defaults())
    sim.add_job("j")
    client = sim.client(retry=RetryPolicy.never(), budget=UNMETERED, list_budget=UNMETERED)
    for _ in range(120):
        await client.get_status("j")
    with pytest.raises(RateLimitedError):
        await client.get_status("j")
    base = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/j"
    async with sim.http_client() as http:  # start/stop draw on their own 1,200
        assert (await http.put(f"{base}/stop")).status_code == 200


async def test_a_paced_client_is_never_throttled(clock: FakeClock) -> None:
    sim = CDMSimulator(clock=clock, limits=RateLimits(status=20))
    names = [sim.add_job(f"job_{index}") for index in range(10)]
    client = sim.client(retry=RetryPolicy.never(), requests_per_minute=20)

    async def poll(name: str) -> None:
        for _ in range(6):
            await client.get_status(name)

    async with clock.autojump(), anyio.create_task_group() as group:
        for name in names:
            group.start_soon(poll, name)
    assert sim.stats.by_status == {200: 60}
    assert sim.stats.max_in_window("status") <= 20
    assert clock.monotonic() >= 120  # 60 requests at 20 a minute


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimits(status=0)
    with pytest.raises(ValueError, match="window"):
        RateLimits(window=0)
