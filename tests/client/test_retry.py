"""Retrying ONE request: which failures, how long between attempts, when to give up."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import format_datetime

import httpx
import pytest
import respx

from cdm_status import (
    APIError,
    AuthenticationError,
    CDMClient,
    JobNotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseFormatError,
    RetryPolicy,
    ServerError,
    ServiceUnavailableError,
    TransportError,
)
from cdm_status._retry import backoff_delay, is_retryable
from cdm_status.testing import FakeClock
from tests.support.budgets import UNMETERED

BASE = "https://cdm.test"
STATUS_URL = f"{BASE}/v1.1/p/clusters/c/cdm/job/j/status"
OK = httpx.Response(200, json={"submissions": [{"job-name": "j", "status": "SUCCEEDED"}]})
SEED = 20260101


class Sleeps:
    """An injected sleep: records every delay and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def policy(sleeps: Sleeps, **settings: float) -> RetryPolicy:
    return RetryPolicy(random=random.Random(SEED), sleep=sleeps, **settings)  # type: ignore[arg-type]


def client(retry: RetryPolicy, clock: FakeClock | None = None) -> CDMClient:
    # Unmetered: these tests are about one request's retries, not the budget's pauses.
    return CDMClient(BASE, "p", "c", retry=retry, clock=clock, budget=UNMETERED)


def expected_backoff(failures: int, base: float = 0.5, cap: float = 8.0) -> list[float]:
    draws = random.Random(SEED)
    return [min(cap, base * 2 ** (n - 1)) * draws.random() for n in range(1, failures + 1)]


@pytest.mark.anyio
async def test_503_503_200_succeeds_after_two_policy_sleeps() -> None:
    sleeps = Sleeps()
    with respx.mock:
        route = respx.get(STATUS_URL).mock(
            side_effect=[httpx.Response(503), httpx.Response(503), OK]
        )
        async with client(policy(sleeps)) as api:
            submission = await api.get_status("j")
    assert submission.raw_status == "SUCCEEDED"
    assert route.call_count == 3
    assert sleeps.delays == expected_backoff(2)
    # Full jitter: each wait lies below its exponential ceiling.
    assert 0 <= sleeps.delays[0] < 0.5
    assert 0 <= sleeps.delays[1] < 1.0


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_transient_statuses_are_retried(status: int) -> None:
    sleeps = Sleeps()
    with respx.mock:
        route = respx.get(STATUS_URL).mock(side_effect=[httpx.Response(status), OK])
        async with client(policy(sleeps)) as api:
            await api.get_status("j")
    assert route.call_count == 2
    assert len(sleeps.delays) == 1


@pytest.mark.anyio
async def test_retry_after_seconds_is_honoured() -> None:
    sleeps = Sleeps()
    with respx.mock:
        respx.get(STATUS_URL).mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": "3"}), OK]
        )
        async with client(policy(sleeps)) as api:
            await api.get_status("j")
    assert sleeps.delays == [3.0]


@pytest.mark.anyio
async def test_retry_after_http_date_is_honoured_against_the_client_clock() -> None:
    clock = FakeClock()
    when = datetime.fromtimestamp(clock.time() + 7, tz=timezone.utc)
    sleeps = Sleeps()
    with respx.mock:
        respx.get(STATUS_URL).mock(
            side_effect=[
                httpx.Response(503, headers={"Retry-After": format_datetime(when, usegmt=True)}),
                OK,
            ]
        )
        async with client(policy(sleeps), clock) as api:
            await api.get_status("j")
    assert sleeps.delays == [7.0]


@pytest.mark.anyio
@pytest.mark.parametrize("value", ["3600", "Thu, 01 Jan 2026 01:00:00 GMT"])
async def test_retry_after_is_capped(value: str) -> None:
    sleeps = Sleeps()
    with respx.mock:
        respx.get(STATUS_URL).mock(
            side_effect=[httpx.Response(429, headers={"Retry-After": value}), OK]
        )
        async with client(policy(sleeps, max_retry_after=2.5, max_wait=100), FakeClock()) as api:
            await api.get_status("j")
    assert sleeps.delays == [2.5]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, b"", JobNotFoundError),
        (400, b'{"errCode": "Cdm.0100", "externalMessage": "no job"}', JobNotFoundError),
        (500, b'{"errCode": "Cdm.0000", "externalMessage": "system error"}', ServerError),
        (401, b"", AuthenticationError),
        (403, b"", PermissionDeniedError),
    ],
)
async def test_answers_that_are_not_transient_are_not_retried(
    status: int, body: bytes, error: type[Exception]
) -> None:
    sleeps = Sleeps()
    with respx.mock:
        route = respx.get(STATUS_URL).mock(return_value=httpx.Response(status, content=body))
        async with client(policy(sleeps)) as api:
            with pytest.raises(error):
                await api.get_status("j")
    assert route.call_count == 1
    assert sleeps.delays == []


@pytest.mark.anyio
async def test_malformed_body_is_not_retried() -> None:
    sleeps = Sleeps()
    with respx.mock:
        route = respx.get(STATUS_URL).mock(return_value=httpx.Response(200, content=b"<html>"))
        async with client(policy(sleeps)) as api:
            with pytest.raises(ResponseFormatError):
                await api.get_status("j")
    assert route.call_count == 1


@pytest.mark.anyio
async def test_attempts_run_out_and_the_last_typed_error_is_raised() -> None:
    sleeps = Sleeps()
    with respx.mock:
        route = respx.get(STATUS_URL).mock(
            side_effect=[
                httpx.Response(502),
                httpx.Response(429),
                httpx.Response(503, headers={"X-Request-Id": "last"}),
            ]
        )
        async with client(policy(sleeps, max_attempts=3)) as api:
            with pytest.raises(ServiceUnavailableError) as caught:
                await api.get_status("j")
    assert route.call_count == 3
    assert len(sleeps.delays) == 2
    assert caught.value.request_id == "last"
    assert caught.value.job_name == "j"


@pytest.mark.anyio
async def test_the_wait_budget_stops_before_the_attempts_run_out() -> None:
    sleeps = Sleeps()
    with respx.mock:
        route = respx.get(STATUS_URL).mock(
            return_value=httpx.Response(503, headers={"Retry-After": "4"})
        )
        async with client(policy(sleeps, max_attempts=10, max_wait=9)) as api:
            with pytest.raises(ServiceUnavailableError):
                await api.get_status("j")
    # 4 + 4 fits in 9 seconds; a third wait of 4 would not.
    assert sleeps.delays == [4.0, 4.0]
    assert route.call_count == 3


@pytest.mark.anyio
async def test_transport_errors_are_retried_then_raised_as_transport_error() -> None:
    sleeps = Sleeps()
    with respx.mock:
        route = respx.get(STATUS_URL).mock(side_effect=httpx.ConnectError("refused"))
        async with client(policy(sleeps, max_attempts=3)) as api:
            with pytest.raises(TransportError) as caught:
                await api.get_status("j")
    assert route.call_count == 3
    assert sleeps.delays == expected_backoff(2)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


@pytest.mark.anyio
async def test_a_timeout_then_success() -> None:
    sleeps = Sleeps()
    with respx.mock:
        respx.get(STATUS_URL).mock(side_effect=[httpx.ReadTimeout("slow"), OK])
        async with client(policy(sleeps)) as api:
            assert (await api.get_status("j")).raw_status == "SUCCEEDED"
    assert len(sleeps.delays) == 1


@pytest.mark.anyio
async def test_never_makes_one_attempt() -> None:
    with respx.mock:
        route = respx.get(STATUS_URL).mock(return_value=httpx.Response(503))
        async with client(RetryPolicy.never()) as api:
            with pytest.raises(ServiceUnavailableError):
                await api.get_status("j")
    assert route.call_count == 1


@pytest.mark.anyio
async def test_on_retry_hears_about_each_wait() -> None:
    sleeps = Sleeps()
    heard: list[tuple[str, float]] = []
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RateLimitedError("slow down", status_code=429, retry_after=float(calls))
        return "done"

    result = await policy(sleeps).call(
        attempt, on_retry=lambda error, delay: heard.append((type(error).__name__, delay))
    )
    assert result == "done"
    assert heard == [("RateLimitedError", 1.0), ("RateLimitedError", 2.0)]
    assert sleeps.delays == [1.0, 2.0]


# --------------------------------------------------------------------------- pure parts


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    assert backoff_delay(1, base=0.5, cap=8, draw=0.999) == pytest.approx(0.4995)
    assert backoff_delay(3, base=0.5, cap=8, draw=0.5) == 1.0
    assert backoff_delay(10, base=0.5, cap=8, draw=0.5) == 4.0  # capped at 8
    assert backoff_delay(4, base=0.5, cap=8, draw=0.0) == 0.0


def test_what_is_retryable() -> None:
    assert is_retryable(TransportError("x"))
    assert is_retryable(RateLimitedError("x", status_code=400))
    for status in (502, 503, 504):
        assert is_retryable(APIError("x", status_code=status))
    for status in (400, 401, 403, 404, 409, 500):
        assert not is_retryable(APIError("x", status_code=status))
    assert not is_retryable(ResponseFormatError("x"))
    assert not is_retryable(ValueError("x"))


@pytest.mark.parametrize(
    "settings",
    [{"max_attempts": 0}, {"max_wait": -1}, {"base_delay": -1}, {"max_retry_after": -1}],
)
def test_bad_settings(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**settings)  # type: ignore[arg-type]
