"""The engine's one owner: who runs it, what readers may rely on, and the client's budget.

Every test here runs the engine the way services, the CLI and Airflow do: inside
``async with JobStatusWaiter(client) as waiter`` (or an un-entered waiter's ``wait()``),
on asyncio and trio, on virtual time.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Callable
from urllib.parse import unquote

import anyio
import httpx
import pytest

from cdm_status import (
    JobDone,
    JobFailedError,
    JobStatus,
    JobStatusWaiter,
    OutcomeKind,
    PollPolicy,
    StatusChanged,
    WaiterClosedError,
)
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, RateLimits
from tests.support.budgets import BookingBudget
from tests.support.simulated import CountingTransport
from tests.support.storm import migration

pytestmark = pytest.mark.anyio


class TimedLog(httpx.AsyncBaseTransport):
    """Passes requests on, logging each status request's (clock time, job)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: FakeClock) -> None:
        self.inner = inner
        self.clock = clock
        self.status: list[tuple[float, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode().split("?")[0]
        if path.endswith("/status"):
            self.status.append((self.clock.monotonic(), unquote(path.split("/")[-2])))
        return await self.inner.handle_async_request(request)


def one_cluster(clock: FakeClock, names: list[str], run_for: float = 600.0) -> CDMSimulator:
    sim = CDMSimulator(clock=clock, seed=1, limits=RateLimits.cdm_defaults())
    for name in names:
        sim.add_job(name, plan=JobPlan(boot_seconds=5.0, run_seconds=run_for))
    return sim


# ---------------------------------------------------------------------- one owner


def test_watch_on_a_waiter_that_is_not_running_says_how() -> None:
    waiter = JobStatusWaiter(CDMSimulator(clock=FakeClock()).client())
    with pytest.raises(RuntimeError) as raised:
        waiter.watch(["a"])
    message = str(raised.value)
    assert "\n" not in message
    assert "async with JobStatusWaiter(client) as waiter:" in message


async def test_subscriptions_left_open_end_with_a_typed_error_when_the_block_ends() -> None:
    clock = FakeClock()
    sim = one_cluster(clock, ["a", "b"], run_for=3600.0)
    async with sim.client() as client, clock.autojump():
        async with JobStatusWaiter(client, clock=clock, strategy="per_job") as waiter:
            sub = waiter.watch(["a", "b"])
            first = await anext(sub)
            assert isinstance(first, StatusChanged)
        with pytest.raises(WaiterClosedError) as raised:  # never a hang
            async for _ in sub:
                pass
    assert raised.value.pending == 2
    assert "async with JobStatusWaiter(client) as waiter:" in str(raised.value)


async def test_a_subscription_whose_jobs_all_ended_reads_to_its_end_after_the_block() -> None:
    clock = FakeClock()
    sim = one_cluster(clock, ["a"], run_for=60.0)
    async with sim.client() as client, clock.autojump():
        async with JobStatusWaiter(client, clock=clock, strategy="per_job") as waiter:
            sub = waiter.watch(["a"])
            await clock.sleep(600)  # the job ends meanwhile; nobody reads
        events = [event async for event in sub]  # what was decided is still there
    assert isinstance(events[-1], JobDone)
    assert events[-1].outcome.kind is OutcomeKind.SUCCEEDED


async def test_an_exception_leaves_the_waiter_block_as_it_was_raised() -> None:
    clock = FakeClock()
    sim = one_cluster(clock, ["doomed"], run_for=60.0)
    sim.add_job("bad", plan=JobPlan(boot_seconds=1.0, run_seconds=30.0, outcome=JobStatus.FAILED))
    async with sim.client() as client, clock.autojump():
        with pytest.raises(JobFailedError):  # not an ExceptionGroup
            async with JobStatusWaiter(client, clock=clock) as waiter:
                await waiter.wait("bad")
        with pytest.raises(KeyError):
            async with JobStatusWaiter(client, clock=clock):
                raise KeyError("mine")


async def test_a_waiter_can_be_entered_again_after_its_block() -> None:
    clock = FakeClock()
    sim = one_cluster(clock, ["a", "b"], run_for=60.0)
    async with sim.client() as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock)
        async with waiter:
            assert (await waiter.wait("a")).status is JobStatus.SUCCEEDED
        async with waiter:
            assert (await waiter.wait("b")).status is JobStatus.SUCCEEDED
        with pytest.raises(RuntimeError):
            waiter.watch(["a"])


async def test_an_event_reaches_its_reader_while_another_request_hangs() -> None:
    # Head of line: a slow answer for one job never holds back another job's events.
    clock = FakeClock()
    sim = one_cluster(clock, ["quick", "stuck"], run_for=3600.0)
    hold = anyio.Event()
    seen: list[tuple[float, str]] = []

    class Hanging(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if "/stuck/status" in request.url.path and not hold.is_set():
                await clock.sleep(20.0)  # the answer for "stuck" takes 20 s
            return await sim.transport().handle_async_request(request)

    http = httpx.AsyncClient(transport=Hanging(), base_url=sim.endpoint)
    async with sim.client(http_client=http) as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock, strategy="per_job", max_concurrency=2)
        async with waiter, waiter.watch(["stuck", "quick"]) as sub:
            async for event in sub:
                if isinstance(event, StatusChanged) and event.job_name == "quick":
                    seen.append((clock.monotonic(), event.job_name))
                    break
    await http.aclose()
    # "quick"'s first answer came at once; its event reached the reader then, not 20 s
    # later when "stuck"'s answer came.
    assert seen
    assert seen[0][0] < 0.1, seen


# ---------------------------------------------------------------------- the budget


async def test_two_waiters_on_one_client_stay_within_one_budget() -> None:
    clock = FakeClock()
    names = [f"job_{index}" for index in range(40)]
    sim = one_cluster(clock, names, run_for=900.0)
    async with sim.client() as client, clock.autojump():
        first = JobStatusWaiter(client, clock=clock, random=random.Random(1), strategy="per_job")
        second = JobStatusWaiter(client, clock=clock, random=random.Random(2), strategy="per_job")
        async with first, second, anyio.create_task_group() as group:
            group.start_soon(first.wait_all, names[:20])
            group.start_soon(second.wait_all, names[20:])
    assert sim.stats.max_in_window("status", 60.0) <= 120
    assert sim.stats.by_endpoint_status["status", 429] == 0


async def test_direct_calls_share_the_waiters_budget() -> None:
    clock = FakeClock()
    names = [f"job_{index}" for index in range(30)]
    sim = one_cluster(clock, [*names, "probe"], run_for=900.0)
    async with sim.client() as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock, random=random.Random(1), strategy="per_job")

        async def probe() -> None:
            for _ in range(200):  # a dashboard asking as fast as it can
                await client.get_status("probe")

        async with waiter, anyio.create_task_group() as group:
            group.start_soon(waiter.wait_all, names)
            group.start_soon(probe)
    assert sim.stats.max_in_window("status", 60.0) <= 120
    assert sim.stats.by_endpoint_status["status", 429] == 0


async def test_readers_of_subscriptions_never_abandon_a_booked_slot() -> None:
    clock = FakeClock()
    names = [f"job_{index}" for index in range(30)]
    sim = one_cluster(clock, names, run_for=300.0)
    budget = BookingBudget(clock)
    outcomes: dict[str, OutcomeKind] = {}
    async with sim.client(budget=budget) as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock, random=random.Random(3), strategy="per_job")

        async def read(part: list[str]) -> None:
            async with waiter.watch(part) as sub:
                async for event in sub:
                    if isinstance(event, JobDone):
                        outcomes[event.job_name] = event.outcome.kind
                    await clock.sleep(0.3)  # a slow reader

        async with waiter, anyio.create_task_group() as group:
            for start in range(0, 30, 10):
                group.start_soon(read, names[start : start + 10])
    assert outcomes == dict.fromkeys(names, OutcomeKind.SUCCEEDED)
    assert budget.booked > 2 * len(names)
    assert budget.abandoned == 0


# ---------------------------------------------------------------------- waiting jobs


def longest_unlooked(
    log: list[tuple[float, str]],
    sim: CDMSimulator,
    names: list[str],
    epoch_to_clock: Callable[[float], float],
) -> tuple[float, float]:
    """The gap between two looks at a job waiting to start that came closest to (or went
    furthest past) its bound, as ``(gap, bound)``. The bound at a look is
    ``max(waiting_max_interval, W / rate)``, W the jobs not yet seen started then (a
    start nobody has looked at yet is unknown to any scheduler) and rate the budget
    share's requests a second."""
    looks: dict[str, list[float]] = {name: [] for name in names}
    for at, name in log:
        looks[name].append(at)
    started, seen_started = {}, {}
    for name in names:
        steps = sim.transitions(name, upcoming=True)
        first_run = next(step for step in steps if step.status is not JobStatus.NEVER_EXECUTED)
        started[name] = epoch_to_clock(first_run.at)
        seen_started[name] = next((t for t in looks[name] if t >= started[name]), math.inf)
    unseen = sorted(seen_started.values())
    policy = PollPolicy()
    rate = 2.0 * policy.budget_share  # CDM's 120 a minute
    worst_ratio, worst = 0.0, (0.0, 0.0)
    for name in names:
        for earlier, later in itertools.pairwise(looks[name]):
            if earlier >= started[name]:
                break  # no longer waiting
            waiting = len(unseen) - bisect.bisect_right(unseen, earlier)
            bound = max(policy.waiting_max_interval, waiting / rate)
            gap = min(later, started[name]) - earlier
            if gap / bound > worst_ratio:
                worst_ratio, worst = gap / bound, (gap, bound)
    return worst


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # a scale test: one loop is enough
async def test_waiting_subjobs_keep_their_bound_and_the_last_end_is_seen_soon() -> None:
    clock = FakeClock()
    sim, names = migration(clock, 1000, faulty=False, parallelism=50)
    log = TimedLog(sim.transport(), clock)
    epoch0, mono0 = clock.time(), clock.monotonic()
    last_outcome = 0.0
    http = httpx.AsyncClient(transport=log, base_url=sim.endpoint)
    async with sim.client(http_client=http) as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock, random=random.Random(5), strategy="per_job")
        async with waiter, waiter.watch(names) as sub:
            async for event in sub:
                if isinstance(event, JobDone):
                    last_outcome = clock.monotonic()
    await http.aclose()
    gap, bound = longest_unlooked(log.status, sim, names, lambda at: at - epoch0 + mono0)
    jitter = PollPolicy().jitter
    assert gap <= bound * (1 + jitter) + 2.0, (gap, bound)
    true_last_end = max(sim.transitions(name)[-1].at for name in names) - epoch0 + mono0
    assert last_outcome - true_last_end <= 60.0, (last_outcome, true_last_end)
    assert sim.stats.by_endpoint_status["status", 429] == 0


async def test_counting_transport_sees_what_the_waiter_sends() -> None:
    # The helper the suites rely on counts one status request per poll.
    clock = FakeClock()
    sim = one_cluster(clock, ["a"], run_for=30.0)
    counting = CountingTransport(sim.transport())
    http = httpx.AsyncClient(transport=counting, base_url=sim.endpoint)
    async with sim.client(http_client=http) as client, clock.autojump():
        await JobStatusWaiter(client, clock=clock, strategy="per_job").wait("a")
    await http.aclose()
    assert counting.status_requests["a"] == sim.stats.by_endpoint["status"] > 1
