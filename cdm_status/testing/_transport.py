"""The in-process transport: httpx's ASGI transport, plus the network failures it lacks.

``httpx.ASGITransport`` re-raises whatever the app raises. A real client on a socket would
instead see the connection close, so the simulator's "drop" signal is turned into the
``httpx.RemoteProtocolError`` (an ``httpx.TransportError``) that httpx raises in that case.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from ._asgi import ConnectionDropped

if TYPE_CHECKING:
    from ._simulator import CDMSimulator

__all__ = ["SimulatorTransport"]


class SimulatorTransport(httpx.AsyncBaseTransport):
    """Sends requests straight to a ``CDMSimulator``, no socket involved.

    A dropped connection or a body cut short raises ``httpx.RemoteProtocolError``, as on
    a socket. ``CDMSimulator.transport()`` makes one.

    Args:
        simulator: The app to send to.
    """

    def __init__(self, simulator: CDMSimulator) -> None:
        self._asgi = httpx.ASGITransport(app=simulator)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await self._asgi.handle_async_request(request)
        except ConnectionDropped as dropped:
            raise httpx.RemoteProtocolError(str(dropped), request=request) from None
