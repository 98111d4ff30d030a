"""The operator's extra link: the started job's page in the CDM console of its region.

The link is read from the XCom the operator pushes when it starts (or finds) its run
(:data:`SUBMISSION_XCOM`), so it points at the job and cluster that task really used.
Huawei Cloud's console addresses a service as ``https://console.huaweicloud.com/<service>/``
with the region in the ``region`` query and the page after ``#``: the job page chosen here
is the cluster's job management with the job name as the search (:data:`CONSOLE_JOB_URL`).
A connection given only an ``endpoint`` that is not ``cdm.<region>.myhuaweicloud.com``
(a proxy, a simulator) gives no link.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

__all__ = ["CONSOLE_JOB_URL", "SUBMISSION_XCOM", "CDMJobLink", "console_url", "region_of"]

SUBMISSION_XCOM = "cdm_submission"
"""The XCom key of the started submission's identity (job, submission id, creation date,
cluster, console URL), pushed before the task waits or defers."""

CONSOLE_JOB_URL = (
    "https://console.huaweicloud.com/cdm/?region={region}"
    "#/cdm/clusterManagement/jobManagement?clusterId={cluster_id}&jobName={job_name}"
)
"""The console page of one job (format fields: region, cluster_id, job_name)."""

_CDM_HOST = re.compile(r"cdm\.([a-z0-9]+(?:-[a-z0-9]+)*)\.myhuaweicloud\.com", re.IGNORECASE)


def region_of(endpoint: str) -> str | None:
    """The region of a ``https://cdm.<region>.myhuaweicloud.com`` endpoint, else None."""
    host = urlsplit(endpoint if "//" in endpoint else f"//{endpoint}").hostname or ""
    found = _CDM_HOST.fullmatch(host)
    return found.group(1).lower() if found else None


def console_url(endpoint: str, cluster_id: str, job_name: str) -> str | None:
    """The console page of ``job_name`` on ``cluster_id``, or None without a region."""
    region = region_of(endpoint)
    if region is None:
        return None
    return CONSOLE_JOB_URL.format(
        region=quote(region, safe=""),
        cluster_id=quote(cluster_id, safe=""),
        job_name=quote(job_name, safe=""),
    )


class CDMJobLink(BaseOperatorLink):
    """ "CDM job": the started job's page in the CDM console (empty before a start)."""

    name = "CDM job"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        identity: Any = XCom.get_value(ti_key=ti_key, key=SUBMISSION_XCOM)
        if not isinstance(identity, dict):
            return ""
        return str(identity.get("console_url") or "")
