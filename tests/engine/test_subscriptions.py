"""Subscriptions sharing one engine: each job polled once for all, each subscription its
own events and outcomes, and subscriptions consumed from async generators."""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone

import anyio
import httpx
import pytest

from cdm_status import (
    Event,
    JobDone,
    JobOutcome,
    JobStatus,
    JobStatusWaiter,
    OutcomeKind,
    StatusChanged,
)
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, RateLimits
from tests.chaos.test_cancel import live_tasks
from tests.support.budgets import BookingBudget
from tests.support.simulated import CountingTransport, expected_kind, run_watch
from tests.support.storm import migration

pytestmark = pytest.mark.anyio


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def simple_simulator(clock: FakeClock, names: list[str], run_for: float = 600.0) -> CDMSimulator:
    sim = CDMSimulator(clock=clock, seed=1, limits=RateLimits.cdm_defaults())
    for name in names:
        sim.add_job(name, plan=JobPlan(boot_seconds=5.0, run_seconds=run_for))
    return sim


def per_job_waiter(sim: CDMSimulator, http: httpx.AsyncClient) -> JobStatusWaiter:
    return JobStatusWaiter(
        sim.client(http_client=http), clock=sim.clock, random=random.Random(3), strategy="per_job"
    )


async def relay(waiter: JobStatusWaiter, names: list[str]) -> AsyncIterator[Event]:
    """What an Airflow trigger's ``run()`` or an SSE endpoint does: yield inside a watch."""
    async with waiter.watch(names) as subscription:
        async for event in subscription:
            yield event


# ---------------------------------------------------------------------- sharing


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the engine is the same on trio
async def test_a_thousand_subscriptions_cost_about_one_watch_of_their_union() -> None:
    # 250 tables: the thousand subscriptions overlap on every one of them, and the watch
    # of their union runs long enough (a quarter of an hour, 50 tables at a time) to
    # spend both budgets.
    union_sim, names = migration(FakeClock(), 250, faulty=False, parallelism=50)
    union = await run_watch(union_sim, names)
    assert {union.outcomes[n] for n in names} <= {OutcomeKind.SUCCEEDED, OutcomeKind.FAILED}

    clock = FakeClock()
    sim, same_names = migration(clock, 250, faulty=False, parallelism=50)
    assert same_names == names
    picker = random.Random(11)
    subsets = [picker.sample(names, picker.randint(1, 20)) for _ in range(1000)]
    counting = CountingTransport(sim.transport())
    outcomes: list[dict[str, OutcomeKind]] = [{} for _ in subsets]
    async with (
        httpx.AsyncClient(transport=counting, base_url=sim.endpoint) as http,
        clock.autojump(),
    ):
        waiter = JobStatusWaiter(sim.client(http_client=http), clock=clock, random=random.Random(3))
        async with waiter, anyio.create_task_group() as group:
            for index, subset in enumerate(subsets):
                group.start_soon(read_outcomes, waiter.watch(subset), outcomes[index])

    for subset, seen in zip(subsets, outcomes, strict=True):
        assert seen == {name: expected_kind(sim, name) for name in subset}
    assert len({name for subset in subsets for name in subset}) > 240  # they overlap
    assert sim.stats.total <= 1.1 * union_sim.stats.total, (sim.stats.total, union_sim.stats.total)
    assert sim.stats.max_in_window("status", 60.0) <= 120
    assert sim.stats.max_in_window("list", 60.0) <= 120


async def read_outcomes(events: AsyncIterator[Event], into: dict[str, OutcomeKind]) -> None:
    async for event in events:
        if isinstance(event, JobDone):
            assert event.job_name not in into, "two JobDone for one job"
            into[event.job_name] = event.outcome.kind


async def test_overlapping_subscriptions_each_get_their_own_events() -> None:
    clock = FakeClock()
    sim = simple_simulator(clock, ["a", "b", "c"])
    counting = CountingTransport(sim.transport())
    async with (
        httpx.AsyncClient(transport=counting, base_url=sim.endpoint) as http,
        clock.autojump(),
    ):
        waiter = per_job_waiter(sim, http)
        seen: dict[str, list[Event]] = {"ab": [], "bc": [], "short": []}

        async def read(name: str, names: list[str], timeout: float | None = None) -> None:
            async with waiter.watch(names, timeout=timeout) as sub:
                seen[name].extend([event async for event in sub])

        async with waiter, anyio.create_task_group() as group:
            group.start_soon(read, "ab", ["a", "b"])
            group.start_soon(read, "bc", ["b", "c"])
            group.start_soon(read, "short", ["b"], 60.0)

    for name, jobs in (("ab", "ab"), ("bc", "bc")):
        events = seen[name]
        for job in jobs:
            mine = [e for e in events if e.job_name == job]
            assert [e.current for e in mine if isinstance(e, StatusChanged)][-1] is (
                JobStatus.SUCCEEDED
            )
            assert [type(e) for e in mine].count(JobDone) == 1
            assert isinstance(mine[-1], JobDone)
            assert mine[-1].outcome.succeeded
    short_done = [e for e in seen["short"] if isinstance(e, JobDone)]
    assert [d.outcome.kind for d in short_done] == [OutcomeKind.TIMED_OUT]
    # "b" was polled once for three subscriptions: no more often than "a" or "c".
    polls = counting.status_requests
    assert polls["b"] <= max(polls["a"], polls["c"]) + 1


async def test_a_closed_subscription_stops_the_polling_of_its_jobs() -> None:
    clock = FakeClock()
    sim = simple_simulator(clock, ["mine", "shared"], run_for=3600.0)
    counting = CountingTransport(sim.transport())
    async with (
        httpx.AsyncClient(transport=counting, base_url=sim.endpoint) as http,
        clock.autojump(),
    ):
        waiter = per_job_waiter(sim, http)
        async with waiter:
            other = waiter.watch(["shared"])
            sub = waiter.watch(["mine", "shared"])
            async for event in sub:
                if isinstance(event, StatusChanged) and event.job_name == "mine":
                    break
            await sub.aclose()
            assert sub.outcomes == {}
            before = counting.status_requests["mine"]
            shared_before = counting.status_requests["shared"]
            await clock.sleep(600)
            assert counting.status_requests["mine"] == before  # nobody wants it any more
            assert counting.status_requests["shared"] > shared_before  # someone still does
            await other.aclose()


# ---------------------------------------------------------------------- generators


def test_the_first_event_of_a_generator_under_asyncio_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``asyncio.run(anext(gen()))``, as Airflow's ``dag.test()`` takes a trigger's first
    event; asyncio then closes the generator from its own shutdown code."""
    import asyncio

    clock = FakeClock()
    sim = simple_simulator(clock, ["a", "b"])
    counting = CountingTransport(sim.transport())
    http = httpx.AsyncClient(transport=counting, base_url=sim.endpoint)
    waiter = per_job_waiter(sim, http)

    async def first() -> Event:
        async with clock.autojump(), waiter:
            return await anext(relay(waiter, ["a", "b"]))  # the generator is left open

    caplog.set_level(logging.DEBUG)
    event = asyncio.run(first())
    assert isinstance(event, StatusChanged)
    assert event.job_name == "a"
    assert errors_logged(caplog) == []
    # The generator was closed by asyncio.run: its subscription is gone, so the same
    # waiter, entered again for ten minutes afterwards, polls nothing for it.
    requests = sum(counting.status_requests.values())

    async def later() -> None:
        async with clock.autojump(), waiter:
            await clock.sleep(600)
        await http.aclose()

    asyncio.run(later())
    assert sum(counting.status_requests.values()) == requests


async def test_a_generator_read_in_one_task_and_closed_in_another(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    sim = simple_simulator(clock, ["a", "b"], run_for=3600.0)
    counting = CountingTransport(sim.transport())
    before = live_tasks()

    async with httpx.AsyncClient(transport=counting, base_url=sim.endpoint) as http:
        waiter = per_job_waiter(sim, http)

        def gen() -> AsyncIterator[Event]:
            return relay(waiter, ["a", "b"])

        async with clock.autojump(), waiter:
            agen = gen()
            read = [await anext(agen), await anext(agen)]
            assert [type(e) for e in read] == [StatusChanged, StatusChanged]
            async with anyio.create_task_group() as group:
                group.start_soon(agen.aclose)
            requests = sum(counting.status_requests.values())
            await clock.sleep(3600)
            assert sum(counting.status_requests.values()) == requests
    assert errors_logged(caplog) == []
    assert live_tasks() == before


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_generator_broken_out_of_under_trio(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    sim = simple_simulator(clock, ["a", "b"], run_for=120.0)
    counting = CountingTransport(sim.transport())
    before = live_tasks()

    async with httpx.AsyncClient(transport=counting, base_url=sim.endpoint) as http:
        waiter = per_job_waiter(sim, http)

        def gen() -> AsyncIterator[Event]:
            return relay(waiter, ["a", "b"])

        async with clock.autojump(), waiter:
            seen = []
            async with contextlib.aclosing(gen()) as events:
                async for event in events:
                    seen.append(event)
                    if len(seen) == 3:
                        break
            requests = sum(counting.status_requests.values())
            await clock.sleep(3600)
            assert sum(counting.status_requests.values()) == requests
    assert len(seen) == 3
    assert errors_logged(caplog) == []
    assert live_tasks() == before


async def test_a_dropped_subscription_is_forgotten() -> None:
    clock = FakeClock()
    sim = simple_simulator(clock, ["dropped", "kept"], run_for=3600.0)
    counting = CountingTransport(sim.transport())
    async with (
        httpx.AsyncClient(transport=counting, base_url=sim.endpoint) as http,
        clock.autojump(),
    ):
        waiter = per_job_waiter(sim, http)
        async with waiter:
            kept = waiter.watch(["kept"])
            dropped = waiter.watch(["dropped"])
            await anext(dropped)
            del dropped  # never closed
            await clock.sleep(60)
            before = counting.status_requests["dropped"]
            await clock.sleep(600)
            assert counting.status_requests["dropped"] <= before + 1
            assert counting.status_requests["kept"] > 10
            await kept.aclose()


# ---------------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("option", "error"),
    [
        ({"success": "SUCCEEDED"}, TypeError),
        ({"failure": "FAILED"}, TypeError),
        ({"success": ["succeeded"]}, ValueError),
        ({"failure": [JobStatus.FAILED, "failed"]}, ValueError),
        ({"success": 3}, TypeError),
    ],
)
def test_a_string_is_not_a_set_of_statuses(option: dict[str, object], error: type) -> None:
    with pytest.raises(error, match=r"success|failure"):
        JobStatusWaiter(CDMSimulator(clock=FakeClock()).client(), **option)  # type: ignore[arg-type]


def test_statuses_may_be_given_by_their_wire_names() -> None:
    # Arguments are checked before anything else: even on a waiter that is not running.
    client = CDMSimulator(clock=FakeClock()).client()
    waiter = JobStatusWaiter(client, success=["SUCCEEDED"], failure={JobStatus.FAILED})  # type: ignore[list-item]
    assert waiter.success == {JobStatus.SUCCEEDED}
    with pytest.raises(TypeError):
        waiter.watch(["a"], success="SUCCEEDED")


def test_since_out_of_range_is_a_value_error() -> None:
    waiter = JobStatusWaiter(CDMSimulator(clock=FakeClock()).client())
    year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    with pytest.raises(ValueError, match="since"):
        waiter.watch(["a"], since=year_one)


async def test_two_wait_alls_at_once_keep_every_slot_they_booked() -> None:
    # Without `async with waiter`, each wait_all runs an engine for as long as it waits,
    # both on the client's one budget: no poll is ever called back while it waits for
    # its slot, so a shared budget (which books the slot first) loses none.
    clock = FakeClock()
    names = [f"job_{index}" for index in range(20)]
    sim = simple_simulator(clock, names, run_for=300.0)
    budget = BookingBudget(clock)
    results: list[dict[str, JobOutcome]] = []

    async with httpx.AsyncClient(transport=sim.transport(), base_url=sim.endpoint) as http:
        waiter = JobStatusWaiter(
            sim.client(http_client=http, budget=budget),
            clock=clock,
            random=random.Random(3),
            strategy="per_job",
        )

        async def wait_for(part: list[str]) -> None:
            results.append(await waiter.wait_all(part))

        async with clock.autojump(), anyio.create_task_group() as group:
            group.start_soon(wait_for, names[:12])
            group.start_soon(wait_for, names[8:])
    assert sorted(len(r) for r in results) == [12, 12]
    assert {o.kind for r in results for o in r.values()} == {OutcomeKind.SUCCEEDED}
    assert budget.booked > 2 * len(names)
    assert budget.abandoned == 0


async def test_subscriptions_closed_before_their_timeout_leave_nothing_behind() -> None:
    # A service watching one job after another, each with a day's timeout, each closed
    # when its job ends: what it holds does not grow with the number of watches.
    from tests.support.resources import held_bytes

    clock = FakeClock()
    simulator = simple_simulator(clock, ["nightly"])
    async with simulator.client() as client, JobStatusWaiter(client) as waiter:
        weights = []
        for watch in range(5_000):
            subscription = waiter.watch(["nightly"], timeout=86_400.0)
            await subscription.aclose()
            await clock.advance(1.0)  # an hour and a half of watches, none near its timeout
            if watch in (200, 4_999):
                weights.append(held_bytes(waiter))
    # At most 64 entries of closed watches wait to be dropped, in the deadlines and in the
    # poll queue each (about 100 bytes an entry), never one per watch (600 KB).
    assert weights[1] <= weights[0] + 16_384
