"""Given the same seed, clock and server, the engine sends the same requests in the same
order, in any process and whatever ``PYTHONHASHSEED`` (the order of a set of names)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "support" / "replay.py"


def _first_difference(one: list[str], two: list[str]) -> str:
    for index, (a, b) in enumerate(zip(one, two, strict=False)):
        if a != b:
            return f"request {index + 1}: {a!r} != {b!r}"
    return f"one log has {len(one)} requests, the other {len(two)}"


# trio, whose scheduler runs ready tasks in a random order on purpose: the strictest loop
# for a claim that the requests follow from the seed alone.
@pytest.mark.parametrize("backend", ["trio"])
def test_two_processes_with_different_hash_seeds_send_the_same_requests(
    backend: str, tmp_path: Path
) -> None:
    runs = []
    for hash_seed in ("1", "4242"):
        log = tmp_path / f"requests-{hash_seed}.log"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        command = [sys.executable, str(SCRIPT), str(log), "--backend", backend]
        runs.append((log, subprocess.Popen(command, env=env, stderr=subprocess.PIPE)))
    logs = []
    for log, process in runs:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr.decode()
        logs.append(log.read_bytes())
    one, two = (text.decode().splitlines() for text in logs)
    # Both the listed and the unlisted job were polled one by one, and the list swept.
    assert any("/cdm/job/erp_table_" in line and "/status " in line for line in one)
    assert any("/cdm/job/crm_table_" in line and "/status " in line for line in one)
    assert any("/cdm/job/all?" in line for line in one)
    assert logs[0] == logs[1], _first_difference(one, two)
