"""Slow answers never push more requests into one server window than the budget allows.

A budget slot is taken only once a connection is free: a slot taken while queueing for a
connection behind 20-40 s answers would be spent long after; when answers turn fast
again, those late requests and a full budget of new ones meet in one 60 s window at the
server. Here answers are slow for two minutes, fast for two, and so on.
"""

from __future__ import annotations

import random

import pytest

from cdm_status import JobStatusWaiter, OutcomeKind
from cdm_status.testing import CDMSimulator, FakeClock, Faults, JobPlan, RateLimits

pytestmark = pytest.mark.anyio

BUDGET = 120


@pytest.mark.parametrize("latency", [20.0, 40.0])
@pytest.mark.parametrize("max_concurrency", [2, 8, 32])
async def test_no_server_window_exceeds_the_budget_whatever_the_latency(
    max_concurrency: int, latency: float
) -> None:
    clock = FakeClock()
    sim = CDMSimulator(
        clock=clock,
        seed=7,
        limits=RateLimits(status=BUDGET),
        faults=Faults(latency=latency),
    )
    for start in range(0, 600, 240):  # slow for 120 s out of every 240 s
        sim.faults.outage(clock.time() + start, 120, "slow")
    names = [sim.add_job(f"job_{index:03d}", plan=JobPlan(5, 7200)) for index in range(200)]
    async with sim.client(requests_per_minute=BUDGET) as client, clock.autojump():
        waiter = JobStatusWaiter(
            client,
            max_concurrency=max_concurrency,
            strategy="per_job",
            clock=clock,
            random=random.Random(3),
        )
        outcomes = await waiter.wait_all(names, timeout=600)
    assert {outcome.kind for outcome in outcomes.values()} == {OutcomeKind.TIMED_OUT}
    assert sim.stats.faults["slow"] > 20
    assert sim.stats.by_endpoint["status"] > 4 * BUDGET  # the budget was used, not idle
    assert sim.stats.max_in_window("status", 60.0) <= BUDGET
    assert sim.stats.by_status[429] == 0
