"""Detection lag under CDM's real rate limit: how late does each client notice a change?

A whole-database migration of N subjobs runs on the CDM simulator with the documented
limits on (120 status and 120 list requests per user per minute, over any 60 s window),
on a shared virtual clock, so hours of migration run in seconds; every request takes a
round trip of 20-120 ms. Each client watches every
subjob; the lag is the time between the simulator's ground-truth state change and the
moment the client saw it. Compared: cdm-status (``auto`` and ``per_job``) and two
hand-written baselines (see ``_lag.py``).

Every case runs once per progress shape (how running subjobs report ``progress``: see
``cdm_status.testing._progress``) and start order of the tables. The shape never moves
a start or an end, so a client that ignores progress scores the same on every shape;
the hand-written loops ignore it, and run on the first shape and order only.

    .venv/bin/python benchmarks/detection_lag.py [--sizes 100,1000,10000]
        [--shapes linear,stalling,jumpy,zero,absent] [--orders in_order,shuffled]

Prints a markdown table and writes ``benchmarks/results/detection_lag.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from _lag import NetworkDelay, Sightings, baseline, naive_gather, score, sdk_pattern  # type: ignore[import-not-found]
from _report import save  # type: ignore[import-not-found]

from cdm_status import JobStatusWaiter, StatusChanged
from cdm_status.testing import (
    PROGRESS_SHAPES,
    START_ORDERS,
    CDMSimulator,
    FakeClock,
    ProgressShape,
    RateLimits,
    StartOrder,
)

HOUR = 3600.0


@dataclass(frozen=True)
class Scenario:
    tables: int
    parallelism: int
    horizon: float
    """Virtual seconds watched; the migration may go on after it."""
    baseline_horizon: float | None
    """Shorter window for the hand-written loops (their request count grows with N), or
    None to skip them."""


SCENARIOS = {
    100: Scenario(100, parallelism=10, horizon=6 * HOUR, baseline_horizon=6 * HOUR),
    1000: Scenario(1000, parallelism=50, horizon=2 * HOUR, baseline_horizon=0.5 * HOUR),
    10000: Scenario(10000, parallelism=200, horizon=2 * HOUR, baseline_horizon=None),
}
RUN_SECONDS = (120.0, 1800.0)  # each table: 2 to 30 minutes, plus 5-60 s of BOOTING
FAILURE_RATE = 0.02
SEED = 2026


def build(
    scenario: Scenario, shape: ProgressShape, order: StartOrder
) -> tuple[CDMSimulator, list[str]]:
    simulator = CDMSimulator(
        clock=FakeClock(), seed=SEED, limits=RateLimits.cdm_defaults(), progress=shape
    )
    jobs = simulator.add_database_job(
        "erp",
        scenario.tables,
        parallelism=scenario.parallelism,
        failure_rate=FAILURE_RATE,
        run_seconds=RUN_SECONDS,
        start_order=order,
    )
    return simulator, jobs


def cdm_status_client(strategy: str) -> Callable[..., Awaitable[Sightings]]:
    async def watch(
        simulator: CDMSimulator, http: httpx.AsyncClient, jobs: list[str], horizon: float
    ) -> Sightings:
        sightings = Sightings()
        async with simulator.client(http_client=http) as client:
            waiter = JobStatusWaiter(
                client,
                clock=simulator.clock,
                random=random.Random(SEED),
                strategy=strategy,  # type: ignore[arg-type]
            )
            async with waiter, waiter.watch(jobs, timeout=horizon) as events:
                async for event in events:
                    if isinstance(event, StatusChanged):
                        sightings.record(event.job_name, event.current.value, event.at.timestamp())
        return sightings

    return watch


CLIENTS: dict[str, tuple[Callable[..., Awaitable[Sightings]], bool]] = {
    "cdm-status auto": (cdm_status_client("auto"), False),
    "cdm-status per_job": (cdm_status_client("per_job"), False),
    "gather+httpx (10 s loop)": (baseline(naive_gather), True),
    "SDK pattern (8 threads, 10 s)": (baseline(sdk_pattern), True),
}


async def run_one(
    name: str, scenario: Scenario, shape: ProgressShape, order: StartOrder
) -> dict[str, Any] | None:
    watch, is_baseline = CLIENTS[name]
    horizon = scenario.baseline_horizon if is_baseline else scenario.horizon
    if horizon is None:
        return None
    simulator, jobs = build(scenario, shape, order)
    clock = simulator.clock
    assert isinstance(clock, FakeClock)
    started_wall = time.perf_counter()
    start = clock.time()
    transport = NetworkDelay(simulator.transport(), clock, seed=SEED)
    http = httpx.AsyncClient(transport=transport, base_url=simulator.endpoint)
    async with clock.autojump():
        sightings = await watch(simulator, http, jobs, horizon)
    await http.aclose()
    result = score(simulator, jobs, sightings, start + horizon)
    stats = simulator.stats
    status_requests = stats.by_endpoint.get("status", 0)
    list_requests = stats.by_endpoint.get("list", 0)
    return {
        "client": name,
        "progress": shape,
        "order": order,
        "subjobs": scenario.tables,
        "parallelism": scenario.parallelism,
        "horizon_h": horizon / HOUR,
        **result.row(),
        "status_requests": status_requests,
        "list_requests": list_requests,
        "requests_per_job": (status_requests + list_requests) / scenario.tables,
        "throttled_429": stats.by_status.get(429, 0),
        "wall_seconds": time.perf_counter() - started_wall,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| subjobs | client | progress | order | window | end lag p50 | p95 | max "
        "| all changes p95 | ends seen / missed | lost | status req | list req | req/job "
        "| 429s |"
    )
    lines = [head, "|" + "---|" * 15]
    for row in rows:
        lines.append(
            f"| {row['subjobs']:,} | {row['client']} | {row['progress']} "
            f"| {row['order'].replace('_', ' ')} | {row['horizon_h']:g} h "
            f"| {row['end_p50']:.1f} s | {row['end_p95']:.1f} s | {row['end_max']:.1f} s "
            f"| {row['change_p95']:.1f} s | {row['ends_seen']:,} / {row['ends_missed']:,} "
            f"| {row['lost']} | {row['status_requests']:,} | {row['list_requests']:,} "
            f"| {row['requests_per_job']:.1f} | {row['throttled_429']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--clients", default=";".join(CLIENTS), help="names, ;-separated")
    parser.add_argument(
        "--shapes",
        default="linear,stalling,jumpy,zero,absent",
        help=f"progress shapes, ,-separated, of: {', '.join(PROGRESS_SHAPES)}",
    )
    parser.add_argument(
        "--orders",
        default="in_order",
        help=f"start orders of the tables, ,-separated, of: {', '.join(START_ORDERS)}",
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    shapes: list[ProgressShape] = args.shapes.split(",")
    orders: list[StartOrder] = args.orders.split(",")
    for values, allowed in ((shapes, PROGRESS_SHAPES), (orders, START_ORDERS)):
        for value in values:
            if value not in allowed:
                parser.error(f"{value!r} is not one of {', '.join(allowed)}")
    rows: list[dict[str, Any]] = []
    for size in sizes:
        for order in orders:
            for shape in shapes:
                for name in args.clients.split(";"):
                    if CLIENTS[name][1] and (shape, order) != (shapes[0], orders[0]):
                        continue  # the hand-written loops never read progress
                    row = asyncio.run(run_one(name, SCENARIOS[size], shape, order))
                    if row is None:
                        continue
                    rows.append(row)
                    print(
                        f"  {size:>6} {name:<30} {shape:<8} {order:<8} p95 end lag "
                        f"{row['end_p95']:8.1f} s ({row['wall_seconds']:.1f} s wall)",
                        flush=True,
                    )
    print()
    print(table(rows))
    save("detection_lag", rows)


if __name__ == "__main__":
    main()
