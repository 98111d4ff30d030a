"""CDMStartJobOperator: start a CDM job, then wait for that run to end.

The start request is sent from the worker, once (a start is never retried unless it surely
did nothing), so a triggerer restart can never start the job again. The wait that follows
takes ``since`` = the returned submission's ``creation_date`` (the server's clock), so the
previous run's ``SUCCEEDED`` never counts. ``deferrable`` (default: Airflow's
``[operators] default_deferrable``): one status check, then the trigger waits; otherwise
the worker waits, with the same waiter code.

**At most one start per task instance**, across tries and clears: the run a try starts is
recorded in Airflow's task state store (``context["task_state_store"]``, Airflow >= 3.3)
right after CDM accepts the start. A later try (a retry, or a clear) looks that run up
first: still going, it waits for it; succeeded, it returns its result; ended without
success, it starts the job again (and says so in the log). On an Airflow without a task
state store, a try after the first recognises its run in CDM instead: the job's newest
submission, created at or after the DAG run began (Airflow tells a task no earlier date of
its first try; 15 minutes are allowed for the CDM clock), by the connection's ``user``
extra when the connection names one (see ``_runs``). A first try never adopts a run it did
not start: CDM's ``Cdm.0052`` (the job is running) fails it, naming whose run it is and
since when.

``on_kill`` stops a run this operator started (``stop_on_kill``): on the worker, from a
thread of its own (Airflow calls it inside the loop of the waiting task), or, once
deferred, through the trigger's ``on_kill``. Nothing is stopped when a trigger merely ends
or moves to another triggerer (its ``cleanup()``), so a redeploy never stops a migration.
``stop_on_timeout`` also stops it when the wait ends on its deadline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from airflow.sdk import BaseOperator, Context

from .._client import CDMClient
from .._errors import BadRequestError
from .._events import JobOutcome, OutcomeKind
from .._models import Submission
from . import _results, _runs, _shared
from ._compat import AirflowException, AirflowFailException
from ._payload import TIMEOUT, build_event
from ._settings import DEFAULT_CONN_ID, ConnectionSettings
from .hooks import CDMHook
from .links import SUBMISSION_XCOM, CDMJobLink, console_url
from .triggers import DEFAULT_GIVE_UP_AFTER, CDMJobTrigger

__all__ = ["CDMStartJobOperator"]

_T = TypeVar("_T")

RUNNING_ALREADY = "Cdm.0052"
"""CDM's answer to a start while the job runs."""

DEFAULT_TIMEOUT = 7 * 24 * 3600.0
"""Seconds the wait may last by default (Airflow sensors' default too)."""


def start_summary(submission: Submission) -> dict[str, Any]:
    """The JSON-native facts of a run just started."""
    created = submission.creation_date
    return {
        "job_name": submission.job_name,
        "status": submission.raw_status,
        "submission_id": submission.submission_id,
        "creation_date": created.isoformat() if created is not None else None,
    }


class CDMStartJobOperator(BaseOperator):
    """Starts ``job_name`` (with ``variables`` filling its ``${name}`` placeholders) and,
    with ``wait``, waits for that run; returns its summary as the XCom.

    ``timeout`` (seconds) is the wait's deadline (``AirflowSensorTimeout`` past it);
    ``stop_on_timeout`` (default off) then stops the run. Outcomes map as for the sensors:
    FAILED/STOPPED raise ``AirflowFailException``; refused credentials and unreachable
    jobs raise ``AirflowException`` (retryable); ``deleted_ok`` counts a run that CDM
    deleted before its result was read as done. The started run's identity (job,
    submission id, creation date, cluster, console URL) is pushed as the XCom
    ``cdm_submission`` before the task waits or defers; the "CDM job" link opens the job in
    the CDM console of the connection's region.

    Args:
        job_name: The job to start (templated).
        variables: Values for the job's ``${name}`` placeholders (templated).
        wait: Wait for the run to end; False returns once CDM accepted the start.
        deferrable: Wait in the triggerer; Airflow's ``[operators] default_deferrable``
            when None.
        stop_on_kill: Stop the run when the task is killed (one stop request).
        stop_on_timeout: Stop the run when its wait reaches ``timeout``.
        cluster_id: The CDM cluster (templated); the connection's ``cluster_id`` extra
            when None.
        conn_id: The ``huaweicloud_cdm`` connection.
        timeout: Seconds the wait may last (a week by default).
        give_up_after: Failed status requests in a row (each already retried) after which
            the job is unreachable (a retryable failure); None never gives up.
        deleted_ok: Count a run that CDM deleted before its result was read as done.
        **kwargs: ``BaseOperator``'s arguments (``task_id``, ``retries``...).
    """

    template_fields: Sequence[str] = ("job_name", "variables", "cluster_id")
    operator_extra_links = (CDMJobLink(),)

    def __init__(
        self,
        *,
        job_name: str,
        variables: Mapping[str, str] | None = None,
        wait: bool = True,
        deferrable: bool | None = None,
        stop_on_kill: bool = True,
        stop_on_timeout: bool = False,
        cluster_id: str | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        timeout: float = DEFAULT_TIMEOUT,
        give_up_after: int | None = DEFAULT_GIVE_UP_AFTER,
        deleted_ok: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deleted_ok = deleted_ok
        self.job_name = job_name
        self.variables = dict(variables or {})
        self.wait = wait
        self.deferrable = _results.default_deferrable() if deferrable is None else deferrable
        self.stop_on_kill = stop_on_kill
        self.stop_on_timeout = stop_on_timeout
        self.cluster_id = cluster_id
        self.conn_id = conn_id
        self.timeout = float(timeout)
        self.give_up_after = give_up_after
        self._settings: ConnectionSettings | None = None
        self._started: str | None = None
        """The job whose run this task started and has not seen end (for on_kill)."""
        self._concluded: dict[str, Any] = {}
        """The run's entry once it ended (for OpenLineage)."""

    # ------------------------------------------------------------------ helpers

    def _connection(self) -> ConnectionSettings:
        if self._settings is None:
            self._settings = CDMHook(self.conn_id).settings()
        return self._settings

    def _call(self, action: Callable[[CDMClient], Awaitable[_T]]) -> _T:
        """Run ``action`` with the process's client for this connection and cluster."""
        settings = self._connection()

        async def work() -> _T:
            async with _shared.REGISTRY.lease(settings, self.cluster_id) as lease:
                return await action(lease.client)

        return _results.in_worker(work)

    def _newest(self) -> Submission:
        """The job's newest submission (one status request, through the shared budget)."""
        settings = self._connection()

        async def work() -> dict[str, Submission | Exception]:
            return await _shared.check(settings, [self.job_name], cluster_id=self.cluster_id)

        found = _results.in_worker(work)[self.job_name]
        if isinstance(found, Exception):
            raise found
        return found

    def _identity(self, submission: Submission) -> dict[str, Any]:
        """The started run's identity: the XCom ``cdm_submission`` and the ``started``
        part of the result."""
        settings = self._connection()
        cluster = settings.cluster(self.cluster_id)
        return start_summary(submission) | {
            "cluster_id": cluster,
            "console_url": console_url(settings.endpoint, cluster, submission.job_name),
        }

    # ------------------------------------------------------------------ one start

    def _earlier_run(self, context: Context, try_number: int) -> Submission | None:
        """The run an earlier try of this task instance started, if any (module docstring)."""
        settings = self._connection()
        store = context.get("task_state_store")
        if store is not None:
            stored = _runs.recorded(
                store.get(_runs.RECORD_KEY),
                job_name=self.job_name,
                cluster_id=settings.cluster(self.cluster_id),
            )
            if stored is None:
                return None
            newest = self._newest()
            if _runs.recorded_run(newest, stored):
                return newest
            raise AirflowFailException(
                f"CDM job {self.job_name}: the run an earlier try of this task started "
                f"(submission {stored.get('submission_id')}, created "
                f"{stored.get('creation_date')}) is no longer the job's newest run, which is "
                f"{_runs.describe(newest)}. Its outcome cannot be read, so the job is not "
                "started again: check it in the CDM console, then delete this task "
                f"instance's task state key {_runs.RECORD_KEY!r} to let a try start it."
            )
        if try_number <= 1:
            return None
        newest = self._newest()
        return newest if self._recognised(context, newest) else None

    def _recognised(self, context: Context, run: Submission) -> bool:
        """The rule that finds our run in CDM when nothing recorded it (``_runs.is_ours``)."""
        dag_run = context.get("dag_run")
        since = getattr(dag_run, "start_date", None)
        return _runs.is_ours(run, since=since, user=self._connection().user)

    def _start(self, context: Context, try_number: int) -> Submission:
        """Start the job and record the run; a running job fails the task, unless (on a
        later try with nothing recorded) the rule recognises it as this task's run."""
        try:
            submission = self._call(
                lambda client: client.start_job(self.job_name, variables=self.variables)
            )
        except BadRequestError as error:
            if error.error_code != RUNNING_ALREADY:
                raise
            running = self._newest()
            if try_number > 1 and self._recognised(context, running):
                self.log.info(
                    "CDM job %s is running: %s, taken for the run an earlier try of this "
                    "task started: waiting for it",
                    self.job_name,
                    _runs.describe(running),
                )
                submission = running
            else:
                raise AirflowException(
                    f"CDM job {self.job_name} is already running: {_runs.describe(running)}. "
                    "This task did not start that run, so it does not wait for it."
                ) from error
        else:
            self.log.info(
                "started CDM job %s: submission %s (%s)",
                self.job_name,
                submission.submission_id,
                submission.raw_status,
            )
        store = context.get("task_state_store")
        if store is not None:
            cluster = self._connection().cluster(self.cluster_id)
            store.set(
                _runs.RECORD_KEY,
                _runs.record(submission, cluster_id=cluster, try_number=try_number),
            )
        return submission

    def _run(self, context: Context) -> tuple[Submission, _runs.Step]:
        """The run this try waits for (or returns): an earlier try's, or a new one."""
        try_number = int(getattr(context.get("ti"), "try_number", 1) or 1)
        earlier = self._earlier_run(context, try_number)
        if earlier is not None:
            step = _runs.next_step(earlier)
            if step is _runs.Step.WAIT:
                self.log.info(
                    "CDM job %s: %s, started by an earlier try of this task, is still going: "
                    "waiting for it (no new start)",
                    self.job_name,
                    _runs.describe(earlier),
                )
                return earlier, step
            if step is _runs.Step.RETURN:
                self.log.info(
                    "CDM job %s: %s, started by an earlier try of this task, succeeded: "
                    "returning its result (no new start)",
                    self.job_name,
                    _runs.describe(earlier),
                )
                return earlier, step
            self.log.warning(
                "CDM job %s: %s, started by an earlier try of this task, ended without "
                "success: starting the job again",
                self.job_name,
                _runs.describe(earlier),
            )
        return self._start(context, try_number), _runs.Step.WAIT

    # ------------------------------------------------------------------ Airflow's calls

    def execute(self, context: Context) -> Any:
        """Start the job (or find the run an earlier try started), then finish, defer or
        wait here.

        Returns:
            The run's summary (as ``execute_complete``); with ``wait=False``, the started
            run's identity.

        Raises:
            AirflowFailException: As for ``execute_complete``; or the run an earlier try
                recorded is no longer the job's newest (the job is not started again).
            AirflowException: As for ``execute_complete``; or the job is already running
                a run this task did not start; or no connection has ``conn_id``.
            AirflowSensorTimeout: The wait reached ``timeout``.
            CDMError: The start was refused (``JobNotFoundError``, say) or got no answer.
            ValueError: The connection cannot be used, or names no cluster.
        """
        submission, step = self._run(context)
        started = self._identity(submission)
        ti = context.get("ti")
        if ti is not None:
            ti.xcom_push(key=SUBMISSION_XCOM, value=started)
        if step is _runs.Step.RETURN:
            outcome = JobOutcome(self.job_name, OutcomeKind.SUCCEEDED, submission)
            done = build_event({self.job_name: outcome})
            return self.execute_complete(context, done, started=started)
        self._started = self.job_name
        if not self.wait:
            self._concluded = {self.job_name: {"submission_id": submission.submission_id}}
            return started
        since = submission.creation_date
        deadline = _results.deadline_after(self.timeout).isoformat()
        trigger = self._trigger(since, deadline)
        if not self.deferrable:
            event = _results.run_in_worker(trigger)
            return self.execute_complete(context, event, started=started)
        ended = _results.precheck(
            self._connection(), [self.job_name], cluster_id=self.cluster_id, since=since
        )
        if ended is not None:
            return self.execute_complete(context, ended, started=started)
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            kwargs={"started": started},
            timeout=timedelta(seconds=self.timeout),
        )

    def _trigger(self, since: datetime | None, deadline: str) -> CDMJobTrigger:
        return CDMJobTrigger(
            job_names=[self.job_name],
            conn_id=self.conn_id,
            cluster_id=self.cluster_id,
            since=since.isoformat() if since is not None else None,
            deadline=deadline,
            give_up_after=self.give_up_after,
            stop_on_kill=self.stop_on_kill,
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any], started: dict[str, Any] | None = None
    ) -> Any:
        """The run's summary, or the exception its outcome means (after stopping the run
        when its wait reached the deadline and ``stop_on_timeout`` is set).

        Args:
            context: The task's context.
            event: The trigger's event.
            started: The started run's identity, added to the summary as ``started``.

        Returns:
            The run's summary: outcome, status, submission id, progress, rows and bytes
            written.

        Raises:
            AirflowFailException: The run ended ``FAILED``, ``FAILURE_ON_SUBMIT`` or
                ``STOPPED``, the job does not exist, or CDM deleted it before its result
                was read (unless ``deleted_ok``). Not retried.
            AirflowException: The credentials or permission were refused, or the job
                stayed unreachable (retryable).
            AirflowSensorTimeout: The wait reached ``timeout``.
        """
        self._started = None  # the run has ended (or the wait is over): nothing to stop
        if event.get("result") == TIMEOUT and self.stop_on_timeout and started is not None:
            self._stop(_results.in_worker, "its wait reached the deadline")
        jobs = _results.conclude(event, deleted_ok=self.deleted_ok)
        self._concluded = jobs
        summary = dict(jobs.get(self.job_name) or {})
        if started is not None:
            summary["started"] = started
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (``apache-airflow-providers-openlineage`` calls this when the task
        succeeds): the datasets the job reads and writes, from its definition, the rows and
        bytes written, and the submission id (see ``_openlineage``)."""
        from ._openlineage import task_lineage

        results = self._concluded or {self.job_name: {}}
        return task_lineage(self._connection(), results, cluster_id=self.cluster_id)

    def on_kill(self) -> None:
        """Stop the run this operator started, if it is still running (one stop request).

        Airflow calls this in the main thread: from its SIGTERM handler, possibly inside
        the event loop of a task waiting on its worker, so the stop is sent from a thread
        with an event loop of its own.
        """
        if not (self.stop_on_kill and self._started):
            return
        self._started = None  # one stop, however often Airflow calls this
        self._stop(_results.in_own_thread, "the task was killed")

    def _stop(self, run: Callable[[Callable[[], Awaitable[None]]], None], reason: str) -> None:
        """Send one stop request for the job (``run`` runs the async work somewhere)."""
        settings = self._connection()

        async def stop() -> None:
            async with _shared.REGISTRY.own_client(settings, self.cluster_id) as client:
                await client.stop_job(self.job_name)

        try:
            run(stop)
        except BadRequestError as error:  # Cdm.0053: it is not running any more
            self.log.info("CDM job %s not stopped: %s", self.job_name, error)
        except Exception as error:
            self.log.warning(
                "CDM job %s could not be stopped (%s): %s: %s",
                self.job_name,
                reason,
                type(error).__name__,
                error,
            )
        else:
            self.log.info("stopped CDM job %s: %s", self.job_name, reason)
