"""An endpoint that cannot be reached: ``wait`` and ``status`` say where, and exit 4 fast.

Run as a user runs them: the real ``cdm-status`` in a subprocess, against a loopback port
that nothing listens on (the connection is refused at once).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMMAND = str(Path(sys.executable).with_name("cdm-status"))
FAIL_FAST = 30.0  # what the command promises for an endpoint that never answered


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: a connection to it is refused


def run(argv: list[str], port: int) -> tuple[int, str, str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_SDK_", "CDM_"))}
    env.update(
        CDM_ENDPOINT=f"http://127.0.0.1:{port}",
        HUAWEICLOUD_SDK_PROJECT_ID="proj",
        CDM_CLUSTER_ID="clus",
        CDM_AUTH_TOKEN="unreachable-secret",
    )
    started = time.monotonic()
    done = subprocess.run(
        [COMMAND, *argv], env=env, capture_output=True, text=True, timeout=2 * FAIL_FAST
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


@pytest.mark.parametrize(
    "argv",
    [["wait", "job_001", "job_002"], ["wait", "job_001", "--json"], ["status", "job_001"]],
    ids=["wait", "wait-json", "status"],
)
def test_an_unreachable_endpoint_exits_4_fast_naming_host_and_port(
    argv: list[str], closed_port: int
) -> None:
    code, _, err, elapsed = run(argv, closed_port)
    assert code == 4, err
    assert elapsed < FAIL_FAST
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"127.0.0.1:{closed_port}" in lines[0]
    assert "ConnectError" in lines[0]  # the cause
    assert "unreachable-secret" not in err
