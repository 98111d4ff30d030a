"""The simulator's server clock: its ``Date`` header, a clock set apart from the client's,
and the log of what it was sent."""

from __future__ import annotations

import httpx
import pytest

from cdm_status._server_time import parse_http_date
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan

pytestmark = pytest.mark.anyio

START = 1_767_225_600.0
YEAR = 365 * 86400.0


async def status(sim: CDMSimulator, name: str) -> httpx.Response:
    async with sim.http_client() as http:
        path = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/{name}/status"
        return await http.get(path)


async def test_answers_carry_a_date_header_of_whole_seconds() -> None:
    clock = FakeClock(START)
    sim = CDMSimulator(clock=clock)
    sim.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=600))
    await clock.advance(61.75)
    answer = await status(sim, "orders")
    assert answer.headers["date"] == "Thu, 01 Jan 2026 00:01:01 GMT"
    assert answer.headers.get_list("date") == ["Thu, 01 Jan 2026 00:01:01 GMT"]


async def test_a_coarser_date_header_or_none() -> None:
    clock = FakeClock(START)
    coarse = CDMSimulator(clock=clock, date_resolution=60)
    coarse.add_job("orders")
    await clock.advance(119.5)
    assert parse_http_date((await status(coarse, "orders")).headers["date"]) == START + 60
    silent = CDMSimulator(clock=clock, date_resolution=None)
    silent.add_job("orders")
    assert "date" not in (await status(silent, "orders")).headers
    with pytest.raises(ValueError, match="date_resolution"):
        CDMSimulator(date_resolution=0.5)
    with pytest.raises(ValueError, match="clock_offset"):
        CDMSimulator(clock_offset=float("nan"))


@pytest.mark.parametrize("offset", [-3 * YEAR, -900.0, 3 * YEAR])
async def test_a_server_clock_set_apart_shifts_every_date_it_serves(offset: float) -> None:
    clock = FakeClock(START)
    sim = CDMSimulator(clock=clock, clock_offset=offset)
    sim.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=600))
    await clock.advance(100)
    answer = await status(sim, "orders")
    run = answer.json()["submissions"][0]
    assert parse_http_date(answer.headers["date"]) == START + 100 + offset
    assert run["creation-date"] == (START + offset) * 1000
    assert run["execute-date"] == (START + 5 + offset) * 1000
    assert run["last-update-date"] == (START + 100 + offset) * 1000
    async with sim.client() as client:
        page = await client.list_jobs()
    assert page.jobs[0].raw["creation-date"] == (START + offset) * 1000
    assert page.jobs[0].raw["last-update-date"] == (START + 100 + offset) * 1000
    # The jobs still play on the simulator's own clock: ground truth does not move.
    assert [step.at for step in sim.transitions("orders")] == [START, START + 5]


async def test_the_request_log_keeps_every_request_in_order() -> None:
    clock = FakeClock(START)
    sim = CDMSimulator(clock=clock, log_requests=True)
    sim.add_job("orders")
    async with sim.client() as client:
        await client.get_status("orders")
        await clock.advance(2.5)
        await client.list_jobs(filter="ord", page_no=2, page_size=10)
    base = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job"
    assert sim.request_log == [
        f"{START!r} GET {base}/orders/status 200",
        f"{START + 2.5!r} GET {base}/all?filter=ord&jobType=NORMAL_JOB&page_no=2&page_size=10 200",
    ]
    assert CDMSimulator().request_log is None
