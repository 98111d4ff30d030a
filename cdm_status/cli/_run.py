"""``cdm-status run JOB``: start a job, then wait for that very run.

The run is told apart from older ones by its creation date as the start's answer gives it:
the server's own clock (a ``since`` that is a run's creation date names that run), so no
skew between this host and CDM, minutes or years, can make the new run look stale or an
old one look new. An answer without a creation date leaves the time the start was asked,
on this host's clock, which the waiter reads through the server clock's offset that the
client estimates, less the skew allowance: what that offset is not known to.

A ``--budget`` shared through Redis is joined before the start, so a budget that cannot be
used at all (a missing extra) ends the command before any job is started; the start itself
takes no slot of it: start and stop have their own limit (1,200 a minute per user), which
the shared status and list budgets do not count, and a throttled start is repeated anyway.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
from datetime import datetime
from typing import Any

from .._clock import utc_datetime
from .._errors import CDMError, TransportError
from .._models import Submission
from .._server_time import DATE_RESOLUTION, ServerClock
from .._wire import validate_name
from ._budget import (
    add_budget_arguments,
    add_rate_arguments,
    budget_from_args,
    budget_setting,
    check_joined,
    clock_from_args,
)
from ._common import (
    EXIT_API,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandError,
    add_connection_arguments,
    client_from_args,
    describe_api_error,
    run_main,
)
from ._sinks import OutputClosed, format_time, write_line
from ._wait import (
    SINCE_SKEW,
    add_deleted_argument,
    choose_sink,
    options_from_args,
    parse_duration,
    run_wait,
)

_EPILOG = """\
exit codes (as for wait):
  0    the run succeeded
  1    the run failed or was stopped
  2    usage or configuration error
  3    the timeout expired with the run still going
  4    the start was refused (e.g. Cdm.0052: already running), the credentials were
       refused, or the API stayed unreachable
  130  interrupted (Ctrl-C); during the start, the job may have started:
       cdm-status status JOB tells

The start is sent once: it is repeated only when it surely did nothing (throttled with
429, or the connection never opened). With --budget, the wait draws on the budget shared
with the other processes; the start takes no slot of it (starts have their own limit).

example:
  cdm-status run orders_daily --variables day=2026-01-01 region=north --timeout 3600
"""


def _variable(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"not NAME=VALUE: {text!r}")
    return name.strip(), value


def _variables(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """``--variables`` as a mapping; CommandError(2) for a name given twice (which value
    was meant cannot be known)."""
    variables: dict[str, str] = {}
    for name, value in pairs:
        if name in variables:
            raise CommandError(
                f"--variables: {name} is given twice: give each name once", EXIT_USAGE
            )
        variables[name] = value
    return variables


def register(commands: Any) -> None:
    """Add ``run`` to the subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "run",
        help="start a job, then wait for that run to finish",
        description="Start a CDM job (PUT .../start), then wait for the run it started, "
        "shown as 'wait' shows it. The run is recognised by the creation date the start "
        "returned, on the server's clock.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("job", metavar="JOB", help="the job to start")
    parser.add_argument(
        "--variables",
        nargs="+",
        action="extend",
        type=_variable,
        default=[],
        metavar="NAME=VALUE",
        help="values for the job's ${NAME} placeholders",
    )
    parser.add_argument(
        "--timeout",
        type=parse_duration,
        metavar="SECONDS",
        help="stop waiting after this long (exit 3); the run goes on",
    )
    add_rate_arguments(parser)
    add_deleted_argument(parser)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object per line")
    output.add_argument("--quiet", action="store_true", help="print only a failure and the summary")
    add_connection_arguments(parser)
    add_budget_arguments(parser)
    parser.set_defaults(run=run)


def _started_line(submission: Submission, *, as_json: bool) -> str:
    created = submission.creation_date
    if as_json:
        return json.dumps(
            {
                "event": "started",
                "job": submission.job_name,
                "status": submission.raw_status,
                "submission_id": submission.submission_id,
                "created": None if created is None else created.isoformat(),
            }
        )
    when = "" if created is None else f" (created {format_time(created)})"
    return f"started {submission.job_name}: {submission.raw_status}{when}"


def run_since(submission: Submission, asked_at: float, server: ServerClock) -> datetime:
    """The ``since`` of the run just started: its creation date (which names it, on the
    server's clock); without one, the time the start was asked (this host's clock, which
    the waiter reads through the server clock's offset) less the skew allowance: what the
    offset is not known to (its bounds' width, at least the ``Date`` header's second), or
    :data:`SINCE_SKEW` while the answers have not bounded it from both sides."""
    if submission.creation_date is not None:
        return submission.creation_date
    allowance = server.uncertainty if server.known else math.inf
    if not math.isfinite(allowance):
        allowance = SINCE_SKEW
    return utc_datetime(asked_at - max(allowance, DATE_RESOLUTION))


def run(args: argparse.Namespace) -> int:
    """The ``run`` subcommand."""
    try:
        job = validate_name(args.job, "job name")
    except ValueError as error:
        raise CommandError(str(error), EXIT_USAGE) from None
    variables = _variables(args.variables)
    clock = clock_from_args(args)
    client = client_from_args(args, clock=clock)
    budget = budget_from_args(args, client, clock=clock)
    if budget is not None:
        client.share_budget(budget, budget.list_budget)
    logger = logging.getLogger("cdm_status")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    sink = choose_sink(args, sys.stdout)

    starting = False

    async def main() -> int:
        nonlocal starting
        async with client, budget or contextlib.nullcontext():
            check_joined(budget, budget_setting(args))
            asked_at = clock.time()
            try:
                starting = True
                submission = await client.start_job(job, variables=variables)
                starting = False
            except TransportError as error:
                raise CommandError(
                    f"could not tell whether {job} started (no answer to the start): {error}",
                    EXIT_API,
                ) from None
            except CDMError as error:
                raise describe_api_error(error) from None
            try:
                write_line(sys.stdout, _started_line(submission, as_json=args.json))
            except OutputClosed as closed:
                reason = f"{closed.reason}; {job} was started, not waited for"
                raise OutputClosed(reason, EXIT_INTERRUPTED) from None
            since = run_since(submission, asked_at, client.server_clock)
            options = options_from_args(args, since=since, clock=clock)
            return await run_wait(client, [job], options, sink)

    try:
        code: int = run_main(main)
    except KeyboardInterrupt:
        if not starting:
            raise
        # The start may have reached CDM before Ctrl-C: say so, and how to find out.
        raise CommandError(
            f"interrupted: could not tell whether {job} started; check with: "
            f"cdm-status status {job}",
            EXIT_INTERRUPTED,
        ) from None
    return code
