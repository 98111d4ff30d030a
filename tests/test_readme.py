"""Every Python block of README.md runs as written.

The library example runs in a subprocess against ``cdm-status simulate`` (the names it
serves by default, sped up), configured by the variables its banner prints; each testing
recipe runs as a test file of its own under pytest, as a user's suite would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
COMMAND = str(Path(sys.executable).with_name("cdm-status"))
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


def test_the_readme_has_the_blocks_this_file_runs() -> None:
    assert len(PROGRAMS) == 1
    assert len(DAGS) == 1
    assert len(EXPORTERS) <= 1
    for block in EXPORTERS:
        compile(block, "README.md", "exec")
    assert len(SHARED) == 1
    for block in SHARED:
        exec(compile(block, "README.md", "exec"), {})  # imports and defines; runs nothing
    assert len(RECIPES) == 4
    recipes = "".join(RECIPES)
    for marker in ("pytest.mark.anyio", "pytest.mark.asyncio", "autojump_clock", "looptime"):
        assert marker in recipes


@pytest.fixture
def simulate_env() -> Iterator[dict[str, str]]:
    """``cdm-status simulate`` with its default jobs on a free port, its exports applied."""
    process = subprocess.Popen(
        [COMMAND, "simulate", "--port", "0", "--speed", "100000"],
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
        assert "job_001" in "".join(banner)  # the banner names the jobs it serves
        yield env
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_library_example_runs_against_the_simulator(
    simulate_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "example.py"
    script.write_text(PROGRAMS[0], encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        env=simulate_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Submission(job_name='job_001'")
    for name in ("job_002", "job_003", "job_004"):
        assert f"{name} succeeded" in done.stdout


@pytest.mark.parametrize("index", range(len(RECIPES)))
def test_each_testing_recipe_passes_under_pytest(index: int, tmp_path: Path) -> None:
    (tmp_path / f"test_recipe_{index}.py").write_text(RECIPES[index], encoding="utf-8")
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n", encoding="utf-8"
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    tests = RECIPES[index].count("def test_")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{tests} passed" in done.stdout or tests == 1, done.stdout
    assert "failed" not in done.stdout


def test_the_airflow_block_defines_its_dag(tmp_path: Path) -> None:
    script = tmp_path / "dag.py"
    script.write_text(
        DAGS[0] + "\nprint(sorted(task.task_id for task in dag.tasks))\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {"AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "['run', 'tables', 'wait']"
