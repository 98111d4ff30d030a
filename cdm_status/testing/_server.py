"""Serve a simulator over a real socket with uvicorn (the ``server`` extra).

On asyncio, uvicorn runs as a task in the caller's event loop: no thread. uvicorn speaks
asyncio only, so on any other backend (trio) it runs in a worker thread with an event loop
of its own; the simulator then serves from that thread, which is fine for its plain state
but means a ``FakeClock`` must not be made to sleep there (no ``SLOW`` fault).

A dropped connection over a socket: an ASGI app cannot reach its socket, but uvicorn
closes the connection when an app raises after starting its response. The simulator's
``drop`` fault does exactly that (headers sent, body never), so the client sees the
connection close mid-answer: ``httpx.RemoteProtocolError``. A connection reset before any
byte of the answer cannot be produced this way.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from .._tasks import BackgroundTasks
from ._asgi import ConnectionDropped

if TYPE_CHECKING:
    from ._simulator import CDMSimulator

__all__ = ["serve"]


class _QuietDrops(logging.Filter):
    """Keeps uvicorn from logging each deliberate drop as an application error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@contextmanager
def _filtered_logs() -> Iterator[None]:
    quiet = _QuietDrops()
    logger = logging.getLogger("uvicorn.error")
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


@asynccontextmanager
async def serve(
    simulator: CDMSimulator,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    handle_signals: bool = False,
    log_level: str = "warning",
) -> AsyncIterator[str]:
    """Serve ``simulator`` on ``host:port`` (0 = any free port) while inside; yields the
    endpoint URL (``http://127.0.0.1:54321``).

    ``handle_signals=True`` lets uvicorn catch Ctrl-C / SIGTERM, shut down gracefully,
    then re-raise the signal (the command line uses it); off by default, so a test's
    signal handlers stay as they were.
    """
    try:
        import uvicorn
    except ImportError:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "serving over a socket needs uvicorn: pip install 'cdm-status[server]'"
        ) from None

    started = anyio.Event()
    mark_started: Callable[[], None] = started.set

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            mark_started()

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            if handle_signals:
                with super().capture_signals():
                    yield
            else:
                yield

    sock = _bind(host, port)
    config = uvicorn.Config(
        simulator,
        lifespan="on",
        log_config=None,
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
        date_header=False,  # the simulator dates its answers itself, on the server's clock
    )
    server = Server(config)
    in_loop = _on_asyncio()
    if not in_loop:
        token = anyio.lowlevel.current_token()

        def mark_started() -> None:
            anyio.from_thread.run_sync(started.set, token=token)

    async def run() -> None:
        if in_loop:
            await server.serve(sockets=[sock])
        else:
            await anyio.to_thread.run_sync(lambda: server.run(sockets=[sock]))
        if not started.is_set():
            # Ended (or failed to bind) before it served: never leave the caller waiting.
            raise RuntimeError("the simulator's server stopped before it started")

    with _filtered_logs():
        try:
            # An exception of the block leaves it as raised, never wrapped by the group.
            async with BackgroundTasks(cancel=False) as group:
                group.start_soon(run)
                # No time limit here: the library waits on no clock but the injected one,
                # and a server that cannot start ends ``run`` with an error instead.
                await started.wait()
                try:
                    yield _url(sock)
                finally:
                    server.should_exit = True
        finally:
            sock.close()
