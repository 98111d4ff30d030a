"""The started run's identity as an XCom before the task waits, and the "CDM job" link to
the job's page in the CDM console of the connection's region."""

from __future__ import annotations

from typing import Any

import pytest

from cdm_status.airflow import get_provider_info, links
from cdm_status.airflow._compat import TaskDeferred
from cdm_status.airflow.links import CDMJobLink, console_url, region_of
from cdm_status.airflow.operators import CDMStartJobOperator
from cdm_status.testing import JobPlan
from tests.support.airflow_simulated import TaskInstance, simulated_cluster

ENDPOINT = "https://cdm.cn-north-4.myhuaweicloud.com"


def test_the_console_url_is_the_job_s_page_in_the_region_s_console() -> None:
    assert region_of(ENDPOINT) == "cn-north-4"
    assert region_of("cdm.ap-southeast-1.myhuaweicloud.com:443") == "ap-southeast-1"
    assert region_of("http://cdm-simulator.local") is None
    assert region_of("https://cdm.cn-north-4.example.com") is None
    url = console_url(ENDPOINT, "6ec9a0a4", "a b/c")
    assert url == (
        "https://console.huaweicloud.com/cdm/?region=cn-north-4"
        "#/cdm/clusterManagement/jobManagement?clusterId=6ec9a0a4&jobName=a%20b%2Fc"
    )
    assert console_url("http://127.0.0.1:8080", "c", "j") is None


def test_the_identity_is_pushed_before_deferring_and_the_link_reads_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cl = simulated_cluster(monkeypatch, endpoint=ENDPOINT)  # the region's name, served here
    cl.simulator.add_job("orders", plan=JobPlan(30, 3600), started=False)
    ti = TaskInstance(1)
    operator = CDMStartJobOperator(task_id="s", job_name="orders", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": ti})
    identity = ti.xcom[links.SUBMISSION_XCOM]
    assert identity == deferred.value.kwargs["started"]
    assert identity["job_name"] == "orders"
    assert isinstance(identity["submission_id"], int)
    assert identity["creation_date"] == deferred.value.trigger.since
    assert identity["cluster_id"] == cl.simulator.cluster_id
    assert identity["console_url"] == console_url(ENDPOINT, cl.simulator.cluster_id, "orders")

    def get_value(*, ti_key: Any, key: str) -> Any:  # the XCom the task pushed
        return ti.xcom.get(key)

    monkeypatch.setattr(links.XCom, "get_value", get_value)
    link = CDMJobLink()
    assert link in operator.operator_extra_links
    assert link.get_link(operator, ti_key=ti) == identity["console_url"]  # type: ignore[arg-type]
    monkeypatch.setattr(links.XCom, "get_value", lambda **_: None)
    assert link.get_link(operator, ti_key=ti) == ""  # type: ignore[arg-type]


def test_the_provider_registers_the_link() -> None:
    assert get_provider_info()["extra-links"] == ["cdm_status.airflow.links.CDMJobLink"]
