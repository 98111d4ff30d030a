"""Pieces of the detection-lag benchmark: the hand-written baselines and the scoring.

The baselines are written the way users write them by hand, on the benchmark's virtual
clock so that hours of a migration run in seconds:

* ``polite_loop``: each job polled in turn, one request every half second (the limit
  of 120 a minute), the floor any scheduler should never fall below;

* ``naive_gather``: one ``asyncio.gather``-ed loop per job, an httpx GET, a fixed 10 s
  sleep, no shared budget, no backoff (a 429 is just a failed look);
* ``sdk_pattern``: the official SDK's pattern, ``show_job_status`` from a fixed pool of 8
  worker threads (the SDK's "async" client), each job asked again after a fixed interval.
  Blocking threads cannot run on a virtual clock, so the pool is modelled by 8 tasks
  that each handle one request at a time; the SDK's real CPU cost is measured by
  ``benchmarks/overhead.py`` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import random
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from cdm_status import JobStatus
from cdm_status.testing import CDMSimulator, FakeClock

TERMINAL = {"SUCCEEDED", "FAILED", "FAILURE_ON_SUBMIT", "STOPPED"}


@dataclass
class Sightings:
    """What a client saw: per job, (status, virtual epoch time) in order."""

    seen: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    def record(self, job: str, status: str, at: float) -> None:
        history = self.seen.setdefault(job, [])
        if not history or history[-1][0] != status:
            history.append((status, at))


class NetworkDelay(httpx.AsyncBaseTransport):
    """Adds a round-trip time drawn from ``[low, high)`` seconds (virtual clock) to every
    request, so that loops started together drift apart as they would on a real network."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        clock: FakeClock,
        seed: int,
        low: float = 0.02,
        high: float = 0.12,
    ) -> None:
        self._inner = inner
        self._clock = clock
        self._random = random.Random(seed)
        self._low = low
        self._high = high

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._clock.sleep(self._random.uniform(self._low, self._high))
        return await self._inner.handle_async_request(request)


def status_url(simulator: CDMSimulator, job: str) -> str:
    return (
        f"{simulator.endpoint}/v1.1/{simulator.project_id}/clusters/{simulator.cluster_id}"
        f"/cdm/job/{quote(job, safe='')}/status"
    )


def _status_of(response: httpx.Response) -> str | None:
    if response.status_code != 200:
        return None
    submissions = response.json()["submissions"]
    return str(submissions[0]["status"]) if submissions else "NEVER_EXECUTED"


async def naive_gather(
    simulator: CDMSimulator,
    http: httpx.AsyncClient,
    jobs: list[str],
    sightings: Sightings,
    interval: float = 10.0,
) -> None:
    """``asyncio.gather`` of per-job loops: GET, look, sleep ``interval``."""
    clock = simulator.clock

    async def follow(job: str) -> None:
        url = status_url(simulator, job)
        while True:
            status = _status_of(await http.get(url))
            if status is not None:
                sightings.record(job, status, clock.time())
                if status in TERMINAL:
                    return
            await clock.sleep(interval)

    await asyncio.gather(*(follow(job) for job in jobs))


async def polite_loop(
    simulator: CDMSimulator,
    http: httpx.AsyncClient,
    jobs: list[str],
    sightings: Sightings,
    per_minute: float = 120.0,
    window: float = 61.0,
) -> None:
    """The polite per-job loop: the jobs polled in turn, one status request every
    ``window / per_minute`` seconds (so that no 60 s window, network delays included,
    holds more than the limit); a job that ended leaves the round. Each job is looked at
    every ``jobs still going / rate`` seconds: N/rate at most."""
    clock = simulator.clock
    spacing = window / per_minute
    pending = list(jobs)
    index = 0
    due = clock.monotonic()
    while pending:
        await clock.sleep(due - clock.monotonic())
        due += spacing
        job = pending[index]
        status = _status_of(await http.get(status_url(simulator, job)))
        if status is not None:
            sightings.record(job, status, clock.time())
            if status in TERMINAL:
                pending.pop(index)
                index = index % len(pending) if pending else 0
                continue
        index = (index + 1) % len(pending)


async def sdk_pattern(
    simulator: CDMSimulator,
    http: httpx.AsyncClient,
    jobs: list[str],
    sightings: Sightings,
    interval: float = 10.0,
    threads: int = 8,
) -> None:
    """A pool of ``threads`` workers; each job is asked again ``interval`` after its answer."""
    clock = simulator.clock
    due: list[tuple[float, int, str]] = [(clock.monotonic(), i, job) for i, job in enumerate(jobs)]
    heapq.heapify(due)
    order = len(jobs)

    async def worker() -> None:
        nonlocal order
        while due:
            at, _, job = heapq.heappop(due)
            await clock.sleep(at - clock.monotonic())
            status = _status_of(await http.get(status_url(simulator, job)))
            if status is not None:
                sightings.record(job, status, clock.time())
                if status in TERMINAL:
                    continue
            order += 1
            heapq.heappush(due, (clock.monotonic() + interval, order, job))

    await asyncio.gather(*(worker() for _ in range(threads)))


async def until(clock: FakeClock, seconds: float, work: Callable[[], Any]) -> bool:
    """Run ``work()`` until it ends or ``seconds`` of virtual time pass; True if it ended."""
    task = asyncio.ensure_future(work())
    timer = asyncio.ensure_future(clock.sleep(seconds))
    done, _ = await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    for pending in (task, timer):
        if pending not in done:
            pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pending
    return task in done


def baseline(run: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[Sightings]]:
    """A hand-written loop (``naive_gather``...) as a watch: what it saw until ``horizon``
    seconds of virtual time, when it is cut off."""

    async def watch(
        simulator: CDMSimulator, http: httpx.AsyncClient, jobs: list[str], horizon: float
    ) -> Sightings:
        sightings = Sightings()  # filled as the loops go: they are cut off at the horizon
        assert isinstance(simulator.clock, FakeClock)
        await until(simulator.clock, horizon, lambda: run(simulator, http, jobs, sightings))
        return sightings

    return watch


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Score:
    end_lags: list[float]
    change_lags: list[float]
    undetected_ends: int
    wrong: int

    def row(self) -> dict[str, float | int]:
        return {
            "end_p50": percentile(self.end_lags, 0.50),
            "end_p95": percentile(self.end_lags, 0.95),
            "end_max": max(self.end_lags, default=float("nan")),
            "change_p95": percentile(self.change_lags, 0.95),
            "ends_seen": len(self.end_lags),
            "ends_missed": self.undetected_ends,
            "lost": self.wrong,
            "mean_end": statistics.fmean(self.end_lags) if self.end_lags else float("nan"),
        }


def score(simulator: CDMSimulator, jobs: list[str], sightings: Sightings, horizon: float) -> Score:
    """Lags between the simulator's ground truth and what the client saw, up to ``horizon``
    (epoch seconds): every change, and the end of each job (the one users wait for)."""
    end_lags: list[float] = []
    change_lags: list[float] = []
    missed = 0
    wrong = 0
    for job in jobs:
        truth = [step for step in simulator.transitions(job) if step.at <= horizon]
        seen = sightings.seen.get(job, [])
        for step in truth:
            detected = next(
                (at for status, at in seen if status == step.status.value and at >= step.at),
                None,
            )
            if detected is not None:
                change_lags.append(detected - step.at)
            if step.status.is_terminal:
                if detected is None:
                    missed += 1
                else:
                    end_lags.append(detected - step.at)
        final = simulator.final_status(job)
        reported = seen[-1][0] if seen else None
        if reported in TERMINAL and final is not None and JobStatus(reported) is not final:
            wrong += 1
    return Score(end_lags, change_lags, missed, wrong)
