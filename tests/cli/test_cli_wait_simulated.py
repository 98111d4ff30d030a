"""``run_wait`` (the code path of ``wait`` and ``demo``) against the simulator, in-process,
on a virtual clock: outputs matched to the simulator's ground truth, and each exit code."""

from __future__ import annotations

import io
import json
import random
from typing import Any

import pytest

from cdm_status import JobStatus, PollPolicy, TokenAuth
from cdm_status._clock import utc_datetime
from cdm_status.cli._sinks import JsonSink, PlainSink
from cdm_status.cli._wait import WaitOptions, run_wait
from cdm_status.testing import (
    CDMSimulator,
    FakeClock,
    Faults,
    JobPlan,
    JobSetup,
    RateLimits,
    SimulatorAuth,
)
from tests.support.simulated import CLIENT_OPTIONS

pytestmark = pytest.mark.anyio


def simulator(**options: Any) -> CDMSimulator:
    return CDMSimulator(clock=FakeClock(), seed=11, limits=RateLimits.cdm_defaults(), **options)


async def wait(
    sim: CDMSimulator, names: list[str], *, json_lines: bool = True, **options: Any
) -> tuple[int, str, str]:
    """Run ``run_wait`` to its end; returns (exit code, stdout, stderr)."""
    clock = sim.clock
    assert isinstance(clock, FakeClock)
    out, err = io.StringIO(), io.StringIO()
    sink = JsonSink(out) if json_lines else PlainSink(out)
    client_options = {
        name: options.pop(name) for name in ("auth", *CLIENT_OPTIONS) if name in options
    }
    settings = WaitOptions(clock=clock, random=random.Random(5), stderr=err, **options)
    async with sim.client(**client_options) as client, clock.autojump():
        code = await run_wait(client, names, settings, sink)
    return code, out.getvalue(), err.getvalue()


def parse(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


async def test_a_migration_with_failures_matches_the_ground_truth() -> None:
    sim = simulator(faults=Faults(unavailable=0.05))
    names = sim.add_database_job(
        "nightly", 40, parallelism=8, failure_rate=0.15, run_seconds=(30.0, 300.0)
    )
    code, out, err = await wait(sim, names, strategy="per_job")
    lines = parse(out)
    done = {line["job"]: line for line in lines if line["event"] == "done"}
    assert set(done) == set(names)
    for name in names:
        final = sim.final_status(name)
        assert final is not None
        assert done[name]["status"] == final.value
        assert done[name]["outcome"] == ("succeeded" if final.is_success else "failed")
    failed = [line for line in done.values() if line["outcome"] == "failed"]
    assert failed, "the seed should make some tables fail"
    assert all(line["error_summary"] for line in failed)
    # Each job's reported transitions happened, in the simulator's order.
    for name in names:
        truth = [step.status.value for step in sim.transitions(name)]
        seen = [
            line["to"]
            for line in lines
            if line["event"] == "status_changed" and line["job"] == name
            if line["to"] != "NEVER_EXECUTED"
        ]
        assert seen == [status for status in truth if status in seen]
    summary = lines[-1]
    assert summary["event"] == "summary"
    assert (summary["succeeded"], summary["failed"]) == (40 - len(failed), len(failed))
    assert summary["exit_code"] == code == 1
    assert err.startswith(f"cdm-status: {len(failed)} of 40 jobs did not succeed")
    assert err.count("\n") == 1
    assert sim.stats.max_in_window("status", 60.0) <= 120


async def test_all_succeeded_exits_0_with_nothing_on_stderr() -> None:
    sim = simulator()
    names = [sim.add_job(f"job{index}", plan=JobPlan(5, 60 * index)) for index in range(1, 4)]
    code, out, err = await wait(sim, names, json_lines=False)
    assert (code, err) == (0, "")
    assert out.splitlines()[-1].startswith("3 jobs in ")
    assert "job3: RUNNING -> SUCCEEDED" in out


async def test_the_summary_counts_the_requests_the_api_served() -> None:
    sim = simulator(faults=Faults())
    names = [sim.add_job(f"job{index}", plan=JobPlan(5, 60 * index)) for index in range(1, 4)]
    sim.faults.script(["503", "503", "429"])
    code, out, _ = await wait(sim, names)
    summary = parse(out)[-1]
    assert code == 0
    assert summary["requests"] == sim.stats.total
    assert summary["throttle_pauses"] == 1
    assert summary["budget_wait_seconds"] > 0  # the 429 paused the budget

    sim = simulator(faults=Faults())
    names = [sim.add_job(f"job{index}", plan=JobPlan(5, 60 * index)) for index in range(1, 4)]
    sim.faults.script(["503", "503", "429"])
    code, out, _ = await wait(sim, names, json_lines=False)
    assert out.splitlines()[-1].endswith(
        f"; {sim.stats.total:,} requests (1 answered 429, 2 answered 503, 1 throttle pause)"
    )


async def test_a_missing_job_exits_1() -> None:
    sim = simulator()
    sim.add_job("there", plan=JobPlan(5, 30))
    code, out, err = await wait(sim, ["there", "nowhere"])
    done = {line["job"]: line for line in parse(out) if line["event"] == "done"}
    assert done["nowhere"]["outcome"] == "not_found"
    assert "Cdm.0100" in done["nowhere"]["error"]
    assert done["there"]["outcome"] == "succeeded"
    assert code == 1
    assert "nowhere" in err


async def test_the_timeout_exits_3_with_the_jobs_still_running() -> None:
    sim = simulator()
    sim.add_job("slow", plan=JobPlan(5, 7200))
    sim.add_job("quick", plan=JobPlan(5, 60))
    code, out, err = await wait(sim, ["slow", "quick"], timeout=600)
    done = {line["job"]: line for line in parse(out) if line["event"] == "done"}
    assert done["slow"]["outcome"] == "timed_out"
    assert done["slow"]["status"] == "RUNNING"
    assert done["quick"]["outcome"] == "succeeded"
    assert code == 3
    assert err == "cdm-status: the timeout of 10:00 expired with 1 of 2 jobs still running\n"


async def test_refused_credentials_exit_4() -> None:
    sim = simulator(auth=SimulatorAuth(token="right"))
    sim.add_job("job", plan=JobPlan(5, 30))
    code, out, err = await wait(sim, ["job"], auth=TokenAuth("wrong"))
    assert code == 4
    assert err.startswith("cdm-status: the API refused the credentials: HTTP 401 APIG.0301")
    assert "wrong" not in err
    assert parse(out)[-1]["error"] == 1


async def test_an_api_that_never_answers_exits_4() -> None:
    sim = simulator()
    sim.add_job("job", plan=JobPlan(5, 30))
    sim.faults.outage(sim.clock.time(), 10 * 86400)
    code, out, err = await wait(sim, ["job"], unreachable_after=600)
    assert code == 4
    assert err.startswith("cdm-status: the API stayed unreachable: HTTP 503")
    assert parse(out)[-1]["poll_failures"] >= 2


async def test_an_outage_until_the_timeout_exits_4_not_3() -> None:
    sim = simulator()
    sim.add_job("job", plan=JobPlan(5, 30))
    sim.faults.outage(sim.clock.time(), 86400)
    code, _, err = await wait(sim, ["job"], timeout=120, unreachable_after=None)
    assert code == 4
    assert "unreachable" in err


async def test_an_outage_after_the_first_answers_is_ridden_out() -> None:
    sim = simulator()
    sim.add_job("job", plan=JobPlan(5, 3600))
    sim.faults.outage(sim.clock.time() + 60, 900)
    code, out, _ = await wait(sim, ["job"], unreachable_after=300)
    assert code == 0
    assert any(line["event"] == "poll_failed" for line in parse(out))


async def test_since_ignores_the_previous_run() -> None:
    sim = simulator()
    sim.add_job("daily", plan=JobPlan(5, 30))
    clock = sim.clock
    assert isinstance(clock, FakeClock)
    await clock.advance(3600)  # that run succeeded long ago; today's has not started
    since = utc_datetime(clock.time())
    code, out, _ = await wait(sim, ["daily"], since=since, timeout=600)
    done = [line for line in parse(out) if line["event"] == "done"]
    assert done[0]["outcome"] == "timed_out"
    assert done[0]["status"] == "NEVER_EXECUTED"
    assert code == 3


class ClosesAfter(io.StringIO):
    """A pipe whose reader leaves after ``lines`` lines (``wait ... | head``)."""

    def __init__(self, lines: int) -> None:
        super().__init__()
        self.left = lines

    def write(self, text: str) -> int:
        if self.left <= 0:
            raise BrokenPipeError(32, "Broken pipe")
        self.left -= text.count("\n")
        return super().write(text)


async def test_a_closed_output_stops_the_watch_quietly() -> None:
    sim = simulator()
    names = [sim.add_job(f"job{index}", plan=JobPlan(5, 600 * index)) for index in range(1, 4)]
    clock = sim.clock
    assert isinstance(clock, FakeClock)
    out, err = ClosesAfter(2), io.StringIO()
    options = WaitOptions(clock=clock, random=random.Random(5), stderr=err)
    async with sim.client() as client, clock.autojump():
        code = await run_wait(client, names, options, PlainSink(out))
    assert len(out.getvalue().splitlines()) == 2
    assert code == 130  # stopped before the end (no timeout was given): as after Ctrl-C
    assert err.getvalue() == "cdm-status: standard output was closed; stopped watching\n"


async def test_the_list_budget_flag_caps_the_job_list_requests() -> None:
    sim = simulator()
    names = sim.add_database_job("big", 60, parallelism=20, run_seconds=(60.0, 240.0))
    code, _, _ = await wait(sim, names, strategy="list", list_requests_per_minute=12)
    assert code == 0
    assert sim.stats.by_endpoint["list"] > 0
    assert sim.stats.max_in_window("list", 60.0) <= 12


# ---------------------------------------------------------------------- job settings

RUN = JobPlan(boot_seconds=10, run_seconds=95)
FAIL = JobPlan(
    boot_seconds=10, run_seconds=95, outcome=JobStatus.FAILED, error_summary="lock wait timeout"
)
LOOK_EVERY_30S = PollPolicy(
    starting_interval=30, running_interval=30, running_growth=0, min_interval=30, jitter=0
)


async def test_a_job_deleted_after_success_exits_0() -> None:
    sim = simulator(progress="absent")
    sim.add_job("once", plan=RUN, setup=JobSetup(disposable="DELETE_AFTER_SUCCEED"))
    code, out, err = await wait(sim, ["once"], poll=LOOK_EVERY_30S, strategy="per_job")
    assert (code, err) == (0, "")
    [done] = [line for line in parse(out) if line["event"] == "done"]
    assert done["outcome"] == "succeeded"
    assert (done["deleted"], done["inferred"]) == (True, True)


async def test_a_job_deleted_before_its_result_was_read_exits_1_unless_deleted_ok() -> None:
    sim = simulator(progress="absent")
    sim.add_job("gone", plan=FAIL, setup=JobSetup(disposable="DELETE"))
    code, out, err = await wait(
        sim, ["gone"], json_lines=False, poll=LOOK_EVERY_30S, strategy="per_job"
    )
    assert code == 1
    assert "gone: deleted: job 'gone' was deleted by CDM after its run" in out
    assert "1 deleted before their result was read" in out
    assert "NONE or DELETE_AFTER_SUCCEED" in err
    sim.add_job("gone", plan=FAIL, setup=JobSetup(disposable="DELETE"))
    code, out, err = await wait(
        sim, ["gone"], poll=LOOK_EVERY_30S, strategy="per_job", deleted_ok=True
    )
    assert (code, err) == (0, "")
    assert [line["outcome"] for line in parse(out) if line["event"] == "done"] == ["deleted"]


async def test_a_retried_job_reports_each_retry_then_one_outcome() -> None:
    sim = simulator(progress="absent")
    setup = JobSetup(retry="RETRY_TRIPLE", retry_plans=(FAIL, RUN))
    sim.add_job("flaky", plan=FAIL, setup=setup)
    code, out, err = await wait(sim, ["flaky"], poll=LOOK_EVERY_30S, strategy="per_job")
    assert (code, err) == (0, "")
    lines = parse(out)
    retries = [line for line in lines if line["event"] == "retry_expected"]
    assert [(r["attempt"], r["retries"], r["status"]) for r in retries] == [
        (1, 3, "FAILED"),
        (2, 3, "FAILED"),
    ]
    assert retries[0]["error_summary"] == "lock wait timeout"
    [done] = [line for line in lines if line["event"] == "done"]
    assert done["outcome"] == "succeeded"
    assert [a["error_summary"] for a in done["attempts"]] == ["lock wait timeout"] * 2
    # The plain lines say it too.
    sim.add_job("flaky2", plan=FAIL, setup=setup)
    _, plain, _ = await wait(
        sim, ["flaky2"], json_lines=False, poll=LOOK_EVERY_30S, strategy="per_job"
    )
    assert "flaky2: FAILED, CDM retries it (retry 1 of 3): lock wait timeout" in plain
    assert "flaky2: succeeded after 2 failed runs" in plain
