"""pytest fixtures for code that talks to CDM: a simulator on a fake clock, and a client.

Installed with cdm-status (a ``pytest11`` entry point), so any test suite can ask for them::

    from cdm_status.testing import JobPlan

    @pytest.mark.anyio
    async def test_my_pipeline(cdm_simulator, cdm_client):
        cdm_simulator.add_job("nightly", plan=JobPlan(boot_seconds=10, run_seconds=300))
        async with cdm_simulator.clock.autojump():
            await cdm_simulator.clock.sleep(400)
        assert (await cdm_client.get_status("nightly")).status.is_success

Both fixtures are synchronous (they work with pytest-anyio, pytest-asyncio or neither),
and a test that defines its own fixture of the same name overrides them. Nothing heavy is
imported until a fixture is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .._client import CDMClient
    from ._simulator import CDMSimulator


@pytest.fixture
def cdm_simulator() -> CDMSimulator:
    """A fresh ``CDMSimulator`` (seed 0, no auth, no limits, no faults) on a
    ``FakeClock`` (``cdm_simulator.clock``): add jobs, then move time with
    ``await clock.advance(seconds)`` or ``async with clock.autojump():``."""
    from ._clocks import FakeClock
    from ._simulator import CDMSimulator

    return CDMSimulator(clock=FakeClock())


@pytest.fixture
def cdm_client(cdm_simulator: CDMSimulator) -> CDMClient:
    """A ``CDMClient`` bound in-process to ``cdm_simulator`` (its endpoint, ids and
    credentials; retries wait on the simulator's clock)."""
    return cdm_simulator.client()
