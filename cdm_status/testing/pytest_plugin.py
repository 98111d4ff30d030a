"""pytest fixtures for code that talks to CDM: a simulator on a fake clock, and a client.

Installed with cdm-status (a ``pytest11`` entry point), so any test suite can ask for them::

    from cdm_status.testing import JobPlan

    @pytest.mark.anyio
    async def test_my_pipeline(cdm_simulator, cdm_client):
        cdm_simulator.add_job("nightly", plan=JobPlan(boot_seconds=10, run_seconds=300))
        async with cdm_simulator.clock.autojump():
            await cdm_simulator.clock.sleep(400)
        assert (await cdm_client.get_status("nightly")).status.is_success

Both fixtures are synchronous (they work with pytest-anyio, pytest-asyncio, pytest-trio or
none), and a test that defines its own fixture of the same name overrides them. Nothing
heavy is imported until a fixture is used.

Under a virtual loop clock (pytest-trio's ``autojump_clock`` or ``mock_clock``, or a
pytest-asyncio test run by ``looptime``) the simulator runs on the loop's clock instead
(``LoopClock``, which reads it): then time moves by itself whenever every task waits, and
``JobStatusWaiter(cdm_client)`` with its default clock simply works.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .._client import CDMClient
    from ._simulator import CDMSimulator


def _virtual_loop_clock(request: pytest.FixtureRequest) -> bool:
    """True when the test's event loop runs on a virtual clock."""
    if {"autojump_clock", "mock_clock"} & set(request.fixturenames):
        return True  # pytest-trio's MockClock fixtures
    if request.node.get_closest_marker("asyncio") is None:
        return False  # looptime patches only the loops of pytest-asyncio
    # looptime's own rule: --looptime turns it on, --no-looptime off, the last marker wins.
    try:
        flag = request.config.getoption("looptime")
    except ValueError:
        return False  # looptime is not installed
    markers = list(request.node.iter_markers("looptime"))
    enabled = bool((markers or flag is True) and flag is not False)
    for marker in reversed(markers):
        enabled = bool(marker.args[0]) if marker.args else enabled
    return enabled


@pytest.fixture
def cdm_simulator(request: pytest.FixtureRequest) -> CDMSimulator:
    """A fresh ``CDMSimulator`` (seed 0, no auth, no limits, no faults) on a
    ``FakeClock`` (``cdm_simulator.clock``): add jobs, then move time with
    ``await clock.advance(seconds)`` or ``async with clock.autojump():``. Under a virtual
    loop clock it follows that clock instead (see the module docstring)."""
    from .._clock import LoopClock
    from ._clocks import FakeClock
    from ._simulator import CDMSimulator

    if _virtual_loop_clock(request):
        return CDMSimulator(clock=LoopClock())
    return CDMSimulator(clock=FakeClock())


@pytest.fixture
def cdm_client(cdm_simulator: CDMSimulator) -> CDMClient:
    """A ``CDMClient`` bound in-process to ``cdm_simulator`` (its endpoint, ids and
    credentials; its clock is the simulator's, so retries and a waiter on it run there)."""
    return cdm_simulator.client()
