"""Several OS processes on one shared budget, against one simulator on a loopback socket
that counts what it serves and throttles like CDM (120 a minute, per user).

Time is scaled: the simulator's gateway counts CDM's minute on a clock that runs several
times faster than real time (``scale``), and the processes run on such a clock too
(``--speed``), their budgets and the budget's Redis time included. Every limit, window,
heartbeat and TTL keeps its CDM value in those seconds, so the tests prove what they
would in real time in a fraction of it: 400 jobs need at least 400 status requests, which
CDM's limit spreads over more than three (scaled) minutes whoever sends them. What is not
sped up (starting a process, a Redis socket's timeout, a loaded machine's jitter) is
counted in real seconds.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from cdm_status._redis_budget import SOCKET_TIMEOUT
from tests.support.redis_server import RedisServer
from tests.support.shared_runs import (
    COMMAND,
    finish,
    served_simulator,
    split,
    start_worker,
    wait_until,
    worker_report,
)

pytestmark = pytest.mark.slow
HEARTBEAT = 5.0
"""Seconds between a budget's heartbeats (a third of its 15 s sharer TTL)."""
SLACK = 1.0
"""Real seconds a loaded machine may take to let a process act on what it was told."""


def sharers(server: RedisServer) -> int:
    """Processes registered on the server's budgets right now."""
    import redis

    client = redis.Redis.from_url(server.url, socket_timeout=1.0)
    try:
        return sum(int(client.zcard(key)) for key in client.scan_iter("cdm-status:*:sharers"))
    finally:
        client.close()


def test_four_cli_processes_share_cdm_s_limit_without_a_429(redis_server: RedisServer) -> None:
    # Every job has ended by the first look: each costs exactly one status request. At
    # scale 10 CDM's minute lasts 6 real seconds: about 20 s in all.
    scale = 10.0
    with served_simulator(400, speed=1_000_000, scale=scale) as served:
        processes = []
        for index, jobs in enumerate(split(served.names, 4)):
            env = served.env()
            argv = [
                *(COMMAND, "wait", *jobs, "--json", "--budget-id", "pipeline"),
                *("--speed", str(scale)),
                # Attempts' deadlines count sped-up seconds; the network is not sped up.
                *("--request-timeout", str(30 * scale)),
            ]
            if index % 2:
                env["CDM_STATUS_BUDGET"] = redis_server.url  # the variable works as the flag
            else:
                argv += ["--budget", redis_server.url]
            processes.append(
                (
                    jobs,
                    subprocess.Popen(
                        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
                    ),
                )
            )
        summaries: list[dict[str, Any]] = []
        for jobs, process in processes:
            code, stdout, stderr = finish(process, timeout=120)
            lines = [json.loads(line) for line in stdout.splitlines()]
            done = {line["job"]: line["outcome"] for line in lines if line["event"] == "done"}
            assert done == {job: served.expected(job) for job in jobs}
            assert code == (1 if "failed" in done.values() else 0), stderr
            assert "Traceback" not in stderr
            summaries.append(lines[-1])
        assert served.throttled() == 0
        assert served.busiest_window("status") <= 120
        assert served.busiest_window("list") <= 120
        assert served.requests("status") >= 400
    # The first to finish still shared the budget with all four.
    assert max(summary["budget_sharers"] for summary in summaries) == 4


def test_redis_killed_restarted_empty_then_frozen_loses_no_job(
    own_redis_server: RedisServer,
) -> None:
    # Two asyncio processes on redis-py and two trio processes on coredis share one
    # budget; jobs end over the first minutes while Redis goes away twice, and one in ten
    # runs until Redis is back for good. At scale 5 a heartbeat comes every real second.
    scale = 5.0
    with served_simulator(40, speed=20, every_tenth_lasts=3600, scale=scale) as served:
        backends = [
            ("asyncio", "redis"),
            ("asyncio", "redis"),
            ("trio", "coredis"),
            ("trio", "coredis"),
        ]
        workers = [
            (
                jobs,
                start_worker(
                    served,
                    jobs,
                    "--redis",
                    own_redis_server.url,
                    "--backend",
                    backend,
                    "--library",
                    library,
                    "--speed",
                    str(scale),
                ),
            )
            for jobs, (backend, library) in zip(split(served.names, 4), backends, strict=True)
        ]

        heartbeat = served.real_seconds(HEARTBEAT)

        def registered_and_known() -> None:
            wait_until(lambda: sharers(own_redis_server) == 4, 30, "four sharers")
            time.sleep(heartbeat + SLACK)  # every process has heard the count since

        def away_for(seconds: float) -> None:
            # Real time on purpose: the outage is the other processes' to live through.
            before = served.requests()
            time.sleep(seconds)
            assert served.requests() > before  # requests still went out: nobody stopped

        registered_and_known()
        own_redis_server.kill()
        away_for(heartbeat + SLACK)  # every process has noticed, even an idle one
        own_redis_server.start()  # the same port, and empty
        registered_and_known()
        own_redis_server.freeze()
        # 10 s, plus two socket timeouts: the real time a call to the frozen Redis costs
        # before its process goes on without it (the network is not sped up).
        away_for(served.real_seconds(10) + 2 * SOCKET_TIMEOUT)
        own_redis_server.thaw()
        registered_and_known()  # every process shares the budget again
        served.skip(3600)  # the long jobs end now
        reports = [(jobs, worker_report(process, timeout=60)) for jobs, process in workers]
        for jobs, report in reports:
            assert report["outcomes"] == {job: served.expected(job) for job in jobs}
            assert report["outages"] == 2
            # Redis away: a local limit at the last known share, a quarter of 120.
            assert report["fallback_per_minute"] == [30.0, 30.0]
            assert report["shared_at_end"] is True
