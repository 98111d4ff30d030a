"""A clock that reads coarser than it sleeps must not make the engine spin.

asyncio under ``looptime`` reads the loop's time rounded to a microsecond; Windows'
monotonic clock ticks every 15.6 ms. A poll due a hair after such a reading is napped
for that hair, the sleep ends, and the clock reads the same as before: going by the
reading alone the engine napped again and again, spinning a core (under ``looptime``
forever, as time only moves when the loop is idle).

The loop's own timers are the other half: ``looptime`` before 0.8 (0.7 is the last release
for Python 3.10) moves the loop's clock in whole microseconds and never fires a timer due
a fraction of one after a tick, so the loop spins at that tick for good.
"""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

from cdm_status import JobStatus, JobStatusWaiter, LoopClock, RateLimiter
from cdm_status._clock import loop_deadline
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


def test_the_loop_clock_waits_whole_microseconds_never_less_than_asked() -> None:
    ends: list[float] = []

    async def main() -> None:
        clock = LoopClock()
        for seconds in (2.9e-7, 1.0000003, 60 / 7, 0.25):
            await clock.sleep(seconds)
            ends.append(trio.current_time())
        with loop_deadline(0.5000004):  # a request's deadline
            await trio.sleep_forever()
        ends.append(trio.current_time())

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
    ticks = [t * 1e6 for t in ends]
    assert all(abs(tick - round(tick)) < 1e-3 for tick in ticks), ticks
    assert [round(tick) for tick in ticks] == [
        1,
        1 + 1_000_001,
        1_000_002 + 8_571_429,
        9_571_431 + 250_000,
        9_821_431 + 500_001,
    ]
