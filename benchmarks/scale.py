"""Scale: the waiter's own cost with 1,000 to 100,000 watched jobs.

The API is replaced by an instant in-memory stand-in (each job answers RUNNING twice, then
SUCCEEDED) and the rate limit is lifted, so what is measured is the waiter alone: its
state per job (tracemalloc, after every job has been looked at once) and its CPU per poll
and per event. If any step were O(number of jobs) per poll, CPU per poll would grow with
the number of jobs; it should stay flat.

    .venv/bin/python benchmarks/scale.py [--sizes 1000,10000,100000]

Prints a markdown table and writes ``benchmarks/results/scale.json``.
"""

from __future__ import annotations

import argparse
import functools
import gc
import random
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from typing import Any

import anyio
from _report import save  # type: ignore[import-not-found]

from cdm_status import (
    JobDone,
    JobStatus,
    JobStatusWaiter,
    PollPolicy,
    RateLimiter,
    ServerClock,
    Submission,
)
from cdm_status._schedule import RequestWindow
from cdm_status.testing import FakeClock


class InstantAPI:
    """Stands in for CDMClient.get_status: RUNNING, RUNNING, then SUCCEEDED."""

    def __init__(self) -> None:
        self.polls: Counter[str] = Counter()
        self.running = Submission(job_name="", status=JobStatus.RUNNING, raw_status="RUNNING")
        self.done = Submission(job_name="", status=JobStatus.SUCCEEDED, raw_status="SUCCEEDED")
        # A budget that never holds a poll back: the engine's own cost is measured.
        self.budget = self.list_budget = RateLimiter(1e12)
        self.server_clock = ServerClock()  # the engine reads its offset (no dates here)
        self._status_window = RequestWindow()

    async def _poll_status(self, job_name: str, *, on_slot: Callable[[], None]) -> Submission:
        on_slot()
        self.polls[job_name] += 1
        return self.running if self.polls[job_name] < 3 else self.done


async def measure(jobs: int, *, trace: bool) -> dict[str, Any]:
    """One watch of ``jobs`` to the end; with ``trace``, the state size is measured
    (tracemalloc slows everything down, so CPU is measured in a run without it)."""
    names = [f"warehouse_table_{i:06d}" for i in range(jobs)]
    api = InstantAPI()
    clock = FakeClock()
    waiter = JobStatusWaiter(
        api,  # type: ignore[arg-type]
        max_concurrency=64,
        clock=clock,
        poll=PollPolicy(min_interval=5.0),
        strategy="per_job",
        random=random.Random(0),
    )
    events = 0
    state_bytes = 0.0
    gc.collect()
    if trace:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cpu = time.process_time()
    async with clock.autojump(), waiter, waiter.watch(names) as stream:
        async for event in stream:
            events += 1
            if trace and not state_bytes and len(api.polls) == jobs:
                # Every job has been looked at once: the watch holds its full state now.
                gc.collect()
                state_bytes = (tracemalloc.get_traced_memory()[0] - before) / jobs
                tracemalloc.stop()
            if isinstance(event, JobDone):
                assert event.outcome.succeeded
    cpu = time.process_time() - cpu
    polls = sum(api.polls.values())
    assert polls == 3 * jobs, polls
    return {
        "jobs": jobs,
        "state_bytes_per_job": state_bytes,
        "polls": polls,
        "events": events,
        "cpu_us_per_poll": cpu / polls * 1e6,
        "cpu_us_per_event": cpu / events * 1e6,
        "cpu_seconds": cpu,
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| watched jobs | waiter state per job | polls | events | CPU per poll | CPU per event |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['jobs']:,} | {row['state_bytes_per_job']:,.0f} B | {row['polls']:,} "
            f"| {row['events']:,} | {row['cpu_us_per_poll']:.0f} µs "
            f"| {row['cpu_us_per_event']:.0f} µs |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        memory = anyio.run(functools.partial(measure, size, trace=True))
        row = anyio.run(functools.partial(measure, size, trace=False))
        row["state_bytes_per_job"] = memory["state_bytes_per_job"]
        rows.append(row)
        print(f"  {size:>7,} jobs: {rows[-1]['cpu_seconds']:.1f} s CPU", flush=True)
    print()
    print(table(rows))
    save("scale", rows)


if __name__ == "__main__":
    main()
