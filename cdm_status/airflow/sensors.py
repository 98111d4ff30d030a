"""Sensors for CDM jobs: one or many jobs, or the tables of a whole-database job.

``deferrable`` defaults to Airflow's ``[operators] default_deferrable``. Deferred, the
scheduler starts them straight in the triggerer (``start_from_trigger``), with no worker
slot taken at all. When a worker runs one anyway (``dag.test()``, an older scheduler path),
it checks each job's status once and finishes at once when every job has already ended;
only then does it defer (deferring at once can let a late executor event kill the resumed
task). Not deferred, ``mode="poke"`` (the default) waits on the worker with the same waiter
code as the trigger; ``mode="reschedule"`` frees the worker between pokes: each poke checks
every job once through the shared budget (a status request per job, and the job list's
pages for a whole-database job without ``tables``), and Airflow reschedules the task
``poke_interval`` later; ``timeout`` counts from the first poke.

``poke_interval`` is honoured only in reschedule mode, as the time between two pokes.
While a waiter waits (deferred, or on the worker in poke mode) it is ignored: the request
budget decides when each job is looked at.

Success returns an XCom: the job's submission summary (outcome, status, submission id,
progress, rows and bytes written), a dict of them by job name for several jobs, by table
for a whole-database job. Failures raise as ``_results`` says; ``soft_fail`` and
``never_fail`` turn them into a skip. A job that CDM deletes after a success
(``DELETE_AFTER_SUCCEED``) succeeds when it is gone; one deleted whatever its result
(``DELETE``) before its result was read fails, unless ``deleted_ok=True``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.triggers.base import StartTriggerArgs

from .._wire import subjob_name
from . import _results, _shared
from ._compat import AirflowException
from ._settings import DEFAULT_CONN_ID
from .hooks import CDMHook
from .triggers import DEFAULT_GIVE_UP_AFTER, CDMJobTrigger

__all__ = ["CDMDatabaseJobSensor", "CDMJobSensor"]

TRIGGER_PATH = f"{CDMJobTrigger.__module__}.{CDMJobTrigger.__qualname__}"


class _CDMSensorBase(BaseSensorOperator):
    """What the two sensors share: the trigger's arguments, deferral, the outcome."""

    def __init__(
        self,
        *,
        cluster_id: str | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool | None = None,
        give_up_after: int | None = DEFAULT_GIVE_UP_AFTER,
        deleted_ok: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.cluster_id = cluster_id
        self.conn_id = conn_id
        self.deferrable = _results.default_deferrable() if deferrable is None else deferrable
        self.give_up_after = give_up_after
        self._concluded: dict[str, Any] = {}
        """Every job's entry once all have ended (for OpenLineage)."""
        self.deleted_ok = deleted_ok

    def _enable_start_from_trigger(self) -> None:
        # The trigger's kwargs are fixed when the DAG is parsed; template fields named like
        # the trigger's arguments are rendered in the triggerer.
        if not self.deferrable:
            return
        self.start_from_trigger = True
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls=TRIGGER_PATH,
            next_method="execute_complete",
            trigger_kwargs=self._trigger_kwargs(deadline=None),
            next_kwargs=None,
            timeout=timedelta(seconds=self.timeout),
        )

    def _trigger_kwargs(self, *, deadline: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def _trigger(self, deadline: str | None) -> CDMJobTrigger:
        return CDMJobTrigger(**self._trigger_kwargs(deadline=deadline))

    def _precheck(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def _names(self) -> list[str]:
        """Every job this sensor waits for (a poke checks each)."""
        raise NotImplementedError

    def _xcom(self, jobs: dict[str, Any]) -> Any:
        return jobs

    def execute(self, context: Context) -> Any:
        """Finish at once, defer, or (``deferrable=False``) wait on this worker, or poke
        and reschedule (``mode="reschedule"``)."""
        if not self.deferrable and self.reschedule:
            return super().execute(context)
        deadline = _results.deadline_after(self.timeout).isoformat()
        if not self.deferrable:
            return self.execute_complete(context, _results.run_in_worker(self._trigger(deadline)))
        event = self._precheck()
        if event is not None:
            return self.execute_complete(context, event)
        self.defer(
            trigger=self._trigger(deadline),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Map the trigger's event to the XCom or the exception."""

        def conclude() -> Any:
            self._concluded = _results.conclude(event, deleted_ok=self.deleted_ok)
            return self._xcom(self._concluded)

        return _results.soft(
            conclude, soft_fail=self.soft_fail, never_fail=getattr(self, "never_fail", False)
        )

    def _lineage_parent(self) -> str | None:
        return None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (``apache-airflow-providers-openlineage`` calls this when the task
        succeeds): the datasets the jobs read and write, from their definitions, and the
        rows and bytes written (see ``_openlineage``)."""
        from ._openlineage import task_lineage

        settings = CDMHook(self.conn_id).settings()
        return task_lineage(
            settings, self._concluded, cluster_id=self.cluster_id, parent=self._lineage_parent()
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One status check of every job: not done while one runs; done with the XCom,
        or the exception the outcome means, once all have ended."""
        names = self._names()
        settings = CDMHook(self.conn_id).settings()
        event = _results.precheck(settings, names, cluster_id=self.cluster_id)
        if event is None:
            return False
        return PokeReturnValue(is_done=True, xcom_value=self.execute_complete(context, event))


class CDMJobSensor(_CDMSensorBase):
    """Waits for one CDM job (``job_name``) or several (``job_names``).

    ``timeout`` (seconds, Airflow's sensor argument) is the deadline. The task returns
    the job's summary as its XCom (a dict of them by job name for ``job_names``). It fails
    with ``AirflowFailException`` (no retry) when a job ended ``FAILED``,
    ``FAILURE_ON_SUBMIT`` or ``STOPPED``, does not exist, or was deleted by CDM before its
    result was read (unless ``deleted_ok``); with ``AirflowException`` (retryable) when
    the credentials or permission were refused or a job stayed unreachable; with
    ``AirflowSensorTimeout`` at the deadline. ``soft_fail`` (or ``never_fail``) turns each
    into a skip.

    Args:
        job_name: The job to wait for (templated).
        job_names: The jobs to wait for, instead of ``job_name`` (templated).
        **kwargs: The keyword arguments below, and Airflow's sensor arguments
            (``task_id``, ``timeout``, ``mode``, ``poke_interval``, ``soft_fail``...).

    Keyword Args:
        cluster_id (str | None): The CDM cluster (templated); the connection's
            ``cluster_id`` extra when None.
        conn_id (str): The ``huaweicloud_cdm`` connection (``huaweicloud_default``).
        deferrable (bool | None): Wait in the triggerer; Airflow's ``[operators]
            default_deferrable`` when None.
        give_up_after (int | None): Failed status requests of a job in a row (each
            already retried) after which it is unreachable (30); None never gives up.
        deleted_ok (bool): Count a job that CDM deleted after its run, before its result
            was read, as done.

    Raises:
        ValueError: Neither or both of ``job_name`` and ``job_names``.
    """

    template_fields: Sequence[str] = ("job_names", "cluster_id")

    def __init__(
        self,
        *,
        job_name: str | None = None,
        job_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (job_name is None) == (job_names is None):
            raise ValueError("give exactly one of job_name and job_names")
        self.single = job_name is not None
        self.job_names: list[str] | str = (
            [job_name] if job_name is not None else list(job_names or ())
        )
        self._enable_start_from_trigger()

    def _trigger_kwargs(self, *, deadline: str | None) -> dict[str, Any]:
        return {
            "job_names": self.job_names,
            "conn_id": self.conn_id,
            "cluster_id": self.cluster_id,
            "deadline": deadline,
            "give_up_after": self.give_up_after,
        }

    def _names(self) -> list[str]:
        return self._trigger(None).job_names

    def _precheck(self) -> dict[str, Any] | None:
        names = self._names()
        if len(names) > _results.PRECHECK_LIMIT:
            return None
        settings = CDMHook(self.conn_id).settings()
        return _results.precheck(settings, names, cluster_id=self.cluster_id)

    def _xcom(self, jobs: dict[str, Any]) -> Any:
        if self.single and len(jobs) == 1:
            return next(iter(jobs.values()))
        return jobs


class CDMDatabaseJobSensor(_CDMSensorBase):
    """Waits for the tables of whole-database job ``parent`` (subjobs ``<parent>_<table>``).

    Without ``tables``, every subjob of ``parent`` the job list shows is watched. The XCom
    is ``{table: summary}``; failures are those of ``CDMJobSensor``, and a ``parent``
    without any subjob in the job list is an ``AirflowException``.

    Args:
        parent: The whole-database job (templated).
        tables: Its tables to wait for (templated); every subjob the job list shows when
            None.
        **kwargs: ``CDMJobSensor``'s keyword arguments (``cluster_id``, ``conn_id``,
            ``deferrable``, ``give_up_after``, ``deleted_ok``) and Airflow's sensor
            arguments.
    """

    template_fields: Sequence[str] = ("parent", "tables", "cluster_id")

    def __init__(self, *, parent: str, tables: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.parent = parent
        self.tables: list[str] | str | None = None if tables is None else list(tables)
        self._enable_start_from_trigger()

    def _trigger_kwargs(self, *, deadline: str | None) -> dict[str, Any]:
        return {
            "parent": self.parent,
            "tables": self.tables,
            "conn_id": self.conn_id,
            "cluster_id": self.cluster_id,
            "deadline": deadline,
            "give_up_after": self.give_up_after,
        }

    def _names(self) -> list[str]:
        trigger = self._trigger(None)
        if trigger.tables is not None:
            return [subjob_name(self.parent, table) for table in trigger.tables]
        settings = CDMHook(self.conn_id).settings()

        async def work() -> list[str]:
            return await _shared.subjobs(settings, self.parent, cluster_id=self.cluster_id)

        names = _results.in_worker(work)
        if not names:
            raise AirflowException(f"no subjob of {self.parent!r} is in the job list")
        return names

    def _precheck(self) -> dict[str, Any] | None:
        trigger = self._trigger(None)
        settings = CDMHook(self.conn_id).settings()
        if trigger.tables is not None and len(trigger.tables) <= _results.PRECHECK_LIMIT:
            names = [subjob_name(self.parent, table) for table in trigger.tables]
            return _results.precheck(settings, names, cluster_id=self.cluster_id)
        # Too many (or unknown) tables to check one by one: ask about the parent, which
        # still catches refused credentials before deferring.
        event = _results.precheck(settings, [self.parent], cluster_id=self.cluster_id)
        return event if event is not None and event["result"] == "error" else None

    def _lineage_parent(self) -> str | None:
        return self.parent

    def _xcom(self, jobs: dict[str, Any]) -> Any:
        prefix = self.parent + "_"
        return {
            (name[len(prefix) :] if name.startswith(prefix) else name): entry
            for name, entry in jobs.items()
        }
