"""The simulator over a real loopback socket, the ``simulate`` command, and the fixtures."""

from __future__ import annotations

import argparse
import re
from typing import Any

import pytest

from cdm_status import CDMClient, JobStatus, RetryPolicy, TokenAuth, TransportError
from cdm_status.cli import build_parser, main
from cdm_status.cli._simulate import banner, build_simulator
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, serve
from tests.support.budgets import UNMETERED


@pytest.mark.anyio
async def test_a_status_over_a_real_socket() -> None:
    clock = FakeClock()
    sim = CDMSimulator(clock=clock)
    sim.add_job("over the wire/1", plan=JobPlan(5, 100))
    await clock.advance(60)
    async with serve(sim) as endpoint:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", endpoint)
        async with CDMClient(
            endpoint,
            sim.project_id,
            sim.cluster_id,
            auth=TokenAuth("any"),
            retry=RetryPolicy.never(),
        ) as client:
            submission = await client.get_status("over the wire/1")
            assert submission.status is JobStatus.RUNNING
            assert submission.progress == 55.0
            sim.faults.script(["drop"])
            with pytest.raises(TransportError):
                await client.get_status("over the wire/1")
            assert (await client.list_jobs()).total == 1
    assert sim.stats.by_status == {200: 2, 0: 1}


def test_help_documents_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--help"]) == 0
    text = capsys.readouterr().out
    for option in (
        "--host",
        "--port",
        "--jobs",
        "--database-job",
        "--tables",
        "--parallelism",
        "--failure-rate",
        "--speed",
        "--seed",
        "--progress",
        "--start-order",
        "--disposable",
        "--retry",
        "--retry-delay",
        "--rate-limit",
        "--fault-503",
        "--token",
        "--ak",
        "--sk",
    ):
        assert option in text, option
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    simulate = commands.choices["simulate"]
    for action in simulate._actions:
        assert action.help, action.option_strings


def parse(*argv: str) -> Any:
    return build_parser().parse_args(["simulate", *argv])


def test_the_command_builds_the_simulator_its_flags_describe() -> None:
    args = parse(
        "--jobs",
        "3",
        "--database-job",
        "db",
        "--tables",
        "12",
        "--rate-limit",
        "120",
        "--fault-503",
        "0.2",
        "--speed",
        "60",
        "--ak",
        "AK",
        "--sk",
        "SK",
    )
    sim = build_simulator(args)
    assert len(sim.jobs()) == 3 + 1 + 12
    assert (sim.limits.status, sim.limits.list, sim.limits.start_stop) == (120, 120, 1200)
    assert sim.faults.rates["503"] == 0.2
    assert sim.clock.speed == 60
    text = banner(sim, "http://127.0.0.1:8088", args)
    for expected in (
        "export CDM_ENDPOINT=http://127.0.0.1:8088",
        f"export HUAWEICLOUD_SDK_PROJECT_ID={sim.project_id}",
        f"export CDM_CLUSTER_ID={sim.cluster_id}",
        "export HUAWEICLOUD_SDK_AK=AK",
        "Ctrl-C",
    ):
        assert expected in text
    assert "CDM_AUTH_TOKEN=tok" in banner(sim, "x", parse("--token", "tok"))
    assert sim.progress == "linear"  # the defaults


@pytest.mark.anyio
async def test_progress_and_start_order_flags_shape_the_migration() -> None:
    migration = ["--jobs", "0", "--database-job", "db", "--tables", "30"]
    shaped = parse(*migration, "--progress", "absent", "--start-order", "shuffled")
    plain, absent = build_simulator(parse(*migration)), build_simulator(shaped)
    assert absent.progress == "absent"
    assert "absent progress" in banner(absent, "x", shaped)
    names = [f"db_table_{i:04d}" for i in range(1, 31)]

    def first_started(sim: CDMSimulator) -> list[str]:
        return [name for name in names if sim.status(name) is not JobStatus.NEVER_EXECUTED]

    assert first_started(plain) == names[:10]  # 10 slots, taken in table order
    assert first_started(absent) != names[:10]
    assert len(first_started(absent)) == 10
    async with absent.client(budget=UNMETERED, list_budget=UNMETERED) as client:
        assert (await client.get_status(first_started(absent)[0])).progress is None


def test_settings_flags_set_every_job_up() -> None:
    args = parse(
        "--jobs",
        "2",
        "--database-job",
        "db",
        "--tables",
        "3",
        "--disposable",
        "DELETE_AFTER_SUCCEED",
        "--retry",
        "RETRY_TRIPLE",
        "--retry-delay",
        "12",
    )
    sim = build_simulator(args)
    for name in ("job_001", "db_table_0003"):
        setup = sim.setup(name)
        assert (setup.disposable, setup.retry, setup.retry_delay) == (
            "DELETE_AFTER_SUCCEED",
            "RETRY_TRIPLE",
            12.0,
        )
    assert "disposableType DELETE_AFTER_SUCCEED, retryJobType RETRY_TRIPLE" in banner(
        sim, "x", args
    )
    assert sim.setup("job_001") != build_simulator(parse("--jobs", "1")).setup("job_001")


@pytest.mark.parametrize(
    "argv",
    [
        ["--ak", "A"],
        ["--fault-503", "2"],
        ["--speed", "0"],
        ["--tables", "0"],
        ["--jobs", "-1"],
        ["--progress", "smooth"],
        ["--start-order", "reversed"],
        ["--disposable", "KEEP"],
        ["--retry", "TWICE"],
        ["--retry-delay", "-1"],
    ],
)
def test_impossible_flags_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["simulate", *argv]) == 2
    assert capsys.readouterr().err.startswith("cdm-status: ")


@pytest.mark.anyio
async def test_the_pytest_fixtures(cdm_simulator: CDMSimulator, cdm_client: CDMClient) -> None:
    assert isinstance(cdm_simulator.clock, FakeClock)
    cdm_simulator.add_job("nightly", plan=JobPlan(boot_seconds=10, run_seconds=300))
    async with cdm_simulator.clock.autojump():
        await cdm_simulator.clock.sleep(400)
    assert (await cdm_client.get_status("nightly")).status.is_success
