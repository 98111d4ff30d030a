"""The wire format: paths and bodies, tested as pure functions."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest

from cdm_status import Counters, JobStatus, ResponseFormatError, Submission, subjob_name
from cdm_status._wire import (
    COUNTERS_GROUP,
    cluster_path,
    decode_json,
    job_path,
    parse_submission,
    parse_submissions,
    validate_name,
)

UTC = timezone.utc

# The two samples of the spec page, verbatim (including its indentation slip).
RUNNING_SAMPLE = b"""{
  "submissions": [{
    "job-name": "jdbc2hive",
    "status": "BOOTING",
    "creation-date": 1536905778725,
    "creation-user": "cdm"
  }]
}"""

SUCCEEDED_SAMPLE = b"""{
  "submissions": [{
  "job-name": "jdbc2hive",
    "status": "SUCCEEDED",
    "creation-date": 1536906582997,
    "creation-user": "cdm",
    "isStopingIncrement": "",
    "last-update-date": 1536916580005,
    "is-execute-auto": false,
    "last-udpate-user": "cdm",
    "isDeleteJob": false,
    "isIncrementing": false,
    "external-id": "job_local1127970451_0009",
    "counters": {
      "org.apache.sqoop.submission.counter.SqoopCounters": {
        "BYTES_WRITTEN": -1,
        "TOTAL_FILES": -1,
        "BYTES_READ": -1,
        "FILES_WRITTEN": -1,
        "TOTAL_SIZE": -1,
        "FILES_READ": -1,
        "ROWS_WRITTEN": 80,
        "ROWS_READ": 80
      }
    }
  }]
}"""


def body(*submissions: dict[str, Any]) -> bytes:
    return json.dumps({"submissions": list(submissions)}).encode()


def one(submission: dict[str, Any]) -> Submission:
    [parsed] = parse_submissions(body(submission))
    return parsed


# --------------------------------------------------------------------------- samples


def test_running_sample_parses_exactly() -> None:
    [submission] = parse_submissions(RUNNING_SAMPLE)
    assert submission == Submission(
        job_name="jdbc2hive",
        status=JobStatus.BOOTING,
        raw_status="BOOTING",
        creation_date=datetime(2018, 9, 14, 6, 16, 18, 725000, tzinfo=UTC),
        creation_user="cdm",
    )
    # Sparse: everything the sample leaves out is None, not a default value.
    assert submission.last_update_date is None
    assert submission.counters is None
    assert submission.is_stopping_increment is None


def test_succeeded_sample_parses_exactly() -> None:
    [submission] = parse_submissions(SUCCEEDED_SAMPLE)
    assert submission == Submission(
        job_name="jdbc2hive",
        status=JobStatus.SUCCEEDED,
        raw_status="SUCCEEDED",
        creation_date=datetime(2018, 9, 14, 6, 29, 42, 997000, tzinfo=UTC),
        last_update_date=datetime(2018, 9, 14, 9, 16, 20, 5000, tzinfo=UTC),
        creation_user="cdm",
        last_update_user="cdm",
        is_execute_auto=False,
        is_delete_job=False,
        is_incrementing=False,
        is_stopping_increment=None,  # the sample sends "" for this Boolean
        external_id="job_local1127970451_0009",
        counters=Counters(rows_read=80, rows_written=80),
    )
    assert submission.creation_date is not None
    assert submission.creation_date.tzinfo is UTC
    assert submission.counters is not None
    # -1 means "not measured": None in the fields, but kept as sent in raw.
    assert submission.counters.bytes_read is None
    assert submission.counters.raw["BYTES_READ"] == -1
    assert submission.raw["is-execute-auto"] is False


# --------------------------------------------------------------------------- fields


def test_every_field_including_the_optional_ones() -> None:
    submission = one(
        {
            "job-name": "j",
            "status": "FAILED",
            "creation-date": 1_000,
            "last-update-date": 2_500,
            "creation-user": "alice",
            "last-update-user": "bob",
            "is-execute-auto": True,
            "isDeleteJob": "true",
            "isIncrementing": "False",
            "isStopingIncrement": True,
            "external-id": "ext",
            "progress": 42.5,
            "submission-id": 7,
            "error-summary": "boom",
            "error-details": "stack\ntrace",
        }
    )
    assert submission.creation_date == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert submission.last_update_date == datetime(1970, 1, 1, 0, 0, 2, 500000, tzinfo=UTC)
    assert (submission.creation_user, submission.last_update_user) == ("alice", "bob")
    assert submission.is_execute_auto is True
    assert submission.is_delete_job is True
    assert submission.is_incrementing is False
    assert submission.is_stopping_increment is True
    assert submission.external_id == "ext"
    assert submission.progress == 42.5
    assert submission.submission_id == 7
    assert submission.error_summary == "boom"
    assert submission.error_details == "stack\ntrace"
    assert submission.status.is_failure


@pytest.mark.parametrize("key", ["last-udpate-user", "last-update-user"])
def test_last_update_user_under_both_spellings(key: str) -> None:
    assert one({"job-name": "j", "status": "RUNNING", key: "carol"}).last_update_user == "carol"


def test_typo_spelling_wins_when_both_are_sent() -> None:
    submission = one(
        {
            "job-name": "j",
            "status": "RUNNING",
            "last-udpate-user": "sqoop",
            "last-update-user": "new",
        }
    )
    assert submission.last_update_user == "sqoop"


@pytest.mark.parametrize("key", ["is-execute-auto", "isDeleteJob", "isIncrementing"])
@pytest.mark.parametrize("blank", ["", "  "])
def test_blank_booleans_are_none(key: str, blank: str) -> None:
    submission = one({"job-name": "j", "status": "RUNNING", key: blank})
    assert (
        submission.is_execute_auto,
        submission.is_delete_job,
        submission.is_incrementing,
    ) == (None, None, None)


@pytest.mark.parametrize(
    ("progress", "expected"), [(-1, None), (-1.0, None), (0, 0.0), (100, 100.0)]
)
def test_progress(progress: float, expected: float | None) -> None:
    assert one({"job-name": "j", "status": "RUNNING", "progress": progress}).progress == expected


def test_missing_job_name_falls_back_to_the_one_asked_for() -> None:
    [submission] = parse_submissions(body({"status": "RUNNING"}), job_name="asked")
    assert submission.job_name == "asked"


def test_unknown_status_is_kept_raw_as_other() -> None:
    submission = one({"job-name": "j", "status": "ARCHIVED"})
    assert submission.status is JobStatus.OTHER
    assert submission.raw_status == "ARCHIVED"
    assert not submission.status.is_terminal


@pytest.mark.parametrize(
    "raw",
    ["NEW", "PENDING", "FAILURE_ON_SUBMIT", "NEVER_EXECUTED", "UNKNOWN", "STOPPED", "running"],
)
def test_documented_statuses_from_both_sources(raw: str) -> None:
    submission = one({"job-name": "j", "status": raw})
    assert submission.status is JobStatus.parse(raw)
    assert submission.status is not JobStatus.OTHER
    assert submission.raw_status == raw


# --------------------------------------------------------------------------- counters

ALL_COUNTERS = {
    "ROWS_READ": 1,
    "ROWS_WRITTEN": 2,
    "ROWS_WRITTEN_SKIPPED": 3,
    "BYTES_READ": 4,
    "BYTES_WRITTEN": 5,
    "TOTAL_SIZE": 6,
    "FILES_READ": 7,
    "FILES_WRITTEN": 8,
    "FILES_SKIPPED": 9,
    "TOTAL_FILES": 10,
    "SOMETHING_NEW": 11,
}


def counters_of(group: dict[str, Any]) -> Counters | None:
    submission = one({"job-name": "j", "status": "SUCCEEDED", "counters": {COUNTERS_GROUP: group}})
    return submission.counters


def test_every_counter_and_an_unknown_one() -> None:
    counters = counters_of(ALL_COUNTERS)
    assert counters == Counters(
        rows_read=1,
        rows_written=2,
        rows_written_skipped=3,
        bytes_read=4,
        bytes_written=5,
        total_size=6,
        files_read=7,
        files_written=8,
        files_skipped=9,
        total_files=10,
    )
    assert counters is not None
    assert dict(counters.raw) == ALL_COUNTERS


def test_minus_one_and_absent_counters_are_none() -> None:
    counters = counters_of({key: -1 for key in ALL_COUNTERS})
    assert counters == Counters()
    assert counters is not None
    assert set(counters.raw.values()) == {-1}
    assert counters_of({}) == Counters()


def test_large_counters_keep_every_digit() -> None:
    # 2**53 + 1 does not survive a round trip through float.
    counters = counters_of({"BYTES_READ": 2**53 + 1, "ROWS_READ": "12345678901234567"})
    assert counters is not None
    assert counters.bytes_read == 2**53 + 1
    assert counters.rows_read == 12345678901234567


def test_counters_without_the_sqoop_group_are_none() -> None:
    assert one({"job-name": "j", "status": "SUCCEEDED", "counters": {}}).counters is None


# --------------------------------------------------------------------------- list shape


def test_newest_first_by_creation_date() -> None:
    submissions = parse_submissions(
        body(
            {"job-name": "j", "status": "FAILED", "creation-date": 2_000},
            {"job-name": "j", "status": "RUNNING", "creation-date": 3_000},
            {"job-name": "j", "status": "NEW"},
            {"job-name": "j", "status": "SUCCEEDED", "creation-date": 1_000},
        )
    )
    assert [s.raw_status for s in submissions] == ["RUNNING", "FAILED", "SUCCEEDED", "NEW"]


def test_empty_submissions_is_an_empty_list() -> None:
    assert parse_submissions(b'{"submissions": []}') == []


def test_never_executed_has_only_the_job_name() -> None:
    assert Submission.never_executed("j") == Submission(
        job_name="j", status=JobStatus.NEVER_EXECUTED, raw_status="NEVER_EXECUTED"
    )


def test_raw_is_read_only_all_the_way_down() -> None:
    submission = parse_submission(json.loads(SUCCEEDED_SAMPLE)["submissions"][0])
    with pytest.raises(TypeError):
        submission.raw["status"] = "FAILED"  # type: ignore[index]
    group = submission.raw["counters"][COUNTERS_GROUP]
    with pytest.raises(TypeError):
        group["ROWS_READ"] = 0
    listed = one({"job-name": "j", "status": "RUNNING", "tags": [{"a": 1}]}).raw["tags"]
    assert isinstance(listed, tuple)
    with pytest.raises(TypeError):
        listed[0]["a"] = 2
    assert submission.counters is not None
    with pytest.raises(TypeError):
        submission.counters.raw["ROWS_READ"] = 0  # type: ignore[index]


def test_raw_is_a_copy_of_the_input() -> None:
    data: dict[str, Any] = {"job-name": "j", "status": "RUNNING", "extra": {"k": 1}}
    submission = parse_submission(data)
    data["extra"]["k"] = 2
    assert submission.raw["extra"]["k"] == 1


# --------------------------------------------------------------------------- malformed

MALFORMED = {
    "not json": b"<html>502 Bad Gateway</html>",
    "empty": b"",
    "not utf-8": b'{"submissions": ["\xff"]}',
    "list at top": b'[{"job-name": "j", "status": "RUNNING"}]',
    "string at top": b'"submissions"',
    "missing submissions": b'{"jobs": []}',
    "submissions not a list": b'{"submissions": {"job-name": "j"}}',
    "submission not an object": b'{"submissions": ["RUNNING"]}',
    "status missing": body({"job-name": "j"}),
    "status blank": body({"job-name": "j", "status": " "}),
    "status a number": body({"job-name": "j", "status": 3}),
    "job-name missing": body({"status": "RUNNING"}),
    "job-name a list": body({"job-name": ["j"], "status": "RUNNING"}),
    "date a string": body({"job-name": "j", "status": "RUNNING", "creation-date": "yesterday"}),
    "date a bool": body({"job-name": "j", "status": "RUNNING", "creation-date": True}),
    "date too far": body({"job-name": "j", "status": "RUNNING", "creation-date": 10**18}),
    "huge int date": body({"job-name": "j", "status": "RUNNING", "creation-date": 10**400}),
    "huge int counter": body(
        {"job-name": "j", "status": "SUCCEEDED", "counters": {COUNTERS_GROUP: {"ROWS_READ": 2**64}}}
    ),
    "int past the digit limit": (
        b'{"submissions": [{"job-name": "j", "status": "RUNNING", "x": ' + b"9" * 5000 + b"}]}"
    ),
    "boolean a number": body({"job-name": "j", "status": "RUNNING", "isDeleteJob": 1}),
    "boolean a word": body({"job-name": "j", "status": "RUNNING", "isDeleteJob": "yes"}),
    "progress a string": body({"job-name": "j", "status": "RUNNING", "progress": "half"}),
    "submission-id a float": body({"job-name": "j", "status": "RUNNING", "submission-id": 1.5}),
    "counters a list": body({"job-name": "j", "status": "SUCCEEDED", "counters": [1]}),
    "counter group a list": body(
        {"job-name": "j", "status": "SUCCEEDED", "counters": {COUNTERS_GROUP: [1]}}
    ),
    "counter a string": body(
        {"job-name": "j", "status": "SUCCEEDED", "counters": {COUNTERS_GROUP: {"ROWS_READ": "x"}}}
    ),
    "NaN": b'{"submissions": [{"job-name": "j", "status": "RUNNING", "progress": NaN}]}',
    "NaN in an unknown field": b'{"submissions": [{"job-name": "j", "status": "NEW", "x": NaN}]}',
    "Infinity": b'{"submissions": [{"job-name": "j", "status": "NEW", "x": -Infinity}]}',
    "float overflow": b'{"submissions": [{"job-name": "j", "status": "NEW", "x": 1e400}]}',
    "nested past the recursion limit": b'{"submissions": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    # Deep enough to be walked recursively afterwards, shallow enough for json.loads.
    "nested deep": (
        b'{"submissions": [{"job-name": "j", "status": "NEW", "x": '
        + b"[" * 600
        + b"]" * 600
        + b"}]}"
    ),
}


@pytest.mark.parametrize("raw", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_bodies_raise_response_format_error(raw: bytes) -> None:
    with pytest.raises(ResponseFormatError):
        parse_submissions(raw)


def test_moderate_nesting_in_an_unknown_field_is_fine() -> None:
    [submission] = parse_submissions(
        b'{"submissions": [{"job-name": "j", "status": "NEW", "x": [[[{"y": [1]}]]]}]}'
    )
    assert submission.raw["x"] == ((({"y": (1,)},),),)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    # Escaped quotes must not end a string early: the brackets after them are text.
    text = '\\"' + "[" * 200 + "\\\\"
    body = {"submissions": [{"job-name": "j", "status": "NEW", "x": text}]}
    [submission] = parse_submissions(json.dumps(body).encode())
    assert submission.raw["x"] == text
    many = {"submissions": [{"job-name": "j", "status": "NEW", "x": [[{"a": "]["}]] * 50}]}
    assert parse_submissions(json.dumps(many).encode())[0].raw["x"][0] == ({"a": "]["},)


def test_nesting_past_the_limit_after_an_escaped_quote_is_refused() -> None:
    body = b'{"submissions": [], "x": "a\\"b", "y": ' + b"[" * 70 + b"]" * 70 + b"}"
    with pytest.raises(ResponseFormatError, match="nests deeper"):
        parse_submissions(body)


def _nested(depth: int) -> bytes:
    """A value nested ``depth`` levels deep, arrays and objects in turn, with empty ones
    beside each level but the innermost (which would make it one level deeper)."""
    text = '{"a":0}'
    for level in range(1, depth):
        text = f"[{text},[],{{}}]" if level % 2 else f'{{"a":{text},"b":[]}}'
    return text.encode()


@pytest.mark.parametrize("depth", [1, 2, 63, 64])
def test_nesting_up_to_the_limit_is_read(depth: int) -> None:
    assert decode_json(_nested(depth)) == json.loads(_nested(depth))


@pytest.mark.parametrize("depth", [65, 66, 500])
def test_nesting_past_the_limit_is_refused_whatever_it_is_made_of(depth: int) -> None:
    with pytest.raises(ResponseFormatError, match="nests deeper than 64"):
        decode_json(_nested(depth))


def test_numeric_strings_and_integral_floats_are_read() -> None:
    submission = one(
        {"job-name": "j", "status": "RUNNING", "creation-date": "1000", "submission-id": 3.0}
    )
    assert submission.creation_date == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert submission.submission_id == 3


# --------------------------------------------------------------------------- names


def test_status_path_encodes_every_name_as_one_segment() -> None:
    path = job_path(cluster_path("p r", "c/d"), "a b/c_ü%", "status")
    assert path == "/v1.1/p%20r/clusters/c%2Fd/cdm/job/a%20b%2Fc_%C3%BC%25/status"


@pytest.mark.parametrize(
    "bad", ["", ".", "..", "x" * 1025, "a\0b", "a\rb", "a\nb", "\x7f", "\x85", "a\ud800"]
)
def test_names_that_cannot_be_a_segment(bad: str) -> None:
    with pytest.raises(ValueError, match="job name"):
        validate_name(bad, "job name")


def test_longest_name_and_dots_inside_are_fine() -> None:
    assert validate_name("x" * 1024, "job name") == "x" * 1024
    assert validate_name("...", "job name") == "..."


def test_subjob_name() -> None:
    assert subjob_name("db2dws", "orders") == "db2dws_orders"
    with pytest.raises(ValueError, match="parent"):
        subjob_name("", "orders")
    with pytest.raises(ValueError, match="table"):
        subjob_name("db2dws", "")
