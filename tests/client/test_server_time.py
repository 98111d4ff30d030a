"""The server clock's offset, estimated from what answers carry (``_server_time``), and the
client that feeds it (every answer's ``Date`` header, the dates of running and just
started runs)."""

from __future__ import annotations

import math
from email.utils import formatdate

import httpx
import pytest

from cdm_status import CDMClient, RateLimitedError, RetryPolicy
from cdm_status._server_time import ServerClock, parse_http_date
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan

YEAR = 365 * 86400.0
OFFSETS = [-3 * YEAR, -900.0, 0.0, 0.37, 900.0, 3 * YEAR]
LOCAL = 1_767_225_600.0


def http_date(epoch: float) -> str:
    return formatdate(math.floor(epoch), usegmt=True)


def exchange(
    clock: ServerClock, offset: float, sent: float, rtt: float = 0.05, *, date: bool = True
) -> float:
    """One request sent at local ``sent``; the server answers half way; its server time."""
    server = sent + rtt / 2 + offset
    if date:
        clock.date_header(http_date(server), sent=sent, received=sent + rtt)
    return server


def test_without_evidence_the_two_clocks_are_taken_to_agree() -> None:
    clock = ServerClock()
    clock.date_header(None, sent=LOCAL, received=LOCAL + 0.1)
    clock.date_header("not a date", sent=LOCAL, received=LOCAL + 0.1)
    assert (clock.offset, clock.known, clock.bounds) == (0.0, False, None)
    assert clock.uncertainty == math.inf
    assert clock.server_time(LOCAL) == LOCAL


@pytest.mark.parametrize("offset", OFFSETS)
def test_date_headers_of_whole_seconds_find_the_offset_within_the_round_trip(
    offset: float,
) -> None:
    clock = ServerClock()
    exchange(clock, offset, LOCAL)
    assert clock.bounds is not None
    assert clock.bounds[0] <= offset <= clock.bounds[1]
    assert abs(clock.offset - offset) <= 1.05  # one answer: its second, and the round trip
    for n in range(1, 40):
        exchange(clock, offset, LOCAL + n * 0.737)  # answers at every phase of a second
    low, high = clock.bounds
    assert low <= offset <= high
    assert high - low <= 0.15
    assert abs(clock.offset - offset) <= 0.1
    assert abs(clock.local_time(LOCAL + offset) - LOCAL) <= 0.1


@pytest.mark.parametrize("offset", OFFSETS)
def test_without_a_date_header_running_jobs_update_dates_bound_it_from_below(
    offset: float,
) -> None:
    clock = ServerClock()
    for n in range(40):
        sent = LOCAL + n * 2.3
        # The server wrote the date up to 1.5 s before it answered.
        clock.stamped_before(sent + offset - (n % 4) * 0.5, received=sent + 0.05, recent=True)
    assert clock.known
    assert clock.uncertainty == math.inf
    assert offset - 0.05 - 1e-6 <= clock.offset <= offset + 1e-6


def test_dates_of_runs_long_over_only_say_whether_the_server_is_ahead() -> None:
    clock = ServerClock()
    clock.stamped_before(LOCAL - 3600.0, received=LOCAL)  # a run that ended an hour ago
    assert clock.offset == 0.0  # nothing says the clocks disagree
    clock.stamped_before(LOCAL + 900.0 - 3600.0, received=LOCAL + 1)
    assert clock.offset == 0.0
    clock.stamped_before(LOCAL + 3 * YEAR - 3600.0, received=LOCAL + 2)
    assert clock.offset == 3 * YEAR - 3602.0  # at least that far ahead
    clock.stamped_before(LOCAL + 3 * YEAR, received=LOCAL + 3, recent=True)
    assert clock.offset == 3 * YEAR - 3.0


@pytest.mark.parametrize("offset", [-3 * YEAR, 900.0])
def test_a_started_runs_creation_date_bounds_it_from_both_sides(offset: float) -> None:
    clock = ServerClock()
    clock.stamped_during(LOCAL + 0.2 + offset, sent=LOCAL, received=LOCAL + 0.3)
    assert clock.bounds == pytest.approx((offset - 0.1, offset + 0.2))
    assert clock.offset == pytest.approx(offset + 0.05)


def test_a_date_header_coarser_than_a_second_only_bounds_it_from_below() -> None:
    clock = ServerClock()
    offset = 42.5
    for n in range(120):
        sent = LOCAL + n * 0.9
        server = sent + 0.025 + offset
        coarse = formatdate(server - server % 60, usegmt=True)  # a Date that moves each minute
        clock.date_header(coarse, sent=sent, received=sent + 0.05)
    assert clock.bounds is not None
    assert clock.bounds[0] <= offset
    assert clock.bounds[1] == math.inf
    assert offset - 60 <= clock.offset <= offset
    # Running jobs' dates then narrow it from below.
    clock.stamped_before(LOCAL + 200 + offset, received=LOCAL + 200.05, recent=True)
    assert offset - 0.05 <= clock.offset <= offset


def test_a_clock_that_steps_is_followed_once_newer_answers_contradict_older_ones() -> None:
    clock = ServerClock()
    for n in range(40):
        exchange(clock, 900.0, LOCAL + n * 0.737)
    for n in range(40, 44):
        exchange(clock, 1200.0, LOCAL + n * 0.737)  # the server's clock set 5 minutes on
    assert abs(clock.offset - 1200.0) <= 1.05


def test_update_dates_from_another_clock_than_the_date_header_are_set_aside() -> None:
    # A simulator playing its jobs faster than real time: its Date is real time, the
    # running jobs' last-update-date races ahead.
    clock = ServerClock()
    for n in range(40):
        sent = LOCAL + n * 0.737
        exchange(clock, 0.0, sent)
        clock.stamped_before(sent + 3600.0 * n, received=sent + 0.05, recent=True)
    assert abs(clock.offset) <= 0.1


def test_evidence_that_only_narrows_the_bounds_never_moves_the_offset() -> None:
    # A run's start, read through the offset, must stay put between two looks.
    clock = ServerClock()
    clock.stamped_during(LOCAL + 0.5, sent=LOCAL, received=LOCAL + 1.0)
    first = clock.offset
    clock.stamped_during(LOCAL + 10.3, sent=LOCAL + 10.0, received=LOCAL + 10.6)
    assert clock.bounds == pytest.approx((-0.3, 0.3))
    assert clock.offset == first  # 0.0 is still within: unchanged
    clock.stamped_during(LOCAL + 20.25, sent=LOCAL + 20.0, received=LOCAL + 20.1)
    assert clock.offset == pytest.approx((0.15 + 0.25) / 2)  # 0.0 no longer is


@pytest.mark.parametrize(
    "text",
    [
        "Thu, 01 Jan 2026 00:00:07 GMT",
        "Thursday, 01-Jan-26 00:00:07 GMT",
        "Thu Jan  1 00:00:07 2026",
    ],
)
def test_http_dates_are_read_in_all_three_forms(text: str) -> None:
    assert parse_http_date(text) == LOCAL + 7


# ---------------------------------------------------------------------- the client


@pytest.mark.anyio
@pytest.mark.parametrize("offset", [-3 * YEAR, -900.0, 900.0, 3 * YEAR])
async def test_the_client_learns_the_offset_from_every_answer(offset: float) -> None:
    clock = FakeClock(LOCAL)
    simulator = CDMSimulator(clock=clock, clock_offset=offset)
    simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=600))
    async with simulator.client() as client:
        assert not client.server_clock.known
        for _ in range(3):
            await client.get_status("orders")
            await clock.advance(0.4)
        assert abs(client.server_clock.offset - offset) <= 1.0


@pytest.mark.anyio
@pytest.mark.parametrize("offset", [-3 * YEAR, 900.0])
async def test_without_a_date_header_the_client_reads_running_and_started_runs(
    offset: float,
) -> None:
    clock = FakeClock(LOCAL)
    simulator = CDMSimulator(clock=clock, clock_offset=offset, date_resolution=None)
    simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=600))
    simulator.add_job("later", plan=JobPlan(boot_seconds=5, run_seconds=600), started=False)
    await clock.advance(0.5)
    async with simulator.client() as client:
        await client.get_status("orders")  # BOOTING since 0.5 s: created no later than that
        assert offset - 0.5 - 1e-3 <= client.server_clock.offset <= offset - 0.5 + 1e-3
        await clock.advance(10)
        await client.get_status("orders")  # RUNNING: its last-update-date is the answer's
        assert abs(client.server_clock.offset - offset) <= 0.001
        rows = await client.list_jobs()
        assert {job.name for job in rows.jobs} == {"orders", "later"}
    async with simulator.client() as client:
        await client.start_job("later")  # its creation date was written meanwhile
        assert client.server_clock.uncertainty == 0.0
        assert client.server_clock.offset == pytest.approx(offset)


@pytest.mark.anyio
async def test_a_retry_after_date_is_read_on_the_servers_clock() -> None:
    clock = FakeClock(LOCAL)
    server_now = LOCAL + 3 * YEAR

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Date": http_date(server_now), "Retry-After": http_date(server_now + 7)}
        body = {"error_code": "APIG.0308", "error_msg": "throttled", "request_id": "r"}
        return httpx.Response(429, json=body, headers=headers)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = CDMClient(
        "https://cdm.example.com",
        "p",
        "c",
        http_client=http,
        clock=clock,
        retry=RetryPolicy.never(),
    )
    with pytest.raises(RateLimitedError) as raised:
        await client.get_status("orders")
    assert raised.value.retry_after is not None
    assert 6.0 <= raised.value.retry_after <= 8.0  # not three years, nor nothing
    await http.aclose()
