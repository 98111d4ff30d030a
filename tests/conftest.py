"""Every async test of this suite runs on asyncio and on trio (anyio's pytest plugin).

Property tests are derandomized by default, so ``make test`` (and CI) explores the same
examples every run; ``pytest --hypothesis-profile=explore`` looks for new ones.
"""

from __future__ import annotations

import signal
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
    """Run the long end-to-end tests (marked ``slow``) first. Under pytest-xdist the
    scheduler hands tests out in this order, so each of the longest starts at once on
    its own worker instead of starting last and holding the whole run up."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
