"""The storm over a real loopback socket: 100 subjobs, the simulator served by uvicorn,
connections dropped mid-answer by the server and reset (RST) by a proxy in between.

Sockets cannot autojump a virtual clock, so the migration plays on a ``ScaledClock``: the
simulator, the waiter, its budgets and every retry run on the same sped-up time.
"""

from __future__ import annotations

import random

import anyio
import httpx
import pytest

from cdm_status import CDMClient, JobStatusWaiter, RetryPolicy
from cdm_status.testing import CDMSimulator, ScaledClock, serve

from .netfaults import CountingTransport, ResettingProxy
from .storm import FAULT_KINDS, Storm, check_against_truth, migration, storm_faults

pytestmark = pytest.mark.anyio

SPEED = 200.0
"""Simulated seconds per real second: the migration below takes about two real seconds."""
WALL_LIMIT = 60.0


def socket_client(sim: CDMSimulator, endpoint: str, http: httpx.AsyncClient) -> CDMClient:
    """A client of the served simulator whose retries wait on the simulator's clock."""
    return CDMClient(
        endpoint,
        sim.project_id,
        sim.cluster_id,
        http_client=http,
        clock=sim.clock,
        retry=RetryPolicy(random=random.Random(1), sleep=sim.clock.sleep),
    )


def socket_migration(tables: int) -> tuple[CDMSimulator, list[str]]:
    # Half the dropped connections come from the server (closed mid-answer), the other
    # half from the proxy (reset before any answer).
    sim, names = migration(
        ScaledClock(SPEED),
        tables,
        faulty=True,
        parallelism=25,
        run_seconds=(30.0, 120.0),
        faults=storm_faults(drop=0.005),
    )
    # At this scale the rarest faults might not come up by chance: early requests meet
    # each of them once.
    sim.faults.script(["truncate", "not-json", "drop", "slow", "429", "503-retry-after"])
    return sim, names


async def test_a_hundred_subjobs_through_the_storm_over_a_socket() -> None:
    sim, names = socket_migration(100)
    proxy = ResettingProxy(0, rate=0.005, reset=frozenset({3, 20}), seed=5)
    transport = CountingTransport(httpx.AsyncHTTPTransport())
    with anyio.fail_after(WALL_LIMIT):
        async with serve(sim) as served, anyio.create_task_group() as group:
            proxy.port = int(served.rsplit(":", 1)[1])
            port = await group.start(proxy.serve)
            # The storm's outage starts once the servers are up (their start-up takes
            # longer on a loaded machine, while the scaled clock runs on) and lasts 0.6 s
            # of real time, so requests are sure to meet it.
            sim.faults.outages.clear()
            sim.faults.outage(sim.clock.time() + 20, 120)
            async with httpx.AsyncClient(transport=transport) as http:
                client = socket_client(sim, f"http://127.0.0.1:{port}", http)
                waiter = JobStatusWaiter(client, clock=sim.clock, random=random.Random(3))
                async with waiter.watch(names) as stream:
                    events = [event async for event in stream]
            await proxy.wait_all_closed()
            group.cancel_scope.cancel()

    check_against_truth(sim, names, events)
    storm = Storm.of(sim)
    assert set(storm.faults) == FAULT_KINDS
    assert storm.during_outage > 0
    # The client met real broken connections: resets (ReadError) and answers cut short
    # (RemoteProtocolError), and rode them all out.
    assert proxy.resets >= 2
    assert transport.errors["ReadError"] + transport.errors["RemoteProtocolError"] >= (
        proxy.resets + storm.faults["drop"] + storm.faults["truncate"]
    )
    assert transport.open_streams == transport.in_flight == 0
