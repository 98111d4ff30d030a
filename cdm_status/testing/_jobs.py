"""The simulator's jobs: who exists, and the runs each one has had or will have.

Every operation takes the time it happens at (``now``) and only ever appends or replaces
whole :class:`Run` values, so what a job looks like at any moment stays a pure function of
the clock. Whole-database jobs are scheduled entirely when they start: a heap of
``parallelism`` slots hands each table the moment a slot frees up.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from .._models import JobStatus
from .._wire import subjob_name, validate_name
from ._progress import ProgressShape, draw_curve
from ._setup import DEFAULT_SETUP, JobSetup
from ._timeline import JobPlan, LogNormal, Run, RunState, Transition, random_plan

__all__ = ["START_ORDERS", "DatabaseSpec", "Job", "JobError", "JobRegistry", "StartOrder"]

StartOrder = Literal["in_order", "shuffled", "longest_first"]
"""The order in which a whole-database job's tables take free slots."""
START_ORDERS: tuple[StartOrder, ...] = get_args(StartOrder)
"""Every ``StartOrder``: the values ``CDMSimulator.add_database_job(start_order=...)``
takes."""

ACTIVE = frozenset({JobStatus.BOOTING, JobStatus.RUNNING})


class JobError(Exception):
    """An operation CDM refuses; carries the CDM error code and message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_found(name: str) -> JobError:
    return JobError("Cdm.0100", f"Job[{name}] doesn't exist.")


@dataclass(frozen=True, slots=True)
class DatabaseSpec:
    """How a whole-database job's subjobs are planned and run."""

    tables: tuple[str, ...]
    parallelism: int
    failure_rate: float
    plans: Mapping[str, JobPlan]
    run_seconds: tuple[float, float] | LogNormal
    start_order: StartOrder = "in_order"
    boot_seconds: tuple[float, float] = (5.0, 60.0)
    setup: JobSetup = DEFAULT_SETUP
    """The subjobs' settings (delete after run, retry)..."""
    setups: Mapping[str, JobSetup] = field(default_factory=dict)
    """...except the tables named here."""


@dataclass(slots=True)
class Job:
    """One job and its runs (oldest first)."""

    name: str
    job_type: str
    created_at: float
    listed: bool = True
    failure_rate: float = 0.0
    plan: JobPlan | None = None
    runs: list[Run] = field(default_factory=list)
    deleted_at: float | None = None
    database: DatabaseSpec | None = None
    children: tuple[str, ...] = ()
    parent: str | None = None
    born_started: bool = False
    """Started the moment it was created: it was never NEVER_EXECUTED."""
    setup: JobSetup = DEFAULT_SETUP
    disposed_at: float | None = None
    """When CDM deletes it after its latest run (its ``disposable`` setting)."""
    chain_from: int = 0
    """Index in ``runs`` of the latest start's first run (the later ones: its retries)."""

    def gone_at(self) -> float | None:
        """When the job stops existing (deleted, or vanished mid-run), if ever."""
        moments = [run.vanishes_at for run in self.runs if run.vanishes_at is not None]
        if self.deleted_at is not None:
            moments.append(self.deleted_at)
        if self.disposed_at is not None:
            moments.append(self.disposed_at)
        return min(moments) if moments else None

    def exists(self, now: float) -> bool:
        # Asked for every job on every list page: no allocation on the way.
        if self.deleted_at is not None and now >= self.deleted_at:
            return False
        if self.disposed_at is not None and now >= self.disposed_at:
            return False
        for run in self.runs:
            vanishes = run.vanishes_at
            if vanishes is not None and now >= vanishes:
                return False
        return True

    def current(self, now: float) -> tuple[Run, RunState] | None:
        """The newest run submitted by ``now``, and its state then."""
        for run in reversed(self.runs):
            state = run.state_at(now)
            if state is not None:
                return run, state
        return None

    def status(self, now: float) -> JobStatus:
        current = self.current(now)
        return JobStatus.NEVER_EXECUTED if current is None else current[1].status


class JobRegistry:
    """Every job of one simulated cluster.

    ``rng`` draws durations and outcomes; ``progress_rng`` each run's progress curve (of
    ``progress`` shape) and ``order_rng`` shuffled start orders, apart, so that neither
    changes when jobs start or end.
    """

    def __init__(
        self,
        rng: random.Random,
        *,
        progress: ProgressShape = "linear",
        progress_rng: random.Random | None = None,
        order_rng: random.Random | None = None,
    ) -> None:
        self._rng = rng
        self._progress = progress
        self._progress_rng = progress_rng or random.Random(0)
        self._order_rng = order_rng or random.Random(0)
        self._jobs: dict[str, Job] = {}
        self._listings: dict[
            tuple[str, str], tuple[list[Job], list[tuple[Job, float | None]] | None]
        ] = {}
        self._submissions = 0

    def names(self) -> list[str]:
        return sorted(self._jobs)

    def get(self, name: str, now: float) -> Job:
        """The job, or ``Cdm.0100`` if it does not exist (any more) at ``now``."""
        job = self._jobs.get(name)
        if job is None or not job.exists(now):
            raise not_found(name)
        return job

    def record(self, name: str) -> Job:
        """The job's record even if it is gone (ground truth); KeyError if never added."""
        return self._jobs[name]

    def listed(self, needle: str, job_type: str, now: float) -> list[Job]:
        """The jobs the list API shows for a filter and a type at ``now``, in name order.

        Every list page asks this; with thousands of jobs a scan per request would cost
        more than everything else the simulator does. The name/type match is cached until
        the next change to any job, with each job's end of existence, so a request only
        compares numbers (and nothing at all when no job can disappear).
        """
        key = (needle, job_type)
        cached = self._listings.get(key)
        if cached is None:
            candidates = [
                (job, job.gone_at())
                for job in (self._jobs[name] for name in sorted(self._jobs))
                if job.listed and job.job_type == job_type and needle in job.name.lower()
            ]
            mortal = any(gone is not None for _, gone in candidates)
            cached = ([job for job, _ in candidates], candidates if mortal else None)
            self._listings[key] = cached
        everyone, with_ends = cached
        if with_ends is None:
            return everyone
        return [job for job, gone in with_ends if gone is None or now < gone]

    def _changed(self) -> None:
        self._listings.clear()

    # ------------------------------------------------------------------ creation

    def add(
        self,
        name: str,
        *,
        now: float,
        job_type: str,
        plan: JobPlan | None = None,
        failure_rate: float = 0.0,
        listed: bool = True,
        started: bool = False,
        setup: JobSetup = DEFAULT_SETUP,
    ) -> Job:
        validate_name(name, "job name")
        existing = self._jobs.get(name)
        if existing is not None and existing.exists(now):
            raise ValueError(f"job {name!r} already exists")
        job = Job(name, job_type, now, listed=listed, failure_rate=failure_rate, plan=plan)
        job.setup = setup
        self._jobs[name] = job
        self._changed()
        if started:
            job.born_started = True
            self.start(name, now)
        return job

    def add_database(
        self, parent: str, spec: DatabaseSpec, *, now: float, listed: bool, started: bool
    ) -> tuple[Job, list[Job]]:
        names = [subjob_name(parent, table) for table in spec.tables]
        if len(set(names)) != len(names):
            raise ValueError("table names must be unique")
        for name in [parent, *names]:
            existing = self._jobs.get(name)
            if existing is not None and existing.exists(now):
                raise ValueError(f"job {name!r} already exists")
        job = self.add(parent, now=now, job_type="BATCH_JOB")
        job.database = spec
        job.children = tuple(names)
        children = []
        for table, name in zip(spec.tables, names, strict=True):
            setup = spec.setups.get(table, spec.setup)
            child = self.add(name, now=now, job_type="BATCH_JOB", listed=listed, setup=setup)
            child.parent = parent
            children.append(child)
        if started:
            for each in [job, *children]:
                each.born_started = True
            self.start(parent, now)
        return job, children

    # ------------------------------------------------------------------ runs

    def _run(self, job: Job, plan: JobPlan, at: float, table: str) -> Run:
        self._submissions += 1
        curve = plan.progress
        if curve is None:
            curve = draw_curve(self._progress, self._progress_rng)
        return Run(
            job_name=job.name,
            submission_id=len(job.runs) + 1,
            submitted_at=at,
            plan=plan,
            external_id=f"job_local{self._rng.randrange(10**9, 10**10)}_{self._submissions:04d}",
            table=table,
            progress_curve=curve,
        )

    def start(self, name: str, now: float, *, requested_at: float | None = None) -> Run:
        """A new run of ``name`` from ``now``; ``Cdm.0052`` if one is running.

        ``requested_at``: when the start request arrived (real time), the run's creation
        date; the simulator clock may run faster than real time.
        """
        self._changed()  # runs or existence change: list caches are stale
        job = self.get(name, now)
        if job.status(now) in ACTIVE:
            raise JobError("Cdm.0052", f"Job[{name}] is running.")
        # A run scheduled for later (a subjob waiting for a slot) is replaced by this one.
        job.runs = [run for run in job.runs if run.submitted_at <= now]
        if job.database is not None:
            return self._start_database(job, now, requested_at)
        plan = job.plan or random_plan(self._rng, failure_rate=job.failure_rate)
        run = replace(self._run(job, plan, now, table=name), requested_at=requested_at)
        job.chain_from = len(job.runs)
        job.runs.append(run)
        self._retry(job, lambda: random_plan(self._rng, failure_rate=job.failure_rate))
        return run

    def _retry(self, job: Job, draw: Callable[[], JobPlan]) -> None:
        """Add the retries CDM makes of the job's latest run (its ``retry`` setting), and
        when CDM deletes it after the last one (its ``disposable`` setting)."""
        setup = job.setup
        for index in range(setup.retries):
            last = job.runs[-1]
            if last.outcome is not JobStatus.FAILED:
                break
            plan = setup.retry_plans[index] if index < len(setup.retry_plans) else draw()
            submitted = last.ended_at + setup.retry_delay
            job.runs.append(self._run(job, plan, submitted, table=last.table))
        self._dispose(job)

    @staticmethod
    def _dispose(job: Job) -> None:
        """When CDM deletes the job after its latest run, if its setting says so."""
        last = job.runs[-1] if job.runs else None
        if last is None or not job.setup.deleted_after(last.outcome is JobStatus.SUCCEEDED):
            job.disposed_at = None
        else:
            job.disposed_at = last.end() + job.setup.delete_delay

    def _start_database(self, job: Job, now: float, requested_at: float | None) -> Run:
        spec = job.database
        assert spec is not None
        slots = [now] * spec.parallelism
        first_running = None
        last_end = now
        failed: list[Run] = []
        rows = 0
        order = list(range(len(spec.tables)))
        drawn: dict[int, JobPlan] = {}
        if spec.start_order == "shuffled":
            # Durations are still drawn in slot order: the same slot timeline as in order,
            # only which table takes which slot changes.
            self._order_rng.shuffle(order)
        elif spec.start_order == "longest_first":
            # Each table's run drawn in table order, the biggest (as planned: a failing
            # run was planned for longer than it lasts) started first.
            drawn = {index: self._table_plan(spec, index) for index in order}
            order.sort(key=lambda i: -(drawn[i].progress_seconds or drawn[i].run_seconds))
        for index in order:
            table, child_name = spec.tables[index], job.children[index]
            child = self._jobs[child_name]
            child.runs = [run for run in child.runs if run.submitted_at <= now]
            start = heapq.heappop(slots)
            plan = drawn.get(index) or self._table_plan(spec, index)
            run = self._run(child, plan, start, table=table)
            if start == now:  # started by the request itself; later ones by the parent
                run = replace(run, requested_at=requested_at)
            child.chain_from = len(child.runs)
            child.runs.append(run)
            self._retry(child, lambda: self._drawn_plan(spec))
            final = child.runs[-1]  # a subjob holds its slot through its retries
            heapq.heappush(slots, final.ended_at)
            first_running = min(first_running or run.running_at, run.running_at)
            last_end = max(last_end, final.ended_at)
            rows += final.plan.rows if final.outcome is JobStatus.SUCCEEDED else 0
            if final.outcome is not JobStatus.SUCCEEDED:
                failed.append(final)
        boot = (first_running or now) - now
        summary = details = None
        if failed:
            summary = f"{len(failed)} of {len(spec.tables)} tables failed"
            details = "\n".join(f"{run.job_name}: {run.error_summary}" for run in failed[:20])
        parent_plan = JobPlan(
            boot_seconds=boot,
            run_seconds=max(0.0, last_end - now - boot),
            outcome=JobStatus.FAILED if failed else JobStatus.SUCCEEDED,
            rows=rows,
            error_summary=summary,
            error_details=details,
        )
        run = replace(self._run(job, parent_plan, now, table=job.name), requested_at=requested_at)
        job.runs.append(run)
        return run

    def _table_plan(self, spec: DatabaseSpec, index: int) -> JobPlan:
        return spec.plans.get(spec.tables[index]) or self._drawn_plan(spec)

    def _drawn_plan(self, spec: DatabaseSpec) -> JobPlan:
        """A table's run drawn as the spec says (also each retry of a failed run)."""
        return random_plan(
            self._rng,
            failure_rate=spec.failure_rate,
            boot_seconds=spec.boot_seconds,
            run_seconds=spec.run_seconds,
        )

    def stop(self, name: str, now: float) -> Run:
        """Stop the running run of ``name``; ``Cdm.0053`` if none runs."""
        self._changed()  # runs or existence change: list caches are stale
        job = self.get(name, now)
        current = job.current(now)
        if current is None or current[1].status not in ACTIVE:
            raise JobError("Cdm.0053", f"Job[{name}] is not running.")
        run = current[0]
        stopped = run.stop(now)
        job.runs[job.runs.index(run)] = stopped
        job.runs = [run for run in job.runs if run.submitted_at <= now]  # no retry after
        self._dispose(job)
        for child_name in job.children:
            child = self._jobs[child_name]
            # Tables not reached yet never start; those running stop with their parent.
            child.runs = [run for run in child.runs if run.submitted_at <= now]
            if child.runs:
                child.runs[-1] = child.runs[-1].stop(now)
            self._dispose(child)
        return stopped

    def delete(self, name: str, now: float, at: float | None = None) -> None:
        """Delete ``name`` at ``at`` (default ``now``) with its subjobs."""
        self._changed()  # runs or existence change: list caches are stale
        job = self.get(name, now)
        when = now if at is None else at
        for each in [job, *(self._jobs[child] for child in job.children)]:
            each.deleted_at = when if each.deleted_at is None else min(each.deleted_at, when)

    # ------------------------------------------------------------------ ground truth

    def transitions(self, name: str) -> list[Transition]:
        """Every state ``name`` enters, future ones included, in order."""
        job = self.record(name)
        steps: list[Transition] = []
        if not (job.born_started and job.runs and job.runs[0].submitted_at == job.created_at):
            steps.append(Transition(name, JobStatus.NEVER_EXECUTED, job.created_at))
        for run in job.runs:
            steps.extend(run.transitions())
        gone = job.gone_at()
        return [step for step in steps if gone is None or step.at < gone]


def table_names(tables: Sequence[str] | int) -> tuple[str, ...]:
    """The table names as given, or ``table_0001``... for a count."""
    if isinstance(tables, int):
        if tables < 1:
            raise ValueError("a whole-database job needs at least one table")
        width = max(4, len(str(tables)))
        return tuple(f"table_{index:0{width}d}" for index in range(1, tables + 1))
    names = tuple(tables)
    if not names:
        raise ValueError("a whole-database job needs at least one table")
    return names
