"""A CDM simulator on a virtual clock behind the provider: connection, shared registry."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cdm_status.airflow import _shared
from cdm_status.testing import CDMSimulator, FakeClock, RateLimits, SimulatorAuth
from tests.airflow.conftest import AK, SK, connection_json


@dataclass
class Cluster:
    simulator: CDMSimulator
    clock: FakeClock
    registry: _shared.SharedWaiters


def simulated_cluster(monkeypatch: pytest.MonkeyPatch, **connection: str) -> Cluster:
    """A simulator checking AK/SK at CDM's rate limits, the default connection pointing at
    it, and the process registry replaced by one on the simulator's clock."""
    clock = FakeClock()
    simulator = CDMSimulator(
        clock=clock, seed=7, auth=SimulatorAuth(ak=AK, sk=SK), limits=RateLimits.cdm_defaults()
    )
    registry = _shared.SharedWaiters(clock=clock, http_factory=lambda _: simulator.http_client())
    monkeypatch.setattr(_shared, "REGISTRY", registry)
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUAWEICLOUD_DEFAULT",
        connection_json(
            simulator.endpoint, simulator.project_id, simulator.cluster_id, **connection
        ),
    )
    return Cluster(simulator, clock, registry)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    return simulated_cluster(monkeypatch)
