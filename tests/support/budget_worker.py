"""One OS process that waits for jobs on a (shared or local) budget, for the multi-process
tests and ``benchmarks/shared_budget.py``; prints one JSON object when done.

    python tests/support/budget_worker.py ENDPOINT JOB... [--redis URL] [--backend trio]
        [--library coredis] [--budget-id ID] [--strategy per_job] [--timeout S] [--speed X]

``--speed X``: the client, the waiter and the budget run on a clock X times faster than
real time (against a simulator whose gateway counts its minutes on such a clock).

The object: each job's outcome kind, the acquire latencies (seconds, every request
attempt), the most sharers seen, the outages and the share used while Redis was away.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from typing import Any

import anyio

from cdm_status import Budget, Clock, JobStatusWaiter, LoopClock, RateLimiter, RedisBudget
from cdm_status.cli._common import budget_window
from cdm_status.testing import DEFAULT_CLUSTER_ID, DEFAULT_PROJECT_ID, ScaledClock


class TimedBudget:
    """Passes through to ``inner``, timing each ``acquire`` (the wall clock: a benchmark)."""

    def __init__(self, inner: Budget, report: dict[str, Any]) -> None:
        self.inner = inner
        self.report = report

    @property
    def per_minute(self) -> float:
        return self.inner.per_minute

    def pause(self, seconds: float) -> None:
        self.inner.pause(seconds)

    async def acquire(self) -> None:
        started = time.monotonic()
        await self.inner.acquire()
        self.report["acquire_seconds"].append(round(time.monotonic() - started, 4))
        sharers = getattr(self.inner, "sharers", 1)
        self.report["max_sharers"] = max(self.report["max_sharers"], sharers)


class FallbackRecorder(logging.Handler):
    """Notes the share in use each time the budget falls back to a local limit."""

    def __init__(self, budget: RedisBudget, report: dict[str, Any]) -> None:
        super().__init__(logging.WARNING)
        self.budget = budget
        self.report = report

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.report["warnings"].append(message)
        if "does not answer" in message:
            self.report["fallback_per_minute"].append(self.budget.per_minute)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from cdm_status import CDMClient, TokenAuth

    report: dict[str, Any] = {
        "acquire_seconds": [],
        "max_sharers": 1,
        "warnings": [],
        "fallback_per_minute": [],
    }
    clock: Clock = LoopClock() if args.speed == 1 else ScaledClock(args.speed)
    client = CDMClient(
        args.endpoint,
        DEFAULT_PROJECT_ID,
        DEFAULT_CLUSTER_ID,
        auth=TokenAuth("worker"),
        clock=clock,
        request_timeout=30.0 * args.speed,  # the network is not sped up: 30 real seconds
    )
    async with client:
        if args.redis is None:
            local = RateLimiter(120, window=budget_window(args.speed), clock=clock)
            client.share_budget(TimedBudget(local, report))
            waiter = JobStatusWaiter(client, strategy=args.strategy, random=random.Random(0))
            outcomes = await waiter.wait_all(args.jobs, timeout=args.timeout)
        else:
            budget = RedisBudget.from_url(
                args.redis,
                budget_id=args.budget_id,
                library=args.library,
                clock=clock,
                window=budget_window(args.speed),
                speed=args.speed,
            )
            logging.getLogger("cdm_status").addHandler(FallbackRecorder(budget, report))
            client.share_budget(TimedBudget(budget, report), budget.list_budget)
            async with budget:
                waiter = JobStatusWaiter(client, strategy=args.strategy, random=random.Random(0))
                outcomes = await waiter.wait_all(args.jobs, timeout=args.timeout)
                report["outages"] = budget.outages
                report["shared_at_end"] = budget.shared
    report["outcomes"] = {name: outcome.kind.value for name, outcome in outcomes.items()}
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("jobs", nargs="+")
    parser.add_argument("--redis")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--library", default="auto", choices=["auto", "redis", "coredis"])
    parser.add_argument("--budget-id", default="workers")
    parser.add_argument("--strategy", default="per_job")
    parser.add_argument("--timeout", type=float, help="seconds; unfinished jobs time out")
    parser.add_argument("--speed", type=float, default=1.0, help="the clock's speed-up")
    arguments = parser.parse_args()
    result = anyio.run(main, arguments, backend=arguments.backend)
    print(json.dumps(result))
