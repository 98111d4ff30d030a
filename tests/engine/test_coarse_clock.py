"""A clock that reads coarser than it sleeps must not make the engine spin.

asyncio under ``looptime`` reads the loop's time rounded to a microsecond; Windows'
monotonic clock ticks every 15.6 ms. A poll due a hair after such a reading is napped
for that hair, the sleep ends, and the clock reads the same as before: going by the
reading alone the engine napped again and again, spinning a core (under ``looptime``
forever, as time only moves when the loop is idle).
"""

from __future__ import annotations

import math

import pytest

from cdm_status import JobStatus, JobStatusWaiter, RateLimiter
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan

pytestmark = pytest.mark.anyio


class CoarseClock(FakeClock):
    """A fake clock read to the microsecond below, as ``looptime`` reads the loop's
    time; it counts the sleeps asked of it, and fails a run that spins on them."""

    def __init__(self, most_sleeps: int) -> None:
        super().__init__()
        self.sleeps = 0
        self.most_sleeps = most_sleeps

    def monotonic(self) -> float:
        return math.floor(super().monotonic() * 1e6) / 1e6

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps > self.most_sleeps:
            raise AssertionError(f"{self.sleeps} sleeps: spinning on a hair of time")
        await super().sleep(seconds)


async def test_an_hour_wait_on_a_coarse_clock_naps_once_per_step() -> None:
    clock = CoarseClock(most_sleeps=50_000)
    sim = CDMSimulator(clock=clock)
    sim.add_job("huge", plan=JobPlan(boot_seconds=60, run_seconds=3600))
    async with clock.autojump(), sim.client() as client:
        started = clock.monotonic()
        submission = await JobStatusWaiter(client).wait("huge")
    assert submission.status is JobStatus.SUCCEEDED
    assert 3660 <= clock.monotonic() - started <= 3660 + 90
    polls = sim.stats.by_endpoint["status"]
    assert polls > 100  # an hour of polling, however the schedule spaces it
    # One nap before each poll, one rate-limiter wait: never a run of naps in between
    # (reading alone gave ~4 per poll here, and forever under looptime).
    assert clock.sleeps <= 2 * polls + 20, (clock.sleeps, polls)


async def test_the_rate_limiter_on_a_coarse_clock_sleeps_once_per_slot() -> None:
    clock = CoarseClock(most_sleeps=1_000)
    limiter = RateLimiter(per_minute=7, burst=1, clock=clock)  # a slot every 60/7 s
    async with clock.autojump():
        for _ in range(200):
            await limiter.acquire()
    assert limiter.acquired == 200
    # One sleep per slot, give or take where the token and window counts disagree by a
    # hair; the slots keep to the 61-second window (7 per window).
    assert clock.sleeps <= 2 * 200, clock.sleeps
    assert 199 * 60 / 7 <= clock.monotonic() <= 199 * 61 / 7
