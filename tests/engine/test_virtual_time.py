"""The waiter with its DEFAULT clocks under a virtual loop clock.

Trio's ``MockClock(autojump_threshold=0)`` (pytest-trio's ``autojump_clock``) moves the
loop's clock whenever every task waits; ``looptime`` does the same for pytest-asyncio's
loops when no callback is ready. The waiter, its
rate limiters and the client's retries read that same clock (``LoopClock`` reads the
loop's), so hours of polling pass in a fraction of a real second, and deadlines land where
they should. Only the public API is used: ``JobStatusWaiter(client).wait`` and ``watch``
inside ``async with JobStatusWaiter(client) as waiter``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import anyio
import pytest

from cdm_status import (
    CDMClient,
    JobDone,
    JobStatus,
    JobStatusWaiter,
    LoopClock,
    OutcomeKind,
    WaitTimeoutError,
)
from cdm_status.testing import CDMSimulator, JobPlan
from tests.support.storm import check_against_truth, migration, poll_failures

Scenario = Callable[[CDMSimulator, CDMClient], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {}
FAST = 30.0
"""Real seconds a single-job scenario may take: a tenth of what its wait lasts on the
loop's clock (310 s and more), so a real-clock wait fails, while a loaded CI machine
does not. How fast it really is is measured (about 0.2-0.5 s), not asserted."""


def scenario(function: Scenario) -> Scenario:
    SCENARIOS[function.__name__] = function
    return function


@scenario
async def wait_for_one_job(sim: CDMSimulator, client: CDMClient) -> None:
    sim.add_job("nightly", plan=JobPlan(boot_seconds=10, run_seconds=300))
    started, real = anyio.current_time(), time.perf_counter()
    submission = await JobStatusWaiter(client).wait("nightly")
    assert submission.status is JobStatus.SUCCEEDED
    # Seen within a poll interval of the end, on the loop's clock.
    assert 310 <= anyio.current_time() - started <= 310 + 90
    assert time.perf_counter() - real < FAST


@scenario
async def timeout_ends_on_the_virtual_clock(sim: CDMSimulator, client: CDMClient) -> None:
    sim.add_job("long", plan=JobPlan(boot_seconds=10, run_seconds=36_000))
    started, real = anyio.current_time(), time.perf_counter()
    with pytest.raises(WaitTimeoutError) as raised:
        await JobStatusWaiter(client).wait("long", timeout=600)
    elapsed = anyio.current_time() - started
    assert 600 <= elapsed <= 700
    assert raised.value.submission is not None
    assert raised.value.submission.status is JobStatus.RUNNING
    assert time.perf_counter() - real < FAST


@scenario
async def no_timeout_waits_an_hour(sim: CDMSimulator, client: CDMClient) -> None:
    # Before: this spun a core forever. The spare budget polls a lone job every 2 s, so
    # an hour is ~1,800 polls: a few real seconds.
    sim.add_job("huge", plan=JobPlan(boot_seconds=60, run_seconds=3600))
    started, real = anyio.current_time(), time.perf_counter()
    submission = await JobStatusWaiter(client).wait("huge")
    assert submission.status is JobStatus.SUCCEEDED
    assert 3660 <= anyio.current_time() - started <= 3660 + 90
    assert time.perf_counter() - real < 10 * FAST


@scenario
async def hundreds_of_subjobs(sim: CDMSimulator, client: CDMClient) -> None:
    names = sim.add_database_job(
        "warehouse", 400, parallelism=400, failure_rate=0.05, run_seconds=(60.0, 120.0)
    )
    lags = []
    async with JobStatusWaiter(client) as waiter, waiter.watch(names) as events:
        async for event in events:
            if isinstance(event, JobDone):
                finished = sim.finished_at(event.job_name)
                assert finished is not None
                lags.append(sim.clock.time() - finished)
                truth = sim.final_status(event.job_name)
                assert event.outcome.submission is not None
                assert event.outcome.submission.status is truth
    assert len(lags) == 400
    # Found soon after each subjob ended: never the days a clock mix-up gave.
    assert max(lags) < 900


SCENARIO_IDS = list(SCENARIOS)


@pytest.mark.trio
@pytest.mark.parametrize("name", SCENARIO_IDS)
async def test_under_trio_mock_clock(
    name: str, autojump_clock: object, cdm_simulator: CDMSimulator, cdm_client: CDMClient
) -> None:
    assert isinstance(cdm_simulator.clock, LoopClock)  # the fixture follows the loop
    async with cdm_client:
        await SCENARIOS[name](cdm_simulator, cdm_client)


async def storm() -> None:
    sim, names = migration(LoopClock(), 300, faulty=True)
    events = []
    async with (
        sim.client() as client,
        JobStatusWaiter(client) as waiter,
        waiter.watch(names) as stream,
    ):
        events = [event async for event in stream]
    check_against_truth(sim, names, events)
    assert poll_failures(events) > 0
    outcomes = [e.outcome.kind for e in events if isinstance(e, JobDone)]
    assert len(outcomes) == 300
    assert OutcomeKind.TIMED_OUT not in outcomes
    assert sim.stats.max_in_window("status", 60.0) <= 120


@pytest.mark.trio
async def test_the_storm_under_trio_mock_clock(autojump_clock: object) -> None:
    await storm()


@pytest.mark.asyncio
@pytest.mark.looptime
@pytest.mark.parametrize("name", SCENARIO_IDS)
async def test_under_looptime(
    name: str, cdm_simulator: CDMSimulator, cdm_client: CDMClient
) -> None:
    # looptime moves the asyncio loop's clock only when no callback is ready: a busy loop
    # anywhere (a nap that never lets time move on) stalls the scenario for good.
    assert isinstance(cdm_simulator.clock, LoopClock)  # the fixture follows the loop
    async with cdm_client:
        await SCENARIOS[name](cdm_simulator, cdm_client)


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_the_storm_under_looptime() -> None:
    await storm()


def test_plain_tests_keep_the_fake_clock(cdm_simulator: CDMSimulator) -> None:
    from cdm_status.testing import FakeClock

    assert isinstance(cdm_simulator.clock, FakeClock)
