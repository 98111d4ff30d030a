"""``wait --subjobs-of PARENT`` without tables: the discovery reads the job list through
the client, so it spends the list budget (local or shared) like every other list read,
and rides out throttling (pause, ``Retry-After``, backoff) instead of giving up. On the
simulator and a virtual clock: hours of throttling pass in a second.
"""

from __future__ import annotations

import anyio
import pytest

from cdm_status import CDMClient, ServiceUnavailableError, TransportError
from cdm_status.cli._discover import find_subjobs
from cdm_status.testing import CDMSimulator, FakeClock, RateLimits
from tests.budget.test_redis_budget import BACKENDS, JumpingClock, budget_on, unique
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio


def migration(tables: int, clock: FakeClock, **limits: object) -> CDMSimulator:
    simulator = CDMSimulator(
        clock=clock,
        seed=11,
        limits=RateLimits(**{"status": 120, "list": 120, **limits}),  # type: ignore[arg-type]
    )
    simulator.add_database_job("nightly", tables, parallelism=50)
    return simulator


async def test_discovery_spends_the_list_budget() -> None:
    # 3,000 tables, --list-requests-per-minute 10: 10 list requests a minute, not 35 in
    # the first second.
    clock = FakeClock()
    simulator = migration(3_000, clock)
    async with simulator.client(list_requests_per_minute=10) as client, clock.autojump():
        names = await find_subjobs(client, "nightly")
    assert len(names) == 3_000
    stats = simulator.stats
    assert stats.by_endpoint["list"] >= 31  # 30 pages of subjobs, and the other job type
    assert stats.max_in_window("list", 60.0) <= 10
    assert client.list_budget.acquired == stats.by_endpoint["list"]  # type: ignore[attr-defined]


@BACKENDS
async def test_discovery_spends_the_shared_list_budget(
    redis_server: RedisServer, library: str, anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    clock = JumpingClock()
    simulator = migration(1_000, clock)
    options = {"budget_id": unique(request), "list_per_minute": 20}
    async with budget_on(redis_server, library, clock, **options) as budget:
        client = simulator.client(budget=budget, list_budget=budget.list_budget)
        async with client:
            names = await find_subjobs(client, "nightly")
    assert len(names) == 1_000
    listed = simulator.stats.by_endpoint["list"]
    assert budget.list_budget.acquired == listed  # each page booked in Redis
    assert budget.acquired == 0  # and nothing from the status budget
    # 20 a minute after the burst of 4: the pages wait for their slots.
    assert sum(clock.slept) >= (listed - 4) * 60 / 20 - 1


async def test_two_discoveries_at_once_on_13000_tables_both_finish() -> None:
    # Two processes, each on its own local budget of 120 a minute, against one user's
    # limit of 120: the gateway throttles them (429, no Retry-After, as CDM's), and both
    # ride it out.
    clock = FakeClock()
    simulator = migration(13_000, clock)
    found: dict[str, list[str]] = {}

    async def discover(process: str) -> None:
        async with simulator.client() as client:
            found[process] = await find_subjobs(client, "nightly")

    async with clock.autojump(), anyio.create_task_group() as group:
        group.start_soon(discover, "first")
        group.start_soon(discover, "second")
    assert [len(names) for names in found.values()] == [13_000, 13_000]
    assert simulator.stats.by_endpoint_status["list", 429] > 0  # it was throttled


async def test_a_throttled_discovery_waits_as_long_as_the_server_asks() -> None:
    # A gateway that throttles with Retry-After: the discovery pauses that long and goes on.
    clock = FakeClock()
    simulator = migration(2_000, clock, list=5, retry_after=True)
    async with simulator.client() as client, clock.autojump():
        names = await find_subjobs(client, "nightly")
    assert len(names) == 2_000
    assert simulator.stats.by_endpoint_status["list", 429] > 0
    assert simulator.stats.max_in_window("list", 60.0) <= 5 + 4  # the limit, and the burst


async def test_an_outage_during_discovery_is_ridden_out() -> None:
    clock = FakeClock()
    simulator = migration(500, clock)
    simulator.faults.script(["503"] * 12 + ["429"] * 6)
    async with simulator.client() as client, clock.autojump():
        names = await find_subjobs(client, "nightly")
    assert len(names) == 500


async def test_an_api_that_never_answers_still_ends_the_discovery() -> None:
    # Nothing but 503s: the discovery gives up after UNREACHABLE_AFTER seconds, with the
    # error (the command then exits 4 with one line).
    clock = FakeClock()
    simulator = migration(500, clock)
    simulator.faults.script(["503"] * 100_000)
    async with simulator.client() as client, clock.autojump():
        started = clock.monotonic()
        with pytest.raises(ServiceUnavailableError):
            await find_subjobs(client, "nightly")
        assert 300 <= clock.monotonic() - started <= 400


async def test_an_endpoint_that_cannot_be_reached_fails_at_once() -> None:
    clock = FakeClock()
    client = CDMClient("http://127.0.0.1:9", "p", "c", clock=clock)
    async with client, clock.autojump():
        with pytest.raises(TransportError):
            await find_subjobs(client, "nightly")
        assert clock.monotonic() < 60
