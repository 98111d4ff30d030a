"""``cdm-status wait`` without a server: arguments, exit codes, and the outputs' text."""

from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cdm_status import JobOutcome, OutcomeKind
from cdm_status.cli import build_parser, main
from cdm_status.cli._common import CommandError
from cdm_status.cli._sinks import JsonSink, PlainSink, QuietSink, WaitResult
from cdm_status.cli._tally import Tally
from cdm_status.cli._wait import collect_job_names, exit_code_for, parse_since, read_tables_file
from tests.support.cli_events import JOBS, LOCK_TIMEOUT, five_jobs, refused

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()


def names_from(argv: list[str]) -> list[str]:
    args = build_parser().parse_args(["wait", *argv])
    return collect_job_names(
        args.jobs, parent=args.subjobs_of, tables=args.table, table_files=args.tables_file
    )


# ---------------------------------------------------------------------- job names


def test_tables_file_skips_blank_lines_and_comments() -> None:
    lines = ["# tables of the nightly run\n", "orders\n", "\n", "  users  \n", "#old\n", "items"]
    assert read_tables_file(lines) == ["orders", "users", "items"]


def test_subjobs_mix_with_plain_jobs_and_duplicates_are_watched_once(tmp_path: Path) -> None:
    tables = tmp_path / "tables.txt"
    tables.write_text("# nightly\norders\nusers\n\norders\n", encoding="utf-8")
    argv = ["solo", "db_users", "solo", "--subjobs-of", "db", "--table", "items"]
    names = names_from([*argv, "--table", "orders", "--tables-file", str(tables)])
    assert names == ["solo", "db_users", "db_items", "db_orders"]


def test_tables_file_from_stdin() -> None:
    names = collect_job_names(
        [], parent="db", tables=[], table_files=["-"], stdin=io.StringIO("a\nb\n")
    )
    assert names == ["db_a", "db_b"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "name at least one JOB"),
        (["--table", "orders"], "need --subjobs-of"),
        (["--subjobs-of", "db", "--tables-file", "/dev/null"], "names no table"),
        (["--tables-file", "/nonexistent/tables.txt", "--subjobs-of", "db"], "cannot read"),
        (["bad\nname"], "control character"),
        (["--subjobs-of", "db", "--table", ".."], "table name"),
    ],
)
def test_unusable_job_lists_are_usage_errors(argv: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message) as caught:
        names_from(argv)
    assert caught.value.exit_code == 2


# ---------------------------------------------------------------------- --since


def test_since_now_and_iso_times_allow_for_clock_skew() -> None:
    # The server's clock dates the runs: a run created a little before the time given
    # (a lagging server clock, or 'now' read just after the start) still counts.
    skewed = datetime(2025, 12, 31, 23, 59, 30, tzinfo=timezone.utc)
    assert parse_since(None, now=NOW) is None
    assert parse_since("now", now=NOW) == skewed
    assert parse_since("2026-01-01T08:00:00+08:00", now=NOW) == skewed
    assert parse_since("2026-01-01T00:00:00Z", now=NOW) == skewed
    assert parse_since("0001-01-01T00:00:10Z", now=NOW) == datetime.min.replace(tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "text",
    [
        "yesterday",
        "2026-13-01T00:00:00Z",
        "2026-01-01T08:00:00",
        "0001-01-01T00:00:00+01:00",  # before the year 1 in UTC
    ],
)
def test_bad_since_is_a_usage_error(text: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_since(text, now=NOW)
    assert caught.value.exit_code == 2


def test_bad_since_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["wait", "job", "--since", "last tuesday", "--endpoint", "http://127.0.0.1:9"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("cdm-status: --since:")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["job", "--timeout", "-1"],
        ["job", "--timeout", "soon"],
        ["job", "--requests-per-minute", "0"],
        ["job", "--strategy", "psychic"],
        ["job", "--json", "--quiet"],
    ],
)
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["wait", *argv]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_missing_configuration_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for variable in ("CDM_ENDPOINT", "HUAWEICLOUD_SDK_REGION"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["wait", "job"]) == 2
    assert "CDM_ENDPOINT" in capsys.readouterr().err


# ---------------------------------------------------------------------- exit codes


def outcomes(*kinds: OutcomeKind) -> list[JobOutcome]:
    return [JobOutcome(f"job{index}", kind) for index, kind in enumerate(kinds)]


S, F, NF = OutcomeKind.SUCCEEDED, OutcomeKind.FAILED, OutcomeKind.NOT_FOUND
ERR, TO, C = OutcomeKind.ERROR, OutcomeKind.TIMED_OUT, OutcomeKind.CANCELLED


@pytest.mark.parametrize(
    ("kinds", "code"),
    [
        ((S, S), 0),
        ((), 0),
        ((S, F), 1),
        ((S, NF), 1),
        ((S, TO), 3),
        ((S, C), 3),
        ((F, TO), 1),  # a known failure says more than a job still running
        ((S, ERR), 4),
        ((F, ERR, TO), 4),
    ],
)
def test_exit_code_from_outcomes(kinds: tuple[OutcomeKind, ...], code: int) -> None:
    assert exit_code_for(outcomes(*kinds)) == code


def test_a_job_deleted_before_its_result_was_read_is_a_failure_unless_told_otherwise() -> None:
    D = OutcomeKind.DELETED
    assert exit_code_for(outcomes(S, D)) == 1
    assert exit_code_for(outcomes(S, D), deleted_ok=True) == 0
    assert exit_code_for(outcomes(F, D), deleted_ok=True) == 1
    assert exit_code_for(outcomes(D, TO), deleted_ok=True) == 3
    assert build_parser().parse_args(["wait", "j", "--deleted-ok"]).deleted_ok
    assert build_parser().parse_args(["run", "j", "--deleted-ok"]).deleted_ok
    assert not build_parser().parse_args(["wait", "j"]).deleted_ok


def test_exit_code_flags_win() -> None:
    assert exit_code_for(outcomes(F, ERR), interrupted=True) == 130
    assert exit_code_for(outcomes(F), unreachable=True) == 4
    # Jobs without an outcome (a watch that ended early) are still running.
    assert exit_code_for(outcomes(S), total=2) == 3


# ---------------------------------------------------------------------- tally


def test_tally_counts_what_the_events_say() -> None:
    tally = Tally([*JOBS, "db_orders"])
    for event, seen in five_jobs():
        tally.record(event, seen)
    assert tally.total == 5
    assert (tally.done, tally.succeeded, tally.count(OutcomeKind.FAILED)) == (3, 1, 1)
    assert dict(tally.active_counts()) == {"RUNNING": 1, "NEVER_EXECUTED": 1}
    assert [failure.job for failure in tally.failures] == ["db_users", "db_ghost"]
    assert tally.failures[0].summary == LOCK_TIMEOUT
    assert (tally.rows_written, tally.bytes_written) == (1200, 3 * 1024 * 1024)
    assert tally.poll_failures == 2
    assert tally.answered
    assert tally.eta(30.0) == pytest.approx(20.0)


def test_refused_credentials_are_an_answer_and_a_failure() -> None:
    tally = Tally(["a"])
    from cdm_status import JobDone

    tally.record(JobDone(JobOutcome("a", ERR, None, refused())), datetime.now(timezone.utc))
    assert tally.answered
    assert "APIG.0301" in tally.failures[0].summary
    assert tally.active_counts() == []


# ---------------------------------------------------------------------- outputs


def run_sink(sink: JsonSink | PlainSink, result: WaitResult) -> None:
    tally = Tally(JOBS)
    sink.start(tally)
    for event, seen in five_jobs():
        tally.record(event, seen)
        sink.handle(event, seen, tally)
    sink.finish(tally, result)
    sink.close()


def test_json_lines_parse_and_carry_the_documented_fields() -> None:
    out = io.StringIO()
    run_sink(JsonSink(out), WaitResult(exit_code=1, elapsed=32.5))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    kinds = [line["event"] for line in lines]
    assert kinds.count("status_changed") == 7
    assert kinds.count("poll_failed") == 2
    assert kinds.count("done") == 3
    assert kinds[-1] == "summary"
    first = lines[0]
    assert first == {
        "event": "status_changed",
        "job": "db_orders",
        "from": None,
        "to": "BOOTING",
        "at": "2026-01-01T08:00:00+00:00",
        "progress": None,
        "submission_id": 1,
        "rows_written": None,
        "bytes_written": None,
    }
    succeeded = next(line for line in lines if line.get("outcome") == "succeeded")
    assert succeeded["rows_written"] == 1200
    assert succeeded["status"] == "SUCCEEDED"
    failed = next(line for line in lines if line.get("outcome") == "failed")
    assert failed["job"] == "db_users"
    assert failed["error_summary"] == LOCK_TIMEOUT
    assert failed["error_details"].startswith("java.sql.SQLException")
    missing = next(line for line in lines if line.get("outcome") == "not_found")
    assert missing["status"] is None
    assert "Cdm.0100" in missing["error"]
    polled = next(line for line in lines if line["event"] == "poll_failed")
    assert polled["error"] == "JobNotFoundError"
    assert polled["consecutive"] == 1
    summary = lines[-1]
    assert summary == {
        "event": "summary",
        "total": 5,
        "succeeded": 1,
        "failed": 1,
        "not_found": 1,
        "deleted": 0,
        "error": 0,
        "timed_out": 0,
        "cancelled": 0,
        "unfinished": 2,
        "rows_written": 1200,
        "bytes_written": 3 * 1024 * 1024,
        "poll_failures": 2,
        "elapsed_seconds": 32.5,
        "exit_code": 1,
        "interrupted": False,
        # No --budget: nothing shared.
        "budget_sharers": None,
        "budget_shared": None,
        "budget_fallback_reason": None,
        "budget_outages": None,
    }
    for line in lines[:-1]:
        datetime.fromisoformat(line["at"])


def test_plain_lines_one_per_transition_and_outcome() -> None:
    out = io.StringIO()
    run_sink(PlainSink(out), WaitResult(exit_code=1, elapsed=32))
    lines = out.getvalue().splitlines()
    assert len(lines) == 7 + 2 + 3 + 1
    assert lines[0] == "2026-01-01T08:00:00Z db_orders: BOOTING"
    assert "2026-01-01T08:00:05Z db_orders: BOOTING -> RUNNING (10%)" in lines
    assert "2026-01-01T08:00:30Z db_orders: succeeded (1,200 rows, 3.0 MiB written)" in lines
    assert f"2026-01-01T08:00:31Z db_users: FAILED: {LOCK_TIMEOUT}" in lines
    assert any(line.startswith("2026-01-01T08:00:32Z db_ghost: not found:") for line in lines)
    assert any("db_items: poll failed (1 in a row): HTTP 503" in line for line in lines)
    assert lines[-1] == (
        "5 jobs in 0:32: 1 succeeded, 1 failed, 1 not found, 2 not finished; "
        "1,200 rows, 3.0 MiB written"
    )


def test_quiet_prints_only_the_failures_and_the_summary() -> None:
    out = io.StringIO()
    run_sink(QuietSink(out), WaitResult(exit_code=1, elapsed=32))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith(f"db_users: FAILED: {LOCK_TIMEOUT}")
    assert "db_ghost: not found" in lines[1]
    assert lines[2].startswith("5 jobs in 0:32:")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("2.5", 2.5), ("30s", 30.0), ("15m", 900.0), ("6h", 21600.0),
     ("1h30m", 5400.0), ("1h30m15s", 5415.0), ("1H", 3600.0)],
)  # fmt: skip
def test_timeout_takes_seconds_or_units(text: str, seconds: float) -> None:
    from cdm_status.cli._wait import parse_duration

    assert parse_duration(text) == seconds
    args = build_parser().parse_args(["wait", "job", "--timeout", text])
    assert args.timeout == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "-5", "30m1h", "1.5.h", "nan"])
def test_timeout_refuses_what_is_not_a_duration(text: str) -> None:
    import argparse

    from cdm_status.cli._wait import parse_duration

    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)
