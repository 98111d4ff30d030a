"""The Python blocks of README.md and of the docs site (``docs/**/*.md``), sorted by how
they are checked, and ``cdm-status simulate`` started as a reader would start it: the
README test runs them in the project's own environment, ``make dist`` runs the README's
library example in a fresh one with the built wheel installed
(``tests/support/check_dist.py``). The YAML blocks (Kubernetes and Argo manifests) are
checked by ``tests/test_manifests.py``. Only the standard library is imported here.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Block:
    """One fenced block of a language: the page it is on (relative to the repository), the
    line its fence opens on, and its code."""

    page: str
    line: int
    code: str

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def fenced(page: Path) -> list[tuple[str, int, str]]:
    """Every fenced block of PAGE: its language tag, the line of its fence, its text."""
    text = page.read_text(encoding="utf-8")
    return [
        (found.group(1), text.count("\n", 0, found.start()) + 1, found.group(2))
        for found in FENCE.finditer(text)
    ]


def blocks(language: str) -> list[Block]:
    """Every fenced block of LANGUAGE on the pages, in page order."""
    return [
        Block(str(page.relative_to(ROOT)), line, code)
        for page in PAGES
        for tag, line, code in fenced(page)
        if tag == language
    ]


BLOCKS = blocks("python")
RECIPES = [block for block in BLOCKS if "def test_" in block.code]
# The Prometheus wiring needs an exporter this project does not install: it is compiled
# (names and syntax), not run.
EXPORTERS = [block for block in BLOCKS if "prometheus" in block.code]
# The shared budget needs a Redis server (its behaviour is tested in test_redis_budget.py):
# compiled and its names imported, not run.
SHARED = [block for block in BLOCKS if "RedisBudget" in block.code]
# An Airflow block defines a DAG: it runs in a fresh AIRFLOW_HOME, as a DAG file would.
DAGS = [block for block in BLOCKS if "cdm_status.airflow" in block.code]
# Everything else is a program: it runs against `cdm-status simulate` and its defaults.
PROGRAMS = [block for block in BLOCKS if block not in RECIPES + EXPORTERS + SHARED + DAGS]
# The README's library example, the one `make dist` runs with the built wheel.
LIBRARY_EXAMPLE = next(block for block in PROGRAMS if block.page == "README.md")
# Kubernetes Jobs and Argo Workflows driven by the command line's exit codes.
MANIFESTS = blocks("yaml")


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


def run_program(python: str, env: dict[str, str], script: Path, block: Block) -> str:
    """Run BLOCK as a script with PYTHON against the simulator that ENV points at; fail
    unless it ends with 0 and prints nothing on stderr. Returns what it printed."""
    script.write_text(block.code, encoding="utf-8")
    done = subprocess.run(
        [python, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"{block.name}: {done.stderr}"
    assert done.stderr == "", f"{block.name}: {done.stderr}"
    return done.stdout


def run_library_example(python: str, env: dict[str, str], script: Path) -> None:
    """Run the README's library example with PYTHON against the simulator that ENV points
    at; fail unless it prints what the README says it does, and nothing on stderr."""
    stdout = run_program(python, env, script, LIBRARY_EXAMPLE)
    lines = stdout.splitlines()
    assert lines[0].startswith("Submission(job_name='job_001'"), stdout
    for name in ("job_002", "job_003", "job_004"):
        assert f"{name} succeeded" in stdout, stdout
