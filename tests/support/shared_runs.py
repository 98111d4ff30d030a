"""Set-up shared by the multi-process tests and ``benchmarks/shared_budget.py``: a
simulator served over a loopback socket in a thread (so its server-side counts can be
read), and processes that wait on its jobs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio.from_thread

from cdm_status import OutcomeKind
from cdm_status._clock import LoopClock
from cdm_status.testing import (
    DEFAULT_CLUSTER_ID,
    DEFAULT_PROJECT_ID,
    CDMSimulator,
    JobPlan,
    RateLimits,
    ScaledClock,
    serve,
)

COMMAND = str(Path(sys.executable).with_name("cdm-status"))
WORKER = str(Path(__file__).with_name("budget_worker.py"))


@dataclass
class Served:
    simulator: CDMSimulator
    endpoint: str
    names: list[str]
    speed: float = 1.0
    """How many times faster than the clients' clock the jobs play."""
    scale: float = 1.0
    """How many times faster than real time the gateway's clock (and the clients') runs."""

    def expected(self, name: str) -> str:
        final = self.simulator.final_status(name)
        assert final is not None
        return (OutcomeKind.SUCCEEDED if final.is_success else OutcomeKind.FAILED).value

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("HUAWEICLOUD_SDK_", "CDM_"))
        }
        env.update(
            CDM_ENDPOINT=self.endpoint,
            HUAWEICLOUD_SDK_PROJECT_ID=DEFAULT_PROJECT_ID,
            CDM_CLUSTER_ID=DEFAULT_CLUSTER_ID,
            CDM_AUTH_TOKEN="any",
        )
        return env

    def requests(self, endpoint: str = "status") -> int:
        return self.simulator.stats.by_endpoint[endpoint]

    def throttled(self) -> int:
        return self.simulator.stats.by_status[429]

    def busiest_window(self, endpoint: str = "status") -> int:
        """The most requests in any 60 s of the gateway's clock (a minute of CDM's)."""
        return self.simulator.stats.max_in_window(endpoint, 60.0)

    def real_seconds(self, seconds: float) -> float:
        """Real seconds for ``seconds`` of the clients' (scaled) time."""
        return seconds / self.scale

    def skip(self, seconds: float) -> None:
        """Play ``seconds`` (of the clients' clock) of the jobs at once; the gateway's clock,
        and so its rate limits, do not move."""
        clock = self.simulator.clock
        assert isinstance(clock, ScaledClock)
        clock.jump(seconds * self.speed)


@contextmanager
def served_simulator(
    jobs: int,
    *,
    speed: float,
    seed: int = 7,
    every_tenth_lasts: float | None = None,
    scale: float = 1.0,
) -> Iterator[Served]:
    """``jobs`` jobs under CDM's limits (120 status, 120 list a minute).

    ``scale``: the gateway counts its minutes on a clock that runs this many times faster
    than real time (``ScaledClock``; 1: real time), so 120 a minute is 120 in every
    ``60 / scale`` real seconds; clients must run on the same clock (``--speed scale``).
    ``speed``: how many times faster than that clock the jobs play.
    ``every_tenth_lasts``: seconds of the clients' clock that every tenth job runs (the
    others are drawn from the seed), so each group of ten outlives a test's timeline.
    """
    simulator = CDMSimulator(
        clock=ScaledClock(speed * scale),
        gateway_clock=LoopClock() if scale == 1 else ScaledClock(scale),
        seed=seed,
        limits=RateLimits.cdm_defaults(),
    )
    names = []
    for index in range(jobs):
        plan = None
        if every_tenth_lasts is not None and index % 10 == 9:
            plan = JobPlan(boot_seconds=1.0, run_seconds=every_tenth_lasts * speed)
        names.append(simulator.add_job(f"job_{index:03d}", plan=plan, failure_rate=0.1))
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(serve(simulator)) as endpoint,
    ):
        yield Served(simulator, endpoint, names, speed, scale)


def split(names: Sequence[str], parts: int) -> list[list[str]]:
    size = -(-len(names) // parts)
    return [list(names[index : index + size]) for index in range(0, len(names), size)]


def start_worker(served: Served, jobs: Sequence[str], *argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, served.endpoint, *jobs, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=served.env(),
    )


def finish(process: subprocess.Popen[str], timeout: float) -> tuple[int, str, str]:
    stdout, stderr = process.communicate(timeout=timeout)
    return process.returncode, stdout, stderr


def worker_report(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    code, stdout, stderr = finish(process, timeout)
    assert code == 0, stderr
    assert "Traceback" not in stderr, stderr
    report: dict[str, Any] = json.loads(stdout)
    return report


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` (a state of other processes: nothing here can be awaited)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
