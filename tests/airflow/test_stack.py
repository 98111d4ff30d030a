"""End to end: a real Airflow (api-server, scheduler with LocalExecutor on SQLite,
dag-processor, triggerer) in a fresh AIRFLOW_HOME, against the simulator served on loopback
with AK/SK checked. Five DAG runs at once; a failing table fails its task with the error
summary in the task's log; the triggerer is killed mid-run and restarted, and the runs
still end right; a start-and-wait waiting on its worker has that worker killed right after
its start, and its retry waits for the same run (one start request in all). Every process
is stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.airflow.conftest import AK, SK, connection_json

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "airflow"
BIN = Path(sys.executable).parent
SUMMARY = "GENERIC_JDBC_CONNECTOR_0001:Unable to get a connection"

# The runs begin when the test says so (a line on stdin), once the DAGs are parsed: on a
# loaded machine the stack takes a minute or more to come up, and runs that began with
# the simulator would end before any task deferred. All but one boot for an hour, so
# they surely run on through the triggerer's restart and the killed worker's retry,
# until the test has the simulator skip its jobs' clock to the end of the last boot (the
# gateway's clock, which checks the signatures, keeps real time): they end within RUN
# seconds, instead of the minutes the test would otherwise wait.
BOOT = 3600.0
RUN = 12.0
SIMULATOR = f"""
import json
import sys
import anyio
from cdm_status import JobStatus
from cdm_status.testing import CDMSimulator, JobPlan, ScaledClock, SimulatorAuth, serve

def add_jobs(sim):
    for name in ("job_a", "job_b"):
        sim.add_job(name, plan=JobPlan(boot_seconds={BOOT}, run_seconds={RUN + 3}))
    sim.add_job("job_c", plan=JobPlan(boot_seconds={BOOT}, run_seconds={RUN}), started=False)
    sim.add_database_job(
        "nightly",
        ["orders", "customers", "invoices"],
        plans={{
            "orders": JobPlan(boot_seconds={BOOT}, run_seconds={RUN}),
            "customers": JobPlan(boot_seconds={BOOT}, run_seconds={RUN + 3}),
            "invoices": JobPlan(
                boot_seconds=2, run_seconds=30, outcome=JobStatus.FAILED,
                error_summary={SUMMARY!r},
            ),
        }},
    )
    sim.add_database_job("weekly", ["a", "b"], plans={{
        "a": JobPlan(boot_seconds={BOOT}, run_seconds={RUN}),
        "b": JobPlan(boot_seconds={BOOT}, run_seconds={RUN + 3}),
    }})
    # Not started: cdm_start_and_wait starts it (test_stack_kill.py).
    sim.add_job("cdm_long", plan=JobPlan(boot_seconds=5, run_seconds=3600), started=False)

async def main():
    jobs_clock = ScaledClock(1.0)
    sim = CDMSimulator(
        clock=jobs_clock,
        gateway_clock=ScaledClock(1.0),
        auth=SimulatorAuth(ak={AK!r}, sk={SK!r}),
    )
    async with serve(sim) as endpoint:
        print(endpoint, flush=True)
        while line := await anyio.to_thread.run_sync(sys.stdin.readline):
            if line.strip() == "go":
                add_jobs(sim)
                print("added", flush=True)
            elif line.strip() == "requests":
                print(json.dumps(dict(sim.stats.by_endpoint)), flush=True)
            elif line.strip() == "boot":
                # To the end of the last boot (job_c's: it was started last), so every
                # job runs for at most its last RUN seconds from now.
                ends = [
                    step.at
                    for name in sim.jobs()
                    for step in sim.transitions(name, upcoming=True)
                    if step.status is JobStatus.RUNNING
                ]
                jobs_clock.jump(max(0.0, max(ends) - jobs_clock.time()))
                print("booted", flush=True)

anyio.run(main)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    def __init__(self, home: Path, env: dict[str, str], simulator: subprocess.Popen[bytes]) -> None:
        self.home = home
        self.env = env
        self.simulator = simulator
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def begin_runs(self) -> None:
        """Add the simulator's jobs now: their runs start from this moment."""
        self._tell_simulator(b"go", b"added")

    def end_boots(self) -> None:
        """Skip the jobs' clock to the end of the last long boot: the jobs end within
        RUN seconds from now."""
        self._tell_simulator(b"boot", b"booted")

    def _tell_simulator(self, command: bytes, answer: bytes) -> None:
        assert self.simulator.stdin is not None
        assert self.simulator.stdout is not None
        self.simulator.stdin.write(command + b"\n")
        self.simulator.stdin.flush()
        assert self.simulator.stdout.readline().strip() == answer

    def requests(self, endpoint: str) -> int:
        """How many requests the simulator has answered on ``endpoint`` (start, stop...)."""
        assert self.simulator.stdin is not None
        assert self.simulator.stdout is not None
        self.simulator.stdin.write(b"requests\n")
        self.simulator.stdin.flush()
        return int(json.loads(self.simulator.stdout.readline()).get(endpoint, 0))

    def retry_log(self) -> str:
        """What the start-and-wait's second try has logged so far."""
        return "".join(
            path.read_text()
            for path in self.home.glob("logs/dag_id=cdm_start_and_wait/**/attempt=2*.log")
        )

    def kill_task_process(self, dag_id: str, task_id: str) -> int:
        """SIGKILL the process running the task's current try (Airflow titles it
        ``airflow worker -- <task instance id>``); its PID."""
        (ti_id,) = self.states(
            f"select id from task_instance where dag_id = '{dag_id}' and task_id = '{task_id}'"
        )[0]
        wanted = f"airflow worker -- {uuid.UUID(str(ti_id))}"
        for entry in Path("/proc").iterdir():
            try:
                title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                continue
            if title == wanted:
                os.kill(int(entry.name), signal.SIGKILL)
                return int(entry.name)
        raise AssertionError(f"no process titled {wanted!r}")

    def start(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - kept for the process
        self.processes[name] = subprocess.Popen(
            [str(BIN / "airflow"), *args], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name)
        process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_all(self) -> None:
        """SIGTERM to every process at once, then wait for each (SIGKILL after 30 s)."""
        for process in self.processes.values():
            process.terminate()
        for name in list(self.processes):
            process = self.processes.pop(name)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    @property
    def api(self) -> str:
        """The API server's base URL (every request is an admin's: the simple auth manager
        with all admins)."""
        return f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}"

    def api_answers(self) -> bool:
        try:
            return httpx.get(f"{self.api}/api/v2/version", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def trigger(self, dag_id: str, conf: dict[str, str], logical_date: str | None = None) -> None:
        """Trigger a DAG run through the API server: one request, where ``airflow dags
        trigger`` would start a process that takes many seconds on a loaded machine."""
        with httpx.Client(base_url=self.api, timeout=60) as http:
            token = http.get("/auth/token").raise_for_status().json()["access_token"]
            answer = http.post(
                f"/api/v2/dags/{dag_id}/dagRuns",
                json={"logical_date": logical_date, "conf": conf},
                headers={"Authorization": f"Bearer {token}"},
            )
        assert answer.status_code == 200, answer.text

    def airflow(self, *args: str) -> str:
        return self.airflow_all([list(args)])[0]

    def airflow_all(self, commands: list[list[str]]) -> list[str]:
        """Run CLI commands at once (each takes seconds to start); their outputs."""
        running = [
            subprocess.Popen(
                [str(BIN / "airflow"), *args],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for args in commands
        ]
        outputs = []
        for process in running:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err[-2000:]
            outputs.append(out)
        return outputs

    def states(self, query: str) -> list[tuple[str, ...]]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return [tuple(row) for row in db.execute(query)]


@pytest.fixture
def stack(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The stack, with the settings of the test module's STACK_ENV on top."""
    simulator = subprocess.Popen(
        [sys.executable, "-c", SIMULATOR],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert simulator.stdout is not None
    endpoint = simulator.stdout.readline().decode().strip()
    assert endpoint.startswith("http://127.0.0.1:"), endpoint
    from cdm_status.testing import DEFAULT_CLUSTER_ID, DEFAULT_PROJECT_ID

    api_port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CDM_", "HUAWEI"))}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLES),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # The example DAGs never change during a test: parsed once, not every 30 s
            # (each parse imports them afresh: seconds of CPU a minute).
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            # A killed triggerer's triggers go to a live one once its heartbeat is this old
            # (30 s by default): the restart is what is tested, not Airflow's patience.
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "8",
            # The start-and-wait example retries; its retry comes after 2 s, not 5 minutes.
            # No [operators] default_deferrable: it waits on its worker.
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "2",
            "AIRFLOW_CONN_HUAWEICLOUD_DEFAULT": connection_json(
                endpoint, DEFAULT_PROJECT_ID, DEFAULT_CLUSTER_ID
            ),
        }
    )
    env.update(getattr(request.module, "STACK_ENV", {}))
    stack = Stack(tmp_path, env, simulator)
    try:
        stack.airflow("db", "migrate")
        stack.start("api-server", "api-server", "--port", str(api_port))
        # Log servers listen on every interface: skipped, the logs are read from files.
        stack.start("scheduler", "scheduler", "--skip-serve-logs")
        stack.start("dag-processor", "dag-processor")
        stack.start("triggerer", "triggerer", "--skip-serve-logs")
        yield stack
    finally:
        stack.stop_all()
        simulator.terminate()
        simulator.wait(timeout=30)


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(1)  # a real Airflow on the wall clock: nothing virtual to drive here
    raise AssertionError(f"timed out waiting for {what}")


def test_five_runs_survive_a_triggerer_restart_and_a_killed_worker(stack: Stack) -> None:
    wait_for(lambda: len(stack.states("select dag_id from dag")) >= 3, 120, "the DAGs to be parsed")
    wait_for(stack.api_answers, 120, "the API server")
    stack.begin_runs()
    for dag_id, conf in [
        ("cdm_job", {"job": "job_a"}),
        ("cdm_job", {"job": "job_b"}),
        ("cdm_database_job", {"parent": "nightly"}),
        ("cdm_database_job", {"parent": "weekly"}),
        ("cdm_start_and_wait", {"job": "job_c"}),
    ]:
        stack.trigger(dag_id, conf)
    wait_for(
        lambda: len(stack.states("select 1 from task_instance where state = 'deferred'")) == 4,
        90,
        "four deferred tasks",
    )
    # Mid-run: no run has ended when the triggerer dies (the start-and-wait's may still
    # be queued on a busy scheduler: it has no deferred task).
    runs = [state for (state,) in stack.states("select state from dag_run")]
    assert len(runs) == 5
    assert set(runs) <= {"queued", "running"}, runs
    stack.stop("triggerer", signal.SIGKILL)
    time.sleep(2)  # the triggers are orphaned until a triggerer takes them again
    stack.start("triggerer", "triggerer", "--skip-serve-logs")
    # The start-and-wait waits on its worker (its run boots for an hour): the worker dies
    # after the start.
    wait_for(lambda: stack.requests("start") == 1, 120, "job_c to be started")
    time.sleep(2)  # the task goes on to wait for its run
    stack.kill_task_process("cdm_start_and_wait", "start_and_wait")
    # Airflow sees the try die, waits the retry delay, schedules and starts the next try:
    # minutes on a loaded machine.
    wait_for(lambda: "no new start" in stack.retry_log(), 300, "the retry to wait for job_c")
    stack.end_boots()
    wait_for(
        lambda: all(
            state in ("success", "failed") for (state,) in stack.states("select state from dag_run")
        ),
        300,
        "the five runs to end",
    )
    # Triggered at once, so in any order: each run by what it was given.
    runs = {conf: state for conf, state in stack.states("select conf, state from dag_run")}
    assert {json.dumps(json.loads(conf), sort_keys=True): s for conf, s in runs.items()} == {
        '{"job": "job_a"}': "success",
        '{"job": "job_b"}': "success",
        '{"parent": "nightly"}': "failed",  # its invoices table failed
        '{"parent": "weekly"}': "success",
        '{"job": "job_c"}': "success",
    }
    logs = "".join(
        path.read_text() for path in stack.home.glob("logs/dag_id=cdm_database_job/**/*.log")
    )
    assert f"nightly_invoices FAILED: {SUMMARY}" in logs
    assert "AirflowFailException" in logs
    # The killed start-and-wait: try 2 waited for the run of try 1, which it recorded.
    assert stack.requests("start") == 1
    assert stack.states(
        "select try_number from task_instance where task_id = 'start_and_wait'"
    ) == [(2,)]
    retried = stack.retry_log()
    assert "started by an earlier try of this task" in retried
    assert "no new start" in retried
