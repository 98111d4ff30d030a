"""``cdm-status run JOB``: start a job and wait for that very run, end to end.

The real command in a subprocess, against a simulator served on a loopback socket whose
jobs play ten thousand times faster than real time while its gateway (request dates, rate
limits) keeps real time, as ``cdm-status simulate --speed`` does.
"""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest

from cdm_status import CDMClient, JobStatus, LoopClock, RedisBudget, TokenAuth
from cdm_status.cli import main
from cdm_status.testing import CDMSimulator, JobPlan, RateLimits, ScaledClock, serve
from tests.cli.test_cli_wait_subprocess import COMMAND, cli_env
from tests.support.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The command under test runs in a subprocess, on its own loop: the backend of the
    test's side (serving the simulator) changes nothing the command sees, so one will do."""
    return "asyncio"


SPEED = 10_000.0


class StartCounter:
    """The simulator's ASGI app, counting start requests as they arrive (the simulator's
    own statistics count a request once it is answered)."""

    def __init__(self, sim: CDMSimulator) -> None:
        self.sim = sim
        self.starts = 0
        self.hold_starts = False
        """Hold each start's answer until ``release`` is set (``arrived`` is set first).
        Under trio the server runs in a thread with an asyncio loop of its own: both
        are set and waited for across threads."""
        self.arrived = anyio.Event()
        self.release = threading.Event()
        self._token = anyio.lowlevel.current_token()
        self._thread = threading.get_ident()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/start"):
            self.starts += 1
            if self.hold_starts:
                if threading.get_ident() == self._thread:
                    self.arrived.set()
                else:
                    anyio.from_thread.run_sync(self.arrived.set, token=self._token)
                await anyio.to_thread.run_sync(self.release.wait)
        await self.sim(scope, receive, send)


@dataclass
class Served:
    sim: CDMSimulator
    endpoint: str
    counter: StartCounter

    def env(self) -> dict[str, str]:
        return cli_env(
            self.endpoint, project_id=self.sim.project_id, cluster_id=self.sim.cluster_id
        )

    async def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        with anyio.fail_after(60):
            result = await anyio.run_process(
                [COMMAND, *argv], env=self.env(), check=False, stdout=-1, stderr=-1
            )
        return subprocess.CompletedProcess(
            result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
        )

    def client(self) -> CDMClient:
        return CDMClient(
            self.endpoint, self.sim.project_id, self.sim.cluster_id, auth=TokenAuth("any")
        )

    def runs(self, name: str) -> int:
        steps = self.sim.transitions(name, upcoming=True)
        return sum(step.status is JobStatus.BOOTING for step in steps)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    sim = CDMSimulator(
        clock=ScaledClock(SPEED),
        gateway_clock=LoopClock(),
        limits=RateLimits(start_stop=1, window=2.0, retry_after=True),
    )
    for name in ("good", "slow_start"):
        sim.add_job(name, plan=JobPlan(5, 600), started=False)
    sim.add_job("other", plan=JobPlan(5, 1e8), started=False)  # runs for days of real time
    sim.add_job("bad", plan=JobPlan(5, 600, outcome=JobStatus.FAILED), started=False)
    counter = StartCounter(sim)
    async with serve(counter) as endpoint:  # type: ignore[arg-type]
        yield Served(sim, endpoint, counter)


def one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    return stderr


async def test_run_starts_the_job_and_waits_for_that_run(served: Served) -> None:
    result = await served.cli("run", "good", "--variables", "day=2026-01-01", "region=north")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("started good: BOOTING (created 20")
    assert any(line.endswith(" good: succeeded (100,000 rows written)") for line in lines)
    assert lines[-1].startswith("1 job in 0:0")
    assert served.sim.stats.by_endpoint["start"] == 1
    assert served.runs("good") == 1


async def test_run_of_a_job_that_fails_exits_1(served: Served) -> None:
    result = await served.cli("run", "bad", "--json")
    assert result.returncode == 1
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "started"
    assert events[0]["job"] == "bad"
    done = [event for event in events if event["event"] == "done"]
    assert [(event["job"], event["outcome"]) for event in done] == [("bad", "failed")]
    assert one_line(result.stderr).startswith("cdm-status: 1 of 1 jobs did not succeed")
    assert served.runs("bad") == 1


def test_a_variable_given_twice_exits_2_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Complete settings, an endpoint where nothing answers: only the variables can stop it.
    for name, value in cli_env("http://127.0.0.1:9").items():
        monkeypatch.setenv(name, value)
    code = main(["run", "good", "--variables", "day=2026-01-01", "region=north", "day=x"])
    assert code == 2
    assert capsys.readouterr().err == (
        "cdm-status: --variables: day is given twice: give each name once\n"
    )


async def test_a_throttled_start_is_retried_and_runs_once(served: Served) -> None:
    # The gateway allows one start per 10 s here: this one spends it, so the command's
    # first start (a process takes seconds to start on a loaded machine, never ten) is
    # throttled (429 with Retry-After), surely did nothing, and is sent again.
    served.sim.limits = RateLimits(start_stop=1, window=10.0, retry_after=True)
    async with served.client() as client:
        await client.start_job("other")
    result = await served.cli("run", "good")
    assert result.returncode == 0, result.stderr
    stats = served.sim.stats.by_endpoint_status
    assert stats["start", 429] >= 1
    assert stats["start", 200] == 2  # "other", then "good" once
    assert served.runs("good") == 1


async def test_a_start_without_an_answer_is_never_sent_twice(served: Served) -> None:
    # The start is slow (1.5 s) and the command gives up after 1 s: it cannot know whether
    # the job started, so it must not start it again.
    served.sim.faults.latency = 1.5 * SPEED
    served.sim.faults.script(["slow"])
    result = await served.cli("run", "slow_start", "--request-timeout", "1")
    assert result.returncode == 4
    assert "could not tell whether slow_start started" in one_line(result.stderr)
    assert served.counter.starts == 1


async def test_ctrl_c_during_the_start_says_the_job_may_have_started(served: Served) -> None:
    # The start reached CDM and its answer is held: Ctrl-C now cannot know whether the
    # job started, and says how to find out.
    served.counter.hold_starts = True
    with anyio.fail_after(60):
        async with await anyio.open_process(
            [COMMAND, "run", "good"], env=served.env(), stdout=-1, stderr=-1
        ) as process:
            await served.counter.arrived.wait()
            process.send_signal(signal.SIGINT)
            code = await process.wait()
            assert process.stderr is not None
            stderr = (await process.stderr.receive()).decode()
    served.counter.release.set()
    assert code == 130
    assert one_line(stderr) == (
        "cdm-status: interrupted: could not tell whether good started; check with: "
        "cdm-status status good\n"
    )
    assert served.counter.starts == 1


async def test_an_already_running_job_is_refused_with_exit_4(served: Served) -> None:
    async with served.client() as client:
        await client.start_job("other")
    with anyio.fail_after(10):
        while True:  # wait out the gateway's one start per 2 s
            result = await served.cli("run", "other")
            if "APIG.0308" not in result.stderr:
                break
    assert result.returncode == 4
    assert "Cdm.0052" in one_line(result.stderr)
    assert served.runs("other") == 1


async def test_the_run_date_is_the_request_time_and_since_now_sees_the_run(
    served: Served,
) -> None:
    # The simulator plays jobs 10,000 times faster, but dates a run started over HTTP at
    # the real time of the request, as CDM does. 'wait --since now' read right after the
    # start still sees that run (the skew allowance), instead of waiting for ever.
    async with served.client() as client:
        before = LoopClock().time()
        submission = await client.start_job("good")
        after = LoopClock().time()
    assert submission.creation_date is not None
    assert before - 1 <= submission.creation_date.timestamp() <= after + 1
    result = await served.cli("wait", "good", "--since", "now", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert " good: succeeded" in result.stdout


@pytest.mark.parametrize("offset", [-900.0, -3 * 365 * 86400.0, 3 * 365 * 86400.0])
async def test_run_waits_for_its_run_on_a_server_whose_clock_is_far_off(offset: float) -> None:
    # Every date the server sends is minutes or years away from this host's clock: the
    # run is still told apart by its creation date, through the estimated offset.
    sim = CDMSimulator(clock=ScaledClock(SPEED), gateway_clock=LoopClock(), clock_offset=offset)
    sim.add_job("good", plan=JobPlan(5, 600), started=False)
    counter = StartCounter(sim)
    async with serve(counter) as endpoint:  # type: ignore[arg-type]
        result = await Served(sim, endpoint, counter).cli("run", "good", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert any(
        line.endswith(" good: succeeded (100,000 rows written)")
        for line in result.stdout.splitlines()
    )
    assert counter.starts == 1


# ---------------------------------------------------------------------- --budget


def redis_keys(server: RedisServer, budget: RedisBudget) -> dict[str, int]:
    """Entries in each key of ``budget``'s (both APIs') on the server: the send logs hold
    one entry per request booked, the sharers key one per process registered."""
    import redis

    tag = budget.prefix.rpartition(":")[0]
    client = redis.Redis.from_url(server.url, socket_timeout=1.0)
    try:
        return {
            key.decode()[len(tag) :]: int(client.zcard(key))
            for key in client.scan_iter(f"{tag}:*")
            if not key.endswith(b":state")
        }
    finally:
        client.close()


async def test_run_shares_the_budget_of_the_other_processes(
    served: Served, redis_server: RedisServer
) -> None:
    # Another process of the pipeline holds the budget: run joins it, and each of its
    # polls (never its start: start and stop have their own limit) is booked in Redis.
    budget_id = f"pipeline-{secrets.token_hex(4)}"
    async with RedisBudget.from_url(redis_server.url, budget_id=budget_id) as other:
        result = await served.cli(
            "run", "good", "--json", "--budget", redis_server.url, "--budget-id", budget_id
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        events = [json.loads(line) for line in result.stdout.splitlines()]
        assert events[0]["event"] == "started"
        done = [(event["job"], event["outcome"]) for event in events if event["event"] == "done"]
        assert done == [("good", "succeeded")]
        summary = events[-1]
        assert (summary["event"], summary["exit_code"]) == ("summary", 0)
        assert summary["budget_sharers"] == 2
        stats = served.sim.stats.by_endpoint
        assert stats["start"] == 1
        keys = redis_keys(redis_server, other)
        booked = keys.get(":status:log", 0) + keys.get(":list:log", 0)
        assert booked == stats["status"] + stats["list"] > 0
        assert summary["requests"] == booked + 1  # and the start, outside the budget
        assert keys[":sharers"] == 1  # run left the budget as it ended: only ours is left
    assert served.runs("good") == 1


async def test_run_with_the_variable_says_the_budget_is_shared_and_exits_1_on_a_failure(
    served: Served, redis_server: RedisServer
) -> None:
    env = served.env()
    env["CDM_STATUS_BUDGET"] = redis_server.url
    with anyio.fail_after(60):
        result = await anyio.run_process(
            [COMMAND, "run", "bad", "--budget-id", f"etl-{secrets.token_hex(4)}"],
            env=env,
            check=False,
        )
    stdout, stderr = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 1
    lines = stdout.splitlines()
    assert lines[0].startswith("started bad: BOOTING")
    assert any(" bad: FAILED: " in line for line in lines), stdout
    assert ": 1 failed; budget shared by 1 process; " in lines[-1]
    assert one_line(stderr).startswith("cdm-status: 1 of 1 jobs did not succeed")


async def test_run_without_budget_keeps_its_own(served: Served) -> None:
    result = await served.cli("run", "good", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["budget_sharers"] is None
    plain = await served.cli("run", "good")
    assert plain.returncode == 0, plain.stderr
    assert "budget" not in plain.stdout


async def test_run_with_redis_away_falls_back_to_a_local_limit(served: Served) -> None:
    away = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    result = await served.cli("run", "good", "--budget", away, "--budget-id", "etl")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert any(line.endswith(" good: succeeded (100,000 rows written)") for line in lines)
    assert "; shared budget unreachable: local limit 120/min;" in lines[-1]
    assert served.runs("good") == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--budget-id", "etl"], "--budget-id needs --budget URL"),
        (
            ["--budget", "http://127.0.0.1:6379", "--budget-id", "etl"],
            "--budget must be a URL starting with redis://, rediss://, unix://",
        ),
        # The simulator is reached with a token: it rotates, so it cannot name the budget.
        (["--budget", "redis://127.0.0.1:6379/0"], "--budget: a shared budget needs budget_id"),
    ],
)
async def test_budget_usage_errors_exit_2_before_the_start(
    served: Served, argv: list[str], message: str
) -> None:
    result = await served.cli("run", "good", *argv)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(f"cdm-status: {message}")
    assert result.stdout == ""
    assert served.counter.starts == 0
