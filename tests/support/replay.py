"""One seeded watch on the simulator, in virtual time, whose request log is written out:
run in two processes, the two logs must be the same bytes (``tests/engine/test_determinism.py``).

    python tests/support/replay.py LOG_PATH [--backend asyncio|trio]

On trio, the scheduler itself runs the tasks that are ready at one moment in a random
order (on purpose, to shake out races), from a generator of its own that nothing seeds:
``--backend trio`` seeds it, so that what is compared is the engine's order.

Two whole-database jobs, one listed (swept through the job list) and one not (polled job
by job once the first sweep misses it), watched by one waiter in two subscriptions; every
request takes a seeded round trip, so polls and sweeps overlap on the wire.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import anyio
import httpx

from cdm_status import JobStatusWaiter
from cdm_status.testing import CDMSimulator, FakeClock, RateLimits

SEED = 21


class Delayed(httpx.AsyncBaseTransport):
    """A seeded round trip of 20-120 ms (virtual) before each request."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: FakeClock) -> None:
        self._inner = inner
        self._clock = clock
        self._random = random.Random(SEED)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self._clock.sleep(self._random.uniform(0.02, 0.12))
        return await self._inner.handle_async_request(request)


async def scenario() -> list[str]:
    clock = FakeClock()
    simulator = CDMSimulator(
        clock=clock, seed=SEED, limits=RateLimits.cdm_defaults(), log_requests=True
    )
    listed = simulator.add_database_job(
        "erp", 60, parallelism=12, failure_rate=0.05, run_seconds=(60.0, 600.0),
        start_order="shuffled",
    )  # fmt: skip
    hidden = simulator.add_database_job(
        "crm", 60, parallelism=12, failure_rate=0.05, run_seconds=(60.0, 600.0), listed=False
    )
    http = httpx.AsyncClient(
        transport=Delayed(simulator.transport(), clock), base_url=simulator.endpoint
    )
    async with simulator.client(http_client=http) as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock, random=random.Random(SEED))

        async def follow(names: list[str]) -> None:
            async with waiter.watch(names, timeout=3 * 3600.0) as stream:
                async for _ in stream:
                    pass

        async with waiter, anyio.create_task_group() as group:
            group.start_soon(follow, listed)
            group.start_soon(follow, hidden)
    await http.aclose()
    assert simulator.request_log is not None
    return simulator.request_log


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("log", type=Path)
    parser.add_argument("--backend", default="asyncio")
    args = parser.parse_args()
    if args.backend == "trio":
        import trio._core._run

        trio._core._run._r.seed(SEED)
    log = anyio.run(scenario, backend=args.backend)
    args.log.write_text("\n".join(log) + "\n")
    print(len(log), file=sys.stderr)


if __name__ == "__main__":
    main()
