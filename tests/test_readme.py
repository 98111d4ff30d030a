"""Every Python block of README.md and of the docs site (``docs/``) runs as written.

Programs run in a subprocess against ``cdm-status simulate`` (the names it serves by
default, sped up), configured by the variables its banner prints; each testing recipe runs
as a test file of its own under pytest, as a user's suite would; a DAG is parsed as
Airflow parses a DAG file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.readme import (
    DAGS,
    EXPORTERS,
    LIBRARY_EXAMPLE,
    PAGES,
    PROGRAMS,
    RECIPES,
    ROOT,
    SHARED,
    Block,
    fenced,
    run_library_example,
    run_program,
    simulated_env,
)

COMMAND = str(Path(sys.executable).with_name("cdm-status"))


def ids(blocks: list[Block]) -> list[str]:
    return [block.name for block in blocks]


def test_the_pages_have_the_blocks_this_file_runs() -> None:
    assert [block.page for block in PROGRAMS].count("README.md") == 1
    assert LIBRARY_EXAMPLE.page == "README.md"
    assert len(PROGRAMS) >= 4
    assert len(DAGS) >= 1
    assert len(EXPORTERS) >= 1
    assert len(SHARED) >= 1
    assert len(RECIPES) >= 4
    recipes = "".join(block.code for block in RECIPES)
    for marker in ("pytest.mark.anyio", "pytest.mark.asyncio", "autojump_clock", "looptime"):
        assert marker in recipes


def test_python_is_only_in_python_blocks() -> None:
    # A block tagged otherwise (```py, ```python3, untagged) would escape these tests.
    for page in PAGES:
        for language, line, code in fenced(page):
            where = f"{page.relative_to(ROOT)}:{line}"
            assert language in {"", "python", "console", "sh", "yaml", "ini", "text", "json"}, (
                f"{where}: ```{language}"
            )
            if language != "python":
                assert "import " not in code, where
                assert "async def " not in code, where


@pytest.mark.parametrize("block", EXPORTERS, ids=ids(EXPORTERS))
def test_each_exporter_block_compiles(block: Block) -> None:
    compile(block.code, block.name, "exec")


@pytest.mark.parametrize("block", SHARED, ids=ids(SHARED))
def test_each_shared_budget_block_imports_and_defines(block: Block) -> None:
    exec(compile(block.code, block.name, "exec"), {})  # imports and defines; runs nothing


@pytest.fixture
def simulate_env() -> Iterator[dict[str, str]]:
    """``cdm-status simulate`` with its default jobs on a free port, its exports applied."""
    with simulated_env(COMMAND) as env:
        yield env


def test_the_library_example_runs_against_the_simulator(
    simulate_env: dict[str, str], tmp_path: Path
) -> None:
    run_library_example(sys.executable, simulate_env, tmp_path / "example.py")


OTHER_PROGRAMS = [block for block in PROGRAMS if block != LIBRARY_EXAMPLE]


@pytest.mark.parametrize("block", OTHER_PROGRAMS, ids=ids(OTHER_PROGRAMS))
def test_each_program_runs_against_the_simulator(
    block: Block, simulate_env: dict[str, str], tmp_path: Path
) -> None:
    stdout = run_program(sys.executable, simulate_env, tmp_path / "example.py", block)
    assert stdout.strip(), f"{block.name} printed nothing"


@pytest.mark.parametrize("block", RECIPES, ids=ids(RECIPES))
def test_each_testing_recipe_passes_under_pytest(block: Block, tmp_path: Path) -> None:
    (tmp_path / "test_recipe.py").write_text(block.code, encoding="utf-8")
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
    tests = block.code.count("def test_")
    assert done.returncode == 0, done.stdout + done.stderr
    passed = re.search(r"(\d+) passed", done.stdout)
    # An anyio test runs once per backend the installed plugin gives (asyncio, trio).
    assert passed is not None, done.stdout
    assert int(passed.group(1)) >= tests, done.stdout
    assert "failed" not in done.stdout


@pytest.mark.parametrize("block", DAGS, ids=ids(DAGS))
def test_each_airflow_block_defines_its_dag(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "dag.py"
    script.write_text(
        block.code + "\nprint(sorted(task.task_id for task in dag.tasks))\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {"AIRFLOW_HOME": str(tmp_path / "home"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    tasks = sorted(re.findall(r'task_id="(\w+)"', block.code))
    assert tasks, block.name
    assert done.stdout.splitlines()[-1] == repr(tasks), done.stdout
