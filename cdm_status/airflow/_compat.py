"""What differs between the Airflow minors the provider supports (3.1 to 3.3).

- The task SDK exports Airflow's task exceptions from 3.2 on (``airflow.sdk.exceptions``);
  3.1 has them in ``airflow.exceptions`` only, which 3.2 deprecates.
- The triggerer calls a trigger's ``on_kill()`` when a user kills a deferred task from 3.3
  on (``TRIGGER_ON_KILL``); before, only ``cleanup()`` runs, on a kill and on a triggerer
  restart alike (see ``CDMJobTrigger.cleanup``).
"""

from __future__ import annotations

import re

from airflow import __version__ as AIRFLOW_VERSION

try:
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # Airflow 3.1
    from airflow.exceptions import (  # type: ignore[attr-defined, no-redef, unused-ignore]
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )

__all__ = [
    "AIRFLOW_VERSION",
    "TRIGGER_ON_KILL",
    "AirflowException",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "TaskDeferred",
    "minor_version",
]


def minor_version(version: str) -> tuple[int, int]:
    """``(3, 2)`` for ``"3.2.2"``, ``"3.2.0rc1"`` or ``"3.2.0.dev0"``."""
    found = re.match(r"(\d+)\.(\d+)", version)
    if found is None:
        raise ValueError(f"not an Airflow version: {version!r}")
    return int(found.group(1)), int(found.group(2))


TRIGGER_ON_KILL = minor_version(AIRFLOW_VERSION) >= (3, 3)
"""Whether the triggerer calls ``on_kill()`` on a trigger whose task a user killed."""
