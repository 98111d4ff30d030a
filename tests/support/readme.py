"""README.md's Python blocks, sorted by how they are checked, and ``cdm-status simulate``
started as a reader would start it: the README test runs them in the project's own
environment, ``make dist`` in a fresh one with the built wheel installed
(``tests/support/check_dist.py``). Only the standard library is imported here.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
RECIPES = [block for block in BLOCKS if "def test_" in block]
# The Prometheus wiring needs an exporter this project does not install: it is compiled
# (names and syntax), not run.
EXPORTERS = [block for block in BLOCKS if "prometheus" in block]
# The shared budget needs a Redis server (its behaviour is tested in test_redis_budget.py):
# compiled and its names imported, not run.
SHARED = [block for block in BLOCKS if "RedisBudget" in block]
# The Airflow block defines a DAG: it runs in a fresh AIRFLOW_HOME, as a DAG file would.
DAGS = [block for block in BLOCKS if "cdm_status.airflow" in block]
PROGRAMS = [block for block in BLOCKS if block not in RECIPES + EXPORTERS + SHARED + DAGS]


@contextmanager
def simulated_env(command: str) -> Iterator[dict[str, str]]:
    """``COMMAND simulate`` with its default jobs on a free loopback port, sped up; yields
    this process's environment with the variables its banner exports and no other CDM
    settings. The server is stopped by PID."""
    process = subprocess.Popen(
        [command, "simulate", "--port", "0", "--speed", "100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_SDK_", "CDM_"))
        }
        assert process.stdout is not None
        banner = []
        for line in process.stdout:
            banner.append(line)
            found = re.match(r"\s*export (\w+)=(\S+)", line)
            if found:
                env[found.group(1)] = found.group(2)
            if line.startswith("Press Ctrl-C"):
                break
        assert "job_001" in "".join(banner), "".join(banner)  # the banner names its jobs
        yield env
    finally:
        process.terminate()
        process.wait(timeout=30)


def run_library_example(python: str, env: dict[str, str], script: Path) -> None:
    """Run the README's library example with PYTHON against the simulator that ENV points
    at; fail unless it prints what the README says it does, and nothing on stderr."""
    script.write_text(PROGRAMS[0], encoding="utf-8")
    done = subprocess.run(
        [python, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Submission(job_name='job_001'"), done.stdout
    for name in ("job_002", "job_003", "job_004"):
        assert f"{name} succeeded" in done.stdout, done.stdout
