"""The pytest fixtures that cdm-status installs, used the way a pytest-asyncio suite would.

Users' suites often run on pytest-asyncio rather than anyio's plugin; the fixtures are
synchronous so that they work under either. These tests run under pytest-asyncio.
"""

from __future__ import annotations

import pytest

from cdm_status import CDMClient, JobFailedError, JobStatus, JobStatusWaiter
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan


@pytest.mark.asyncio
async def test_fixtures_give_a_simulator_on_a_fake_clock_and_a_bound_client(
    cdm_simulator: CDMSimulator, cdm_client: CDMClient
) -> None:
    assert isinstance(cdm_simulator.clock, FakeClock)
    cdm_simulator.add_job("nightly", plan=JobPlan(boot_seconds=10, run_seconds=300))
    assert (await cdm_client.get_status("nightly")).status is JobStatus.BOOTING
    await cdm_simulator.clock.advance(400)
    finished = await cdm_client.get_status("nightly")
    assert finished.status is JobStatus.SUCCEEDED
    assert finished.counters is not None
    assert finished.counters.rows_written == 100_000


@pytest.mark.asyncio
async def test_a_waiter_on_the_fixtures_runs_hours_without_waiting(
    cdm_simulator: CDMSimulator, cdm_client: CDMClient
) -> None:
    cdm_simulator.add_job("etl", plan=JobPlan(boot_seconds=30, run_seconds=7200))
    cdm_simulator.add_job(
        "broken",
        plan=JobPlan(boot_seconds=30, run_seconds=600, outcome=JobStatus.FAILED),
    )
    clock = cdm_simulator.clock
    assert isinstance(clock, FakeClock)
    waiter = JobStatusWaiter(cdm_client, clock=clock)
    async with clock.autojump():
        done = await waiter.wait("etl")
        with pytest.raises(JobFailedError) as failed:
            await waiter.wait("broken")
    assert done.status is JobStatus.SUCCEEDED
    assert failed.value.error_summary
    assert clock.monotonic() >= 7230
