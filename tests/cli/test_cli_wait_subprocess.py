"""The real ``cdm-status wait`` in a subprocess, against ``cdm-status simulate`` on a
loopback port: exit codes, JSON lines matched to the simulator's ground truth, plain lines.

The simulator's plans come from its seed, so the ground truth is read from a second
simulator built in-process from the same flags.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdm_status.cli import build_parser
from cdm_status.cli._simulate import build_simulator
from cdm_status.testing import DEFAULT_CLUSTER_ID, DEFAULT_PROJECT_ID

COMMAND = str(Path(sys.executable).with_name("cdm-status"))
# The command with `rich` not importable (`pip install cdm-status` without the `cli` extra).
WITHOUT_RICH = (
    sys.executable,
    str(Path(__file__).resolve().parents[1] / "support" / "without_rich.py"),
    "-c",
    "from cdm_status.cli import console_main; console_main()",
)
TIMEOUT = 30.0  # bound on any one subprocess; the tests take a second or two each

# Seed 3 with these flags: job_001..003 succeed, 3 of the 30 tables fail, and every run
# ends within 1,500 simulated seconds: 2 ms of real time at this speed.
FAST = [
    "--jobs", "3", "--database-job", "nightly", "--tables", "30", "--parallelism", "30",
    "--failure-rate", "0.2", "--speed", "1000000", "--seed", "3",
]  # fmt: skip
TABLES = [f"table_{index:04d}" for index in range(1, 31)]
# Real time: every job boots for at least 5 s and runs for at least a minute.
SLOW = ["--jobs", "2", "--speed", "1", "--token", "right-token"]


def cli_env(
    endpoint: str,
    *,
    token: str = "any",
    project_id: str = DEFAULT_PROJECT_ID,
    cluster_id: str = DEFAULT_CLUSTER_ID,
) -> dict[str, str]:
    """This process's environment, with only the given connection settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HUAWEICLOUD_SDK_", "CDM_"))
    }
    env.update(
        CDM_ENDPOINT=endpoint,
        HUAWEICLOUD_SDK_PROJECT_ID=project_id,
        CDM_CLUSTER_ID=cluster_id,
        CDM_AUTH_TOKEN=token,
    )
    return env


@dataclass
class Simulator:
    process: subprocess.Popen[str]
    endpoint: str
    argv: list[str]
    _twin: Any = None

    def env(self, token: str = "any") -> dict[str, str]:
        return cli_env(self.endpoint, token=token)

    def ground_truth(self, name: str) -> str:
        if self._twin is None:
            self._twin = build_simulator(build_parser().parse_args(["simulate", *self.argv]))
        final = self._twin.final_status(name)
        assert final is not None
        return final.value


def read_line(stream: Any, deadline: float) -> str:
    """The next line of a subprocess pipe, or fail once ``deadline`` passes."""
    remaining = deadline - time.monotonic()
    ready, _, _ = select.select([stream], [], [], max(0.0, remaining))
    assert ready, "the subprocess printed nothing in time"
    line: str = stream.readline()
    return line


def start_simulator(argv: list[str]) -> Iterator[Simulator]:
    process = subprocess.Popen(
        [COMMAND, "simulate", "--port", "0", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        line = ""
        while "listening on" not in line:
            line = read_line(process.stdout, deadline)
            assert line or process.poll() is None, "cdm-status simulate ended early"
        endpoint = line.split("listening on ")[1].split()[0]
        yield Simulator(process, endpoint, argv)
    finally:
        process.kill()
        process.wait(timeout=TIMEOUT)
        assert process.stdout is not None
        process.stdout.close()


@pytest.fixture(scope="module")
def fast() -> Iterator[Simulator]:
    yield from start_simulator(FAST)


@pytest.fixture(scope="module")
def slow() -> Iterator[Simulator]:
    yield from start_simulator(SLOW)


def wait(simulator: Simulator, *argv: str, token: str = "any") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, "wait", *argv],
        env=simulator.env(token),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def one_line(stderr: str) -> str:
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr
    assert stderr.startswith("cdm-status: ")
    return stderr


def test_every_job_succeeded_exits_0_with_plain_lines(fast: Simulator) -> None:
    result = wait(fast, "job_001", "job_002", "job_003")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    # stdout is a pipe: one plain line per transition and per outcome, then the summary.
    for job in ("job_001", "job_002", "job_003"):
        assert any(line.endswith(f" {job}: SUCCEEDED (100%)") for line in lines)
        assert any(f" {job}: succeeded (" in line for line in lines)
    assert len(lines) == 3 + 3 + 1
    assert lines[-1].startswith("3 jobs in 0:0")
    assert lines[-1].split(": ", 1)[1].startswith("3 succeeded; ")
    assert "\x1b[" not in result.stdout  # no terminal control codes in a pipe


def test_json_lines_from_a_tables_file_match_the_ground_truth(
    fast: Simulator, tmp_path: Path
) -> None:
    tables = tmp_path / "tables.txt"
    tables.write_text("# the nightly migration\n" + "\n".join(TABLES) + "\n\n", encoding="utf-8")
    result = wait(
        fast,
        "--subjobs-of", "nightly", "--tables-file", str(tables), "--table", "table_0001",
        "--json", "--requests-per-minute", "6000",
    )  # fmt: skip
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    done = {line["job"]: line for line in lines if line["event"] == "done"}
    names = [f"nightly_{table}" for table in TABLES]
    assert sorted(done) == sorted(names)  # table_0001 named twice, watched once
    for name in names:
        truth = fast.ground_truth(name)
        assert done[name]["status"] == truth, name
        assert done[name]["outcome"] == ("succeeded" if truth == "SUCCEEDED" else "failed")
    failed = sorted(name for name, line in done.items() if line["outcome"] == "failed")
    assert len(failed) == 3
    assert all(done[name]["error_summary"] for name in failed)
    summary = lines[-1]
    assert summary["event"] == "summary"
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (30, 27, 3)
    assert summary["exit_code"] == result.returncode == 1
    assert one_line(result.stderr).startswith("cdm-status: 3 of 30 jobs did not succeed")


def test_timeout_with_jobs_running_exits_3(slow: Simulator) -> None:
    started = time.monotonic()
    result = wait(slow, "job_001", "job_002", "--timeout", "1", token="right-token")
    assert result.returncode == 3, result.stderr
    # Well before the jobs end (they boot for longer): the deadline, not the jobs, ended
    # it. Generous for a loaded machine, where starting the command alone takes seconds.
    assert time.monotonic() - started < 25
    assert "expired with 2 of 2 jobs still running" in one_line(result.stderr)
    assert "job_001: timed out: still BOOTING" in result.stdout


def test_refused_credentials_exit_4(slow: Simulator) -> None:
    result = wait(slow, "job_001", "--json", token="wrong-token")
    assert result.returncode == 4
    assert "the API refused the credentials: HTTP 401 APIG.0301" in one_line(result.stderr)
    assert "wrong-token" not in result.stderr + result.stdout
    assert json.loads(result.stdout.splitlines()[-1])["error"] == 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["job_001", "--since", "yesterday"], "--since: 'yesterday' is neither"),
        (["--table", "orders"], "--table and --tables-file need --subjobs-of"),
        (["--subjobs-of", "nightly", "--tables-file", "/nonexistent"], "cannot read"),
    ],
)
def test_usage_errors_exit_2(fast: Simulator, argv: list[str], message: str) -> None:
    result = wait(fast, *argv)
    assert result.returncode == 2
    assert message in one_line(result.stderr)
    assert result.stdout == ""


# asyncio on Windows has no loop.add_signal_handler: the command is run with it refused, as
# there, to show that Ctrl-C handling does not need it.
WITHOUT_ADD_SIGNAL_HANDLER = """
import asyncio.unix_events, sys
def refuse(*args, **kwargs):
    raise NotImplementedError
asyncio.unix_events._UnixSelectorEventLoop.add_signal_handler = refuse
from cdm_status.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize(
    "command",
    [[COMMAND], [sys.executable, "-c", WITHOUT_ADD_SIGNAL_HANDLER]],
    ids=["posix", "no-add-signal-handler"],
)
def test_ctrl_c_prints_the_summary_then_exits_130(slow: Simulator, command: list[str]) -> None:
    process = subprocess.Popen(
        [*command, "wait", "job_001", "job_002"],
        env=slow.env("right-token"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = read_line(process.stdout, time.monotonic() + TIMEOUT)
        assert " job_00" in first  # the first look at a job: the watch is under way
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
        process.wait(timeout=TIMEOUT)
    assert process.returncode == 130
    assert one_line(err) == "cdm-status: interrupted\n"
    assert out.splitlines()[-1].startswith("2 jobs in 0:0")
    # The requests sent so far end the line; how many depends on the moment of the Ctrl-C.
    assert re.search(
        r"2 not finished \(interrupted\); [\d,]+ requests?( \(.*\))?$", out.splitlines()[-1]
    )


@dataclass
class TerminalRun:
    returncode: int
    screen: str
    """Everything written to the terminal, control codes included."""
    first_job_line_while_running: bool
    """A line about a job showed while the command still ran."""


def run_on_terminal(
    argv: list[str], env: dict[str, str], command: Sequence[str] = (COMMAND,)
) -> TerminalRun:
    """``cdm-status wait ARGV`` with its stdout on a pseudo-terminal, read to the end."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*command, "wait", *argv], env=env, stdout=terminal, stderr=subprocess.PIPE, text=True
    )
    os.close(terminal)
    chunks: list[bytes] = []
    while_running = False
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            ready, _, _ = select.select([controller], [], [], deadline - time.monotonic())
            assert ready, "no output on the terminal in time"
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the command ended
                break
            if not chunk:
                break
            if b" job_00" in chunk and process.poll() is None:
                while_running = True
            chunks.append(chunk)
        process.wait(timeout=TIMEOUT)
    finally:
        process.kill()
        os.close(controller)
        assert process.stderr is not None
        process.stderr.close()
    screen = b"".join(chunks).decode().replace("\r\n", "\n")
    return TerminalRun(process.returncode, screen, while_running)


def test_a_terminal_gets_the_live_view(fast: Simulator) -> None:
    run = run_on_terminal(
        ["job_001", "job_002", "job_003"], {**fast.env(), "COLUMNS": "100", "TERM": "xterm"}
    )
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run.screen)
    assert run.returncode == 0
    assert "cdm-status wait" in screen  # the view's title
    assert "3/3" in screen
    assert "succeeded 3" in screen
    assert "3 jobs in 0:0" in screen


def test_a_terminal_without_rich_gets_plain_lines(fast: Simulator) -> None:
    run = run_on_terminal(
        ["job_001", "job_002", "job_003"],
        {**fast.env(), "COLUMNS": "100", "TERM": "xterm"},
        command=WITHOUT_RICH,
    )
    assert run.returncode == 0
    assert "\x1b[" not in run.screen  # no live view: no cursor moves, no colours
    lines = run.screen.splitlines()
    for name in ("job_001", "job_002", "job_003"):
        assert any(f" {name}: " in line and "SUCCEEDED" in line for line in lines), run.screen
    assert re.search(r"^3 jobs in 0:0\d: 3 succeeded; .* written; \d+ requests?$", run.screen, re.M)


def test_a_refused_token_names_each_job_in_its_own_line(slow: Simulator) -> None:
    # One 401 ends every job of the watch; each line is about its own job only.
    result = wait(slow, "job_001", "job_002", token="wrong-token")
    assert result.returncode == 4, result.stderr
    lines = [line for line in result.stdout.splitlines() if " job_00" in line]
    assert len(lines) == 2, result.stdout
    for line in lines:
        job = line.split()[1].rstrip(":")
        assert "HTTP 401" in line, line
        other = "job_002" if job == "job_001" else "job_001"
        assert other not in line, line
        assert "wrong-token" not in line


def test_a_missing_job_exits_1_from_status_and_from_wait(fast: Simulator) -> None:
    status = subprocess.run(
        [COMMAND, "status", "no_such_job"],
        env=fast.env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    waited = wait(fast, "no_such_job")
    assert (status.returncode, waited.returncode) == (1, 1), status.stderr + waited.stderr
    assert "no_such_job" in one_line(status.stderr)
    assert "not found" in one_line(waited.stderr) or "did not succeed" in waited.stderr


def test_a_dumb_terminal_gets_plain_lines_as_they_happen() -> None:
    # At a hundredth of real speed every job is still booting minutes later.
    for simulator in start_simulator(["--jobs", "2", "--speed", "0.01"]):
        run = run_on_terminal(
            ["job_001", "job_002", "--timeout", "3"],
            {**simulator.env(), "COLUMNS": "160", "TERM": "dumb"},
        )
    screen = run.screen
    assert run.returncode == 3
    assert run.first_job_line_while_running  # the first look at a job showed before the end
    assert "\x1b[" not in screen  # no cursor moves, no colours
    lines = screen.splitlines()
    assert any(line.endswith(" job_001: BOOTING (0%)") for line in lines), screen
    assert "job_002: timed out: still BOOTING when the timeout expired" in screen
    # The summary is one whole line, not a frame cut to 80 columns.
    assert re.search(
        r"^2 jobs in 0:0\d: 2 still running at the timeout; \d+ requests", screen, re.M
    )


def test_subjobs_of_without_tables_watches_what_the_job_list_shows(fast: Simulator) -> None:
    # With a plain job beside it; the page size is 100, the list shows 30 subjobs.
    result = wait(fast, "job_001", "--subjobs-of", "nightly", "--json")
    done = {
        line["job"]: line
        for line in map(json.loads, result.stdout.splitlines())
        if line["event"] == "done"
    }
    assert sorted(done) == sorted(["job_001", *(f"nightly_{table}" for table in TABLES)])
    assert sum(line["outcome"] == "failed" for line in done.values()) == 3
    assert result.returncode == 1, result.stderr


def test_subjobs_of_a_parent_the_list_does_not_show_exits_2(fast: Simulator) -> None:
    result = wait(fast, "--subjobs-of", "nightlly")
    assert result.returncode == 2
    assert "the job list shows no job named nightlly_*" in one_line(result.stderr)
    assert result.stdout == ""


def test_subjobs_of_reads_every_page_of_the_job_list() -> None:
    argv = ["--database-job", "big", "--tables", "150", "--parallelism", "150"]
    for simulator in start_simulator([*argv, "--speed", "1000000", "--seed", "3"]):
        result = wait(simulator, "--subjobs-of", "big", "--json", "--requests-per-minute", "6000")
        done = [
            line["job"]
            for line in map(json.loads, result.stdout.splitlines())
            if line["event"] == "done"
        ]
        assert sorted(done) == [f"big_table_{index:04d}" for index in range(1, 151)]
