"""``cdm-status wait``: wait for many jobs, show them move, and exit with what happened.

Exit codes (also in docs/guides/cli.md and ``--help``):

==== ==============================================================================
0    every job succeeded (a job that deleted itself after success included)
1    at least one job failed, was stopped, or was not found; or CDM deleted it after
     its run before its result was read (``DELETE``; 0 with ``--deleted-ok``)
2    usage or configuration error
3    the timeout expired with jobs still running
4    the API refused the credentials (or gave another permanent error), or stayed
     unreachable
130  interrupted (Ctrl-C), after printing the summary of what was seen; or the output
     closed (``| head -1``) before the end, no failure seen
==== ==============================================================================

When several apply, the first in this order wins: 130, 4, 1, 3. A job known to have failed
says more than one still running: waiting longer would not turn the run green.

:func:`run_wait` is the one code path from job names to exit code; ``demo`` runs it too.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TextIO

import anyio

from .._batching import STRATEGIES, Strategy
from .._client import CDMClient
from .._clock import Clock, LoopClock, utc_datetime
from .._errors import APIError, CDMError, TransportError
from .._events import JobOutcome, OutcomeKind, PollFailed
from .._retry import RandomSource
from .._schedule import PollPolicy
from .._waiter import JobStatusWaiter
from .._wire import subjob_name, validate_name
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
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    UNREACHABLE_AFTER,
    CommandError,
    add_connection_arguments,
    client_from_args,
    describe_api_error,
    run_main,
)
from ._discover import find_subjobs
from ._interrupt import cancel_on_ctrl_c
from ._sinks import (
    JsonSink,
    OutputClosed,
    PlainSink,
    QuietSink,
    Sink,
    WaitResult,
    format_duration,
)
from ._tally import Tally, describe_error

__all__ = [
    "STRATEGIES",
    "WaitOptions",
    "collect_job_names",
    "exit_code_for",
    "options_from_args",
    "parse_since",
    "people_sink",
    "read_tables_file",
    "register",
    "run",
    "run_wait",
]

SINCE_SKEW = 30.0
"""Seconds a ``--since`` time is moved back: the server's clock dates the runs and may lag
this host's (or the run may have been created a moment before ``now`` was read)."""

MISSING_SAMPLE = 10
"""In a watch of more jobs than this, when this many answered "not found" and none was
seen to exist, the names are wrong (a wrong --subjobs-of): say so then, once."""

UNKNOWN_PLACE_CODES = frozenset({"Cdm.0001"})
"""CDM codes for a project or cluster that does not exist: every job would get it."""

DUMB_TERMINALS = frozenset({"dumb", "unknown"})
"""``TERM`` values of terminals that cannot move the cursor (as ``rich`` reads them)."""

_EPILOG = """\
exit codes:
  0    every job succeeded
  1    at least one job failed, was stopped, or was not found, or was deleted by
       CDM before its result was read (disposableType DELETE; see --deleted-ok)
  2    usage or configuration error
  3    the timeout expired with jobs still running
  4    the API refused the credentials, or stayed unreachable
  130  interrupted (Ctrl-C), after printing the summary of what was seen, or the
       output closed before the end (e.g. | head -1)

examples:
  cdm-status wait orders_daily customers_daily --timeout 3600
  cdm-status wait --subjobs-of nightly_db --tables-file tables.txt --json
  cdm-status wait --subjobs-of nightly_db       # every nightly_db_* the job list shows

waiting for runs you start yourself:
  cdm-status run orders_daily          # starts it, then waits for that very run
  SINCE=$(date -u +%Y-%m-%dT%H:%M:%SZ)  # read the time BEFORE starting the jobs,
  ...start the jobs...
  cdm-status wait orders_daily customers_daily --since "$SINCE"
"""


# ---------------------------------------------------------------------- arguments


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a non-negative number of seconds: {text!r}")
    return value


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


def parse_duration(text: str) -> float:
    """``--timeout``: seconds (``90``, ``2.5``) or units (``30s``, ``15m``, ``6h``, ``1h30m``)."""
    value = text.strip().lower()
    try:
        return _positive_seconds(value)
    except argparse.ArgumentTypeError:
        pass
    found = _DURATION.fullmatch(value)
    if not value or found is None or not any(found.groups()):
        raise argparse.ArgumentTypeError(
            f"not a duration: {text!r} (e.g. 90, 30s, 15m, 6h, 1h30m)"
        ) from None
    hours, minutes, seconds = (float(part or 0) for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def register(commands: Any) -> None:
    """Add ``wait`` to the subcommands."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "wait",
        help="wait for jobs (or a whole-database job's subjobs) to finish",
        description="Wait for CDM jobs to finish, under the API's rate limit.\n"
        "On a terminal it shows a live view; otherwise it prints one line per status\n"
        "change and outcome; --json prints one JSON object per line.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("jobs", nargs="*", metavar="JOB", help="job names to wait for")
    subjobs = parser.add_argument_group(
        "whole-database jobs",
        "Subjobs are named PARENT_TABLE. Without --table or --tables-file, --subjobs-of\n"
        "watches every PARENT_* job the job list shows (both job types, every page).",
    )
    subjobs.add_argument("--subjobs-of", metavar="PARENT", help="the whole-database job")
    subjobs.add_argument(
        "--table", action="append", default=[], metavar="T", help="a source table (repeatable)"
    )
    subjobs.add_argument(
        "--tables-file",
        action="append",
        default=[],
        metavar="FILE",
        help="a file with one table per line; blank lines and # comments are ignored; "
        "'-' reads standard input (repeatable)",
    )
    parser.add_argument(
        "--timeout",
        type=parse_duration,
        metavar="DURATION",
        help="give up after this long (exit 3); default: wait as long as it takes",
    )
    parser.add_argument(
        "--since",
        metavar="now|ISO-8601",
        help=f"ignore runs created before this moment, less {SINCE_SKEW:g}s for clock skew: "
        "'now', or a time with its UTC offset such as 2026-01-01T08:00:00+08:00. Take it "
        "BEFORE starting the jobs (see below), or use 'cdm-status run'",
    )
    add_rate_arguments(parser)
    add_deleted_argument(parser)
    parser.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="auto",
        help="per_job asks each job's status; list reads the job list (100 jobs a "
        "request, its own 120/min budget) and asks a job's status only when it changed; "
        "auto (default) lists when that sees changes sooner",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object per line")
    output.add_argument(
        "--quiet", action="store_true", help="print only the jobs that failed and the summary"
    )
    add_connection_arguments(parser)
    add_budget_arguments(parser)
    parser.set_defaults(run=run)


def add_deleted_argument(parser: argparse.ArgumentParser) -> None:
    """``--deleted-ok``: what a job deleted by CDM before its result was read means."""
    parser.add_argument(
        "--deleted-ok",
        action="store_true",
        help="a job that CDM deleted after its run before its result could be read "
        "(schedulerConfig.disposableType DELETE) counts as done, not failed; to read "
        "its result instead, set disposableType to NONE or DELETE_AFTER_SUCCEED",
    )


def read_tables_file(lines: Iterable[str]) -> list[str]:
    """Table names from a file's lines: stripped; blank lines and ``#`` lines skipped."""
    tables = []
    for number, line in enumerate(lines):
        # A file saved "UTF-8 with BOM" (Windows editors) starts with U+FEFF: not a name.
        text = (line.removeprefix("\ufeff") if number == 0 else line).strip()
        if text and not text.startswith("#"):
            tables.append(text)
    return tables


def collect_job_names(
    jobs: Sequence[str],
    *,
    parent: str | None,
    tables: Sequence[str],
    table_files: Sequence[str] = (),
    stdin: TextIO | None = None,
) -> list[str]:
    """Every job to watch, in the order given, each once; ``CommandError(2)`` if unusable.

    ``jobs`` are plain names; ``tables`` and the tables read from ``table_files`` become
    ``PARENT_TABLE`` subjob names. A subjob also named on its own is watched once. A
    ``parent`` without tables adds nothing here: :func:`run` asks the job list.
    """
    every_table = list(tables)
    for path in table_files:
        try:
            if path == "-":
                every_table += read_tables_file(stdin or sys.stdin)
            else:
                with open(path, encoding="utf-8") as handle:
                    every_table += read_tables_file(handle)
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise CommandError(f"cannot read tables file {path}: {reason}", EXIT_USAGE) from None
    if parent is None and (tables or table_files):
        raise CommandError("--table and --tables-file need --subjobs-of PARENT", EXIT_USAGE)
    if parent is not None and table_files and not every_table:
        raise CommandError(f"--subjobs-of {parent}: the tables file names no table", EXIT_USAGE)
    try:
        names = [validate_name(job, "job name") for job in jobs]
        if parent is not None:
            names += [subjob_name(parent, table) for table in every_table]
    except ValueError as error:
        raise CommandError(str(error), EXIT_USAGE) from None
    if not names and parent is None:
        raise CommandError("name at least one JOB, or --subjobs-of PARENT", EXIT_USAGE)
    return list(dict.fromkeys(names))


def parse_since(text: str | None, *, now: float) -> datetime | None:
    """``--since``: ``now`` (``now`` is epoch seconds) or an ISO-8601 time with its offset,
    moved back by :data:`SINCE_SKEW` (the server's clock dates the runs, not this host's).
    """
    if text is None:
        return None
    value = text.strip()
    when = utc_datetime(now) if value.lower() == "now" else _parse_time(text, value)
    try:
        return when - timedelta(seconds=SINCE_SKEW)
    except OverflowError:  # within the skew of the year 1: nothing is older anyway
        return datetime.min.replace(tzinfo=timezone.utc)


def _parse_time(text: str, value: str) -> datetime:
    if value[-1:] in ("Z", "z"):  # fromisoformat() accepts "Z" only from Python 3.11 on
        value = value[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"--since: {text!r} is neither 'now' nor an ISO-8601 time", EXIT_USAGE
        ) from None
    if when.tzinfo is None:
        # A time without an offset is ambiguous (local or UTC?), and guessing wrong by a
        # few hours would make the run just started look stale or a stale one look new.
        raise CommandError(
            f"--since: {text!r} has no UTC offset; add one, e.g. {text}Z or {text}+08:00",
            EXIT_USAGE,
        )
    try:
        return when.astimezone(timezone.utc)
    except OverflowError:
        raise CommandError(f"--since: {text!r} is out of range in UTC", EXIT_USAGE) from None


# ---------------------------------------------------------------------- running


@dataclass(frozen=True, slots=True)
class WaitOptions:
    """How :func:`run_wait` waits; the command line fills it from its flags."""

    timeout: float | None = None
    since: datetime | None = None
    strategy: str = "auto"
    clock: Clock | None = None
    random: RandomSource | None = None
    poll: PollPolicy | None = None
    handle_sigint: bool = False
    """Turn Ctrl-C into exit 130 after the summary (only in the main thread)."""
    unreachable_after: float | None = UNREACHABLE_AFTER
    stderr: TextIO | None = None
    """Where the one-line reason for a non-zero exit goes; None means ``sys.stderr``."""
    deleted_ok: bool = False
    """A job deleted by CDM before its result was read is no failure (``--deleted-ok``)."""


def options_from_args(
    args: argparse.Namespace,
    *,
    since: datetime | None,
    clock: Clock,
    strategy: str = "auto",
) -> WaitOptions:
    """The options of a command's wait (``wait``, ``run``): ``--timeout`` and the rest.
    The request rates and the ``--budget`` are the client's (see ``client_from_args``)."""
    return WaitOptions(
        timeout=args.timeout,
        since=since,
        strategy=strategy,
        clock=clock,
        handle_sigint=True,
        deleted_ok=getattr(args, "deleted_ok", False),
    )


def _strategy(name: str) -> Strategy:
    for strategy in STRATEGIES:  # ``--strategy`` values, as JobStatusWaiter takes them
        if strategy == name:
            return strategy
    raise CommandError(f"--strategy must be one of {', '.join(STRATEGIES)}", EXIT_USAGE)


def exit_code_for(
    outcomes: Iterable[JobOutcome],
    *,
    total: int | None = None,
    interrupted: bool = False,
    unreachable: bool = False,
    deleted_ok: bool = False,
) -> int:
    """The exit code for a watch's outcomes (see the module docstring for the order).

    ``total`` counts jobs without an outcome yet as still running; ``deleted_ok`` counts
    a job deleted before its result was read as done, not failed.
    """
    if interrupted:
        return EXIT_INTERRUPTED
    if unreachable:
        return EXIT_API
    kinds = [outcome.kind for outcome in outcomes]
    if OutcomeKind.ERROR in kinds:
        return EXIT_API
    if OutcomeKind.FAILED in kinds or OutcomeKind.NOT_FOUND in kinds:
        return EXIT_JOB_FAILED
    if OutcomeKind.DELETED in kinds and not deleted_ok:
        return EXIT_JOB_FAILED
    unfinished = total is not None and len(kinds) < total
    if unfinished or OutcomeKind.TIMED_OUT in kinds or OutcomeKind.CANCELLED in kinds:
        return EXIT_TIMEOUT
    return EXIT_OK


def _reason(
    code: int, tally: Tally, options: WaitOptions, fatal: CDMError | None = None
) -> str | None:
    """The one line on stderr that says why the exit code is not 0."""
    if code == EXIT_INTERRUPTED:
        return "interrupted"
    if code == EXIT_API:
        if fatal is not None:
            return str(describe_api_error(fatal))
        for outcome in tally.outcomes.values():
            if outcome.kind is OutcomeKind.ERROR and isinstance(outcome.error, CDMError):
                return str(describe_api_error(outcome.error))
            if outcome.kind is OutcomeKind.ERROR and outcome.error is not None:
                return f"unexpected error: {describe_error(outcome.error)}"
        if tally.error_answers:
            return f"the API answered only with errors: {tally.last_poll_error}"
        return f"the API stayed unreachable: {tally.last_poll_error or 'no answer'}"
    if code == EXIT_JOB_FAILED:
        if not tally.failures:
            return (
                f"none of the first {len(tally.not_found):,} of {tally.total:,} jobs exists "
                f"(e.g. {min(tally.not_found)}): check the job names; stopped"
            )
        bad = len(tally.failures)
        first = tally.failures[0]
        more = f" (first: {first.job}: {first.summary})"
        return f"{bad:,} of {tally.total:,} jobs did not succeed{more}"
    if code == EXIT_TIMEOUT:
        left = tally.total - tally.done + tally.count(OutcomeKind.TIMED_OUT)
        limit = "" if options.timeout is None else f" of {format_duration(options.timeout)}"
        return f"the timeout{limit} expired with {left:,} of {tally.total:,} jobs still running"
    return None


def _unknown_place(error: APIError) -> bool:
    """True for an answer that says the project or cluster does not exist."""
    return error.error_code in UNKNOWN_PLACE_CODES


def _all_missing(tally: Tally) -> bool:
    """True when enough jobs answered "not found", and none was seen, to stop early."""
    return (
        tally.total > MISSING_SAMPLE
        and len(tally.not_found) >= MISSING_SAMPLE
        and not tally.status_seen
    )


def _gave_up(tally: Tally, event: PollFailed, at: datetime, options: WaitOptions) -> bool:
    """True when the API has given nothing but failures for ``unreachable_after``, or when
    the endpoint could not be connected to at all before any answer (fail fast)."""
    if options.unreachable_after is not None and not tally.answered:
        error = event.error
        if isinstance(error, TransportError) and not error.connected:
            return True
    first = tally.first_poll_failure_at
    if options.unreachable_after is None or tally.answered or first is None:
        return False
    return (at - first).total_seconds() >= options.unreachable_after


_WALL = LoopClock()


async def _redraw(sink: Sink, tally: Tally, clock: Clock, started: float) -> None:
    # Redraws follow the wall clock: a person watches them, whatever clock the jobs run on.
    interval = sink.refresh_interval
    assert interval is not None
    while True:
        await _WALL.sleep(interval)
        sink.tick(tally, clock.monotonic() - started)


async def run_wait(
    client: CDMClient, names: Sequence[str], options: WaitOptions, sink: Sink
) -> int:
    """Watch ``names`` through ``client``, tell ``sink`` everything, return the exit code.

    The one code path of ``cdm-status wait`` and ``cdm-status demo``. Writes one line on
    ``options.stderr`` when the exit code is not 0.
    """
    clock = options.clock or LoopClock()
    waiter = JobStatusWaiter(
        client,
        clock=clock,
        random=options.random,
        poll=options.poll,
        strategy=_strategy(options.strategy),
    )
    tally = Tally(names)
    tally.budget = client.budget
    tally.deleted_ok = options.deleted_ok
    flags = {"interrupted": False, "unreachable": False, "all_missing": False}
    output_closed: OutputClosed | None = None
    fatal: CDMError | None = None
    started = clock.monotonic()
    sink.start(tally)
    try:
        async with anyio.create_task_group() as group:
            if options.handle_sigint:
                # Installed before the first request, so a Ctrl-C always gets a summary.
                await group.start(cancel_on_ctrl_c, group.cancel_scope, flags)
            if sink.refresh_interval is not None:
                group.start_soon(_redraw, sink, tally, clock, started)
            # The waiter's own task polls; this loop only reads events.
            async with (
                waiter,
                waiter.watch(
                    tally.job_names, timeout=options.timeout, since=options.since
                ) as events,
            ):
                async for event in events:
                    at = utc_datetime(clock.time())
                    tally.record(event, at)
                    try:
                        sink.handle(event, at, tally)
                    except OutputClosed as closed:
                        output_closed = closed
                        break
                    if not isinstance(event, PollFailed):
                        continue
                    if isinstance(event.error, APIError) and _unknown_place(event.error):
                        fatal = event.error
                        break
                    if _all_missing(tally):
                        flags["all_missing"] = True
                        break
                    if _gave_up(tally, event, at, options):
                        flags["unreachable"] = True
                        break
            group.cancel_scope.cancel()
        # Jobs that timed out without one answer from the API mean the API was not there.
        timed_out = tally.count(OutcomeKind.TIMED_OUT)
        if timed_out and not tally.answered and tally.poll_failures and not tally.error_answers:
            flags["unreachable"] = True
        code = exit_code_for(
            tally.outcomes.values(),
            # Jobs left unfinished because the output went away did not time out.
            total=None if output_closed else tally.total,
            interrupted=flags["interrupted"],
            unreachable=flags["unreachable"],
            deleted_ok=options.deleted_ok,
        )
        if fatal is not None:
            code = EXIT_API
        elif flags["all_missing"]:
            code = EXIT_JOB_FAILED
        elif output_closed and code == EXIT_OK and tally.done < tally.total:
            code = EXIT_INTERRUPTED  # stopped before the end, like Ctrl-C
        reason = _reason(code, tally, options, fatal)
        elapsed = clock.monotonic() - started
        if output_closed:
            # Nobody reads the output any more; the exit code still says what was seen.
            reason = f"{output_closed.reason}; stopped watching"
        else:
            with contextlib.suppress(OutputClosed):
                result = WaitResult(code, elapsed, reason, flags["interrupted"], waiter.stats())
                sink.finish(tally, result)
    finally:
        sink.close()
    if reason is not None:
        message = " ".join(reason.split())
        print(f"cdm-status: {message}", file=options.stderr or sys.stderr, flush=True)
    return code


def people_sink(out: TextIO, *, title: str = "cdm-status wait") -> Sink:
    """The live view on a terminal, one plain line per event otherwise.

    A ``TERM=dumb`` terminal (Emacs shells, some CI consoles) cannot redraw in place: it
    gets the plain lines as they happen, not one frame at the end. So does a terminal
    where ``rich`` is not installed (``pip install cdm-status`` without the ``cli`` extra).
    """
    if out.isatty() and os.environ.get("TERM", "").lower() not in DUMB_TERMINALS:
        try:
            from ._live import LiveSink  # rich is imported only when a person watches
        except ModuleNotFoundError as missing:
            if (missing.name or "").partition(".")[0] != "rich":
                raise
            return PlainSink(out)
        return LiveSink.for_stream(out, title=title)
    return PlainSink(out)


def choose_sink(args: argparse.Namespace, out: TextIO) -> Sink:
    """JSON lines, failures only, or what :func:`people_sink` picks."""
    if args.json:
        return JsonSink(out)
    if args.quiet:
        return QuietSink(out)
    return people_sink(out)


async def _listed_subjobs(client: CDMClient, args: argparse.Namespace) -> list[str]:
    parent = args.subjobs_of
    try:
        found = await find_subjobs(client, parent)
    except CDMError as error:
        raise describe_api_error(error) from None
    if not found:
        raise CommandError(
            f"--subjobs-of {parent}: the job list shows no job named {parent}_*; "
            "check the name, or name the tables with --table or --tables-file",
            EXIT_USAGE,
        )
    return found


def run(args: argparse.Namespace) -> int:
    """The ``wait`` subcommand."""
    names = collect_job_names(
        args.jobs, parent=args.subjobs_of, tables=args.table, table_files=args.tables_file
    )
    clock = clock_from_args(args)
    since = parse_since(args.since, now=clock.time())
    client = client_from_args(args, clock=clock)
    budget = budget_from_args(args, client, clock=clock)
    if budget is not None:
        client.share_budget(budget, budget.list_budget)
    options = options_from_args(args, since=since, clock=clock, strategy=args.strategy)
    sink = choose_sink(args, sys.stdout)

    async def main() -> int:
        async with client, budget or contextlib.nullcontext():
            check_joined(budget, budget_setting(args))
            every = names
            if args.subjobs_of is not None and not (args.table or args.tables_file):
                every = list(dict.fromkeys([*names, *await _listed_subjobs(client, args)]))
            return await run_wait(client, every, options, sink)

    return run_main(main)
