"""Where ``wait`` writes what it sees: JSON lines, plain lines, or only the failures.

A sink is told about each event as it happens and about the end of the watch; it reads the
aggregate numbers from the :class:`~._tally.Tally` that the runner keeps. The live view
(``_live``) is a sink too, kept in its own module because it is the only one that needs
``rich``.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol, TextIO

from .._events import (
    Event,
    JobDone,
    JobOutcome,
    OutcomeKind,
    PollFailed,
    RetryExpected,
    StatusChanged,
)
from .._models import Submission
from .._telemetry import WaiterStats
from ._budget import budget_fields, budget_phrase
from ._format import format_bytes
from ._tally import FAILURE_KINDS, Tally, describe_error, describe_outcome_error, failure_summary

__all__ = [
    "JsonSink",
    "OutputClosed",
    "PlainSink",
    "QuietSink",
    "Sink",
    "WaitResult",
    "format_duration",
    "summary_line",
    "write_line",
]


@dataclass(frozen=True, slots=True)
class WaitResult:
    """How a watch ended: the exit code, why (one line, or None for 0), and how long."""

    exit_code: int
    elapsed: float
    reason: str | None = None
    interrupted: bool = False
    stats: WaiterStats | None = None
    """The waiter's figures (requests sent and how they were answered), when known."""


class Sink(Protocol):
    """What the runner tells an output about the watch."""

    refresh_interval: float | None
    """Seconds between redraws for a view that shows the time passing; None for none."""

    def start(self, tally: Tally) -> None:
        """The watch begins (nothing seen yet)."""

    def handle(self, event: Event, at: datetime, tally: Tally) -> None:
        """One event, already recorded in ``tally``; ``at`` is when it was seen."""

    def tick(self, tally: Tally, elapsed: float) -> None:
        """Time passed (only called when ``refresh_interval`` is set)."""

    def finish(self, tally: Tally, result: WaitResult) -> None:
        """The watch ended (all outcomes in, timeout, interruption or API refusal)."""

    def close(self) -> None:
        """Release the output, even after an error (``finish`` may not have been called)."""


# ---------------------------------------------------------------------- text helpers


def format_duration(seconds: float) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_time(at: datetime) -> str:
    """An aware datetime as ``2026-01-01T00:00:05Z`` (UTC, whole seconds)."""
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_SUMMARY_ORDER = (
    (OutcomeKind.SUCCEEDED, "succeeded"),
    (OutcomeKind.FAILED, "failed"),
    (OutcomeKind.NOT_FOUND, "not found"),
    (OutcomeKind.DELETED, "deleted before their result was read"),
    (OutcomeKind.ERROR, "refused by the API"),
    (OutcomeKind.TIMED_OUT, "still running at the timeout"),
    (OutcomeKind.CANCELLED, "cancelled"),
)


def outcome_phrases(tally: Tally) -> list[str]:
    """``["115 succeeded", "3 failed"]``: the non-zero outcome counts, in a fixed order."""
    return [f"{tally.count(kind)} {label}" for kind, label in _SUMMARY_ORDER if tally.count(kind)]


def summary_line(tally: Tally, result: WaitResult) -> str:
    """The one-line summary every output ends with."""
    jobs = "1 job" if tally.total == 1 else f"{tally.total:,} jobs"
    parts = outcome_phrases(tally)
    unfinished = tally.total - tally.done
    if unfinished:
        parts.append(f"{unfinished:,} not finished")
    line = f"{jobs} in {format_duration(result.elapsed)}: {', '.join(parts) or 'nothing seen'}"
    if tally.rows_written or tally.bytes_written:
        line += f"; {written_phrase(tally.rows_written, tally.bytes_written)}"
    shared = budget_phrase(tally.budget)
    if shared:
        line += f"; {shared}"
    if result.interrupted:
        line += " (interrupted)"
    if result.stats is not None:
        line += f"; {requests_phrase(result.stats)}"
    return line


def requests_phrase(stats: WaiterStats) -> str:
    """``1,093 requests (55 answered 503, 2 ConnectError, 1 throttle pause)``."""
    sent = stats.requests_sent
    notes = [f"{count:,} answered {code}" for code, count in sorted(stats.responses.items())]
    notes = [note for note in notes if not note.endswith(" 200")]
    notes += [f"{count:,} {kind}" for kind, count in sorted(stats.request_errors.items())]
    if stats.throttle_pauses:
        pauses = stats.throttle_pauses
        notes.append(f"{pauses:,} throttle pause{'s' if pauses != 1 else ''}")
    head = "1 request" if sent == 1 else f"{sent:,} requests"
    return f"{head} ({', '.join(notes)})" if notes else head


def written_phrase(rows: int, size: int) -> str:
    """``1,234 rows, 1.2 MiB written`` (bytes left out when not measured)."""
    return f"{rows:,} rows, {format_bytes(size)} written" if size else f"{rows:,} rows written"


def _written(submission: Submission | None) -> tuple[int | None, int | None]:
    counters = None if submission is None else submission.counters
    if counters is None:
        return None, None
    return counters.rows_written, counters.bytes_written


# ---------------------------------------------------------------------- JSON lines


def event_to_json(event: Event, at: datetime) -> dict[str, Any]:
    """One event as the JSON object ``--json`` prints (see docs/guides/cli.md for the fields)."""
    if isinstance(event, StatusChanged):
        rows, size = _written(event.submission)
        return {
            "event": "status_changed",
            "job": event.job_name,
            "from": None if event.previous is None else event.previous.value,
            "to": event.submission.raw_status,
            "at": event.at.isoformat(),
            "progress": event.submission.progress,
            "submission_id": event.submission.submission_id,
            "rows_written": rows,
            "bytes_written": size,
        }
    if isinstance(event, PollFailed):
        return {
            "event": "poll_failed",
            "job": event.job_name,
            "error": type(event.error).__name__,
            "message": describe_error(event.error),
            "consecutive": event.consecutive,
            "at": at.isoformat(),
        }
    if isinstance(event, RetryExpected):
        return {
            "event": "retry_expected",
            "job": event.job_name,
            "attempt": event.attempt,
            "retries": event.retries,
            "status": event.submission.raw_status,
            "error_summary": event.submission.error_summary,
            "submission_id": event.submission.submission_id,
            "at": event.at.isoformat(),
        }
    return outcome_to_json(event.outcome, at)


def outcome_to_json(outcome: JobOutcome, at: datetime) -> dict[str, Any]:
    """A job's outcome as the ``done`` JSON object."""
    submission = outcome.submission
    rows, size = _written(submission)
    return {
        "event": "done",
        "job": outcome.job_name,
        "outcome": outcome.kind.value,
        "status": None if submission is None else submission.raw_status,
        "error_summary": None if submission is None else submission.error_summary,
        "error_details": None if submission is None else submission.error_details,
        "error": describe_outcome_error(outcome),
        "rows_written": rows,
        "bytes_written": size,
        "deleted": outcome.deleted,
        "inferred": outcome.inferred,
        "attempts": [
            {"status": run.raw_status, "error_summary": run.error_summary}
            for run in outcome.attempts
        ],
        "at": at.isoformat(),
    }


def summary_to_json(tally: Tally, result: WaitResult) -> dict[str, Any]:
    """The final ``summary`` JSON object: counts per outcome, totals, the exit code."""
    return {
        "event": "summary",
        "total": tally.total,
        **{kind.value: tally.count(kind) for kind in OutcomeKind},
        "unfinished": tally.total - tally.done,
        "rows_written": tally.rows_written,
        "bytes_written": tally.bytes_written,
        "poll_failures": tally.poll_failures,
        "elapsed_seconds": round(result.elapsed, 3),
        "exit_code": result.exit_code,
        "interrupted": result.interrupted,
        **(
            {}
            if result.stats is None
            else {
                "requests": result.stats.requests_sent,
                "throttle_pauses": result.stats.throttle_pauses,
                "budget_wait_seconds": round(result.stats.budget_wait, 3),
            }
        ),
        **budget_fields(tally.budget),
    }


class OutputClosed(Exception):
    """The output cannot be written any more: its reader went away (``wait ... | head
    -1``) or the device refused (``> /dev/full``). Stop writing; say why on stderr."""

    def __init__(self, reason: str = "standard output was closed", exit_code: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exit_code = exit_code
        """The exit code of the command that could not write (what it saw)."""


def write_line(out: TextIO, line: str) -> None:
    """Write and flush one line; ``OutputClosed`` if the output cannot take it."""
    try:
        out.write(line + "\n")
        out.flush()
    except BrokenPipeError:
        _discard_output(out)
        raise OutputClosed from None
    except OSError as error:
        _discard_output(out)
        raise OutputClosed(f"cannot write to standard output: {error.strerror}") from None


def _discard_output(out: TextIO) -> None:
    # Point the closed stream at /dev/null, so that the interpreter's last flush at exit
    # does not fail again and print "Exception ignored ... BrokenPipeError".
    try:
        fileno = out.fileno()
    except (OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


class _LineSink:
    """An output of whole lines, flushed one by one (a pipe reader sees each at once)."""

    refresh_interval: float | None = None

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out

    def _write(self, line: str) -> None:
        # sys.stdout is looked up late, so that pytest's capture sees it.
        write_line(self._out or sys.stdout, line)

    def start(self, tally: Tally) -> None:
        pass

    def tick(self, tally: Tally, elapsed: float) -> None:
        pass

    def close(self) -> None:
        pass


class JsonSink(_LineSink):
    """``--json``: one JSON object per line."""

    def handle(self, event: Event, at: datetime, tally: Tally) -> None:
        # ASCII with \u escapes: valid JSON whatever encoding the output has.
        self._write(json.dumps(event_to_json(event, at)))

    def finish(self, tally: Tally, result: WaitResult) -> None:
        self._write(json.dumps(summary_to_json(tally, result)))


# ---------------------------------------------------------------------- plain lines


def outcome_line(outcome: JobOutcome, at: datetime) -> str:
    """``<time> <job>: succeeded (1,234 rows, 1.2 MiB written)`` or why it did not."""
    head = f"{format_time(at)} {outcome.job_name}:"
    if outcome.kind is OutcomeKind.SUCCEEDED:
        rows, size = _written(outcome.submission)
        written = f" ({written_phrase(rows or 0, size or 0)})" if rows or size else ""
        retried = f" after {len(outcome.attempts)} failed runs" if outcome.attempts else ""
        if outcome.inferred:
            return f"{head} succeeded{retried} (inferred: CDM deleted it after its run)"
        return f"{head} succeeded{retried}{written}"
    if outcome.kind is OutcomeKind.FAILED and outcome.submission is not None:
        return f"{head} {outcome.submission.raw_status}: {failure_summary(outcome)}"
    label = {
        OutcomeKind.TIMED_OUT: "timed out",
        OutcomeKind.NOT_FOUND: "not found",
        OutcomeKind.DELETED: "deleted",
    }.get(outcome.kind, outcome.kind.value)
    return f"{head} {label}: {failure_summary(outcome)}"


def event_line(event: Event, at: datetime) -> str:
    """One plain line for an event."""
    if isinstance(event, StatusChanged):
        head = f"{format_time(event.at)} {event.job_name}:"
        current = event.submission.raw_status
        change = current if event.previous is None else f"{event.previous.value} -> {current}"
        progress = event.submission.progress
        suffix = f" ({progress:g}%)" if progress is not None and progress >= 0 else ""
        return f"{head} {change}{suffix}"
    if isinstance(event, PollFailed):
        return (
            f"{format_time(at)} {event.job_name}: poll failed ({event.consecutive} in a row): "
            f"{describe_error(event.error)}"
        )
    if isinstance(event, RetryExpected):
        summary = event.submission.error_summary
        why = f": {' '.join(summary.split())}" if summary else ""
        return (
            f"{format_time(event.at)} {event.job_name}: {event.submission.raw_status}, "
            f"CDM retries it (retry {event.attempt} of {event.retries}){why}"
        )
    return outcome_line(event.outcome, at)


class PlainSink(_LineSink):
    """stdout is not a terminal: one line per transition and per outcome, then a summary."""

    def handle(self, event: Event, at: datetime, tally: Tally) -> None:
        self._write(event_line(event, at))

    def finish(self, tally: Tally, result: WaitResult) -> None:
        self._write(summary_line(tally, result))


class QuietSink(PlainSink):
    """``--quiet``: only the jobs that did not succeed, and the summary."""

    def handle(self, event: Event, at: datetime, tally: Tally) -> None:
        if (
            isinstance(event, JobDone)
            and event.outcome.kind in FAILURE_KINDS
            and not (tally.deleted_ok and event.outcome.kind is OutcomeKind.DELETED)
        ):
            self._write(outcome_line(event.outcome, at))
