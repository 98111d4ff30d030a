"""OpenLineage: the datasets of a job's definition (pure), and the facets the operator and
sensors give ``apache-airflow-providers-openlineage`` for a table migration."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest
from airflow.providers.common.compat.openlineage.facet import (
    ExternalQueryRunFacet,
    OutputStatisticsOutputDatasetFacet,
)
from airflow.providers.openlineage.extractors import OperatorLineage

from cdm_status._models import freeze
from cdm_status.airflow import _shared
from cdm_status.airflow._lineage import DatasetRef, config_values, job_lineage
from cdm_status.airflow.operators import CDMStartJobOperator
from cdm_status.airflow.sensors import CDMDatabaseJobSensor
from cdm_status.testing import CDMSimulator, JobPlan
from tests.support.airflow_simulated import Cluster, TaskInstance, cluster

__all__ = ["cluster"]


def configs(name: str, **inputs: str) -> dict[str, Any]:
    """A ``*-config-values`` object as CDM sends it."""
    return {
        "configs": [
            {
                "name": name,
                "inputs": [
                    {"name": f"{name}.{key}", "value": value} for key, value in inputs.items()
                ],
            }
        ]
    }


def mysql_to_dws(name: str, table: str) -> dict[str, Any]:
    """A table migration's definition, shaped as CDM's API reference shows one."""
    return {
        "job_type": "NORMAL_JOB",
        "name": name,
        "from-link-name": "mysql_link",
        "from-connector-name": "generic-jdbc-connector",
        "to-link-name": "dws_link",
        "to-connector-name": "generic-jdbc-connector",
        "from-config-values": configs(
            "fromJobConfig",
            useSql="false",
            schemaName="shop",
            tableName=table,
            columnList="id&total",
        ),
        "to-config-values": configs(
            "toJobConfig", schemaName="dw", tableName=f"ods_{table}", tablePreparation="CREATE"
        ),
        "driver-config-values": configs("throttlingConfig", numExtractors="4"),
    }


CLUSTER = "6ec9a0a4-76be-4262-8697-e7af1fac7920"


def test_a_table_migration_reads_and_writes_a_table_of_each_link() -> None:
    lineage = job_lineage({"jobs": [mysql_to_dws("orders_job", "orders")]}, cluster_id=CLUSTER)
    assert lineage.job_name == "orders_job"
    assert lineage.inputs == (
        DatasetRef(
            f"cdm://{CLUSTER}/mysql_link",
            "shop.orders",
            "mysql_link",
            "generic-jdbc-connector",
            ("id", "total"),
        ),
    )
    assert lineage.outputs == (
        DatasetRef(
            f"cdm://{CLUSTER}/dws_link", "dw.ods_orders", "dws_link", "generic-jdbc-connector"
        ),
    )


def test_a_read_only_definition_reads_the_same() -> None:
    # JobDefinition.raw (client.get_job) is frozen: its lists are tuples.
    body = {"jobs": [mysql_to_dws("orders_job", "orders")]}
    assert job_lineage(freeze(body), cluster_id=CLUSTER) == job_lineage(body, cluster_id=CLUSTER)


def test_obs_hive_and_free_sql_sides() -> None:
    definition = {
        "name": "logs",
        "from-link-name": "obs link",
        "from-connector-name": "obs-connector",
        "from-config-values": configs(
            "fromJobConfig", bucketName="raw-logs", inputDirectory="/2026/01/"
        ),
        "to-link-name": "hive",
        "to-connector-name": "hive-connector",
        "to-config-values": configs("toJobConfig", database="ods", table="logs"),
    }
    lineage = job_lineage(definition, cluster_id="c")
    assert [(d.namespace, d.name) for d in lineage.inputs] == [("obs://raw-logs", "2026/01")]
    assert [(d.namespace, d.name) for d in lineage.outputs] == [("cdm://c/hive", "ods.logs")]
    free_sql = dict(
        definition,
        **{"from-config-values": configs("fromJobConfig", useSql="true", sql="select 1")},
    )
    assert job_lineage(free_sql, cluster_id="c").inputs == ()  # no table is named
    # Inputs with no value, and shapes that are not CDM's, are skipped.
    assert config_values({"configs": [{"inputs": [{"name": "a", "value": ""}, 7]}, None]}) == {}
    assert config_values(None) == {}
    with pytest.raises(ValueError, match="no job"):
        job_lineage({"jobs": []}, cluster_id="c")


class ListedDefinitions(httpx.AsyncBaseTransport):
    """The simulator, with each job object (the job list's rows and ``GET .../cdm/job/{name}``)
    carrying its job's definition, as CDM's do."""

    def __init__(self, simulator: CDMSimulator, definitions: Mapping[str, dict[str, Any]]) -> None:
        self._simulator = simulator.transport()
        self._definitions = definitions

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._simulator.handle_async_request(request)
        if response.status_code != 200 or request.method != "GET" or "status" in request.url.path:
            return response
        body = json.loads(await response.aread())
        for row in body["jobs"]:
            row.update(self._definitions.get(row["name"], {}))
        return httpx.Response(200, json=body, headers={"X-Request-Id": "r"})


@pytest.fixture
def defined(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """Definitions by job name, served in the simulator's job list."""
    found: dict[str, dict[str, Any]] = {}
    registry = _shared.SharedWaiters(
        clock=cluster.clock,
        http_factory=lambda _: httpx.AsyncClient(
            transport=ListedDefinitions(cluster.simulator, found),
            base_url=cluster.simulator.endpoint,
        ),
    )
    monkeypatch.setattr(_shared, "REGISTRY", registry)
    return found


def test_the_operator_s_facets_of_a_table_migration(
    cluster: Cluster, defined: dict[str, dict[str, Any]]
) -> None:
    defined["orders_job"] = mysql_to_dws("orders_job", "orders")
    plan = JobPlan(boot_seconds=0, run_seconds=0, rows=1200, bytes=64_000)
    cluster.simulator.add_job("orders_job", plan=plan, started=False)
    operator = CDMStartJobOperator(task_id="s", job_name="orders_job", deferrable=True)
    summary = operator.execute({"ti": TaskInstance(1)})
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert cluster.simulator.stats.by_endpoint["job"] >= 1  # read with get_job, not the list
    assert isinstance(lineage, OperatorLineage)
    [source] = lineage.inputs
    assert (source.namespace, source.name) == (f"cdm://{CLUSTER}/mysql_link", "shop.orders")
    assert [field.name for field in source.facets["schema"].fields] == ["id", "total"]
    [destination] = lineage.outputs
    assert (destination.namespace, destination.name) == (
        f"cdm://{CLUSTER}/dws_link",
        "dw.ods_orders",
    )
    assert destination.outputFacets["outputStatistics"] == OutputStatisticsOutputDatasetFacet(
        rowCount=1200, size=64_000
    )
    assert lineage.run_facets["externalQuery"] == ExternalQueryRunFacet(
        externalQueryId=str(summary["submission_id"]), source="huaweicloud_cdm"
    )


def test_a_database_sensor_s_facets_cover_every_table(
    cluster: Cluster, defined: dict[str, dict[str, Any]]
) -> None:
    tables = ["orders", "customers"]
    done = JobPlan(boot_seconds=0, run_seconds=0, rows=10)
    cluster.simulator.add_database_job("nightly", tables, plans=dict.fromkeys(tables, done))
    for table in tables:
        defined[f"nightly_{table}"] = mysql_to_dws(f"nightly_{table}", table)
    sensor = CDMDatabaseJobSensor(task_id="d", parent="nightly", tables=tables, deferrable=True)
    sensor.execute({})
    lineage = sensor.get_openlineage_facets_on_complete(None)
    assert sorted(d.name for d in lineage.inputs) == ["shop.customers", "shop.orders"]
    assert sorted(d.name for d in lineage.outputs) == ["dw.ods_customers", "dw.ods_orders"]
    assert "externalQuery" not in lineage.run_facets  # several runs: no one submission
    assert cluster.simulator.stats.by_endpoint["list"] <= 2  # a page per job type, not per table
