"""CDMStartJobOperator: start a CDM job, then wait for that run to end.

The start request is sent from the worker, once (a start is never retried unless it surely
did nothing), so a triggerer restart can never start the job again. The wait that follows
takes ``since`` = the returned submission's ``creation_date`` (the server's clock), so the
previous run's ``SUCCEEDED`` never counts. Deferrable by default: one status check, then the
trigger waits; ``deferrable=False`` waits on the worker.

A retry of the task (``try_number`` > 1) whose start CDM refuses with ``Cdm.0052`` (the job
is running) waits for that run instead: it is the run an earlier try started and did not
see end (its worker died, or its trigger gave up). A first try still fails on
``Cdm.0052``: that run is somebody else's.

``on_kill`` stops a run this operator started (``stop_on_kill``), on the worker or, once
deferred, through the trigger's ``on_kill``. Nothing is stopped when a trigger merely ends
or moves to another triggerer (its ``cleanup()``), so a redeploy never stops a migration.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from airflow.sdk import BaseOperator, Context

from .._client import CDMClient
from .._errors import BadRequestError
from .._models import Submission
from . import _results, _shared
from ._settings import DEFAULT_CONN_ID
from .hooks import CDMHook
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

    ``timeout`` (seconds) is the wait's deadline (``AirflowSensorTimeout`` past it).
    Outcomes map as for the sensors: FAILED/STOPPED raise ``AirflowFailException``;
    refused credentials and unreachable jobs raise ``AirflowException`` (retryable).
    """

    template_fields: Sequence[str] = ("job_name", "variables", "cluster_id")

    def __init__(
        self,
        *,
        job_name: str,
        variables: Mapping[str, str] | None = None,
        wait: bool = True,
        deferrable: bool = True,
        stop_on_kill: bool = True,
        cluster_id: str | None = None,
        conn_id: str = DEFAULT_CONN_ID,
        timeout: float = DEFAULT_TIMEOUT,
        give_up_after: int | None = DEFAULT_GIVE_UP_AFTER,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.variables = dict(variables or {})
        self.wait = wait
        self.deferrable = deferrable
        self.stop_on_kill = stop_on_kill
        self.cluster_id = cluster_id
        self.conn_id = conn_id
        self.timeout = float(timeout)
        self.give_up_after = give_up_after
        self._started: str | None = None
        """The job this operator started on this worker (for on_kill)."""

    def _call(self, action: Callable[[CDMClient], Awaitable[_T]]) -> _T:
        """Run ``action`` with the process's client for this connection and cluster."""
        settings = CDMHook(self.conn_id).settings()

        async def work() -> _T:
            async with _shared.REGISTRY.lease(settings, self.cluster_id) as lease:
                return await action(lease.client)

        return _results.in_worker(work)

    def _start(self, context: Context) -> Submission:
        """Start the job; on a retry, the run an earlier try started if it still runs."""
        try:
            submission = self._call(
                lambda client: client.start_job(self.job_name, variables=self.variables)
            )
        except BadRequestError as error:
            try_number = getattr(context.get("ti"), "try_number", 1)
            if error.error_code != RUNNING_ALREADY or try_number <= 1:
                raise
            submission = self._call(lambda client: client.get_status(self.job_name))
            self.log.info(
                "CDM job %s is still running (try %d): waiting for submission %s, "
                "started by an earlier try",
                self.job_name,
                try_number,
                submission.submission_id,
            )
            return submission
        self.log.info(
            "started CDM job %s: submission %s (%s)",
            self.job_name,
            submission.submission_id,
            submission.raw_status,
        )
        return submission

    def execute(self, context: Context) -> Any:
        """Start the job, then finish, defer or wait here."""
        submission = self._start(context)
        self._started = self.job_name
        started = start_summary(submission)
        if not self.wait:
            return started
        since = submission.creation_date
        deadline = _results.deadline_after(self.timeout).isoformat()
        trigger = self._trigger(since, deadline)
        if not self.deferrable:
            event = _results.run_in_worker(trigger)
            return self.execute_complete(context, event, started=started)
        settings = CDMHook(self.conn_id).settings()
        ended = _results.precheck(
            settings, [self.job_name], cluster_id=self.cluster_id, since=since
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
        """The run's summary, or the exception its outcome means."""
        self._started = None  # the run has ended (or the trigger gave up): nothing to stop
        jobs = _results.conclude(event)
        summary = dict(jobs.get(self.job_name) or {})
        if started is not None:
            summary["started"] = started
        return summary

    def on_kill(self) -> None:
        """Stop the run this operator started, if it is still running."""
        if not (self.stop_on_kill and self._started):
            return

        try:
            self._call(lambda client: client.stop_job(self.job_name))
            self.log.info("stopped CDM job %s", self.job_name)
        except BadRequestError as error:  # Cdm.0053: it is not running any more
            self.log.info("CDM job %s not stopped: %s", self.job_name, error)
