"""RedisBudget against a real Redis-compatible server: slots, shares, pauses, keys, outages.

Redis's own clock (``TIME``) decides every slot, so the budgets here run on a
:class:`JumpingClock`: each wait the budget asks for is recorded and passes at once on the
virtual clock (the booking itself stays on Redis's real clock, a few milliseconds apart).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from cdm_status import AKSKAuth, CDMClient, JobStatusWaiter, OutcomeKind, RedisBudget, TokenAuth
from cdm_status.testing import CDMSimulator, FakeClock, ScaledClock
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio

# redis-py runs on asyncio only (its error under trio is tested below); coredis on both.
BACKENDS = pytest.mark.parametrize(
    ("anyio_backend", "library"),
    [("asyncio", "redis"), ("asyncio", "coredis"), ("trio", "coredis")],
)
HELD = 100.0
"""Sleeps this long or longer (the heartbeat's) wait for real: they are never advanced."""


class JumpingClock(FakeClock):
    """Records every wait shorter than ``HELD`` and lets it pass at once."""

    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        super().__init__()
        self.slept: list[float] = []
        self._on_sleep = on_sleep

    async def sleep(self, seconds: float) -> None:
        if seconds >= HELD:
            await super().sleep(seconds)
            return
        self.slept.append(seconds)
        if self._on_sleep is not None:
            self._on_sleep(seconds)
        self._elapsed += max(0.0, seconds)
        await anyio.lowlevel.checkpoint()


@asynccontextmanager
async def budget_on(
    server: RedisServer, library: str, clock: FakeClock, **options: Any
) -> AsyncIterator[RedisBudget]:
    options.setdefault("budget_id", "pipeline-a")
    options.setdefault("sharer_ttl", 3 * HELD)  # heartbeats held: every call is the test's
    budget = RedisBudget.from_url(server.url, library=library, clock=clock, **options)  # type: ignore[arg-type]
    async with budget:
        yield budget


def unique(request: pytest.FixtureRequest) -> str:
    """A budget id of this test's own on the shared server."""
    return request.node.nodeid


@BACKENDS
async def test_a_small_burst_then_one_slot_every_interval(
    redis_server: RedisServer, library: str, anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    clock = JumpingClock()
    async with budget_on(redis_server, library, clock, budget_id=unique(request)) as budget:
        for _ in range(7):
            await budget.acquire()
    waits = clock.slept
    assert len(waits) == 7
    assert all(wait == 0 for wait in waits[:4])  # the burst of 4 goes at once
    # Then one slot every 60/120 = 0.5 s on Redis's clock. Each wait is counted from the
    # moment of its own booking, and Redis's real clock moves on between bookings (more so
    # on a loaded machine), so each is at most its slot and a little less, never more.
    for wait, slot in zip(waits[4:], [0.5, 1.0, 1.5], strict=True):
        assert slot - 0.2 < wait <= slot + 1e-3
    assert budget.acquired == 7
    assert budget.per_minute == 120


@BACKENDS
async def test_no_window_ever_holds_more_than_the_limit(
    redis_server: RedisServer, library: str, anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    # A bucket of 6 tokens refilled at 6/min would let a 7th request go 10 s later: the
    # log of send times holds it until the first of the 6 leaves the 61 s window.
    clock = JumpingClock()
    options = {"per_minute": 6, "burst": 6, "budget_id": unique(request)}
    async with budget_on(redis_server, library, clock, **options) as budget:
        for _ in range(7):
            await budget.acquire()
    assert clock.slept[:6] == [0.0] * 6
    assert 60.5 < clock.slept[6] <= 61.0


@BACKENDS
async def test_on_a_sped_up_clock_the_window_counts_that_clocks_seconds(
    own_redis_server: RedisServer, library: str, anyio_backend: str
) -> None:
    # Processes on a clock 60 times faster than real time (against a simulator whose
    # gateway counts CDM's minute on such a clock) read Redis's time 60 times faster too:
    # 30 s of their clock after 6 slots, the 7th waits the 31 s left of the 61 s window
    # (reading Redis's time unscaled, it would wait all but half a second of it). A Redis
    # of its own: its keys live for a sixtieth of the usual, which would race the shared
    # server's check that every key still has time to live.
    clock = ScaledClock(60.0)
    options = {"per_minute": 6, "burst": 6, "budget_id": "sped-up", "speed": 60.0}
    budget = RedisBudget.from_url(own_redis_server.url, library=library, clock=clock, **options)  # type: ignore[arg-type]
    with anyio.fail_after(10):  # real seconds: the whole test takes about one
        async with budget:
            for _ in range(6):
                await budget.acquire()
            await clock.sleep(30.0)
            asked = clock.monotonic()
            await budget.acquire()
            waited = clock.monotonic() - asked
    # Less the real time the bookings took (times 60; more on a loaded machine), plus the
    # sleep's own lateness (times 60).
    assert 20.0 < waited < 33.0


@BACKENDS
async def test_sharers_split_the_limit_and_take_turns(
    redis_server: RedisServer, library: str, anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    first_clock, second_clock = JumpingClock(), JumpingClock()
    budget_id = unique(request)
    async with budget_on(redis_server, library, first_clock, budget_id=budget_id) as first:
        assert first.per_minute == 120
        async with budget_on(redis_server, library, second_clock, budget_id=budget_id) as second:
            assert second.per_minute == 60
            assert second.list_budget.per_minute == 60  # the list API is shared alike
            for _ in range(4):
                await first.acquire()  # the whole burst
            await second.acquire()  # the second process waits its turn in the same bucket
            await first.acquire()
            assert first.per_minute == 60
        # Slots 0.5 s apart on Redis's clock, each wait counted from its own booking (the
        # clock moves on a little between bookings): at most the slot, and close to it.
        assert 0.3 < second_clock.slept[0] <= 0.5 + 1e-3
        assert 0.8 < first_clock.slept[-1] <= 1.0 + 1e-3
        await first.acquire()  # the second left: the first has the whole budget again
        assert first.per_minute == 120
        assert first.sharers == 1


@BACKENDS
async def test_a_pause_seen_by_one_process_holds_every_process(
    redis_server: RedisServer, library: str, anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    first_clock, second_clock = JumpingClock(), JumpingClock()
    budget_id = unique(request)
    async with (
        budget_on(redis_server, library, first_clock, budget_id=budget_id) as first,
        budget_on(redis_server, library, second_clock, budget_id=budget_id) as second,
    ):
        first.pause(5.0)  # a 429 with Retry-After: 5
        await first.acquire()  # waits at once, and tells Redis on this round trip
        await second.acquire()
        await second.list_budget.acquire()  # the list API was not throttled
    assert 4.9 < first_clock.slept[0] <= 5.0
    assert 4.8 < second_clock.slept[0] <= 5.0
    assert second_clock.slept[1] == 0
    assert first.pauses == 1


async def test_keys_name_no_credential_and_all_expire(
    redis_server: RedisServer, anyio_backend: str
) -> None:
    import coredis

    ak, sk = "AKIDPLAINTEXT0001", "secret-key-never-stored"
    client = CDMClient(
        "http://127.0.0.1:9", "project-1", "cluster-1", auth=AKSKAuth(ak, sk, project_id="p")
    )
    same_user = RedisBudget.from_url(redis_server.url, client=client, library="coredis")
    other = CDMClient(
        "http://127.0.0.1:9", "project-1", "cluster-1", auth=AKSKAuth("AKIDOTHER", sk)
    )
    other_user = RedisBudget.from_url(redis_server.url, client=other, library="coredis")
    async with same_user, other_user:
        await same_user.acquire()
        await other_user.acquire()
        assert same_user.prefix != other_user.prefix  # one budget per user
        redis = coredis.Redis.from_url(redis_server.url, decode_responses=True)
        async with redis:
            keys = [key async for key in redis.scan_iter(match="cdm-status:*")]
            tag = same_user.prefix.rsplit(":", 1)[0]
            mine = {key.removeprefix(tag) for key in keys if key.startswith(tag)}
            assert mine == {":status:log", ":status:state", ":sharers"}
            for key in keys:
                assert key.startswith("cdm-status:{")
                assert "}:" in key
                assert ak not in key
                assert sk not in key
                assert await redis.pttl(key) > 0  # every key expires
                dump = str(await redis.dump(key))
                assert ak not in dump
                assert sk not in dump
    with pytest.raises(ValueError, match="budget_id"):
        RedisBudget.from_url(
            redis_server.url, client=CDMClient("http://h", "p", "c", auth=TokenAuth("t"))
        )


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_redis_py_under_trio_is_a_clear_error(
    redis_server: RedisServer, anyio_backend: str
) -> None:
    with pytest.raises(RuntimeError, match=r"only under asyncio.*coredis"):
        async with RedisBudget.from_url(redis_server.url, budget_id="x", library="redis"):
            pass


@BACKENDS
async def test_redis_down_falls_back_to_the_share_and_returns_when_it_answers(
    own_redis_server: RedisServer,
    library: str,
    anyio_backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="cdm_status")
    clock, other_clock = JumpingClock(), JumpingClock()
    async with (
        budget_on(own_redis_server, library, clock, retry_interval=5.0) as budget,
        budget_on(own_redis_server, library, other_clock),
    ):
        await budget.acquire()
        assert budget.per_minute == 60
        own_redis_server.kill()
        for _ in range(8):  # never raises: a local limit at the last known share
            await budget.acquire()
        assert not budget.shared
        assert budget.per_minute == 60
        # 4 burst (one went through Redis before) then one a second: 60/min
        assert [round(wait, 2) for wait in clock.slept[-4:]] == [1.0] * 4
        warnings = [r.getMessage() for r in caplog.records if "does not answer" in r.getMessage()]
        assert len(warnings) == 1  # warned once per outage
        own_redis_server.start()  # back, and empty
        for _ in range(8):
            await budget.acquire()
        assert budget.shared
        assert budget.outages == 1
        assert any("answers again" in record.getMessage() for record in caplog.records)


@BACKENDS
async def test_a_redis_that_refuses_is_told_from_one_that_does_not_answer(
    own_redis_server: RedisServer,
    library: str,
    anyio_backend: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import redis

    caplog.set_level(logging.WARNING, logger="cdm_status")
    admin = redis.Redis.from_url(own_redis_server.url, socket_timeout=2.0)
    admin.execute_command("ACL", "SETUSER", "etl", "on", ">pw", "~*", "+@all", "-evalsha")
    admin.close()
    url = f"redis://etl:pw@127.0.0.1:{own_redis_server.port}/0"
    refused = RedisBudget.from_url(
        url,
        budget_id="etl",
        library=library,
        clock=JumpingClock(),  # type: ignore[arg-type]
    )
    async with refused:
        assert (refused.shared, refused.refused) == (False, True)
        reason = refused.fallback_reason
        assert reason is not None
        assert reason.startswith("refused: permission denied: ")
        assert "evalsha" in reason
        await refused.acquire()  # it goes on under a local limit, as when unreachable
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1  # said once, with its cause
    assert warnings[0].startswith(
        "the shared budget on Redis refuses this process (permission denied: "
    )
    own_redis_server.kill()
    away = RedisBudget.from_url(
        url,
        budget_id="etl",
        library=library,
        clock=JumpingClock(),  # type: ignore[arg-type]
    )
    async with away:
        assert (away.shared, away.refused) == (False, False)
        assert (away.fallback_reason or "").startswith("unreachable: ")


@BACKENDS
async def test_the_fallback_starts_from_the_slots_this_process_just_took(
    own_redis_server: RedisServer, library: str, anyio_backend: str
) -> None:
    # The process took its burst through Redis, then Redis died: the local limit counts
    # those slots, so there is no second burst on top (nor a fresh window's worth).
    clock = JumpingClock()
    async with budget_on(own_redis_server, library, clock, per_minute=20) as budget:
        for _ in range(4):
            await budget.acquire()
        assert clock.slept == [0.0] * 4  # the burst
        own_redis_server.kill()
        await budget.acquire()
        assert not budget.shared
        assert clock.slept[-1] == pytest.approx(3.0)  # one slot at 20/min, no burst


@BACKENDS
async def test_on_redis_error_wait_waits_for_redis_instead(
    own_redis_server: RedisServer, library: str, anyio_backend: str
) -> None:
    retries: list[float] = []

    def restart_on_third_retry(seconds: float) -> None:
        if seconds == 5.0:
            retries.append(seconds)
            if len(retries) == 3:
                own_redis_server.start()

    clock = JumpingClock(on_sleep=restart_on_third_retry)
    async with budget_on(
        own_redis_server, library, clock, on_redis_error="wait", retry_interval=5.0
    ) as budget:
        own_redis_server.kill()
        await budget.acquire()  # waits (3 retries) rather than going without Redis
        assert budget.shared
        assert budget.outages == 1
    assert clock.slept == [5.0, 5.0, 5.0, 0.0]


@BACKENDS
async def test_a_waiter_on_the_shared_budget_finishes_every_job(
    redis_server: RedisServer, library: str, anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    clock = JumpingClock()
    simulator = CDMSimulator(clock=clock, seed=5)
    names = [simulator.add_job(f"job_{index}", failure_rate=0.2) for index in range(5)]
    async with budget_on(redis_server, library, clock, budget_id=unique(request)) as budget:
        client = simulator.client(budget=budget, list_budget=budget.list_budget)
        async with client:
            outcomes = await JobStatusWaiter(client, clock=clock).wait_all(names)
    for name in names:
        final = simulator.final_status(name)
        assert final is not None
        expected = OutcomeKind.SUCCEEDED if final.is_success else OutcomeKind.FAILED
        assert outcomes[name].kind is expected
    assert budget.acquired >= len(names)
