"""Job timelines: every state a simulated run goes through, fixed when the run starts.

A :class:`Run` is computed once, up front, from a :class:`JobPlan` (explicit, or drawn from a
seeded random generator by :func:`random_plan`). What the API shows at any moment is then a
pure function of the run and the time asked about, so a test can jump a fake clock hours
ahead and the simulator answers as if it had been running all along. Nothing here does I/O
or keeps a background task.

A run's life::

    submitted_at ──BOOTING── running_at ──RUNNING── ended_at ── outcome
                                 (FAILURE_ON_SUBMIT skips RUNNING: it ends at running_at)

``stop`` cuts a run short: from ``stopped_at`` on it is ``STOPPED``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

from .._models import JobStatus
from ._progress import LINEAR, ProgressCurve

__all__ = ["OUTCOMES", "JobPlan", "LogNormal", "Run", "RunState", "Transition", "random_plan"]

OUTCOMES = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.FAILURE_ON_SUBMIT,
        JobStatus.STOPPED,
        JobStatus.UNKNOWN,
    }
)
"""How a planned run may end."""


@dataclass(frozen=True, slots=True)
class JobPlan:
    """How one run of a job goes.

    ``boot_seconds`` in BOOTING, then ``run_seconds`` in RUNNING, then ``outcome`` (a
    ``FAILED`` run fails after ``run_seconds``; ``FAILURE_ON_SUBMIT`` ends right after
    booting).

    Raises:
        ValueError: A negative or infinite time, an ``outcome`` a run cannot end with,
            a negative row count, a negative ``vanish_after`` or a ``progress_seconds``
            that is not positive.
    """

    boot_seconds: float
    """Seconds in ``BOOTING``."""
    run_seconds: float
    """Seconds in ``RUNNING`` (none for ``FAILURE_ON_SUBMIT``)."""
    outcome: JobStatus = JobStatus.SUCCEEDED
    """How it ends: ``SUCCEEDED``, ``FAILED``, ``FAILURE_ON_SUBMIT``, ``STOPPED`` or
    ``UNKNOWN``."""
    rows: int = 100_000
    """Rows a successful run reads (and writes, less ``rows_skipped``)."""
    rows_skipped: int = 0
    """Rows read but not written (the ``ROWS_WRITTEN_SKIPPED`` counter)."""
    bytes: int = -1
    """Bytes written; ``-1``: "not measured", as for a JDBC source."""
    files: int = -1
    """Files written; ``-1``: "not measured"."""
    error_summary: str | None = None
    """A failed run's error summary; a realistic Sqoop failure when None."""
    error_details: str | None = None
    """A failed run's error details (a stack trace); a realistic one when None."""
    vanish_after: float | None = None
    """Seconds after the run starts at which the job is deleted (later requests answer
    ``Cdm.0100``); None: it stays."""
    user: str = "cdm"
    """The run's ``creation-user`` and last-update user, as its submission shows them."""
    progress: ProgressCurve | None = None
    """How reported progress follows running time; None: the simulator's shape."""
    progress_seconds: float | None = None
    """Running time progress is paced for (default ``run_seconds``): a run that fails
    part way was paced for longer, and dies short of 100%."""

    def __post_init__(self) -> None:
        for name in ("boot_seconds", "run_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {sorted(str(s) for s in OUTCOMES)}")
        if self.rows < 0 or self.rows_skipped < 0:
            raise ValueError("rows and rows_skipped must be >= 0")
        if self.vanish_after is not None and self.vanish_after < 0:
            raise ValueError("vanish_after must be >= 0")
        if self.progress_seconds is not None and not (
            math.isfinite(self.progress_seconds) and self.progress_seconds > 0
        ):
            raise ValueError("progress_seconds must be a finite number > 0")


# (summary, details): what Sqoop-based CDM reports for common failures. ``{table}`` is the
# job's source table (or job name).
FAILURES: tuple[tuple[str, str], ...] = (
    (
        "GENERIC_JDBC_CONNECTOR_0001:Unable to get a connection",
        "org.apache.sqoop.common.SqoopException: GENERIC_JDBC_CONNECTOR_0001:Unable to get "
        "a connection\n\tat org.apache.sqoop.connector.jdbc.GenericJdbcExecutor.<init>"
        "(GenericJdbcExecutor.java:79)\nCaused by: com.mysql.jdbc.exceptions.jdbc4."
        "CommunicationsException: Communications link failure\nCaused by: "
        "java.net.ConnectException: Connection refused (Connection refused)",
    ),
    (
        "GENERIC_JDBC_CONNECTOR_0003:Unable to access meta data",
        "org.apache.sqoop.common.SqoopException: GENERIC_JDBC_CONNECTOR_0003:Unable to "
        "access meta data\n\tat org.apache.sqoop.connector.jdbc.GenericJdbcExecutor."
        "getQueryColumns(GenericJdbcExecutor.java:382)\nCaused by: "
        "java.sql.SQLSyntaxErrorException: Table 'sales.{table}' doesn't exist",
    ),
    (
        "MAPRED_EXEC_0017:Error occurs during extractor run",
        "org.apache.sqoop.common.SqoopException: MAPRED_EXEC_0017:Error occurs during "
        "extractor run\nCaused by: org.apache.hadoop.hdfs.protocol.DSQuotaExceededException: "
        "The DiskSpace quota of /user/hive/warehouse/{table} is exceeded: quota = "
        "1099511627776 B = 1 TB but diskspace consumed = 1099628134400 B = 1.00 TB",
    ),
    (
        "MAPRED_EXEC_0013:Cannot write to the data writer",
        "org.apache.sqoop.common.SqoopException: MAPRED_EXEC_0013:Cannot write to the data "
        "writer\nCaused by: org.apache.hadoop.security.AccessControlException: Permission "
        'denied: user=cdm, access=WRITE, inode="/user/hive/warehouse/{table}":hive:hive:'
        "drwxr-xr-x",
    ),
    (
        "GENERIC_JDBC_CONNECTOR_0002:Unable to execute the SQL statement",
        "org.apache.sqoop.common.SqoopException: GENERIC_JDBC_CONNECTOR_0002:Unable to "
        "execute the SQL statement\nCaused by: java.sql.SQLException: Lock wait timeout "
        "exceeded; try restarting transaction (table {table})",
    ),
)


@dataclass(frozen=True, slots=True)
class LogNormal:
    """Run times spread as real tables' are: lognormal, half of them under ``median``
    seconds, their logarithm spread by ``sigma`` (0.3: most within a third of the median;
    1: a few run for hours; 2: from seconds to a day).

    Raises:
        ValueError: A ``median`` that is not positive, or a negative or infinite ``sigma``.
    """

    median: float
    """Seconds that half of the runs stay under."""
    sigma: float
    """The spread of the runs' logarithm."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.median) and self.median > 0):
            raise ValueError("median must be a positive number of seconds")
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError("sigma must be a finite number >= 0")

    def draw(self, rng: random.Random) -> float:
        """One run time, in seconds (at least 1), drawn from ``rng``."""
        return max(1.0, rng.lognormvariate(math.log(self.median), self.sigma))


def random_plan(
    rng: random.Random,
    *,
    failure_rate: float = 0.0,
    boot_seconds: tuple[float, float] = (5.0, 60.0),
    run_seconds: tuple[float, float] | LogNormal = (60.0, 3600.0),
) -> JobPlan:
    """A realistic plan: boot uniform in ``boot_seconds``, run log-uniform in
    ``run_seconds`` (most tables are quick, a few take an hour) or drawn from a
    ``LogNormal``, and a failure, part way through, with probability ``failure_rate``.

    Args:
        rng: The generator every draw comes from (seed it for a repeatable plan).
        failure_rate: Probability that the run fails (with one of Sqoop's usual errors).
        boot_seconds: ``(min, max)`` seconds in ``BOOTING``.
        run_seconds: ``(min, max)`` seconds in ``RUNNING``, or a ``LogNormal`` spread.

    Returns:
        The plan, rows and bytes included.

    Raises:
        ValueError: A ``failure_rate`` outside 0..1, a ``run_seconds`` range that is not
            ``0 < min <= max``, or a ``boot_seconds`` range below 0.
    """
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError("failure_rate must be between 0 and 1")
    if not isinstance(run_seconds, LogNormal):
        low, high = run_seconds
        if not 0 < low <= high:
            raise ValueError("run_seconds must be (min, max) with 0 < min <= max")
    boot = rng.uniform(*boot_seconds)
    if isinstance(run_seconds, LogNormal):
        run = run_seconds.draw(rng)
    else:
        run = math.exp(rng.uniform(math.log(low), math.log(high)))
    rows_per_second = rng.uniform(500.0, 20_000.0)
    fails = rng.random() < failure_rate
    summary, details = FAILURES[rng.randrange(len(FAILURES))]
    rows = int(run * rows_per_second)
    return JobPlan(
        boot_seconds=round(boot, 3),
        # A failing run dies part way through what it would have taken.
        run_seconds=round(run * rng.uniform(0.05, 0.95) if fails else run, 3),
        progress_seconds=round(run, 3) if fails else None,
        outcome=JobStatus.FAILED if fails else JobStatus.SUCCEEDED,
        rows=rows,
        bytes=rows * rng.randint(80, 400),
        error_summary=summary if fails else None,
        error_details=details if fails else None,
    )


@dataclass(frozen=True, slots=True)
class Transition:
    """Ground truth: ``job_name`` entered ``status`` at ``at`` (epoch seconds, simulator
    clock)."""

    job_name: str
    """The job."""
    status: JobStatus
    """The status it entered."""
    at: float
    """When, epoch seconds on the simulator's clock."""


@dataclass(frozen=True, slots=True)
class RunState:
    """What a run looks like at one moment."""

    status: JobStatus
    progress: float
    rows_done: int
    updated_at: float | None


@dataclass(frozen=True, slots=True)
class Run:
    """One submission of a job, fixed at its start."""

    job_name: str
    submission_id: int
    submitted_at: float
    plan: JobPlan
    external_id: str
    table: str
    stopped_at: float | None = None
    requested_at: float | None = None
    """When the start request arrived, by the gateway's (real) clock, for a run started
    over the API; its ``creation-date``. None for runs the simulator started itself."""
    progress_curve: ProgressCurve = LINEAR
    """How the reported progress follows the running time (see ``_progress``)."""

    @property
    def created_at(self) -> float:
        """The run's ``creation-date``: request time if started over the API."""
        return self.submitted_at if self.requested_at is None else self.requested_at

    @property
    def running_at(self) -> float:
        return self.submitted_at + self.plan.boot_seconds

    @property
    def ended_at(self) -> float:
        """When the planned run ends (stopping may end it earlier: see :meth:`end`)."""
        if self.plan.outcome is JobStatus.FAILURE_ON_SUBMIT:
            return self.running_at
        return self.running_at + self.plan.run_seconds

    def end(self) -> float:
        """When the run actually ends, stopped or not."""
        if self.stopped_at is not None:
            return min(self.stopped_at, self.ended_at)
        return self.ended_at

    @property
    def outcome(self) -> JobStatus:
        if self.stopped_at is not None and self.stopped_at < self.ended_at:
            return JobStatus.STOPPED
        return self.plan.outcome

    @property
    def vanishes_at(self) -> float | None:
        after = self.plan.vanish_after
        return None if after is None else self.submitted_at + after

    @property
    def error_summary(self) -> str:
        return self.plan.error_summary or FAILURES[0][0]

    @property
    def error_details(self) -> str:
        details = self.plan.error_details or FAILURES[0][1]
        return details.replace("{table}", self.table)

    def stop(self, at: float) -> Run:
        """This run stopped at ``at`` (no change if it had already ended)."""
        if at >= self.end():
            return self
        return replace(self, stopped_at=max(at, self.submitted_at))

    def transitions(self) -> list[Transition]:
        """Every state the run enters, in order, future ones included."""
        end = self.end()
        steps = [(JobStatus.BOOTING, self.submitted_at)]
        if self.running_at < end or (
            self.running_at == end
            and self.outcome not in (JobStatus.FAILURE_ON_SUBMIT, JobStatus.STOPPED)
        ):
            steps.append((JobStatus.RUNNING, self.running_at))
        steps.append((self.outcome, end))
        return [Transition(self.job_name, status, at) for status, at in steps]

    def state_at(self, now: float) -> RunState | None:
        """The run at ``now``; None before it was submitted."""
        if now < self.submitted_at:
            return None
        end = self.end()
        rows = self.plan.rows
        if now >= end:
            outcome = self.outcome
            if outcome is JobStatus.SUCCEEDED:
                return RunState(outcome, 100.0, rows, end)
            done = self._rows_by(end)
            progress = -1.0 if outcome is JobStatus.FAILED else self._progress(end)
            return RunState(outcome, progress, done, end)
        if now < self.running_at:
            return RunState(JobStatus.BOOTING, 0.0, 0, None)
        return RunState(JobStatus.RUNNING, self._progress(now), self._rows_by(now), now)

    def _fraction(self, now: float) -> float:
        total = self.plan.run_seconds
        if total <= 0:
            return 1.0
        return min(1.0, max(0.0, (now - self.running_at) / total))

    def _progress(self, now: float) -> float:
        paced = self.plan.progress_seconds
        if paced is None:
            fraction = self._fraction(now)
        else:
            fraction = min(1.0, max(0.0, (now - self.running_at) / paced))
        # Never 100 until the run has actually succeeded.
        return min(99.0, round(100.0 * self.progress_curve.work(fraction), 1))

    def _rows_by(self, now: float) -> int:
        return int(self.plan.rows * self._fraction(now))
