"""Every error, model and event survives pickle, copy and deepcopy, fields intact."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timezone
from typing import Any

import pytest

from cdm_status import (
    APIError,
    AuthenticationError,
    JobDone,
    JobFailedError,
    JobNotFoundError,
    JobOutcome,
    JobStatus,
    OutcomeKind,
    PollFailed,
    RateLimitedError,
    ResponseFormatError,
    ServiceUnavailableError,
    StatusChanged,
    TransportError,
    WaitTimeoutError,
)
from cdm_status._errors import error_from_response
from cdm_status._models import JobSummary
from cdm_status._wire import parse_job_list, parse_submissions

AT = datetime(2026, 1, 1, tzinfo=timezone.utc)
BODY = (
    b'{"submissions": [{"job-name": "j", "status": "FAILED", "creation-date": 1767225600000,'
    b' "counters": {"org.apache.sqoop.submission.counter.SqoopCounters":'
    b' {"ROWS_READ": 5, "ROWS_WRITTEN": 4}}, "error-summary": "boom", "extra": [{"a": 1}]}]}'
)
SUBMISSION = parse_submissions(BODY, job_name="j")[0]
SUMMARY: JobSummary = parse_job_list(
    b'{"total": 1, "jobs": [{"name": "j", "status": "RUNNING", "type": "NORMAL_JOB"}]}'
)[1][0]


def roundtrips(value: Any) -> list[Any]:
    return [pickle.loads(pickle.dumps(value)), copy.copy(value), copy.deepcopy(value)]


ERRORS = [
    error_from_response(
        404, b'{"errCode": "Cdm.0100"}', {"x-request-id": "r1"}, job_name="j", now=0
    ),
    error_from_response(429, b"", {"retry-after": "3"}, now=0),
    error_from_response(503, b"", {}, now=0),
    error_from_response(401, b'{"error_code": "APIG.0301"}', {}, now=0),
    APIError("HTTP 418", status_code=418, error_code="X", job_name="j"),
    TransportError("cannot connect to h:1: ConnectError", endpoint="h:1", connected=False),
    ResponseFormatError("not JSON"),
    JobFailedError(SUBMISSION),
    WaitTimeoutError("j", SUBMISSION, 600.0),
    WaitTimeoutError("j", None, 1.5),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_round_trip(error: Exception) -> None:
    for copied in roundtrips(error):
        assert type(copied) is type(error)
        assert str(copied) == str(error)
        assert copied.args == error.args
        assert vars(copied) == vars(error)
        assert repr(copied) == repr(error)


def test_error_classes_are_the_documented_ones() -> None:
    kinds = [type(error) for error in ERRORS[:4]]
    assert kinds == [
        JobNotFoundError,
        RateLimitedError,
        ServiceUnavailableError,
        AuthenticationError,
    ]
    assert pickle.loads(pickle.dumps(ERRORS[1])).retry_after == 3.0


def test_models_round_trip_with_their_raw_data() -> None:
    assert SUBMISSION.counters is not None
    for value in (SUBMISSION, SUMMARY, SUBMISSION.counters):
        for copied in roundtrips(value):
            assert copied == value
            assert copied.raw == value.raw
            # Still read-only after the trip.
            with pytest.raises(TypeError):
                copied.raw["new"] = 1  # type: ignore[index]
    copied = pickle.loads(pickle.dumps(SUBMISSION))
    assert copied.raw["extra"][0]["a"] == 1
    assert copied.status is JobStatus.FAILED
    assert copied.counters is not None
    assert copied.counters.rows_read == 5


def test_events_and_outcomes_round_trip() -> None:
    outcome = JobOutcome("j", OutcomeKind.FAILED, SUBMISSION, None)
    failed = JobOutcome("k", OutcomeKind.ERROR, None, ERRORS[5])
    events = [
        StatusChanged("j", None, JobStatus.FAILED, SUBMISSION, AT),
        PollFailed("j", ERRORS[2], 2),
        JobDone(outcome),
        JobDone(failed),
    ]
    for event in events:
        for copied in roundtrips(event):
            assert type(copied) is type(event)
            assert repr(copied) == repr(event)
