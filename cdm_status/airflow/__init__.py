"""Airflow provider for cdm-status (``pip install 'cdm-status[airflow]'``, Airflow >= 3).

* :class:`~cdm_status.airflow.hooks.CDMHook`: a ``huaweicloud_cdm`` connection (login =
  AK, password = SK, extras ``region``/``endpoint``, ``project_id``, ``cluster_id``,
  ``security_token``, ``auth_token``, ``budget``, ``user``); default conn_id
  ``huaweicloud_default``.
* :class:`~cdm_status.airflow.triggers.CDMJobTrigger`: waits for jobs in the triggerer on
  one waiter per account shared by every trigger of the process.
* :class:`~cdm_status.airflow.sensors.CDMJobSensor`,
  :class:`~cdm_status.airflow.sensors.CDMDatabaseJobSensor`,
  :class:`~cdm_status.airflow.operators.CDMStartJobOperator` with its "CDM job" link
  (:class:`~cdm_status.airflow.links.CDMJobLink`).

This module imports nothing from Airflow, so the provider entry point stays cheap; import
the classes from their modules.
"""

from __future__ import annotations

from typing import Any

__all__ = ["get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Provider metadata, read by Airflow through the ``apache_airflow_provider`` entry
    point."""
    from .. import __version__

    return {
        "package-name": "cdm-status",
        "name": "Huawei Cloud CDM (cdm-status)",
        "description": "Deferrable sensors and a start-and-wait operator for Huawei Cloud "
        "CDM jobs, sharing one request budget per account in the triggerer.",
        "versions": [__version__],
        "connection-types": [
            {
                "hook-class-name": "cdm_status.airflow.hooks.CDMHook",
                "connection-type": "huaweicloud_cdm",
            }
        ],
        "hooks": [
            {"integration-name": "Huawei Cloud CDM", "python-modules": ["cdm_status.airflow.hooks"]}
        ],
        "triggers": [
            {
                "integration-name": "Huawei Cloud CDM",
                "python-modules": ["cdm_status.airflow.triggers"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Huawei Cloud CDM",
                "python-modules": ["cdm_status.airflow.sensors"],
            }
        ],
        "operators": [
            {
                "integration-name": "Huawei Cloud CDM",
                "python-modules": ["cdm_status.airflow.operators"],
            }
        ],
        "extra-links": ["cdm_status.airflow.links.CDMJobLink"],
    }
