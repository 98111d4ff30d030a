"""``cdm-status simulate``: serve the bundled CDM simulator on a local port."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import anyio

from .._clock import LoopClock
from ._common import EXIT_OK, EXIT_USAGE, CommandError, run_main


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "simulate",
        help="serve a simulated CDM cluster on a local port",
        description="Serve a simulated CDM job API (status, job list, start, stop) on a "
        "local port, with jobs that boot, run and finish on their own, so cdm-status and "
        "your code can be tried without a cloud account. Prints the endpoint, project and "
        "cluster ids, and the environment variables to export. Stop it with Ctrl-C. Needs "
        "the server extra: pip install 'cdm-status[server]'.",
    )
    serving = parser.add_argument_group("serving")
    serving.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    serving.add_argument(
        "--port", type=int, default=8088, help="port to listen on; 0 picks a free one (8088)"
    )
    jobs = parser.add_argument_group("jobs")
    jobs.add_argument(
        "--jobs",
        type=int,
        default=5,
        metavar="N",
        help="number of ordinary jobs, named job_001... and started at once (default 5)",
    )
    jobs.add_argument(
        "--database-job",
        metavar="NAME",
        help="also run a whole-database job NAME with subjobs NAME_table_0001...",
    )
    jobs.add_argument(
        "--tables",
        type=int,
        default=100,
        metavar="N",
        help="tables of the --database-job (default 100)",
    )
    jobs.add_argument(
        "--parallelism",
        type=int,
        default=10,
        metavar="N",
        help="subjobs of the --database-job running at once (default 10)",
    )
    jobs.add_argument(
        "--failure-rate",
        type=float,
        default=0.05,
        metavar="P",
        help="probability that a job or table fails, 0..1 (default 0.05)",
    )
    jobs.add_argument(
        "--progress",
        default="linear",
        metavar="SHAPE",
        help="how running jobs report progress: linear (steady), stalling (stands still "
        "for long stretches, often at 90-99%%), jumpy (steps), zero (0 until the end), "
        "absent (no progress field), mixed (each run draws one) (default linear)",
    )
    jobs.add_argument(
        "--start-order",
        default="in_order",
        metavar="ORDER",
        help="order in which the --database-job's tables take free slots: in_order "
        "(table order) or shuffled (default in_order)",
    )
    jobs.add_argument(
        "--disposable",
        default="NONE",
        metavar="TYPE",
        help="schedulerConfig.disposableType of every job and subjob: NONE (kept), "
        "DELETE_AFTER_SUCCEED (deleted after a successful run) or DELETE (deleted after "
        "any run); a deleted job answers Cdm.0100 (default NONE)",
    )
    jobs.add_argument(
        "--retry",
        default="NONE",
        metavar="TYPE",
        help="retryJobConfig.retryJobType of every job and subjob: NONE, or RETRY_TRIPLE "
        "(a failed run is run again as a new submission, up to three times) (default NONE)",
    )
    jobs.add_argument(
        "--retry-delay",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="simulated seconds from a failed run to its retry under --retry RETRY_TRIPLE "
        "(default 30)",
    )
    jobs.add_argument(
        "--speed",
        type=float,
        default=1.0,
        metavar="X",
        help="jobs run X times faster than real time, e.g. 60 plays an hour in a "
        "minute; request dates and rate limits stay in real time (default 1)",
    )
    jobs.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="S",
        help="random seed for durations, outcomes and faults (default 0)",
    )
    gateway = parser.add_argument_group("gateway")
    gateway.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        metavar="N",
        help="status and list requests allowed per minute each (CDM: 120); start/stop "
        "get ten times as many; 0 = unlimited (default 0)",
    )
    gateway.add_argument(
        "--fault-503",
        type=float,
        default=0.0,
        metavar="P",
        help="probability that a request gets HTTP 503, 0..1 (default 0)",
    )
    gateway.add_argument(
        "--token",
        metavar="T",
        help="accept only X-Auth-Token T (default: accept any request)",
    )
    gateway.add_argument("--ak", metavar="A", help="accept AK/SK signatures with access key A")
    gateway.add_argument("--sk", metavar="S", help="secret key that goes with --ak")
    parser.set_defaults(run=run)


def build_simulator(args: argparse.Namespace) -> Any:
    """The simulator the flags describe (``CommandError(2)`` for impossible ones)."""
    # The simulator is imported only to serve: the other commands never load it.
    from ..testing import (
        DISPOSABLE_TYPES,
        PROGRESS_SHAPES,
        RETRY_TYPES,
        START_ORDERS,
        CDMSimulator,
        Faults,
        JobSetup,
        RateLimits,
        ScaledClock,
        SimulatorAuth,
    )

    for flag, value, allowed in (
        ("--progress", args.progress, PROGRESS_SHAPES),
        ("--start-order", args.start_order, START_ORDERS),
        ("--disposable", args.disposable, DISPOSABLE_TYPES),
        ("--retry", args.retry, RETRY_TYPES),
    ):
        if value not in allowed:
            raise CommandError(f"{flag} must be one of {', '.join(allowed)}", EXIT_USAGE)
    if (args.ak is None) != (args.sk is None):
        raise CommandError("--ak and --sk go together", EXIT_USAGE)
    for flag, value in (("--fault-503", args.fault_503), ("--failure-rate", args.failure_rate)):
        if not 0.0 <= value <= 1.0:
            raise CommandError(f"{flag} must be between 0 and 1", EXIT_USAGE)
    if not (args.speed > 0 and math.isfinite(args.speed)):
        raise CommandError("--speed must be a positive, finite number", EXIT_USAGE)
    if not (args.retry_delay >= 0 and math.isfinite(args.retry_delay)):
        raise CommandError("--retry-delay must be a finite number >= 0", EXIT_USAGE)
    setup = JobSetup(disposable=args.disposable, retry=args.retry, retry_delay=args.retry_delay)
    if not 0 <= args.port <= 65535:
        raise CommandError("--port must be between 0 and 65535", EXIT_USAGE)
    for flag, value in (("--jobs", args.jobs), ("--rate-limit", args.rate_limit)):
        if value < 0:
            raise CommandError(f"{flag} must not be negative", EXIT_USAGE)
    if args.tables < 1 or args.parallelism < 1:
        raise CommandError("--tables and --parallelism must be at least 1", EXIT_USAGE)
    auth = None
    if args.token or args.ak:
        # Signatures are dated by real clocks, so check them against real time.
        auth = SimulatorAuth(token=args.token, ak=args.ak, sk=args.sk, clock=LoopClock())
    limit = args.rate_limit or None
    limits = RateLimits(status=limit, list=limit, start_stop=None if limit is None else 10 * limit)
    simulator = CDMSimulator(
        clock=ScaledClock(args.speed),
        gateway_clock=LoopClock(),
        seed=args.seed,
        auth=auth,
        limits=limits,
        faults=Faults(unavailable=args.fault_503),
        progress=args.progress,
    )
    width = max(3, len(str(args.jobs)))
    for index in range(1, args.jobs + 1):
        simulator.add_job(f"job_{index:0{width}d}", failure_rate=args.failure_rate, setup=setup)
    if args.database_job:
        try:
            simulator.add_database_job(
                args.database_job,
                args.tables,
                parallelism=args.parallelism,
                failure_rate=args.failure_rate,
                start_order=args.start_order,
                setup=setup,
            )
        except ValueError as error:
            raise CommandError(f"--database-job: {error}", EXIT_USAGE) from None
    return simulator


def served_jobs(names: list[str], args: argparse.Namespace) -> str:
    """The job names a user can ask for, shortened when there are many."""
    plain = [
        name
        for name in names
        if not (args.database_job and name.startswith(args.database_job + "_"))
    ]
    shown = ", ".join(plain) if len(plain) <= 6 else f"{plain[0]} ... {plain[-1]}"
    text = f"{len(names)}" + (f" ({shown})" if plain else "")
    if args.database_job:
        text += (
            f"; whole-database job {args.database_job} with subjobs "
            f"{args.database_job}_table_0001 ... ({args.tables} tables)"
        )
    return text


def banner(simulator: Any, endpoint: str, args: argparse.Namespace) -> str:
    """What to tell the user: where the simulator is and how to point a client at it."""
    lines = [
        f"CDM simulator listening on {endpoint} (speed x{args.speed:g}, seed {args.seed}, "
        f"{args.progress} progress)",
        f"  project id: {simulator.project_id}",
        f"  cluster id: {simulator.cluster_id}",
        f"  jobs:       {served_jobs(simulator.jobs(), args)}",
        f"  settings:   disposableType {args.disposable}, retryJobType {args.retry}",
        "",
        "Point cdm-status (or CDMClient.from_env) at it:",
        f"  export CDM_ENDPOINT={endpoint}",
        f"  export HUAWEICLOUD_SDK_PROJECT_ID={simulator.project_id}",
        f"  export CDM_CLUSTER_ID={simulator.cluster_id}",
    ]
    if args.ak:
        lines += [
            f"  export HUAWEICLOUD_SDK_AK={args.ak}",
            f"  export HUAWEICLOUD_SDK_SK={args.sk}",
        ]
    elif args.token:
        lines.append(f"  export CDM_AUTH_TOKEN={args.token}")
    else:
        lines.append("  export CDM_AUTH_TOKEN=simulator   # auth is off: any token will do")
    lines += ["", "Press Ctrl-C to stop."]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn  # noqa: F401  (only to learn whether the server extra is there)
    except ImportError:
        raise CommandError(
            "simulate needs the server extra: pip install 'cdm-status[server]'", EXIT_USAGE
        ) from None
    simulator = build_simulator(args)
    from ..testing._server import serve

    async def main() -> None:
        async with serve(simulator, args.host, args.port, handle_signals=True) as endpoint:
            print(banner(simulator, endpoint, args), flush=True)
            await anyio.sleep_forever()

    try:
        run_main(main)
    except KeyboardInterrupt:
        pass
    except OSError as error:
        message = f"cannot listen on {args.host}:{args.port}: {error}"
        raise CommandError(message, EXIT_USAGE) from None
    print("CDM simulator stopped.", file=sys.stderr)
    return EXIT_OK
