"""The live view of ``wait`` for people at a terminal, drawn with ``rich``.

It shows aggregates only (a progress bar, counts per status, totals written, the newest
transitions, the failures), so it stays the same height at five jobs or five thousand.
The numbers come from the :class:`~._tally.Tally`; :func:`render_view` turns them into a
renderable and nothing else, so a test can render it to a string.

Redraws happen on the runner's timer (a few times a second), never per event: at thousands
of jobs, events arrive faster than a terminal can be redrawn.
"""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .._events import Event, OutcomeKind
from ._budget import budget_phrase
from ._format import format_bytes
from ._sinks import WaitResult, format_duration, summary_line
from ._tally import Tally

__all__ = ["LiveSink", "render_view"]

MAX_FAILURES = 8
"""Failures listed while the watch runs; the rest are counted ("+N more")."""

MAX_FAILURES_AT_END = 50

_OUTCOME_STYLE = {
    OutcomeKind.SUCCEEDED: ("succeeded", "green"),
    OutcomeKind.FAILED: ("failed", "red"),
    OutcomeKind.NOT_FOUND: ("not found", "red"),
    OutcomeKind.DELETED: ("deleted", "red"),
    OutcomeKind.ERROR: ("API error", "red"),
    OutcomeKind.TIMED_OUT: ("timed out", "yellow"),
    OutcomeKind.CANCELLED: ("cancelled", "yellow"),
}


def _clock_time(at: datetime) -> str:
    return at.astimezone().strftime("%H:%M:%S")


def _progress_row(tally: Tally, elapsed: float) -> Table:
    grid = Table.grid(padding=(0, 1))
    total = tally.total
    bar = ProgressBar(total=max(total, 1), completed=tally.done, width=40)
    percent = 100 * tally.done // total if total else 100
    eta = tally.eta(elapsed)
    grid.add_row(
        bar,
        Text(f"{tally.done:,}/{total:,}", style="bold"),
        Text(f"{percent}%"),
        Text(f"elapsed {format_duration(elapsed)}"),
        Text("ETA --" if eta is None else f"ETA {format_duration(eta)}", style="cyan"),
    )
    return grid


def _counts_line(tally: Tally) -> Text:
    text = Text()
    active = tally.active_counts()
    if active:
        text.append("watching: ", style="dim")
        for index, (status, count) in enumerate(active):
            if index:
                text.append(" · ", style="dim")
            text.append(f"{status} {count:,}")
    ended = [(kind, tally.count(kind)) for kind in OutcomeKind if tally.count(kind)]
    if ended:
        if active:
            text.append("   ")
        text.append("finished: ", style="dim")
        for index, (kind, count) in enumerate(ended):
            if index:
                text.append(" · ", style="dim")
            label, style = _OUTCOME_STYLE[kind]
            text.append(f"{label} {count:,}", style=style)
    return text


def _written_line(tally: Tally) -> Text:
    text = Text(
        f"rows written {tally.rows_written:,} · bytes written {format_bytes(tally.bytes_written)}"
    )
    shared = budget_phrase(tally.budget)
    if shared:
        text.append(f" · {shared}", style="cyan")
    if tally.poll_failures:
        text.append(f" · failed polls {tally.poll_failures:,}", style="yellow")
        if tally.last_poll_error:
            text.append(f" (last: {tally.last_poll_error})", style="dim")
    return text


def _recent_table(tally: Tally) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(no_wrap=True, overflow="ellipsis", max_width=48)
    table.add_column(no_wrap=True, overflow="ellipsis")
    for transition in reversed(tally.recent):
        change = Text()
        if transition.previous is not None:
            change.append(f"{transition.previous} → ", style="dim")
        change.append(transition.current, style=_status_style(transition.current))
        # Text, not str: a job name such as "db_[x]" must not be read as rich markup.
        table.add_row(Text(_clock_time(transition.at)), Text(transition.job), change)
    return table


def _status_style(status: str) -> str:
    if status == "SUCCEEDED":
        return "green"
    if status in ("FAILED", "FAILURE_ON_SUBMIT", "STOPPED"):
        return "red"
    return "cyan" if status == "RUNNING" else ""


def _failures_table(tally: Tally, limit: int) -> Table:
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True, overflow="ellipsis", max_width=40, style="bold")
    table.add_column(no_wrap=True, style="red")
    table.add_column(no_wrap=True, overflow="ellipsis")
    # The newest failures while it runs (what just went wrong); older ones are counted.
    shown = tally.failures[-limit:] if limit else []
    for failure in shown:
        status = failure.status or _OUTCOME_STYLE[failure.kind][0]
        table.add_row(Text(failure.job), Text(status), Text(failure.summary))
    hidden = len(tally.failures) - len(shown)
    if hidden:
        table.add_row(Text(f"+{hidden:,} more", style="dim"), Text(""), Text(""))
    return table


def render_view(
    tally: Tally,
    elapsed: float,
    *,
    title: str = "cdm-status wait",
    max_failures: int = MAX_FAILURES,
) -> RenderableType:
    """The whole view for the numbers in ``tally`` after ``elapsed`` seconds."""
    parts: list[RenderableType] = [
        Text(title, style="bold"),
        _progress_row(tally, elapsed),
        _counts_line(tally),
        _written_line(tally),
    ]
    if tally.recent:
        parts += [Text("\nnewest transitions", style="bold dim"), _recent_table(tally)]
    if tally.failures:
        heading = f"\nfailures ({len(tally.failures):,})"
        parts += [Text(heading, style="bold red"), _failures_table(tally, max_failures)]
    return Group(*parts)


class LiveSink:
    """Redraws :func:`render_view` in place while the watch runs, then prints the summary."""

    refresh_interval: float | None = 0.25

    def __init__(self, console: Console, *, title: str = "cdm-status wait") -> None:
        self._console = console
        self._title = title
        self._live: Live | None = None
        self._elapsed = 0.0

    @classmethod
    def for_stream(cls, out: TextIO, *, title: str = "cdm-status wait") -> LiveSink:
        """A live view on ``out`` (a terminal)."""
        return cls(Console(file=out), title=title)

    def _render(self, tally: Tally, *, max_failures: int = MAX_FAILURES) -> RenderableType:
        return render_view(tally, self._elapsed, title=self._title, max_failures=max_failures)

    def start(self, tally: Tally) -> None:
        # auto_refresh=False: rich's own refresh thread would read the tally while the
        # event loop changes it. The runner calls tick() from the loop instead.
        self._live = Live(self._render(tally), console=self._console, auto_refresh=False)
        self._live.start()

    def handle(self, event: Event, at: datetime, tally: Tally) -> None:
        pass  # drawn on the next tick

    def tick(self, tally: Tally, elapsed: float) -> None:
        self._elapsed = elapsed
        if self._live is not None:
            self._live.update(self._render(tally), refresh=True)

    def finish(self, tally: Tally, result: WaitResult) -> None:
        self._elapsed = result.elapsed
        if self._live is not None:
            self._live.update(self._render(tally, max_failures=MAX_FAILURES_AT_END), refresh=True)
            self._live.stop()
            self._live = None
        self._console.print(Text(summary_line(tally, result), style="bold"))

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
