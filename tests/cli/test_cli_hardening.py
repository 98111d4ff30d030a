"""The command line under hostile input, odd outputs and wrong settings: one line on
stderr and the documented exit code, never a traceback. The real command in a
subprocess, against ``cdm-status simulate`` on a loopback port."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cdm_status import CDMClient, CDMError
from cdm_status.cli._sinks import PlainSink
from cdm_status.cli._wait import WaitOptions, run_wait
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan
from tests.cli.test_cli_wait_subprocess import COMMAND, FAST, TIMEOUT, Simulator, start_simulator

TABLES = ["table_0001", "table_0002", "table_0003"]


@pytest.fixture(scope="module")
def fast() -> Iterator[Simulator]:
    yield from start_simulator(FAST)


def cli(
    simulator: Simulator, *argv: str, stdout: Any = subprocess.PIPE, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *argv],
        env={**simulator.env(), **env},
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    assert stderr.count("\n") == 1, stderr
    assert stderr.startswith("cdm-status: ")
    return stderr


# ------------------------------------------------------------------ tables files


def test_a_tables_file_saved_with_a_bom_names_the_right_subjobs(
    fast: Simulator, tmp_path: Path
) -> None:
    tables = tmp_path / "tables.txt"
    tables.write_text("\n".join(TABLES) + "\n", encoding="utf-8-sig")
    result = cli(fast, "wait", "--subjobs-of", "nightly", "--tables-file", str(tables), "--json")
    done = [json.loads(line) for line in result.stdout.splitlines()]
    jobs = {event["job"]: event["outcome"] for event in done if event["event"] == "done"}
    assert sorted(jobs) == [f"nightly_{table}" for table in TABLES]
    assert "not_found" not in jobs.values()


# ------------------------------------------------------------------ answered, not unreachable


def test_a_wrong_cluster_id_is_said_at_once(fast: Simulator) -> None:
    began = time.monotonic()
    result = cli(fast, "wait", "job_001", "job_002", "--timeout", "20", CDM_CLUSTER_ID="wrong")
    assert result.returncode == 4
    err = one_line(result.stderr)
    assert "Cdm.0001" in err
    assert "Cluster[wrong] doesn't exist" in err
    assert "unreachable" not in err
    assert time.monotonic() - began < 10


def test_a_wrong_parent_is_said_once_after_a_few_jobs(fast: Simulator) -> None:
    argv = ["--subjobs-of", "no_such_parent", "--requests-per-minute", "6000", "--json"]
    tables = [arg for index in range(1, 31) for arg in ("--table", f"t{index:02d}")]
    result = cli(fast, "wait", *argv, *tables, "--timeout", "20")
    assert result.returncode == 1
    err = one_line(result.stderr)
    assert "none of the first 10 of 30 jobs exists (e.g. no_such_parent_t" in err
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["event"] == "summary"
    assert summary["poll_failures"] < 30  # stopped early: not 3 requests for each of 30


def test_a_missing_job_with_a_short_timeout_is_not_unreachable(fast: Simulator) -> None:
    result = cli(fast, "wait", "no_such_job", "--timeout", "3")
    assert result.returncode in (1, 3)  # found missing, or still unsure at the timeout
    assert "unreachable" not in one_line(result.stderr)


@pytest.mark.anyio
async def test_an_api_answering_an_empty_object_is_not_unreachable() -> None:
    clock = FakeClock()
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: httpx.Response(200, json={})))
    client = CDMClient("http://cdm.test", "p", "c", http_client=http, clock=clock)
    out, err = io.StringIO(), io.StringIO()
    options = WaitOptions(clock=clock, random=random.Random(1), stderr=err)
    async with client, clock.autojump():
        code = await run_wait(client, ["job"], options, PlainSink(out))
    assert code == 4
    assert err.getvalue().startswith("cdm-status: the API answered only with errors: ")


# ------------------------------------------------------------------ outputs


def test_status_into_a_closed_pipe_says_one_line(fast: Simulator) -> None:
    result = subprocess.run(
        ["sh", "-c", f"'{COMMAND}' status job_001 | true"],
        env=fast.env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0
    assert "Traceback" not in result.stderr
    assert result.stderr in ("", "cdm-status: standard output was closed\n")


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (["status", "job_001"], 0),  # the job was looked up all the same
        (["wait", "job_001"], 130),  # stopped at the first line, before the end
    ],
)
def test_a_full_device_as_output_says_one_line(
    fast: Simulator, command: list[str], code: int
) -> None:
    with open("/dev/full", "w") as full:
        result = cli(fast, *command, stdout=full)
    assert result.returncode == code
    assert "cannot write to standard output: No space left on device" in one_line(result.stderr)


def test_non_ascii_on_an_ascii_only_output(fast: Simulator) -> None:
    name = "ジョブ_é"
    plain = cli(fast, "status", name, PYTHONIOENCODING="ascii")
    assert plain.returncode == 1  # not found, as from wait
    assert "\\u30b8\\u30e7\\u30d6_\\xe9" in one_line(plain.stderr)
    as_json = cli(fast, "wait", name, "--json", "--timeout", "20", PYTHONIOENCODING="ascii")
    assert as_json.returncode == 1, as_json.stderr
    assert as_json.stdout.isascii()
    done = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert done[0]["job"] == name
    one_line(as_json.stderr)


def test_a_closed_pipe_is_not_a_timeout(tmp_path: Path) -> None:
    # Two jobs that take seconds: the reader leaves after one line, long before the end.
    for simulator in start_simulator(["--jobs", "2", "--speed", "20", "--seed", "1"]):
        process = subprocess.Popen(
            [COMMAND, "wait", "job_001", "job_002"],
            env=simulator.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        assert "job_00" in process.stdout.readline()
        process.stdout.close()
        assert process.wait(timeout=TIMEOUT) == 130
        err = process.stderr.read()
        process.stderr.close()
        assert one_line(err) == "cdm-status: standard output was closed; stopped watching\n"


@pytest.mark.anyio
async def test_thousands_still_running_are_written_with_separators() -> None:
    clock = FakeClock()
    sim = CDMSimulator(clock=clock)
    names = [sim.add_job(f"job_{index}", plan=JobPlan(5, 3600)) for index in range(1500)]
    err = io.StringIO()
    options = WaitOptions(clock=clock, random=random.Random(1), stderr=err, timeout=1)
    async with sim.client(requests_per_minute=1e9) as client, clock.autojump():
        code = await run_wait(client, names, options, PlainSink(io.StringIO()))
    assert code == 3
    assert "expired with 1,500 of 1,500 jobs still running" in err.getvalue()


# ------------------------------------------------------------------ settings


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["wait", "j", "--since", "0001-01-01T00:00:00+01:00"], {}, "out of range"),
        (["status", "j", "--request-timeout", "nan"], {}, "--request-timeout"),
        (["status", "j", "--request-timeout", "-1"], {}, "--request-timeout"),
        (["status", "j"], {"CDM_ENDPOINT": "http://127.0.0.1:99999"}, "endpoint port"),
        (["wait", "j"], {"CDM_ENDPOINT": "http://127.0.0.1:99999"}, "endpoint port"),
        (["status", "j"], {"HUAWEICLOUD_SDK_AK": "AKé", "HUAWEICLOUD_SDK_SK": "s"}, "SDK_AK"),
        (["simulate", "--port", "99999"], {}, "--port"),
        (["simulate", "--port", "-1"], {}, "--port"),
        (["simulate", "--speed", "nan"], {}, "--speed"),
        (["simulate", "--speed", "inf"], {}, "--speed"),
    ],
)
def test_bad_settings_exit_2(
    fast: Simulator, argv: list[str], env: dict[str, str], message: str
) -> None:
    result = cli(fast, *argv, **env)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert message in result.stderr.splitlines()[-1]


@pytest.mark.anyio
async def test_a_closed_client_raises_a_cdm_error() -> None:
    clock = FakeClock()
    sim = CDMSimulator(clock=clock)
    sim.add_job("job")
    client = sim.client()
    await client.get_status("job")
    await client.aclose()
    with pytest.raises(CDMError, match="closed"):
        await client.get_status("job")
    own = CDMClient("http://127.0.0.1:9", "p", "c")
    await own.aclose()
    with pytest.raises(CDMError, match="closed"):
        await own.get_status("job")


# The command line as installed without the server extra: ``uvicorn`` cannot be imported
# (a None entry in sys.modules makes ``import uvicorn`` raise ImportError).
WITHOUT_UVICORN = (
    "import sys; sys.modules['uvicorn'] = None; "
    "from cdm_status.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize("argv", [["simulate", "--port", "0"], ["demo"]])
def test_serving_commands_without_the_server_extra_exit_2_with_one_line(
    argv: list[str],
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_UVICORN, *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "pip install 'cdm-status[server]'" in result.stderr
    assert result.stdout == ""
