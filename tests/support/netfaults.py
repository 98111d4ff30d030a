"""Real network trouble on a loopback socket: a TCP proxy that resets connections, and an
httpx transport that counts what went through it."""

from __future__ import annotations

import random
import socket
import struct
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import httpx
from anyio.abc import SocketAttribute

__all__ = ["CountingTransport", "ResettingProxy"]


class ResettingProxy:
    """Forwards every connection to ``port`` on 127.0.0.1. It resets the client's
    connection (TCP RST, nothing answered) instead of forwarding a request with
    probability ``rate``, and for the request numbers in ``reset`` (1 = the first).
    ``open`` counts the client connections still open."""

    def __init__(
        self, port: int, *, rate: float = 0.0, reset: frozenset[int] = frozenset(), seed: int = 0
    ) -> None:
        self.port = port
        self.rate = rate
        self.reset = reset
        self.requests = 0
        self.resets = 0
        self.connections = 0
        self.open = 0
        self.all_closed = anyio.Event()
        self._rng = random.Random(seed)

    async def serve(self, *, task_status: anyio.abc.TaskStatus[int]) -> None:
        """Listen on a free port of 127.0.0.1; ``await group.start(proxy.serve)`` gives it."""
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        async with listener:
            task_status.started(listener.extra(SocketAttribute.local_port))
            await listener.serve(self.handle)

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        self.connections += 1
        self.open += 1
        try:
            async with (
                client,
                await anyio.connect_tcp("127.0.0.1", self.port) as upstream,
                anyio.create_task_group() as group,
            ):
                group.start_soon(self._pump, upstream, client, group)
                await self._pump(client, upstream, group, resetting=True)
        finally:
            self.open -= 1
            if not self.open:
                self.all_closed.set()
                self.all_closed = anyio.Event()

    async def wait_all_closed(self) -> None:
        """Return once no client connection is open."""
        while self.open:
            await self.all_closed.wait()

    def _resets_now(self, chunk: bytes) -> bool:
        if not chunk.startswith(b"GET "):
            return False
        self.requests += 1
        return self.requests in self.reset or self._rng.random() < self.rate

    async def _pump(
        self,
        source: anyio.abc.SocketStream,
        sink: anyio.abc.SocketStream,
        group: anyio.abc.TaskGroup,
        *,
        resetting: bool = False,
    ) -> None:
        try:
            async for chunk in source:
                if resetting and self._resets_now(chunk):
                    self.resets += 1
                    raw = source.extra(SocketAttribute.raw_socket)
                    # Linger 0: close() sends RST instead of FIN.
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                await sink.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        group.cancel_scope.cancel()


class CountingTransport(httpx.AsyncBaseTransport):
    """Wraps a transport: counts requests, errors by type, requests abandoned (given up on
    by their caller before their answer was whole) and response streams left open."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.requests = 0
        self.in_flight = 0
        self.open_streams = 0
        self.abandoned = 0
        self.errors: Counter[str] = Counter()

    @property
    def broken(self) -> int:
        """Requests that ended on a broken connection: reset (``ReadError``) or closed
        before the answer was whole (``RemoteProtocolError``)."""
        return self.errors["ReadError"] + self.errors["RemoteProtocolError"]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        self.in_flight += 1
        try:
            response = await self.inner.handle_async_request(request)
        except Exception as error:
            self.errors[type(error).__name__] += 1
            raise
        except BaseException:
            self.abandoned += 1  # cancelled: its caller gave up before any answer came
            raise
        finally:
            self.in_flight -= 1
        self.open_streams += 1
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Stream(self, response),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Stream(httpx.AsyncByteStream):
    def __init__(self, owner: CountingTransport, response: httpx.Response) -> None:
        self._owner = owner
        self._response = response
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_raw():
                yield chunk
        except Exception as error:
            self._owner.errors[type(error).__name__] += 1
            raise
        except BaseException:
            self._owner.abandoned += 1  # cancelled, or left unread, before its end
            raise

    async def aclose(self) -> None:
        # Counted closed only once the connection underneath is given back or closed.
        await self._response.aclose()
        if not self._closed:
            self._closed = True
            self._owner.open_streams -= 1
