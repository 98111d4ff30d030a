"""``cdm-status status JOB``: the newest submission of one job."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .._errors import CDMError, JobNotFoundError
from .._models import Submission
from ._common import (
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_connection_arguments,
    client_from_args,
    describe_api_error,
    run_main,
)
from ._format import format_bytes, submission_to_json
from ._sinks import write_line


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "status",
        help="show the newest submission of a job",
        description="Show the newest submission of a job: status, dates, counters, errors. "
        "Exit codes: 0 looked up, 1 no such job (as in wait), 2 usage or configuration "
        "error, 4 API error or unreachable.",
    )
    parser.add_argument("job", help="job name (for a whole-database subjob: PARENT_TABLE)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_connection_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    client = client_from_args(args)

    async def lookup() -> Submission:
        async with client:
            return await client.get_status(args.job)

    try:
        submission = run_main(lookup)
    except ValueError as error:  # a job name that cannot be sent
        raise CommandError(str(error), EXIT_USAGE) from None
    except JobNotFoundError as error:
        # The same code as ``wait`` gives a job that does not exist: scripts test one code.
        raise CommandError(f"not found: {error}", EXIT_JOB_FAILED) from None
    except CDMError as error:
        raise describe_api_error(error) from None
    if args.json:
        write_line(sys.stdout, json.dumps(submission_to_json(submission), sort_keys=True))
    else:
        write_line(sys.stdout, render_submission(submission))
    return EXIT_OK


def render_submission(submission: Submission) -> str:
    """The submission as aligned ``label: value`` lines for people."""
    rows: list[tuple[str, str]] = [
        ("job", submission.job_name),
        ("status", submission.raw_status),
    ]

    def add(label: str, value: object) -> None:
        if value is not None:
            rows.append((label, str(value)))

    add("created", submission.creation_date and submission.creation_date.isoformat())
    add("created by", submission.creation_user)
    add("updated", submission.last_update_date and submission.last_update_date.isoformat())
    add("updated by", submission.last_update_user)
    add("progress", None if submission.progress is None else f"{submission.progress:g}%")
    add("submission id", submission.submission_id)
    add("external id", submission.external_id)
    counters = submission.counters
    if counters is not None:
        # Explicit None checks: a counter of 0 is a real value and must show.
        add("rows read", counters.rows_read)
        add("rows written", counters.rows_written)
        add("rows skipped", counters.rows_written_skipped)
        for label, count in (
            ("bytes read", counters.bytes_read),
            ("bytes written", counters.bytes_written),
            ("total size", counters.total_size),
        ):
            add(label, None if count is None else format_bytes(count))
        add("files read", counters.files_read)
        add("files written", counters.files_written)
        add("files skipped", counters.files_skipped)
        add("total files", counters.total_files)
    add("error", submission.error_summary)
    add("details", submission.error_details)
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label.rjust(width)}: {value}" for label, value in rows)
