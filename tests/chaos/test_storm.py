"""Hundreds of subjobs through the storm, in-process on a virtual clock, against the ground
truth (five list pages: large enough for "auto" to sweep the list)."""

from __future__ import annotations

import pytest

from cdm_status._batching import Strategy
from cdm_status.testing import FakeClock
from tests.support.simulated import run_watch
from tests.support.storm import (
    FAULT_KINDS,
    Storm,
    check_against_truth,
    migration,
    poll_failures,
)

pytestmark = pytest.mark.anyio

TABLES = 300
MAX_REQUEST_RATIO = 1.5
"""Requests a stormy watch may spend, relative to the same watch without faults."""


# Each strategy runs on one backend: both backends are covered, at half the cost.
@pytest.mark.parametrize(("strategy", "anyio_backend"), [("auto", "asyncio"), ("per_job", "trio")])
async def test_hundreds_of_subjobs_through_the_storm(
    strategy: Strategy, anyio_backend: str
) -> None:
    calm_sim, names = migration(FakeClock(), TABLES, faulty=False)
    calm = await run_watch(calm_sim, names, strategy=strategy)
    check_against_truth(calm_sim, names, calm.events)

    sim, stormy_names = migration(FakeClock(), TABLES, faulty=True)
    assert stormy_names == names
    assert [sim.final_status(n) for n in names] == [calm_sim.final_status(n) for n in names]
    run = await run_watch(sim, names, strategy=strategy)
    check_against_truth(sim, names, run.events)

    # The storm happened: every kind of fault reached the client, and the outage too.
    storm = Storm.of(sim)
    assert set(storm.faults) == FAULT_KINDS
    assert storm.during_outage > 0
    assert poll_failures(run.events) > 0
    if strategy == "auto":
        assert run.counting.list_requests > 0  # 300 jobs: the list sweeps them
    # Riding it out never broke the API's own limits ...
    assert sim.stats.max_in_window("status", 60.0) <= 120
    assert sim.stats.max_in_window("list", 60.0) <= 120
    # ... nor cost much more than the calm run.
    assert storm.requests <= MAX_REQUEST_RATIO * calm_sim.stats.total
    calm_status = calm_sim.stats.by_endpoint["status"]
    assert sim.stats.by_endpoint["status"] <= MAX_REQUEST_RATIO * calm_status
