"""The end estimator alone, per progress shape: how late and at what cost it sees ends.

No waiter, no budget, no event loop: simulated runs (the detection-lag benchmark's: 5-60 s
of booting, 2-30 minutes running, 2% failing part way) are followed look by look, from a
first look 0-30 s after each run starts running, until a look finds the run ended. Two
schedules are compared on the same runs:

* today: every look after the running interval of ``PollPolicy`` (5 s + 10% of the time
  running, up to 60 s), what the waiter does for a running job it polls on its own;
* estimator: ``EstimatePolicy.next_look`` with that interval as its fallback.

The lag is the time from the end to the look that saw it; looks count every look at the
run, the one that saw the end included. This is the most the estimator can give when the
budget allows every look it asks for; the waiter shares one budget between many jobs.

    .venv/bin/python benchmarks/estimator_replay.py [--runs 2000] [--max-wait 60,120,300]

Prints a markdown table and writes ``benchmarks/results/estimator_replay.json``.
"""

from __future__ import annotations

import argparse
import random
import statistics
from collections.abc import Callable
from typing import Any

from _lag import percentile  # type: ignore[import-not-found]
from _report import save  # type: ignore[import-not-found]

from cdm_status import JobStatus, PollPolicy
from cdm_status._estimate import EstimatePolicy, ProgressTrack, observe
from cdm_status.testing import PROGRESS_SHAPES, random_plan
from cdm_status.testing._progress import draw_curve
from cdm_status.testing._timeline import Run

SEED = 2026
RUN_SECONDS = (120.0, 1800.0)
FAILURE_RATE = 0.02
Schedule = Callable[[ProgressTrack, float, float], float]


def runs(shape: str, count: int) -> list[tuple[Run, float]]:
    """``count`` runs with ``shape`` progress, each with the time of its first look."""
    rng, curves = random.Random(SEED), random.Random(f"{SEED}:progress")
    drawn = []
    for _ in range(count):
        plan = random_plan(rng, failure_rate=FAILURE_RATE, run_seconds=RUN_SECONDS)
        curve = draw_curve(shape, curves)  # type: ignore[arg-type]
        run = Run("job", 1, 0.0, plan, "x", "job", progress_curve=curve)
        drawn.append((run, run.running_at + rng.uniform(0.0, 30.0)))
    return drawn


def follow(run: Run, first: float, schedule: Schedule, polls: PollPolicy) -> tuple[float, int]:
    """(lag, looks) of one run followed with ``schedule``."""
    now, track, looks = first, None, 1
    state = run.state_at(now)
    while state is not None and state.status is JobStatus.RUNNING:
        reading = state.progress if run.progress_curve.reported else None
        track = observe(track, at=now, progress=reading, started=0.0)
        now = schedule(track, now, polls.interval(JobStatus.RUNNING, now - run.running_at))
        looks += 1
        state = run.state_at(now)
    return now - run.end(), looks


def measure(shape: str, name: str, schedule: Schedule, count: int) -> dict[str, Any]:
    polls = PollPolicy()
    ends: list[float] = []
    failures: list[float] = []
    looks: list[int] = []
    for run, first in runs(shape, count):
        lag, spent = follow(run, first, schedule, polls)
        (ends if run.outcome is JobStatus.SUCCEEDED else failures).append(lag)
        looks.append(spent)
    return {
        "progress": shape,
        "schedule": name,
        "runs": count,
        "end_p50": percentile(ends, 0.5),
        "end_p95": percentile(ends, 0.95),
        "end_max": max(ends),
        "failure_p50": percentile(failures, 0.5),
        "failure_max": max(failures, default=float("nan")),
        "looks_per_run": statistics.fmean(looks),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| progress | schedule | end lag p50 | p95 | max | failure lag p50 | max | looks/run |",
        "|" + "---|" * 8,
    ]
    for row in rows:
        lines.append(
            f"| {row['progress']} | {row['schedule']} | {row['end_p50']:.1f} s "
            f"| {row['end_p95']:.1f} s | {row['end_max']:.1f} s | {row['failure_p50']:.1f} s "
            f"| {row['failure_max']:.1f} s | {row['looks_per_run']:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument(
        "--max-wait", default="60,120,300", help="EstimatePolicy.max_wait values, ,-separated"
    )
    args = parser.parse_args()

    def today(track: ProgressTrack, now: float, interval: float) -> float:
        return now + interval

    schedules: list[tuple[str, Schedule]] = [("running interval (today)", today)]
    for seconds in (float(value) for value in args.max_wait.split(",")):
        estimator = EstimatePolicy(max_wait=seconds)
        schedules.append((f"estimator, max_wait {seconds:g} s", estimator.next_look))
    rows = [
        measure(shape, name, schedule, args.runs)
        for shape in PROGRESS_SHAPES
        for name, schedule in schedules
    ]
    print(table(rows))
    save("estimator_replay", rows)


if __name__ == "__main__":
    main()
