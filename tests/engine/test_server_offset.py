"""A server whose clock is minutes or years away from the client's: a watch reads the
server's dates through the estimated offset, so ``since`` and the end estimates behave as
if the two clocks agreed."""

from __future__ import annotations

import random
from collections import defaultdict
from urllib.parse import unquote

import anyio
import pytest

from cdm_status import JobDone, JobStatusWaiter, StatusChanged
from cdm_status._clock import utc_datetime
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan

pytestmark = pytest.mark.anyio

YEAR = 365 * 86400.0
OFFSETS = [-3 * YEAR, -900.0, 900.0, 3 * YEAR]


async def since_watch(offset: float, *, date_header: bool) -> list[tuple[str, float, int | None]]:
    """A job that ran before; a watch with ``since`` = now; the job starts 30 s later.
    What the watch said: (status, local time, submission id)."""
    clock = FakeClock()
    simulator = CDMSimulator(
        clock=clock, clock_offset=offset, date_resolution=1.0 if date_header else None
    )
    simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=300))
    await clock.advance(1000)  # the first run: over
    since = utc_datetime(clock.time())
    said: list[tuple[str, float, int | None]] = []

    async def start_later() -> None:
        await clock.sleep(30)
        simulator.start_job("orders")

    async with simulator.client() as client, clock.autojump(), anyio.create_task_group() as group:
        group.start_soon(start_later)
        waiter = JobStatusWaiter(client, clock=clock, random=random.Random(1), strategy="per_job")
        async with waiter, waiter.watch(["orders"], since=since, timeout=3600) as stream:
            async for event in stream:
                if isinstance(event, StatusChanged):
                    said.append((event.current.value, event.at.timestamp(), None))
                elif isinstance(event, JobDone):
                    submission = event.outcome.submission
                    number = None if submission is None else submission.submission_id
                    said.append((event.outcome.kind.value, clock.time(), number))
    return said


@pytest.mark.parametrize("date_header", [True, False], ids=["date", "no-date"])
@pytest.mark.parametrize("offset", OFFSETS)
async def test_since_on_the_clients_clock_tells_the_new_run_from_the_old(
    offset: float, date_header: bool
) -> None:
    agreed = await since_watch(0.0, date_header=date_header)
    assert [status for status, _, _ in agreed] == [
        "NEVER_EXECUTED",
        "BOOTING",
        "RUNNING",
        "SUCCEEDED",
        "succeeded",
    ]
    assert agreed[-1][2] == 2  # the new run, not the one before since
    assert await since_watch(offset, date_header=date_header) == agreed


async def looks_per_job(offset: float, strategy: str) -> dict[str, list[float]]:
    """When each running table was looked at, on a whole-database job whose tables report
    linear progress (the estimate aims looks at their ends)."""
    clock = FakeClock()
    simulator = CDMSimulator(clock=clock, seed=5, clock_offset=offset, log_requests=True)
    names = simulator.add_database_job(
        "erp", 12, parallelism=4, run_seconds=(600.0, 1800.0), listed=strategy != "per_job"
    )
    async with simulator.client() as client, clock.autojump():
        waiter = JobStatusWaiter(
            client,
            clock=clock,
            random=random.Random(2),
            strategy=strategy,  # type: ignore[arg-type]
        )
        outcomes = await waiter.wait_all(names, timeout=6 * 3600)
    assert all(outcome.succeeded for outcome in outcomes.values())
    looks: dict[str, list[float]] = defaultdict(list)
    assert simulator.request_log is not None
    for line in simulator.request_log:
        at, _, target, _ = line.split(" ")
        if target.endswith("/status"):
            looks[unquote(target.split("/")[-2])].append(float(at))
    return dict(looks)


# Each strategy on one backend: both are covered, at half the cost.
@pytest.mark.parametrize(("strategy", "anyio_backend"), [("per_job", "trio"), ("auto", "asyncio")])
@pytest.mark.parametrize("offset", [-900.0, 3 * YEAR])
async def test_end_estimates_look_at_the_same_moments_whatever_the_offset(
    offset: float, strategy: str, anyio_backend: str
) -> None:
    agreed = await looks_per_job(0.0, strategy)
    skewed = await looks_per_job(offset, strategy)
    assert skewed.keys() == agreed.keys()
    for job, times in agreed.items():
        assert len(skewed[job]) == len(times), job
        assert max(abs(a - b) for a, b in zip(skewed[job], times, strict=True)) < 1.0, job
