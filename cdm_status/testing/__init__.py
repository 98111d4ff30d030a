"""Test kit: a virtual clock and a CDM simulator, for tests, demos and benchmarks.

``CDMSimulator`` is a local stand-in for the CDM job API (an ASGI app): jobs follow
timelines computed from a seeded random generator, on any ``Clock``; rate limits, auth and
faults are all configurable. Use it in-process (``sim.client()``), over a socket
(``serve(sim)``, needs the ``server`` extra), or through the pytest fixtures
``cdm_simulator`` and ``cdm_client``.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from ._clocks import FakeClock, ScaledClock
from ._faults import FaultKind, Faults, Outage
from ._jobs import START_ORDERS, StartOrder
from ._limits import RateLimits, ServerStats
from ._progress import PROGRESS_SHAPES, ProgressCurve, ProgressShape
from ._setup import DISPOSABLE_TYPES, RETRY_TYPES, JobSetup
from ._simulator import DEFAULT_CLUSTER_ID, DEFAULT_PROJECT_ID, CDMSimulator
from ._timeline import JobPlan, LogNormal, Transition, random_plan
from ._transport import SimulatorTransport
from ._verify import SimulatorAuth

__all__ = [
    "DEFAULT_CLUSTER_ID",
    "DEFAULT_PROJECT_ID",
    "DISPOSABLE_TYPES",
    "PROGRESS_SHAPES",
    "RETRY_TYPES",
    "START_ORDERS",
    "CDMSimulator",
    "FakeClock",
    "FaultKind",
    "Faults",
    "JobPlan",
    "JobSetup",
    "LogNormal",
    "Outage",
    "ProgressCurve",
    "ProgressShape",
    "RateLimits",
    "ScaledClock",
    "ServerStats",
    "SimulatorAuth",
    "SimulatorTransport",
    "StartOrder",
    "Transition",
    "random_plan",
    "serve",
]


def serve(
    simulator: CDMSimulator, host: str = "127.0.0.1", port: int = 0, **kwargs: Any
) -> AbstractAsyncContextManager[str]:
    """Serve ``simulator`` over a real socket (uvicorn); yields the endpoint URL.

    ``async with serve(sim) as endpoint: ...``. Needs the ``server`` extra
    (``pip install 'cdm-status[server]'``). On asyncio the server runs in the caller's
    event loop; on trio in a worker thread (no ``FakeClock`` sleep there: no ``SLOW``
    fault). The server stops when the block ends.

    Args:
        simulator: The app to serve.
        host: The address to listen on.
        port: The port; 0 picks a free one.
        **kwargs: ``handle_signals`` (let uvicorn catch Ctrl-C and SIGTERM, shut down,
            then re-raise the signal; off by default) and ``log_level`` (uvicorn's,
            ``"warning"``).

    Returns:
        An async context manager yielding the endpoint URL (``http://127.0.0.1:54321``).

    Raises:
        RuntimeError: On entering: uvicorn is not installed, or the server stopped
            before it served.
        OSError: On entering: the address cannot be bound (the port is taken, say).
    """
    from ._server import serve as _serve  # uvicorn is optional: import it only when serving

    return _serve(simulator, host, port, **kwargs)
