"""CDMJobTrigger: waits for CDM jobs in Airflow's triggerer and yields one small event.

Its keyword arguments are JSON-native and hold no secret (the credentials stay in the
connection), so the triggerer can rebuild it after a restart with
``import_string(classpath)(**kwargs)``. It ends shortly before the task's deadline with a
``timeout`` event naming what is still running, rather than being cut off by the scheduler.

Killing a deferred task stops the jobs the operator started (``stop_on_kill``): Airflow 3.3
and later call ``on_kill()``; 3.1 and 3.2 call only ``cleanup()``, the same on a kill as
when the triggerer stops or hands the trigger to another, so ``cleanup()`` asks the task's
state and stops the jobs only when the task is no longer deferred (see :func:`killed_by_user`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from .._errors import BadRequestError, CDMError
from .._wire import subjob_name
from . import _shared
from ._compat import TRIGGER_ON_KILL, AirflowException
from ._payload import UNREACHABLE, build_event
from ._progress import ProgressLog
from ._settings import DEFAULT_CONN_ID, ConnectionSettings
from .hooks import CDMHook

__all__ = ["CDMJobTrigger"]

logger = logging.getLogger("cdm_status.airflow")

DEADLINE_MARGIN = 30.0
"""Seconds before the task's deadline at which the trigger ends its watch (at most 10% of
the time left), so its event reaches the task before the scheduler times it out."""

_STOPPING: set[asyncio.Future[None]] = set()
"""Stops under way (see ``CDMJobTrigger.on_kill``); Airflow's triggerer is asyncio."""

DEFAULT_GIVE_UP_AFTER = 30
"""Failed status requests in a row (each already retried) after which a job is given up."""


def _aware(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def killed_by_user(task_state: str | None, *, deadline_passed: bool) -> bool:
    """Whether a trigger that ``cleanup()`` ends without its event was ended by a user.

    A task that is still ``deferred`` is being moved (the triggerer stopped, or handed the
    trigger to another); one past its deadline was timed out by the scheduler. Any other
    state (failed, success, cleared) was set by somebody acting on the task, as Airflow 3.3
    tells ``on_kill()``.
    """
    return not deadline_passed and task_state != "deferred"


def _names(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Job or table names; a single string (say, a rendered template) is one name."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    return [str(name) for name in value]


class CDMJobTrigger(BaseTrigger):
    """Waits until every job has its outcome, then yields one event (see ``_payload``).

    ``job_names`` are watched on ``cluster_id`` (default: the connection's). Alternatively
    ``parent`` names a whole-database job: its subjobs ``<parent>_<table>`` for ``tables``,
    or every subjob the job list shows when ``tables`` is not given. ``since`` (ISO-8601)
    ignores runs created before it; ``deadline`` (ISO-8601) is the task's deadline when
    the triggerer does not tell it (``timeout_after``). ``give_up_after`` failed status
    requests in a row make a job unreachable (a retryable error); ``stop_on_kill`` stops
    the jobs when a user kills the deferred task (set by the operator that started them).

    Every argument is JSON-native: the triggerer rebuilds the trigger from
    ``serialize()`` after a restart.

    Args:
        job_names: The jobs to watch (a single string is one name).
        conn_id: The ``huaweicloud_cdm`` connection.
        cluster_id: The CDM cluster; the connection's ``cluster_id`` extra when None.
        since: ISO-8601: ignore runs created before it (the operator passes its run's
            ``creation_date``).
        deadline: ISO-8601: the task's deadline, used when the triggerer gives none.
        parent: A whole-database job whose subjobs to watch, instead of ``job_names``.
        tables: ``parent``'s tables to watch; every subjob the job list shows when None.
        give_up_after: Failed status requests of a job in a row (each already retried)
            after which it is unreachable; None never gives up.
        stop_on_kill: Stop the jobs when a user kills the deferred task.

    Raises:
        ValueError: Neither ``job_names`` nor ``parent``, or a ``since`` or ``deadline``
            that is not an ISO-8601 date.
    """

    def __init__(
        self,
        job_names: list[str] | str | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        cluster_id: str | None = None,
        since: str | None = None,
        deadline: str | None = None,
        parent: str | None = None,
        tables: list[str] | str | None = None,
        give_up_after: int | None = DEFAULT_GIVE_UP_AFTER,
        stop_on_kill: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.job_names = _names(job_names)
        self.conn_id = conn_id
        self.cluster_id = cluster_id
        self.since = since
        self.deadline = deadline
        self.parent = parent
        self.tables = None if tables is None else _names(tables)
        self.give_up_after = give_up_after
        self.stop_on_kill = stop_on_kill
        self._fired = False
        if not self.job_names and not parent:
            raise ValueError("give job_names, or a parent whole-database job")
        _aware(since)  # a malformed date fails here, when the task defers
        _aware(deadline)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The trigger's class path and its JSON-native keyword arguments."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_names": list(self.job_names),
                "conn_id": self.conn_id,
                "cluster_id": self.cluster_id,
                "since": self.since,
                "deadline": self.deadline,
                "parent": self.parent,
                "tables": None if self.tables is None else list(self.tables),
                "give_up_after": self.give_up_after,
                "stop_on_kill": self.stop_on_kill,
            },
        )

    # ------------------------------------------------------------------ running

    def _deadline(self) -> datetime | None:
        # The triggerer sets timeout_after (the scheduler's own deadline for this trigger);
        # dag.test() does not, and then the deadline the task passed is used.
        told = getattr(self, "timeout_after", None)
        return _aware(told) if told is not None else _aware(self.deadline)

    def _watch_timeout(self, now: float) -> float | None:
        deadline = self._deadline()
        if deadline is None:
            return None
        left = deadline.timestamp() - now
        return max(0.0, left - min(DEADLINE_MARGIN, 0.1 * max(left, 0.0)))

    async def _job_names(self, settings: ConnectionSettings) -> list[str]:
        if self.parent is None:
            return list(self.job_names)
        if self.tables is not None:
            return [subjob_name(self.parent, table) for table in self.tables]
        return await _shared.subjobs(settings, self.parent, cluster_id=self.cluster_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Watch the jobs on the process's shared waiter; yield one event.

        Yields:
            One ``TriggerEvent`` whose payload holds the overall ``result``
            (``success``, ``failed``, ``error`` or ``timeout``), a ``message``, and per
            job its outcome, status, submission id, progress, rows and bytes written and
            error summary. A connection that cannot be read, or a ``parent`` without
            subjobs, yields an ``error`` event: nothing is raised.
        """
        registry = _shared.REGISTRY
        try:
            settings = await CDMHook(self.conn_id).asettings()
            names = await self._job_names(settings)
            if not names:
                raise ValueError(f"no subjob of {self.parent!r} is in the job list")
            request = _shared.WatchRequest(
                job_names=tuple(names),
                cluster_id=self.cluster_id,
                since=_aware(self.since),
                timeout=self._watch_timeout(registry.clock.time()),
                give_up_after=self.give_up_after,
            )
            logger.info("watching %d CDM job(s): %s", len(names), ", ".join(names[:5]))
            result = await _shared.watch(
                settings, request, ProgressLog(names, clock=registry.clock), registry=registry
            )
            payload = build_event(result.outcomes, result.gave_up)
        except (CDMError, ValueError, AirflowException) as error:
            # A missing or broken connection, or a job list that could not be read: the
            # task fails with a retryable error that says so.
            payload = {"result": UNREACHABLE, "message": f"{type(error).__name__}: {error}"}
            payload["jobs"] = {}
        # Yielded outside every cancel scope of the watch (see _shared.watch).
        self._fired = True
        yield TriggerEvent(payload)  # type: ignore[no-untyped-call]

    async def cleanup(self) -> None:
        """Before Airflow 3.3: stop the jobs (``on_kill``) if a user killed the task.

        Airflow 3.1 and 3.2 call this whenever the trigger ends; from 3.3 on, ``on_kill``
        is called for a kill and this does nothing. A task state that cannot be read
        leaves the jobs running.
        """
        if TRIGGER_ON_KILL or not self.stop_on_kill or self._fired:
            return
        deadline = self._deadline()
        passed = deadline is not None and deadline.timestamp() <= _shared.REGISTRY.clock.time()
        try:
            state = await self._task_state()
        except Exception as error:
            logger.warning("CDM jobs left running: the task's state is unknown (%s)", error)
            return
        if killed_by_user(state, deadline_passed=passed):
            logger.info("the deferred task was killed (now %s): stopping its CDM jobs", state)
            await self.on_kill()

    async def _task_state(self) -> str | None:
        """The task's state now, from the triggerer's supervisor (Airflow 3.1 and 3.2)."""
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from asgiref.sync import sync_to_async

        ti = self.task_instance
        if ti is None:
            raise LookupError("the trigger runs without a task instance")
        # A blocking call into the supervisor, run off the loop as Airflow's own
        # providers do (it talks back to the loop through asgiref).
        states = await sync_to_async(RuntimeTaskInstance.get_task_states)(
            dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id], map_index=ti.map_index
        )
        state = states[ti.run_id][ti.task_id]
        return None if state is None else str(getattr(state, "value", state))

    async def on_kill(self) -> None:
        """A user killed the deferred task: stop the jobs it started (``stop_on_kill``).

        The stop runs to its end even if the trigger's task is cancelled again meanwhile
        (the triggerer cancels a trigger at each of its loops until the trigger has
        ended), so a kill never leaves a migration half stopped.
        """
        if not self.stop_on_kill:
            return
        stop = asyncio.ensure_future(self._stop_jobs())
        _STOPPING.add(stop)  # held until done: a task the loop alone holds may be collected
        stop.add_done_callback(_STOPPING.discard)
        await asyncio.shield(stop)

    async def _stop_jobs(self) -> None:
        settings = await CDMHook(self.conn_id).asettings()
        async with _shared.REGISTRY.lease(settings, self.cluster_id) as lease:
            for name in await self._job_names(settings):
                try:
                    await lease.client.stop_job(name)
                    logger.info("stopped CDM job %s", name)
                except BadRequestError as error:  # Cdm.0053: it is not running any more
                    logger.info("CDM job %s not stopped: %s", name, error)
