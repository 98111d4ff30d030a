"""The error map: (HTTP status, body, headers) -> the right class, carrying the right data."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from email.utils import format_datetime

import httpx
import pytest

from cdm_status import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CDMError,
    JobNotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
)
from cdm_status._errors import error_from_response, parse_retry_after

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z

CDM_BODY = json.dumps({"errCode": "Cdm.0000", "externalMessage": "system error"}).encode()
APIG_BODY = json.dumps(
    {"error_code": "APIG.0101", "error_msg": "gateway says no", "request_id": "body-rid"}
).encode()


def make(
    status: int,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    job_name: str | None = "job1",
) -> APIError:
    return error_from_response(
        status, body, httpx.Headers(headers or {}), job_name=job_name, now=NOW
    )


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, JobNotFoundError),
        (429, RateLimitedError),
        (500, ServerError),
        (502, ServerError),
        (503, ServiceUnavailableError),
        (504, ServerError),
        (418, APIError),
        (599, ServerError),
    ],
)
@pytest.mark.parametrize("body", [b"", CDM_BODY, APIG_BODY, b"not json"], ids=str)
def test_status_decides_the_class(status: int, cls: type[APIError], body: bytes) -> None:
    error = make(status, body)
    assert type(error) is cls
    assert isinstance(error, CDMError)
    assert error.status_code == status
    assert error.job_name == "job1"


def test_service_unavailable_is_a_server_error() -> None:
    assert isinstance(make(503), ServerError)
    assert not isinstance(make(502), ServiceUnavailableError)


def test_cdm_error_body() -> None:
    error = make(400, json.dumps({"errCode": "Cdm.0052", "externalMessage": "running"}).encode())
    assert type(error) is BadRequestError
    assert (error.error_code, error.error_msg, error.request_id) == ("Cdm.0052", "running", None)
    assert "Cdm.0052" in str(error)
    assert "running" in str(error)
    assert "'job1'" in str(error)


def test_gateway_error_body_with_request_id_in_the_body() -> None:
    error = make(401, APIG_BODY)
    assert (error.error_code, error.error_msg, error.request_id) == (
        "APIG.0101",
        "gateway says no",
        "body-rid",
    )


def test_request_id_header_wins_over_the_body() -> None:
    error = make(401, APIG_BODY, {"X-Request-Id": "header-rid"})
    assert error.request_id == "header-rid"
    assert "header-rid" in str(error)
    assert make(500, CDM_BODY, {"x-request-id": "lower"}).request_id == "lower"


@pytest.mark.parametrize("code", ["Cdm.0100", "Cdm.0054"])
@pytest.mark.parametrize("status", [400, 404, 500])
def test_not_found_codes_win_over_the_status(code: str, status: int) -> None:
    body = json.dumps({"errCode": code, "externalMessage": "Job[x] doesn't exist."}).encode()
    error = make(status, body)
    assert type(error) is JobNotFoundError
    assert error.error_code == code
    assert error.error_msg == "Job[x] doesn't exist."
    assert error.status_code == status


@pytest.mark.parametrize("status", [400, 403, 429, 500])
def test_throttle_code_is_rate_limited(status: int) -> None:
    body = json.dumps({"error_code": "APIG.0308", "error_msg": "throttled"}).encode()
    error = make(status, body)
    assert type(error) is RateLimitedError
    assert error.error_code == "APIG.0308"


def test_missing_job_name_is_none() -> None:
    assert make(404, job_name=None).job_name is None


def test_non_object_bodies_give_no_fields() -> None:
    for body in (b"[1]", b'"x"', b"{", b"[" * 10_000):
        error = make(500, body)
        assert (error.error_code, error.error_msg, error.request_id) == (None, None, None)


def test_very_long_messages_are_cut() -> None:
    error = make(500, json.dumps({"errCode": "Cdm.0000", "externalMessage": "m" * 10_000}).encode())
    assert error.error_msg is not None
    assert len(error.error_msg) <= 500
    assert len(str(error)) < 1_000


def test_retry_after_on_any_error() -> None:
    assert make(429, headers={"Retry-After": "3"}).retry_after == 3.0
    assert make(503, headers={"Retry-After": "1.5"}).retry_after == 1.5
    assert make(429).retry_after is None


def test_repr_carries_the_data() -> None:
    text = repr(make(404, CDM_BODY, {"X-Request-Id": "rid"}))
    assert text.startswith("JobNotFoundError(status_code=404")
    assert "'rid'" in text
    assert "'job1'" in text


# --------------------------------------------------------------------------- Retry-After


def http_date(epoch: float) -> str:
    return format_datetime(datetime.fromtimestamp(epoch, tz=timezone.utc), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("3", 3.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("-4", 0.0),
        ("NaN", None),
        ("inf", None),
        ("soon", None),
        ("Mon, 99 Foo 2026 99:99:99 GMT", None),
    ],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_http_date_uses_the_injected_now() -> None:
    assert parse_retry_after(http_date(NOW + 12), now=NOW) == 12.0
    assert parse_retry_after(http_date(NOW + 12), now=NOW + 10) == 2.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:00 GMT", now=NOW) == 60.0
    # A date in the past means "now", never a negative wait.
    assert parse_retry_after(http_date(NOW - 100), now=NOW) == 0.0
    # "-0000" gives a naive datetime; it is read as UTC.
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 -0000", now=NOW) == 30.0


def test_http_date_retry_after_through_the_error_map() -> None:
    assert make(429, headers={"Retry-After": http_date(NOW + 5)}).retry_after == 5.0
