"""The chaos suite's figures: what the storm of ``tests/chaos`` costs a watch.

Runs the 1,000-subjob migration of ``tests/chaos/test_storm.py`` calm and in the storm,
for each strategy, on a virtual clock, and reports what the server saw (requests, faults)
and what the watch reported (poll failures, time to the last outcome). Used to compare the
engine before and after a change, in the same run of the same script.

    .venv/bin/python benchmarks/chaos.py

Prints a markdown table and writes ``benchmarks/results/chaos.json``.
"""

from __future__ import annotations

import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from _report import save  # type: ignore[import-not-found]

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdm_status.testing import FakeClock
from tests.support.simulated import run_watch
from tests.support.storm import Storm, check_against_truth, migration, poll_failures

TABLES = 1000
logging.getLogger("cdm_status").setLevel(logging.ERROR)  # the storm logs every fault


async def one(strategy: str, faulty: bool) -> dict[str, Any]:
    clock = FakeClock()
    sim, names = migration(clock, TABLES, faulty=faulty)
    started, wall = clock.monotonic(), time.perf_counter()
    run = await run_watch(sim, names, strategy=strategy, random=random.Random(3))
    check_against_truth(sim, names, run.events)
    return {
        "strategy": strategy,
        "storm": faulty,
        "requests": sim.stats.total,
        "status": sim.stats.by_endpoint.get("status", 0),
        "list": sim.stats.by_endpoint.get("list", 0),
        "faults": sum(Storm.of(sim).faults.values()),
        "poll_failures": poll_failures(run.events),
        "virtual_s": round(clock.monotonic() - started, 1),
        "wall_s": round(time.perf_counter() - wall, 2),
        "max_status_60s": sim.stats.max_in_window("status", 60.0),
    }


async def main() -> None:
    # The engine runs as services run it: inside `async with waiter` (run_watch).
    rows = [await one(s, f) for s in ("auto", "per_job") for f in (False, True)]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in keys) + " |")
    save("chaos", rows)


if __name__ == "__main__":
    anyio.run(main)
