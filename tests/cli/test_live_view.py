"""The live view of ``wait``, rendered to plain text for a fixed set of events."""

from __future__ import annotations

import io

from rich.console import Console

from cdm_status import JobDone, JobOutcome, JobStatus, OutcomeKind
from cdm_status.cli._live import LiveSink, render_view
from cdm_status.cli._sinks import WaitResult
from cdm_status.cli._tally import Tally
from tests.support.cli_events import JOBS, LOCK_TIMEOUT, at, change, five_jobs, submission


def screen(tally: Tally, elapsed: float, **options: object) -> str:
    console = Console(record=True, width=100, file=io.StringIO(), color_system=None)
    console.print(render_view(tally, elapsed, **options))  # type: ignore[arg-type]
    return console.export_text()


def tally_of_five() -> Tally:
    tally = Tally(JOBS)
    for event, seen in five_jobs():
        tally.record(event, seen)
    return tally


def test_a_person_reads_progress_counts_and_the_failure() -> None:
    text = screen(tally_of_five(), 32.0)
    assert "3/5" in text
    assert "60%" in text
    assert "elapsed 0:32" in text
    # 3 done in 32 s: 2 more at the same pace take about 21 s.
    assert "ETA 0:21" in text
    assert "RUNNING 1" in text  # db_audit
    assert "NEVER_EXECUTED 1" in text  # db_items
    assert "succeeded 1" in text
    assert "failed 1" in text
    assert "not found 1" in text
    assert "failures (2)" in text
    assert "db_users" in text
    assert LOCK_TIMEOUT in text
    assert "db_ghost" in text
    assert "Job[db_ghost] doesn't exist" in text
    assert "rows written 1,200" in text
    assert "3.0 MiB" in text
    assert "failed polls 2" in text


def test_the_newest_transitions_come_first_and_are_bounded() -> None:
    text = screen(tally_of_five(), 32.0)
    lines = text.splitlines()
    start = lines.index("newest transitions")
    recent = lines[start + 1 : start + 9]
    assert "RUNNING → FAILED" in recent[0]
    assert "db_users" in recent[0]
    assert "RUNNING → SUCCEEDED" in recent[1]
    assert "db_orders" in recent[1]
    # 7 transitions happened; all fit in the 8 shown, the oldest last.
    assert sum(any(job in line for job in JOBS) for line in recent) == 7
    assert recent[6].split()[1:] == ["db_orders", "BOOTING"]


def test_before_anything_is_seen() -> None:
    text = screen(Tally(JOBS), 0.0)
    assert "0/5" in text
    assert "ETA --" in text
    assert "not seen yet 5" in text
    assert "failures" not in text


def test_it_stays_the_same_size_at_5000_jobs() -> None:
    names = [f"db_table_{index:04d}" for index in range(5000)]
    tally = Tally(names)
    for index, name in enumerate(names):
        running = submission(name, JobStatus.RUNNING, progress=50)
        tally.record(change(name, None, running, index / 100), at(index / 100))
        if index % 2:
            failed = submission(name, JobStatus.FAILED, summary=f"table {index} broke")
            tally.record(change(name, JobStatus.RUNNING, failed, 60), at(60))
            tally.record(JobDone(JobOutcome(name, OutcomeKind.FAILED, failed)), at(60))
    text = screen(tally, 60.0)
    assert "2,500/5,000" in text
    assert "RUNNING 2,500" in text
    assert "failed 2,500" in text
    assert "failures (2,500)" in text
    assert "+2,492 more" in text  # 8 failures listed, the rest counted
    assert "table 4999 broke" in text  # the newest failure is listed
    assert len(text.splitlines()) < 30


def test_the_sink_prints_the_final_view_and_the_summary() -> None:
    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None, force_terminal=False)
    sink = LiveSink(console, title="migration")
    tally = Tally(JOBS)
    sink.start(tally)
    for event, seen in five_jobs():
        tally.record(event, seen)
        sink.handle(event, seen, tally)
    sink.tick(tally, 10.0)
    sink.finish(tally, WaitResult(exit_code=1, elapsed=40.0, interrupted=True))
    sink.close()
    text = out.getvalue()
    assert "migration" in text
    assert text.rstrip().endswith(
        "5 jobs in 0:40: 1 succeeded, 1 failed, 1 not found, 2 not finished; "
        "1,200 rows, 3.0 MiB written (interrupted)"
    )
