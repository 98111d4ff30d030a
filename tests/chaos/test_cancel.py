"""Cancelling a watch in the middle of a storm leaves no task, no sleep, no request and no
connection behind, whether the reader leaves the watch or its caller is cancelled."""

from __future__ import annotations

import random
from collections.abc import Iterator

import anyio
import anyio.lowlevel
import httpx
import pytest
import sniffio

from cdm_status import JobStatusWaiter, PollFailed
from cdm_status._batching import Strategy
from cdm_status.testing import FakeClock, Faults, serve
from tests.chaos.test_socket import SPEED, WALL_LIMIT, socket_client, socket_migration
from tests.support.netfaults import CountingTransport, ResettingProxy
from tests.support.storm import migration

pytestmark = pytest.mark.anyio


def storm_with_long_answers() -> Faults:
    # Many slow answers, so that requests are on their way when the watch is cancelled.
    return Faults(
        unavailable=0.15,
        unavailable_retry_after=0.15,
        throttled=0.05,
        drop=0.01,
        truncate=0.01,
        slow=0.3,
        latency=20.0,
    )


def live_tasks() -> set[object]:
    """Every task of the running event loop (asyncio) or of the whole task tree (trio)."""
    if sniffio.current_async_library() == "asyncio":
        import asyncio

        return set(asyncio.all_tasks())
    import trio

    def walk(task: trio.lowlevel.Task) -> Iterator[trio.lowlevel.Task]:
        yield task
        for nursery in task.child_nurseries:
            for child in nursery.child_tasks:
                yield from walk(child)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return set(walk(root))


async def watch_until_mid_storm(
    waiter: JobStatusWaiter,
    names: list[str],
    transport: CountingTransport,
    how: str,
    failures_first: int,
) -> tuple[int, int]:
    """Watch until ``failures_first`` polls have failed and a request is on its way, then
    stop: ``break`` out of the events, or cancel the caller. Returns (failures seen,
    requests in flight at that moment).

    The waiter's own task polls (``async with waiter``), so requests are on their way
    while the reader holds an event."""
    failures = in_flight = 0
    with anyio.CancelScope() as caller:
        async with waiter, waiter.watch(names) as stream:
            async for event in stream:
                failures += isinstance(event, PollFailed)
                if failures >= failures_first and transport.in_flight:
                    in_flight = transport.in_flight
                    if how == "break":
                        break
                    caller.cancel()
    assert caller.cancel_called is (how == "cancel")
    return failures, in_flight


@pytest.mark.parametrize("how", ["break", "cancel"])
@pytest.mark.parametrize("strategy", ["auto", "per_job"])
async def test_cancelling_mid_storm_leaves_nothing_behind(how: str, strategy: Strategy) -> None:
    clock = FakeClock()
    sim, names = migration(clock, 300, faulty=True, faults=storm_with_long_answers())
    sim.faults.outage(clock.time() + 30, 600)
    transport = CountingTransport(sim.transport())
    before = live_tasks()
    async with httpx.AsyncClient(transport=transport, base_url=sim.endpoint) as http:
        client = sim.client(http_client=http)
        waiter = JobStatusWaiter(client, clock=clock, random=random.Random(3), strategy=strategy)
        async with clock.autojump():
            failures, in_flight = await watch_until_mid_storm(
                waiter, names, transport, how, failures_first=50
            )
            # Nothing of the watch is left: no request, no unread answer, no sleep.
            assert (transport.in_flight, transport.open_streams) == (0, 0)
            assert clock.pending == 0
            assert waiter._engine is None  # the block's engine stopped with it
        assert failures >= 50
        assert in_flight > 0
        assert clock.time() > sim.faults.outages[-1].start  # cancelled inside the outage
        assert live_tasks() == before
    # The same waiter watches again afterwards: nothing it holds was left broken.
    sim.faults.clear()
    async with httpx.AsyncClient(transport=sim.transport(), base_url=sim.endpoint) as http:
        waiter = JobStatusWaiter(sim.client(http_client=http), clock=clock, strategy=strategy)
        async with clock.autojump():
            outcomes = await waiter.wait_all(names[:5])
    assert (
        {name: o.kind.value for name, o in outcomes.items()}
        == {
            name: "succeeded" if sim.final_status(name).is_success else "failed"  # type: ignore[union-attr]
            for name in names[:5]
        }
    )


async def test_cancelling_mid_storm_over_a_socket_closes_every_connection() -> None:
    sim, names = socket_migration(100)
    proxy = ResettingProxy(0)  # resets nothing: it counts the connections left open
    transport = CountingTransport(httpx.AsyncHTTPTransport())
    with anyio.fail_after(WALL_LIMIT):
        async with serve(sim) as served, anyio.create_task_group() as group:
            proxy.port = int(served.rsplit(":", 1)[1])
            port = await group.start(proxy.serve)
            before = live_tasks()
            async with httpx.AsyncClient(transport=transport) as http:
                client = socket_client(sim, f"http://127.0.0.1:{port}", http)
                waiter = JobStatusWaiter(client, clock=sim.clock, random=random.Random(3))
                # The outage starts once the servers are up, shortly after the watch's first
                # polls, and outlasts the test's wall limit on the scaled clock: however
                # slow the machine, the jobs cannot all be seen done before the storm has
                # made the polls fail, so the watch is always cancelled mid-storm.
                outage = sim.faults.outage(sim.clock.time() + 20, 2 * WALL_LIMIT * SPEED)
                failures, in_flight = await watch_until_mid_storm(
                    waiter,
                    names,
                    transport,
                    "cancel",
                    failures_first=10,  # calls that ran out of retries: mid-storm
                )
                assert (transport.in_flight, transport.open_streams) == (0, 0)
                # Connections still pooled are idle: none is stuck half-way in a request.
                pool = transport.inner._pool  # type: ignore[attr-defined]
                assert all(c.is_idle() or c.is_closed() for c in pool.connections)
            # Once the client is closed, no connection stays open on the wire, and the
            # server's tasks for them end: then every task is one that ran before.
            await proxy.wait_all_closed()
            assert proxy.connections > 0
            with anyio.fail_after(5):
                while live_tasks() != before:
                    await anyio.lowlevel.checkpoint()
            group.cancel_scope.cancel()
    assert failures >= 10
    assert in_flight > 0
    assert outage.start < sim.clock.time() < outage.start + outage.seconds  # inside the storm
