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
    (``pip install 'cdm-status[server]'``); see ``cdm_status.testing._server``.
    """
    from ._server import serve as _serve  # uvicorn is optional: import it only when serving

    return _serve(simulator, host, port, **kwargs)
