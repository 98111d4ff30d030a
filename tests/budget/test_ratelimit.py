"""RateLimiter on a virtual clock: the per-minute budget, bursts, and pauses."""

from __future__ import annotations

import bisect

import anyio
import pytest

from cdm_status import RateLimiter
from cdm_status.testing import FakeClock


def most_in_any_window(times: list[float], width: float) -> int:
    """The largest number of ``times`` inside any half-open window ``[t, t + width)``."""
    ordered = sorted(times)
    return max(
        bisect.bisect_left(ordered, start + width) - index for index, start in enumerate(ordered)
    )


async def acquire_times(limiter: RateLimiter, clock: FakeClock, count: int) -> list[float]:
    times: list[float] = []
    async with clock.autojump():
        for _ in range(count):
            await limiter.acquire()
            times.append(clock.monotonic())
    return times


@pytest.mark.anyio
async def test_never_more_than_per_minute_in_any_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(120, burst=10, clock=clock)
    times = await acquire_times(limiter, clock, 400)
    assert most_in_any_window(times, 60.0) <= 120
    # ... and not needlessly slow either: 400 requests at 2/s take a bit over 3 minutes.
    assert times[-1] < 4 * 61.0
    assert limiter.acquired == 400


@pytest.mark.anyio
async def test_burst_is_respected() -> None:
    clock = FakeClock()
    limiter = RateLimiter(120, burst=4, clock=clock)
    times = await acquire_times(limiter, clock, 40)
    assert times[:4] == [0.0, 0.0, 0.0, 0.0]  # the burst goes at once
    assert times[4] == pytest.approx(0.5)  # then one every 60/120 s
    assert most_in_any_window(times, 1e-9) <= 4
    # In any stretch of t seconds: at most the burst plus what refills in t.
    for width in (0.5, 1.0, 5.0, 10.0):
        assert most_in_any_window(times, width) <= 4 + width / 0.5


@pytest.mark.anyio
async def test_many_concurrent_callers_share_the_budget() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, burst=3, clock=clock)
    times: list[float] = []

    async def caller() -> None:
        for _ in range(20):
            await limiter.acquire()
            times.append(clock.monotonic())

    async with clock.autojump(), anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(caller)
    assert len(times) == 200
    assert most_in_any_window(times, 60.0) <= 60
    assert most_in_any_window(times, 1e-9) <= 3


@pytest.mark.anyio
async def test_pause_holds_every_caller() -> None:
    clock = FakeClock()
    limiter = RateLimiter(120, burst=4, clock=clock)
    async with clock.autojump():
        await limiter.acquire()
        limiter.pause(10.0)
        await limiter.acquire()
        assert clock.monotonic() == pytest.approx(10.0)
    assert limiter.pauses == 1


def test_shorter_pause_does_not_shorten_a_longer_one() -> None:
    clock = FakeClock()
    limiter = RateLimiter(120, clock=clock)
    limiter.pause(10.0)
    limiter.pause(2.0)
    limiter.pause(-5.0)
    assert limiter.pauses == 1
    assert limiter.next_free(0.0) == 10.0


def test_fresh_limiter_is_free_now() -> None:
    limiter = RateLimiter(120, clock=FakeClock())
    assert limiter.next_free(0.0) == 0.0


def test_burst_never_exceeds_the_per_minute_budget() -> None:
    assert RateLimiter(2, burst=50, clock=FakeClock()).burst == 2


@pytest.mark.parametrize("settings", [{"per_minute": 0}, {"per_minute": -1}, {"burst": 0}])
def test_bad_settings(settings: dict[str, float]) -> None:
    arguments: dict[str, float] = {"per_minute": 120} | settings
    with pytest.raises(ValueError, match="must be"):
        RateLimiter(arguments.pop("per_minute"), **arguments)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_limiter_taking_over_spends_only_what_the_window_left() -> None:
    # 60 requests went through another budget over the last 30 s (a shared budget
    # whose Redis went quiet): the next one waits for the first of them to leave the
    # window, and the window never holds more than 60.
    clock = FakeClock()
    await clock.advance(100.0)
    start = clock.monotonic() - 30.0
    earlier = [start + 0.5 * index for index in range(60)]
    limiter = RateLimiter(60, burst=4, clock=clock)
    limiter.record(earlier)
    assert limiter.next_free(clock.monotonic()) == pytest.approx(start + 61.0)
    later = await acquire_times(limiter, clock, 20)
    assert most_in_any_window(earlier + later, 61.0) <= 60


def test_a_recent_request_through_another_budget_uses_up_the_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(60, burst=4, clock=clock)
    now = clock.monotonic()
    limiter.record([now] * 4)
    assert limiter.next_free(now) == pytest.approx(now + 1.0)  # paced, no burst
