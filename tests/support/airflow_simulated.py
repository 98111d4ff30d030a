"""A CDM simulator on a virtual clock behind the provider: connection, shared registry."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import pytest

from cdm_status.airflow import _results, _shared
from cdm_status.testing import CDMSimulator, FakeClock, RateLimits, SimulatorAuth
from tests.airflow.conftest import AK, SK, connection_json


@dataclass
class Cluster:
    simulator: CDMSimulator
    clock: FakeClock
    registry: _shared.SharedWaiters


def simulated_cluster(monkeypatch: pytest.MonkeyPatch, **connection: str) -> Cluster:
    """A simulator checking AK/SK at CDM's rate limits, the default connection pointing at
    it, and the process registry replaced by one on the simulator's clock. An ``endpoint``
    given names the connection's endpoint; requests still reach the simulator."""
    clock = FakeClock()
    simulator = CDMSimulator(
        clock=clock, seed=7, auth=SimulatorAuth(ak=AK, sk=SK), limits=RateLimits.cdm_defaults()
    )
    registry = _shared.SharedWaiters(clock=clock, http_factory=lambda _: simulator.http_client())
    monkeypatch.setattr(_shared, "REGISTRY", registry)
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUAWEICLOUD_DEFAULT",
        connection_json(
            connection.pop("endpoint", simulator.endpoint),
            simulator.project_id,
            simulator.cluster_id,
            **connection,
        ),
    )
    return Cluster(simulator, clock, registry)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    return simulated_cluster(monkeypatch)


class TaskStateStore:
    """Airflow's task state store as a task sees it (``context["task_state_store"]``):
    JSON values by key, kept across the tries of one task instance."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.values[key] = json.dumps(value)  # what the metadata database keeps


class TaskInstance:
    """What the tasks read of the task instance in their context: the try number, XCom
    pushes, and the first poke of a rescheduled sensor."""

    def __init__(self, try_number: int = 1, first_reschedule: datetime | None = None) -> None:
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}
        self.first_reschedule = first_reschedule

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = json.loads(json.dumps(value))  # XComs are JSON in the database

    def get_first_reschedule_date(self, context: Any) -> datetime | None:
        return self.first_reschedule


@dataclass
class DagRun:
    start_date: datetime | None


def on_virtual_time(
    monkeypatch: pytest.MonkeyPatch,
    cl: Cluster,
    alongside: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Work a task runs on its worker (``_results.in_worker``: a fresh ``anyio.run`` in
    the worker's main thread) runs with the simulator's clock jumping ahead whenever all
    is idle, with ``alongside`` (if given) started in the same loop."""

    def in_worker(work: Callable[[], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            async with cl.clock.autojump(), anyio.create_task_group() as group:
                if alongside is not None:
                    group.start_soon(alongside)
                try:
                    return await work()
                finally:
                    await cl.registry.aclose()
                    group.cancel_scope.cancel()

        return anyio.run(main)

    monkeypatch.setattr(_results, "in_worker", in_worker)
