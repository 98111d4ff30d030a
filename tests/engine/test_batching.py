"""Batched polling through the job list, on the simulator and a virtual clock."""

from __future__ import annotations

import random

import anyio
import httpx
import pytest

from cdm_status import JobDone, JobStatus, JobStatusWaiter, OutcomeKind
from cdm_status._batching import common_prefix, list_is_quicker, pages_for, wants_list
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, RateLimits
from tests.support.simulated import CountingTransport, expected_kind, run_watch


def test_common_prefix_is_the_list_filter() -> None:
    assert common_prefix(["db1_orders", "db1_order_lines", "db1_users"]) == "db1_"
    assert common_prefix(["a", "b"]) == ""


def test_pages_cover_the_total() -> None:
    assert [pages_for(n) for n in (0, 1, 100, 101, 10_000)] == [1, 1, 1, 2, 100]


def test_auto_lists_only_when_per_job_polling_cannot_keep_up() -> None:
    assert not wants_list("auto", 10, status_per_minute=120, starting_interval=5)
    assert wants_list("auto", 11, status_per_minute=120, starting_interval=5)
    assert wants_list("list", 1, status_per_minute=120, starting_interval=5)
    assert not wants_list("per_job", 10_000, status_per_minute=120, starting_interval=5)


def test_a_list_matching_far_more_jobs_than_watched_is_not_worth_it() -> None:
    assert list_is_quicker(1000, 1000, status_per_minute=120, list_per_minute=120)
    assert not list_is_quicker(50_000, 20, status_per_minute=120, list_per_minute=120)


pytestmark_async = pytest.mark.anyio


def simulator() -> CDMSimulator:
    return CDMSimulator(clock=FakeClock(), limits=RateLimits.cdm_defaults())


@pytestmark_async
async def test_each_change_on_a_page_costs_exactly_one_status_request() -> None:
    sim = simulator()
    tables = [f"t{i:02d}" for i in range(30)]
    plans = {
        table: JobPlan(
            boot_seconds=60,
            run_seconds=600 + 30 * i,
            outcome=JobStatus.FAILED if i % 10 == 0 else JobStatus.SUCCEEDED,
        )
        for i, table in enumerate(tables)
    }
    names = sim.add_database_job("db", tables, parallelism=30, plans=plans)
    run = await run_watch(sim, names, strategy="list")
    assert run.outcomes == {name: expected_kind(sim, name) for name in names}
    for name in names:
        changes = run.changes(name)
        assert [c.current for c in changes] == [
            JobStatus.BOOTING,
            JobStatus.RUNNING,
            sim.final_status(name),
        ]
        # One status request per change the list showed, and nothing else.
        assert run.counting.status_requests[name] == len(changes), name
        assert changes[-1].submission.raw  # the full submission, from the status API
    assert run.counting.list_requests > 0


@pytestmark_async
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # a scale test: one loop is enough
async def test_a_large_migration_spends_few_status_requests_and_holds_both_budgets() -> None:
    sim = simulator()
    names = sim.add_database_job(
        "warehouse", 300, parallelism=60, failure_rate=0.03, run_seconds=(60.0, 600.0)
    )
    started = sim.clock.time()
    run = await run_watch(sim, names)  # auto
    minutes = (sim.clock.time() - started) / 60.0
    assert run.outcomes == {name: expected_kind(sim, name) for name in names}
    assert sim.stats.max_in_window("status", 60.0) <= 120
    assert sim.stats.max_in_window("list", 60.0) <= 120
    assert sim.stats.by_status.get(429, 0) == 0
    # Subjobs waiting for their turn cost no status request at all: one per change a
    # sweep saw, plus looks at running ones between sweeps, within 80% of the budget.
    spent = sum(run.counting.status_requests.values())
    assert spent <= 3.5 * len(names) + 0.8 * 120 * minutes
    assert run.counting.list_requests > 0


@pytestmark_async
async def test_jobs_the_list_does_not_show_fall_back_to_per_job_polling() -> None:
    sim = simulator()
    hidden = sim.add_database_job(
        "hidden", 40, parallelism=20, run_seconds=(30.0, 90.0), listed=False
    )
    shown = sim.add_database_job("hidden_shown", 40, parallelism=20, run_seconds=(30.0, 90.0))
    names = hidden + shown
    run = await run_watch(sim, names, strategy="list")
    assert run.outcomes == {name: expected_kind(sim, name) for name in names}
    assert all(run.counting.status_requests[name] >= 2 for name in hidden)


@pytestmark_async
async def test_auto_polls_small_watches_one_by_one() -> None:
    sim = simulator()
    names = sim.add_database_job("small", 5, parallelism=5, run_seconds=(30.0, 60.0))
    run = await run_watch(sim, names)
    assert run.outcomes == {name: expected_kind(sim, name) for name in names}
    assert run.counting.list_requests == 0


@pytestmark_async
async def test_auto_gives_up_the_list_when_its_filter_matches_too_much() -> None:
    sim = simulator()
    sim.add_database_job("x", 6000, parallelism=1, started=False)
    watched = [f"x_{letter}" for letter in "abcdefghijklmnopqrst"]  # filter "x_"
    for name in watched:
        sim.add_job(name, plan=JobPlan(boot_seconds=5, run_seconds=60))
    run = await run_watch(sim, watched)
    assert run.outcomes == dict.fromkeys(watched, OutcomeKind.SUCCEEDED)
    assert run.counting.list_requests == 1


async def status_requests_for(batches: list[list[str]], sim: CDMSimulator) -> tuple[int, int]:
    """Watch ``batches`` on one long-lived waiter (one subscription each, opened in
    turn, as a triggerer's deferred tasks do), checking every outcome; the status and
    list requests spent."""
    counting = CountingTransport(sim.transport())
    http = httpx.AsyncClient(transport=counting, base_url=sim.endpoint)
    outcomes: dict[str, OutcomeKind] = {}
    assert isinstance(sim.clock, FakeClock)
    async with sim.client(http_client=http) as client, sim.clock.autojump():
        waiter = JobStatusWaiter(client, clock=sim.clock, random=random.Random(3))

        async def watch(batch: list[str]) -> None:
            async with waiter.watch(batch) as subscription:
                async for event in subscription:
                    if isinstance(event, JobDone):
                        outcomes[event.job_name] = event.outcome.kind

        async with waiter, anyio.create_task_group() as group:
            for batch in batches:
                group.start_soon(watch, batch)
    await http.aclose()
    names = [name for batch in batches for name in batch]
    assert outcomes == {name: expected_kind(sim, name) for name in names}
    return sum(counting.status_requests.values()), counting.list_requests


@pytestmark_async
async def test_small_watches_opened_one_after_another_share_one_sweep() -> None:
    # The first five watches of two tables come while the engine tracks at most 10 jobs
    # (per-job polling keeps up) and are polled one by one; the sixth starts the sweep,
    # which takes the first ten over once it shows them. (Before it did, they stayed
    # polled one by one: 526 status requests on asyncio, 816 on trio, against 452.)
    def migration() -> tuple[CDMSimulator, list[str]]:
        sim = simulator()
        return sim, sim.add_database_job("db", 40, parallelism=10, run_seconds=(300.0, 600.0))

    sim, names = migration()
    alone_status, alone_list = await status_requests_for([names], sim)
    sim, names = migration()
    pairs = [names[index : index + 2] for index in range(0, len(names), 2)]
    together_status, together_list = await status_requests_for(pairs, sim)
    assert together_status <= alone_status * 1.1, (alone_status, together_status)
    assert together_list <= alone_list * 1.1, (alone_list, together_list)
