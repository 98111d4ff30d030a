"""Which list page to read again between the pages of a sweep: pure rules, then the
waiter on the simulator."""

from __future__ import annotations

import random
import statistics

import pytest

from cdm_status import JobStatus, PollPolicy, StatusChanged
from cdm_status._models import JobSummary
from cdm_status._pages import PageMap, hot_read_allowed, is_hot
from cdm_status.testing import CDMSimulator, FakeClock, RateLimits
from tests.support.simulated import expected_kind, run_watch

NORMAL = "NORMAL_JOB"


def rows(**statuses: str) -> list[JobSummary]:
    return [JobSummary(name, JobStatus.parse(raw), raw) for name, raw in statuses.items()]


@pytest.mark.parametrize(
    ("status", "hot"),
    [
        (JobStatus.NEW, False),
        (JobStatus.NEVER_EXECUTED, False),
        (JobStatus.PENDING, True),
        (JobStatus.BOOTING, True),
        (JobStatus.RUNNING, True),
        (JobStatus.UNKNOWN, True),
        (JobStatus.OTHER, True),
        (JobStatus.SUCCEEDED, False),
        (JobStatus.FAILED, False),
        (JobStatus.FAILURE_ON_SUBMIT, False),
        (JobStatus.STOPPED, False),
    ],
)
def test_a_page_is_hot_while_it_shows_a_job_started_and_not_ended(
    status: JobStatus, hot: bool
) -> None:
    assert is_hot(status) is hot


@pytest.mark.parametrize(
    ("ratio", "hot_reads", "sweep_reads", "allowed"),
    [
        (1.0, 0, 0, False),  # the sweep reads its first page first
        (1.0, 0, 1, True),
        (1.0, 1, 1, False),
        (1.0, 3, 4, True),
        (0.5, 0, 1, False),
        (0.5, 0, 2, True),
        (0.5, 1, 3, False),
        (0.0, 0, 100, False),  # off
    ],
)
def test_hot_reads_stay_within_their_ratio_of_the_sweep(
    ratio: float, hot_reads: int, sweep_reads: int, allowed: bool
) -> None:
    policy = PollPolicy(hot_page_ratio=ratio)
    assert hot_read_allowed(policy, hot_reads, sweep_reads) is allowed


def test_the_hot_page_read_longest_ago_goes_first_once_its_gap_has_passed() -> None:
    pages = PageMap(PollPolicy(hot_page_gap=1.0))
    pages.read((NORMAL, 1), rows(a="RUNNING", b="NEW"), at=10.0)
    pages.read((NORMAL, 2), rows(c="NEW"), at=10.5)
    pages.read((NORMAL, 3), rows(d="BOOTING"), at=10.2)
    watched = {"a", "b", "c", "d"}
    assert pages.hot_pages(watched) == {(NORMAL, 1), (NORMAL, 3)}
    assert pages.next_hot(watched, now=10.9, pages=4) is None  # no gap has passed yet
    assert pages.next_hot(watched, now=11.0, pages=4) == (NORMAL, 1)
    assert pages.next_hot(watched, now=11.5, pages=4) == (NORMAL, 1)  # read longest ago
    pages.read((NORMAL, 1), rows(a="RUNNING"), at=11.5)
    assert pages.next_hot(watched, now=11.6, pages=4) == (NORMAL, 3)


def test_no_page_is_read_again_while_most_pages_are_hot() -> None:
    # Tables started in random order: running jobs on every page. The sweep itself
    # comes back to each page as soon as re-reads would.
    pages = PageMap(PollPolicy())
    for page_no in (1, 2, 3):
        pages.read((NORMAL, page_no), rows(**{f"j{page_no}": "RUNNING"}), at=0.0)
    watched = {"j1", "j2", "j3"}
    assert pages.next_hot(watched, now=5.0, pages=5) is None  # 3 hot pages of 5
    assert pages.next_hot(watched, now=5.0, pages=6) == (NORMAL, 1)  # half


def test_a_page_cools_when_its_jobs_end_or_are_no_longer_watched() -> None:
    pages = PageMap(PollPolicy())
    pages.read((NORMAL, 1), rows(a="RUNNING", b="RUNNING"), at=0.0)
    pages.read((NORMAL, 1), rows(a="SUCCEEDED", b="RUNNING"), at=1.0)
    assert pages.hot_pages({"a", "b"}) == {(NORMAL, 1)}
    assert pages.hot_pages({"a"}) == set()  # b's outcome is in: nobody waits for it
    assert pages.hot_pages({"a", "b"}) == set()  # forgotten until the list shows it again
    assert pages.next_hot({"a", "b"}, now=100.0, pages=4) is None


def test_a_job_is_looked_for_on_the_page_that_showed_it_last() -> None:
    pages = PageMap(PollPolicy())
    pages.read((NORMAL, 2), rows(a="RUNNING"), at=0.0)
    pages.read((NORMAL, 1), rows(a="RUNNING"), at=0.5)  # a job before it was deleted
    assert pages.hot_pages({"a"}) == {(NORMAL, 1)}
    pages.read(("BATCH_JOB", 1), rows(a="PENDING"), at=0.7)
    assert pages.hot_pages({"a"}) == {("BATCH_JOB", 1)}


def test_the_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="hot_page_gap"):
        PollPolicy(hot_page_gap=0)
    with pytest.raises(ValueError, match="hot_page_ratio"):
        PollPolicy(hot_page_ratio=-1)


# ---------------------------------------------------------------------- on the simulator


async def end_lags(policy: PollPolicy) -> tuple[list[float], int]:
    """A 2,000-table migration (20 list pages, a 10 s sweep) running 20 tables at a
    time, watched through the list for 400 virtual seconds: each end's detection lag,
    and the list requests spent."""
    sim = CDMSimulator(clock=FakeClock(), seed=7, limits=RateLimits.cdm_defaults())
    names = sim.add_database_job("erp", 2000, parallelism=20, run_seconds=(60.0, 120.0))
    started = sim.clock.time()
    run = await run_watch(
        sim, names, timeout=400.0, strategy="list", poll=policy, random=random.Random(7)
    )
    assert sim.stats.by_status.get(429, 0) == 0
    lags = []
    for name in names:
        truth = [s for s in sim.transitions(name) if s.status.is_terminal]
        seen = [
            c for c in run.changes(name) if isinstance(c, StatusChanged) and c.current.is_terminal
        ]
        if truth and truth[0].at <= started + 390.0:
            assert seen, f"{name} ended at {truth[0].at - started:.0f} s, unseen"
            assert run.outcomes[name] == expected_kind(sim, name)
            lags.append(seen[0].at.timestamp() - truth[0].at)
    return lags, run.counting.list_requests


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # a scale test: one loop is enough
async def test_ends_on_the_pages_of_running_tables_are_seen_long_before_the_sweep_returns() -> None:
    hot, hot_requests = await end_lags(PollPolicy())
    plain, plain_requests = await end_lags(PollPolicy(hot_page_ratio=0))
    assert len(hot) == len(plain) > 50
    # A sweep of 20 pages takes 10 s: without re-reads, an end waits for the sweep to
    # come back to its page (5 s on average, up to more than a whole sweep).
    assert statistics.median(plain) > 3.0
    assert max(plain) > 8.0
    # The tables running sit on one or two pages, read again about every second.
    assert statistics.median(hot) < 1.5
    assert max(hot) < 5.0
    # The same list budget, spent elsewhere.
    assert hot_requests <= plain_requests * 1.05
