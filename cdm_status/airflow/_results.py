"""From a trigger's event to what the task does, and the work a task does on its worker.

``conclude`` maps the event's ``result`` to Airflow's exceptions: ``failed`` (a job
FAILED, FAILURE_ON_SUBMIT, STOPPED or NOT_FOUND, after CDM's automatic retries if it has
them, or DELETED by CDM before its result was read) raises ``AirflowFailException`` (no
retry); ``error`` (credentials or permission refused, a job unreachable) raises
``AirflowException`` (retryable); ``timeout`` raises ``AirflowSensorTimeout``. A job that
CDM deleted after a success (``DELETE_AFTER_SUCCEED``) is a success; with ``deleted_ok``,
a DELETED one is done too.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar, cast

import anyio

from .._definition import JobDefinition
from .._endings import RETRIED
from .._events import JobOutcome
from .._models import Submission
from . import _shared
from ._compat import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
)
from ._payload import FAILED, SUCCESS, TIMEOUT, build_event, judge, outcome_from_check
from ._settings import ConnectionSettings
from .triggers import CDMJobTrigger

__all__ = [
    "PRECHECK_LIMIT",
    "conclude",
    "deadline_after",
    "default_deferrable",
    "in_own_thread",
    "in_worker",
    "precheck",
    "run_in_worker",
    "soft",
]

_T = TypeVar("_T")

PRECHECK_LIMIT = 20
"""Watches of at most this many jobs check every job before deferring; larger ones defer
after one request (the whole-database parent, or nothing)."""


def conclude(event: Mapping[str, Any], *, deleted_ok: bool = False) -> dict[str, Any]:
    """The per-job entries of a successful event; otherwise raise what the event means.

    ``deleted_ok``: a job that CDM deleted after its run before its result was read
    counts as done, not failed.
    """
    result = event.get("result")
    message = str(event.get("message") or result)
    jobs = event.get("jobs")
    if deleted_ok and result == FAILED and isinstance(jobs, Mapping) and jobs:
        result, message = judge(jobs, deleted_ok=True)
    if result == SUCCESS:
        return dict(event.get("jobs") or {})
    if result == FAILED:
        raise AirflowFailException(message)
    if result == TIMEOUT:
        raise AirflowSensorTimeout(message)
    raise AirflowException(message)


def soft(conclude_: Callable[[], _T], *, soft_fail: bool, never_fail: bool = False) -> _T:
    """Run ``conclude_``, turning its failure into a skip as a sensor's flags ask."""
    try:
        return conclude_()
    except AirflowException as error:
        if soft_fail or never_fail:
            flag = "soft_fail" if soft_fail else "never_fail"
            raise AirflowSkipException(f"Skipping due to {flag} is set to True: {error}") from error
        raise


def deadline_after(seconds: float) -> datetime:
    """The moment ``seconds`` from now, on the shared registry's clock."""
    now = datetime.fromtimestamp(_shared.REGISTRY.clock.time(), tz=timezone.utc)
    return now + timedelta(seconds=seconds)


def default_deferrable() -> bool:
    """Airflow's ``[operators] default_deferrable`` (False when unset), read when a task
    is built: the default of every ``deferrable`` argument here."""
    try:
        from airflow.sdk.configuration import conf
    except ImportError:  # pragma: no cover - Airflow before 3.1
        from airflow.configuration import conf
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


def in_own_thread(work: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``work`` on an event loop of its own, in a thread of its own, and wait for it.

    For a call that may come while this thread's loop is running: Airflow calls
    ``on_kill`` in the main thread, from its SIGTERM handler, inside the ``anyio.run`` of
    a task waiting on its worker, where no second loop can start.
    """
    outcome: list[tuple[bool, Any]] = []

    def main() -> None:
        try:
            outcome.append((True, anyio.run(work)))
        except BaseException as error:  # handed to the caller's thread
            outcome.append((False, error))

    thread = threading.Thread(target=main, name="cdm-status-call", daemon=True)
    thread.start()
    thread.join()
    done, value = outcome[0]
    if not done:
        raise value
    return cast(_T, value)


def in_worker(work: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``work`` on a fresh event loop of this worker, closing its clients after."""

    async def main() -> _T:
        try:
            return await work()
        finally:
            await _shared.REGISTRY.aclose()

    return anyio.run(main)


def run_in_worker(trigger: CDMJobTrigger) -> dict[str, Any]:
    """Run the trigger's wait on this worker (non-deferrable mode); its event payload."""

    async def work() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AirflowException("the CDM trigger ended without an event")  # pragma: no cover

    return in_worker(work)


def precheck(
    settings: ConnectionSettings,
    job_names: Iterable[str],
    *,
    cluster_id: str | None,
    since: datetime | None = None,
) -> dict[str, Any] | None:
    """One status request per job before deferring: the event when every job has already
    ended, else None (the task defers). A refused credential or permission ends it too."""
    names = list(job_names)

    async def work() -> tuple[dict[str, Submission | Exception], set[str]]:
        found = await _shared.check(settings, names, cluster_id=cluster_id)
        failed = [
            name
            for name, seen in found.items()
            if isinstance(seen, Submission) and seen.status in RETRIED
        ]
        if not failed:
            return found, set()
        # A failed run of a job that CDM retries (RETRY_TRIPLE) is left to the watch; so
        # is one whose definition (its settings) cannot be read.
        definitions = await _shared.definitions(settings, failed, cluster_id=cluster_id)
        retried = {
            name
            for name, definition in definitions.items()
            if not isinstance(definition, JobDefinition) or definition.settings.retries
        }
        return found, retried

    found, retried = in_worker(work)
    outcomes: dict[str, JobOutcome] = {}
    for name in names:
        outcome = outcome_from_check(name, found[name], since=since, retried=name in retried)
        if outcome is not None:
            outcomes[name] = outcome
    if len(outcomes) == len(names) or any(o.error is not None for o in outcomes.values()):
        return build_event(outcomes)
    return None
