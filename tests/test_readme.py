"""Every Python block of README.md runs as written.

The library example runs in a subprocess against ``cdm-status simulate`` (the names it
serves by default, sped up), configured by the variables its banner prints; each testing
recipe runs as a test file of its own under pytest, as a user's suite would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.readme import (
    DAGS,
    EXPORTERS,
    PROGRAMS,
    RECIPES,
    SHARED,
    run_library_example,
    simulated_env,
)

COMMAND = str(Path(sys.executable).with_name("cdm-status"))


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
    with simulated_env(COMMAND) as env:
        yield env


def test_the_library_example_runs_against_the_simulator(
    simulate_env: dict[str, str], tmp_path: Path
) -> None:
    run_library_example(sys.executable, simulate_env, tmp_path / "example.py")


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
