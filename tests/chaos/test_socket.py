"""The storm over a real loopback socket: 100 subjobs, the simulator served by uvicorn,
connections dropped mid-answer by the server and reset (RST) by a proxy in between.

Sockets cannot autojump a virtual clock, so the migration plays on a ``ScaledClock``: the
simulator, the waiter, its budgets and every retry run on the same sped-up time.
"""

from __future__ import annotations

import collections
import logging
import random

import anyio
import httpx
import pytest

from cdm_status import CDMClient, JobStatus, JobStatusWaiter, RetryPolicy
from cdm_status.testing import CDMSimulator, FakeClock, ScaledClock, serve
from tests.support.netfaults import CountingTransport, ResettingProxy
from tests.support.storm import FAULT_KINDS, Storm, check_against_truth, migration, storm_faults

pytestmark = pytest.mark.anyio

SPEED = 200.0
"""Simulated seconds per real second: the migration below takes about two real seconds."""
WALL_LIMIT = 60.0
REQUEST_TIMEOUT = 30.0
"""Real seconds an attempt may take over the socket (the client's default)."""


def socket_client(sim: CDMSimulator, endpoint: str, http: httpx.AsyncClient) -> CDMClient:
    """A client of the served simulator whose retries wait on the simulator's clock."""
    return CDMClient(
        endpoint,
        sim.project_id,
        sim.cluster_id,
        http_client=http,
        clock=sim.clock,
        retry=RetryPolicy(random=random.Random(1), sleep=sim.clock.sleep),
        # Each attempt's deadline runs on the client's clock too, but the network is not
        # sped up: the default 30 s would be 0.15 s of real time, which a loaded machine
        # may exceed (the attempt is then abandoned and retried). 30 real seconds, as in use.
        request_timeout=REQUEST_TIMEOUT * SPEED,
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
                async with waiter, waiter.watch(names) as stream:
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
    assert transport.broken > 0
    # Each connection broken on purpose ends the attempt that was on it as a broken
    # connection, unless the client had already given up on that attempt: its deadline
    # passed (on a stalled machine; the client then reported the attempt as its timeout
    # and retried), or the engine cut off a poll whose job another answer had ended.
    # The server or proxy still counted the fault it injected into the abandoned request.
    injected = proxy.resets + storm.faults["drop"] + storm.faults["truncate"]
    assert transport.broken + transport.abandoned >= injected
    assert transport.open_streams == transport.in_flight == 0


class LateAnswers(httpx.AsyncBaseTransport):
    """A stalled network: the answer (or the error) of each of the first requests reaches
    the client ``delays[i]`` seconds of ``clock`` after the server acted on it."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, clock: FakeClock, delays: list[float]
    ) -> None:
        self.inner = inner
        self.clock = clock
        self.delays = collections.deque(delays)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        delay = self.delays.popleft() if self.delays else 0.0
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError:
            await self.clock.sleep(delay)
            raise
        await self.clock.sleep(delay)
        return response


async def test_a_connection_dropped_after_the_deadline_is_that_attempts_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What the storm's count of broken connections allows for: the server drops the
    connection of an attempt the client has already given up on. The client reports the
    attempt as its timeout and retries; it never sees the drop, which the server counted."""
    caplog.set_level(logging.DEBUG, logger="cdm_status")
    clock = FakeClock()
    sim = CDMSimulator(clock=clock)
    sim.add_job("orders")
    sim.faults.script(["drop"])
    transport = CountingTransport(LateAnswers(sim.transport(), clock, [60.0]))
    async with (
        httpx.AsyncClient(transport=transport, base_url=sim.endpoint) as http,
        clock.autojump(),
    ):
        client = sim.client(http_client=http, request_timeout=30.0)
        submission = await client.get_status("orders")
    assert submission.status is sim.status("orders") is JobStatus.RUNNING  # the retry's answer
    assert sim.stats.faults == {"drop": 1}
    assert transport.requests == 2
    # The drop never reached the client as a broken connection: counting those alone
    # (broken >= drops) fails; the abandoned attempt makes up the difference.
    assert (transport.broken, transport.abandoned) == (0, 1)
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retries) == 1
    assert "TransportError" in retries[0]
    assert "no complete answer within 30s" in retries[0]
