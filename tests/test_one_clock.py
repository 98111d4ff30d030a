"""The one-clock rule: the library reads and waits on time only through ``_clock.py``.

A stray ``time.monotonic()`` or ``anyio.sleep()`` is how virtual clocks broke before:
schedules read one clock while sleeps waited on another. This scans the source for every
way Python reads or waits on time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cdm_status

PACKAGE = Path(cdm_status.__file__).parent
ALLOWED = {PACKAGE / "_clock.py", PACKAGE / "testing" / "_clocks.py"}

# module attribute -> names that read or wait on time
TIME_CALLS = {
    "time": {"monotonic", "monotonic_ns", "time", "time_ns", "perf_counter", "sleep"},
    "anyio": {"sleep", "sleep_until", "current_time", "fail_after", "move_on_after"},
    "asyncio": {"sleep", "wait_for", "timeout", "timeout_at"},
    "trio": {"sleep", "sleep_until", "current_time", "fail_after", "move_on_after"},
    "datetime": {"now", "utcnow", "today"},
    "date": {"today"},
}


def stray_time(path: Path, root: Path = PACKAGE) -> list[str]:
    """``file:line call`` for each time reading or wait in one source file."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported: dict[str, str] = {}  # local name -> module it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                imported[alias.asname or alias.name] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if alias.name in TIME_CALLS.get(node.module.split(".")[0], ()):
                    where = f"{path.relative_to(root)}:{node.lineno}"
                    found.append(f"{where} from {node.module} import {alias.name}")
                imported[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = imported.get(node.value.id, node.value.id).split(".")[0]
            if node.attr in TIME_CALLS.get(module, ()):
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.value.id}.{node.attr}")
    return found


def test_nothing_outside_the_clock_reads_or_waits_on_time() -> None:
    stray = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in ALLOWED
        for hit in stray_time(path)
    ]
    assert stray == []


def test_the_scan_finds_what_it_looks_for(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import time as t\nimport anyio\nfrom datetime import datetime\n"
        "from asyncio import sleep\n"
        "t.monotonic()\nanyio.sleep(x)\nanyio.fail_after(x)\ndatetime.now(tz)\n"
    )
    hits = [hit.split(" ", 1)[1] for hit in stray_time(sample, tmp_path)]
    assert sorted(hits) == sorted(
        [
            "from asyncio import sleep",
            "t.monotonic",
            "anyio.sleep",
            "anyio.fail_after",
            "datetime.now",
        ]
    )
