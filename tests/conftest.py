"""Every async test of this suite runs on asyncio and on trio (anyio's pytest plugin).

Property tests are derandomized by default, so ``make test`` (and CI) explores the same
examples every run; ``pytest --hypothesis-profile=explore`` looks for new ones.
"""

from __future__ import annotations

import os
import signal
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

if TYPE_CHECKING:
    from tests.support.redis_server import RedisServer

settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("default")

# A shell starts a background job with Ctrl-C ignored (`make test &`, nohup, some CI
# runners), and every process inherits that: the commands the Ctrl-C tests interrupt
# would never see their SIGINT. The suite's processes, and so their children, get
# Python's own handler back.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """The server binary; a missing one fails the tests that need it (never a skip)."""
    from tests.support.redis_server import INSTALL_HINT, find_binary

    binary = find_binary()
    if binary is None:
        pytest.fail(INSTALL_HINT, pytrace=False)
    return binary


def _serve(binary: str) -> Iterator[RedisServer]:
    from tests.support.redis_server import RedisServer

    server = RedisServer(binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    """One real server for the whole session, on a free loopback port, stopped by PID."""
    yield from _serve(redis_binary)


@pytest.fixture
def own_redis_server(redis_binary: str) -> Iterator[RedisServer]:
    """A server of the test's own, to kill, freeze and restart."""
    yield from _serve(redis_binary)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the long end-to-end tests (marked ``slow``) first, one to each worker.

    They mostly wait on the wall clock (a real Airflow, processes sharing a Redis
    budget), so they overlap well, but only on workers of their own. pytest-xdist hands
    each worker a run of consecutive tests to begin with: two under the Makefile's
    ``--maxschedchunk=1``, then one more each time one ends. So each of the first slow
    tests is paired with a quick one, and every worker starts on a slow test of its own;
    the other slow tests go to whichever worker is free first. (Sorted only by the mark,
    one worker was handed every slow test, one after the other.)
    """
    slow = [item for item in items if item.get_closest_marker("slow")]
    quick = [item for item in items if not item.get_closest_marker("slow")]
    # The quick tests, module by module in a fixed order that mixes the folders: the
    # command-line tests (which mostly wait for their processes) among the virtual-time
    # tests (which only compute), rather than all of them at once, leaving the cores idle.
    quick.sort(key=lambda item: zlib.crc32(item.nodeid.split("::")[0].encode()))
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    head: list[pytest.Item] = []
    for item in slow[:workers]:
        head.append(item)
        if quick:
            head.append(quick.pop(0))
    items[:] = head + slow[workers:] + quick
