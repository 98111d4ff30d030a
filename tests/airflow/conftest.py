"""Airflow in tests: its home, config and connections are set here, never taken from the
machine. Airflow reads ``AIRFLOW_HOME`` when first imported, so this runs before any test
module of this folder imports it.

Triggers run on asyncio only (Airflow's triggerer is an asyncio loop, and reading a
connection goes through asgiref), so these tests run on asyncio; the waiter underneath is
tested on both backends elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

AIRFLOW_HOME = tempfile.mkdtemp(prefix="cdm-status-airflow-")
for _name in [name for name in os.environ if name.startswith("AIRFLOW")]:
    del os.environ[_name]
os.environ.update(
    {
        "AIRFLOW_HOME": AIRFLOW_HOME,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": os.path.join(AIRFLOW_HOME, "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME}/airflow.db",
    }
)

# Importing Airflow's core configures logging for the whole process: a root handler that
# formats every INFO record through structlog. The rest of the suite (timing-sensitive
# socket tests among it) must not pay for that, so the root logger is put back as it was.
_root = logging.getLogger()
_handlers, _level = list(_root.handlers), _root.level
import airflow.sdk  # noqa: E402
import airflow.triggers.base  # noqa: E402, F401

_root.handlers[:] = _handlers
_root.setLevel(_level)

AK = "HPUAEXAMPLEACCESSKEY1"
SK = "example-secret-key-0123456789abcdef"


def connection_json(endpoint: str, project_id: str, cluster_id: str, **extra: str) -> str:
    """An ``AIRFLOW_CONN_*`` value for a ``huaweicloud_cdm`` connection."""
    return json.dumps(
        {
            "conn_type": "huaweicloud_cdm",
            "login": extra.pop("login", AK),
            "password": extra.pop("password", SK),
            "extra": {"endpoint": endpoint, "project_id": project_id, "cluster_id": cluster_id}
            | extra,
        }
    )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def _remove_airflow_home() -> Iterator[None]:
    yield
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)
