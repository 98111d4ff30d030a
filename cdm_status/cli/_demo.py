"""``cdm-status demo`` (``make demo``): ``wait`` on a whole-database migration, end to end.

It serves the bundled simulator on a loopback port with a migration of about 120 tables
(a handful fail; a quarter are one-time subjobs that CDM deletes after they succeed; one
fails once and succeeds when CDM retries it; 5% of answers are 503, CDM's 120
requests/minute limit is on) and runs
:func:`~._wait.run_wait`, the code of ``cdm-status wait --subjobs-of``, against it over
real HTTP. Simulated time runs fast, so about an hour of migration plays in well under a
minute; the simulator's gateway runs on the same fast clock, so the waiter's budget and
the gateway's limit agree, as they would on a real cluster in real time.

The demo then checks itself against the simulator's ground truth (every outcome as
planned, the rate limit kept) and exits 0 when it ran as designed: the failed tables are
part of the show.
"""

from __future__ import annotations

import argparse
import io
import itertools
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from .._auth import TokenAuth
from .._client import CDMClient
from .._events import Event, JobOutcome, OutcomeKind
from .._models import JobStatus
from .._retry import RetryPolicy
from ._common import EXIT_INTERRUPTED, EXIT_JOB_FAILED, EXIT_OK, EXIT_USAGE, CommandError, run_main
from ._sinks import Sink, WaitResult
from ._tally import Tally
from ._wait import WaitOptions, people_sink, run_wait

if TYPE_CHECKING:
    from ..testing import CDMSimulator

PARENT = "erp_nightly"
TOKEN = "demo-token"
TARGET_SECONDS = 40.0
"""Wall-clock seconds the migration should take; the speed-up is chosen to fit."""

_AREAS = ("sales", "crm", "billing", "stock", "hr", "web")
_ENTITIES = (
    "orders", "order_items", "customers", "addresses", "invoices", "payments", "refunds",
    "products", "prices", "stock_levels", "warehouses", "shipments", "returns", "suppliers",
    "employees", "departments", "sessions", "page_views", "events", "audit_log",
)  # fmt: skip


def table_names(count: int) -> list[str]:
    """``count`` plausible source tables (``sales_orders``, ``crm_orders`` ...)."""
    pairs = itertools.product(_ENTITIES, _AREAS)
    names = [f"{area}_{entity}" for entity, area in itertools.islice(pairs, count)]
    names += [f"extra_table_{index:04d}" for index in range(len(names) + 1, count + 1)]
    return names


def register(commands: Any) -> None:
    """Add ``demo`` to the subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "demo",
        help="watch a simulated whole-database migration (no cloud account needed)",
        description="Serve a simulated CDM cluster on a loopback port and run "
        "'cdm-status wait --subjobs-of' against it: a migration of about 120 tables, some "
        "of which fail, with 5%% of answers HTTP 503 and CDM's 120 requests/minute limit, "
        "played fast enough to end in under a minute. Exits 0 when the demo ran as "
        "designed (the failed tables included), 130 on Ctrl-C.",
    )
    parser.add_argument(
        "--tables", type=int, default=120, metavar="N", help="tables to migrate (120)"
    )
    parser.add_argument(
        "--seed", type=int, default=7, metavar="S", help="random seed of the migration (7)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=TARGET_SECONDS,
        metavar="T",
        help=f"about how long the migration takes, in real seconds ({TARGET_SECONDS:g})",
    )
    parser.set_defaults(run=run)


@dataclass(frozen=True, slots=True)
class Migration:
    """What the demo migrates, and how fast its clock runs."""

    tables: list[str]
    seed: int
    speed: float
    parallelism: int = 12
    failure_rate: float = 0.04
    run_seconds: tuple[float, float] = (60.0, 900.0)
    self_deleting: float = 0.25
    """Share of the tables that are one-time subjobs: CDM deletes them after success."""
    retried: int = 2
    """Index of the table that fails once and succeeds when CDM retries it."""


def plan(tables: int, seed: int, seconds: float) -> Migration:
    """The migration, with the speed-up that plays it in about ``seconds`` real seconds."""
    from ..testing import CDMSimulator, FakeClock

    names = table_names(tables)
    draft = Migration(names, seed, speed=1.0)
    # The plans depend only on the seed, so a twin on a fake clock tells how long the
    # migration takes in simulated time.
    twin = CDMSimulator(clock=FakeClock(), seed=seed)
    subjobs = add_migration(twin, draft)
    start = twin.clock.time()
    ends = [twin.finished_at(name) or start for name in subjobs]
    duration = max(ends) - start
    return Migration(names, seed, speed=max(1.0, duration / seconds))


def add_migration(
    simulator: CDMSimulator, migration: Migration, *, started: bool = True
) -> list[str]:
    """Add the whole-database job to ``simulator`` (``started``: running from now, else
    to start with ``simulator.start_job(PARENT)``); returns the subjob names."""
    from ..testing import JobPlan, JobSetup

    rng = random.Random(f"{migration.seed}:demo")
    tables = migration.tables
    count = round(len(tables) * migration.self_deleting)
    setups = dict.fromkeys(rng.sample(tables, count), JobSetup(disposable="DELETE_AFTER_SUCCEED"))
    plans = {}
    if len(tables) > migration.retried:
        retried = tables[migration.retried]
        low, high = migration.run_seconds
        plans[retried] = JobPlan(
            boot_seconds=rng.uniform(5.0, 30.0),
            run_seconds=rng.uniform(low, high) / 3,
            outcome=JobStatus.FAILED,
            error_summary="GENERIC_JDBC_CONNECTOR_0002:Unable to execute the SQL statement",
        )
        again = JobPlan(boot_seconds=rng.uniform(5.0, 30.0), run_seconds=rng.uniform(low, high))
        setups[retried] = JobSetup(retry="RETRY_TRIPLE", retry_plans=(again,))
    return simulator.add_database_job(
        PARENT,
        tables,
        parallelism=migration.parallelism,
        failure_rate=migration.failure_rate,
        run_seconds=migration.run_seconds,
        plans=plans,
        setups=setups,
        started=started,
    )


def settings_line(outcomes: dict[str, JobOutcome]) -> str | None:
    """What the job settings did, in one line (None when they did nothing)."""
    inferred = sum(outcome.inferred for outcome in outcomes.values())
    retried = [
        name
        for name, outcome in outcomes.items()
        if outcome.attempts and outcome.kind is OutcomeKind.SUCCEEDED
    ]
    parts = []
    if inferred:
        parts.append(
            f"{inferred} one-time subjobs were gone when looked at: CDM deletes them after "
            "success (DELETE_AFTER_SUCCEED), so each counts as succeeded"
        )
    if retried:
        parts.append(
            f"{', '.join(retried)} failed, then succeeded when CDM retried it (RETRY_TRIPLE)"
        )
    return "; ".join(parts) + "." if parts else None


def checks(simulator: CDMSimulator, outcomes: dict[str, OutcomeKind], code: int) -> list[str]:
    """What did not go as designed (empty: the demo worked)."""
    problems = []
    planned_failures = 0
    for name in simulator.jobs():
        final = simulator.final_status(name)
        if name == PARENT or final is None:
            continue
        expected = OutcomeKind.SUCCEEDED if final.is_success else OutcomeKind.FAILED
        planned_failures += expected is OutcomeKind.FAILED
        seen = outcomes.get(name)
        if seen is not expected:
            problems.append(f"{name} ended {seen or 'unseen'} but the simulator planned {final}")
    wanted = EXIT_JOB_FAILED if planned_failures else EXIT_OK
    if code != wanted:
        problems.append(f"wait exited {code}, not {wanted}")
    busiest = simulator.stats.max_in_window("status", 60.0)
    if busiest > 120:
        problems.append(f"{busiest} status requests in one minute: over CDM's limit of 120")
    return problems


def traffic_line(simulator: CDMSimulator) -> str:
    """What the simulated API served, in one line."""
    stats = simulator.stats
    status, listed = stats.by_endpoint["status"], stats.by_endpoint["list"]
    unavailable, throttled = stats.by_status[503], stats.by_status[429]
    busiest = stats.max_in_window("status", 60.0)
    return (
        f"API traffic: {status:,} status and {listed:,} list requests; {unavailable:,} "
        f"answered 503 and were retried, {throttled:,} throttled; at most {busiest} status "
        "requests in any simulated minute (CDM allows 120)"
    )


class _Keep:
    """A sink that passes everything on and keeps the final tally, to check it after;
    ``on_start`` runs as the watch starts."""

    def __init__(self, inner: Sink, on_start: Callable[[], None]) -> None:
        self.inner = inner
        self.refresh_interval = inner.refresh_interval
        self.tally: Tally | None = None
        self._on_start = on_start

    def start(self, tally: Tally) -> None:
        self.inner.start(tally)
        self._on_start()

    def handle(self, event: Event, at: datetime, tally: Tally) -> None:
        self.inner.handle(event, at, tally)

    def tick(self, tally: Tally, elapsed: float) -> None:
        self.inner.tick(tally, elapsed)

    def finish(self, tally: Tally, result: WaitResult) -> None:
        self.tally = tally
        self.inner.finish(tally, result)

    def close(self) -> None:
        self.inner.close()


USER_COMMAND = (
    f"cdm-status wait --subjobs-of {PARENT} --tables-file tables.txt "
    "--region cn-north-4 --project-id PROJECT_ID --cluster-id CLUSTER_ID"
)


async def play(migration: Migration, out: TextIO) -> int:
    """Serve the simulator, run ``wait`` against it, check the result; the exit code."""
    from ..testing import CDMSimulator, Faults, RateLimits, ScaledClock, SimulatorAuth, serve

    clock = ScaledClock(migration.speed)
    simulator = CDMSimulator(
        clock=clock,
        gateway_clock=clock,  # the 120/minute limit counts simulated minutes, as the waiter does
        seed=migration.seed,
        limits=RateLimits.cdm_defaults(),
        faults=Faults(unavailable=0.05),
        auth=SimulatorAuth(token=TOKEN),
    )
    names = add_migration(simulator, migration, started=False)
    title = (
        f"cdm-status demo: {PARENT}, {len(names)} tables on a simulated CDM "
        f"(time x{migration.speed:.0f})"
    )
    # The migration starts with the watch, not before it: at thousands of times real
    # speed, a one-time table could otherwise run and be deleted while the command is
    # still starting, and a job never seen is "not found", whatever it did.
    keep = _Keep(people_sink(out, title=title), on_start=lambda: simulator.start_job(PARENT))
    async with serve(simulator, "127.0.0.1", 0) as endpoint:
        print(f"Simulated CDM serving on {endpoint}; watching {len(names)} subjobs.", file=out)
        client = CDMClient(
            endpoint,
            simulator.project_id,
            simulator.cluster_id,
            auth=TokenAuth(TOKEN),
            retry=RetryPolicy(random=random.Random(migration.seed), sleep=clock.sleep),
            clock=clock,
        )
        options = WaitOptions(
            clock=clock,
            random=random.Random(migration.seed),
            handle_sigint=True,
            # The demo says itself whether the failures were the planned ones.
            stderr=io.StringIO(),
        )
        async with client:
            code = await run_wait(client, names, options, keep)
    if code == EXIT_INTERRUPTED:
        print("cdm-status: interrupted", file=sys.stderr)
        return code
    assert keep.tally is not None
    outcomes = {name: outcome.kind for name, outcome in keep.tally.outcomes.items()}
    problems = checks(simulator, outcomes, code)
    print(traffic_line(simulator), file=out)
    settings = settings_line(keep.tally.outcomes)
    if settings:
        print(settings, file=out)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        print(f"cdm-status: the demo did not run as designed: {problems[0]}{more}", file=sys.stderr)
        return EXIT_JOB_FAILED
    failed = sum(1 for kind in outcomes.values() if kind is OutcomeKind.FAILED)
    planned = f": {failed} tables failed on purpose, so 'wait' alone exits {code}" if failed else ""
    print(f"Every outcome matched the simulator's plan{planned}.", file=out)
    print("\nThe same watch on your own cluster (credentials from the environment):", file=out)
    print(f"  {USER_COMMAND}", file=out)
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    """The ``demo`` subcommand."""
    if not 1 <= args.tables <= 5000:
        raise CommandError("--tables must be between 1 and 5000", EXIT_USAGE)
    if not args.seconds > 0:
        raise CommandError("--seconds must be positive", EXIT_USAGE)
    try:
        import uvicorn  # noqa: F401  (the server extra)
    except ImportError:
        raise CommandError(
            "the demo serves a simulator and needs uvicorn: pip install 'cdm-status[server]'",
            EXIT_USAGE,
        ) from None
    migration = plan(args.tables, args.seed, args.seconds)
    return run_main(play, migration, sys.stdout)
