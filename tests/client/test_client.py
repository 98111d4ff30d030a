"""CDMClient: lifecycle, hostile input, body caps, redirects, configuration, secrets."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
import respx

from cdm_status import (
    AKSKAuth,
    APIError,
    AuthenticationError,
    CDMClient,
    CDMError,
    JobNotFoundError,
    JobStatus,
    RateLimitedError,
    RateLimiter,
    ResponseFormatError,
    RetryPolicy,
    Submission,
    TokenAuth,
    TransportError,
)
from cdm_status._signer import sign
from cdm_status._wire import MAX_BODY_BYTES
from cdm_status.testing import FakeClock
from tests.support.budgets import UNMETERED

BASE = "https://cdm.test"
PREFIX = b"/v1.1/p/clusters/c/cdm/job/"
SUBMISSIONS = {
    "submissions": [
        {"job-name": "j", "status": "FAILED", "creation-date": 1_000, "error-summary": "e"},
        {"job-name": "j", "status": "RUNNING", "creation-date": 2_000},
    ]
}

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """An httpx.MockTransport handler that records every request it gets."""

    def __init__(self, response: Callable[[httpx.Request], httpx.Response] | None = None):
        self.requests: list[httpx.Request] = []
        self._response = response or (lambda _: httpx.Response(200, json={"submissions": []}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._response(request)


def mock_client(handler: Handler, **settings: Any) -> CDMClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    settings.setdefault("retry", RetryPolicy.never())
    settings.setdefault("budget", UNMETERED)  # tests of the budget pass their own
    settings.setdefault("list_budget", UNMETERED)
    return CDMClient(BASE, "p", "c", http_client=http, **settings)


# --------------------------------------------------------------------------- the API


@pytest.mark.anyio
async def test_get_submissions_newest_first_and_get_status() -> None:
    recorder = Recorder(lambda _: httpx.Response(200, json=SUBMISSIONS))
    async with mock_client(recorder) as api:
        submissions = await api.get_submissions("j")
        newest = await api.get_status("j")
    assert [s.raw_status for s in submissions] == ["RUNNING", "FAILED"]
    assert newest == submissions[0]
    request = recorder.requests[0]
    assert request.method == "GET"
    assert request.url.raw_path == PREFIX + b"j/status"
    assert request.headers["Accept"] == "application/json"
    # Uncompressed answers only: no decompression bomb can get past the size cap.
    assert request.headers["Accept-Encoding"] == "identity"


@pytest.mark.anyio
async def test_empty_submissions_is_never_executed_with_only_the_job_name() -> None:
    async with mock_client(Recorder()) as api:
        submission = await api.get_status("fresh job")
    assert submission == Submission(
        job_name="fresh job",
        status=JobStatus.NEVER_EXECUTED,
        raw_status="NEVER_EXECUTED",
    )
    assert submission.creation_date is None
    assert submission.counters is None


@pytest.mark.anyio
async def test_error_answers_carry_the_job_name() -> None:
    body = {"errCode": "Cdm.0100", "externalMessage": "Job[j] doesn't exist."}
    handler = Recorder(lambda _: httpx.Response(400, json=body, headers={"X-Request-Id": "r"}))
    async with mock_client(handler) as api:
        with pytest.raises(JobNotFoundError) as caught:
            await api.get_status("j")
    assert caught.value.job_name == "j"
    assert caught.value.request_id == "r"
    assert caught.value.status_code == 400


# --------------------------------------------------------------------------- lifecycle


@pytest.mark.anyio
async def test_async_with_closes_an_owned_client() -> None:
    async with CDMClient(BASE, "p", "c") as api:
        owned = api._http
        assert not owned.is_closed
    assert owned.is_closed


@pytest.mark.anyio
async def test_aclose_closes_an_owned_client() -> None:
    api = CDMClient(BASE, "p", "c")
    await api.aclose()
    assert api._http.is_closed


@pytest.mark.anyio
async def test_a_user_supplied_client_is_never_closed() -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(Recorder())) as http:
        async with CDMClient(BASE, "p", "c", http_client=http) as api:
            await api.get_status("j")
        await CDMClient(BASE, "p", "c", http_client=http).aclose()
        assert not http.is_closed
        # Still usable by its owner.
        assert (await http.get(f"{BASE}/x")).status_code == 200


# --------------------------------------------------------------------------- hostile names

HOSTILE = ["../x", "a/b", "%2e%2e", "?x=1", "#frag", "表_订单", "a b+c&d=e;f", "x/../..", "~.-_"]


@pytest.mark.anyio
@pytest.mark.parametrize("name", HOSTILE)
async def test_hostile_names_stay_one_segment(name: str) -> None:
    recorder = Recorder()
    async with mock_client(recorder) as api:
        await api.get_status(name)
    [request] = recorder.requests
    raw_path = request.url.raw_path
    assert b"?" not in raw_path
    assert request.url.query == b""
    assert request.url.fragment == ""
    assert raw_path.startswith(PREFIX)
    assert raw_path.endswith(b"/status")
    segment = raw_path[len(PREFIX) : -len(b"/status")]
    assert b"/" not in segment
    assert segment == quote(name, safe="").encode("ascii")
    assert unquote(segment.decode("ascii")) == name
    assert raw_path.count(b"/") == PREFIX.count(b"/") + 1


BAD_NAMES = ["", "x" * 1025, "a\0b", "a\rb", "a\nb", "\r\n", ".", "..", "tab\there"]


@pytest.mark.anyio
@pytest.mark.parametrize("name", BAD_NAMES)
async def test_unusable_names_fail_before_any_request(name: str) -> None:
    recorder = Recorder()
    async with mock_client(recorder) as api:
        with pytest.raises(ValueError, match="job name"):
            await api.get_status(name)
        with pytest.raises(ValueError, match="job name"):
            await api.get_submissions(name)
    assert recorder.requests == []


@pytest.mark.parametrize("which", ["project_id", "cluster_id"])
@pytest.mark.parametrize("value", BAD_NAMES)
def test_unusable_project_and_cluster_ids_are_refused(which: str, value: str) -> None:
    ids = {"project_id": "p", "cluster_id": "c", which: value}
    with pytest.raises(ValueError, match=which):
        CDMClient(BASE, ids["project_id"], ids["cluster_id"])


@pytest.mark.anyio
async def test_project_and_cluster_ids_are_encoded_as_segments() -> None:
    recorder = Recorder()
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    async with CDMClient(BASE, "p/../q", "c?d", http_client=http) as api:
        await api.get_status("j")
    await http.aclose()
    assert recorder.requests[0].url.raw_path == b"/v1.1/p%2F..%2Fq/clusters/c%3Fd/cdm/job/j/status"


@pytest.mark.parametrize(
    "endpoint", ["cdm.test", "ftp://cdm.test", "https://", "https://h/?q=1", "https://u:p@h"]
)
def test_bad_endpoints(endpoint: str) -> None:
    with pytest.raises(ValueError, match="endpoint"):
        CDMClient(endpoint, "p", "c")


@pytest.mark.anyio
async def test_endpoint_with_a_path_prefix_and_trailing_slash() -> None:
    recorder = Recorder()
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    async with CDMClient("http://127.0.0.1:8088/cdm-proxy/", "p", "c", http_client=http) as api:
        await api.get_status("j")
    await http.aclose()
    assert recorder.requests[0].url.raw_path == b"/cdm-proxy" + PREFIX + b"j/status"


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["jdbc2hive", *HOSTILE])
async def test_aksk_signature_verifies_against_the_wire_request(name: str) -> None:
    # What a gateway does: recompute the signature from the request it received, over the
    # headers the request declared. The client's own headers (Accept, User-Agent, ...) and
    # hostile names must not make the two disagree.
    recorder = Recorder()
    auth = AKSKAuth("AKID", SK, project_id="p", clock=FakeClock())
    async with mock_client(recorder, auth=auth) as api:
        await api.get_status(name)
    [request] = recorder.requests
    authorization = request.headers["Authorization"]
    signed_headers = authorization.split("SignedHeaders=")[1].split(",")[0]
    assert "connection" not in signed_headers.split(";")
    assert {"host", "x-sdk-date", "x-project-id"} <= set(signed_headers.split(";"))
    path, _, query = request.url.raw_path.decode("ascii").partition("?")
    expected = sign(
        request.method,
        path,
        query,
        request.headers.multi_items(),
        request.content,
        ak="AKID",
        sk=SK,
        only=signed_headers.split(";"),
    )
    assert authorization == expected.authorization
    assert request.headers["X-Sdk-Date"] == "20260101T000000Z"


# --------------------------------------------------------------------------- job list


@pytest.mark.anyio
async def test_job_list_query_is_encoded_like_the_sdk() -> None:
    # The SDK's wire query for this filter (tests/client/data/sdk_signer_vectors.json,
    # cdm_job_list_query_special_chars): a space is %20, never "+".
    vectors = json.loads((Path(__file__).parent / "data" / "sdk_signer_vectors.json").read_text())
    [case] = [c for c in vectors["cases"] if c["name"] == "cdm_job_list_query_special_chars"]
    sdk_query = httpx.URL(case["url"]).query
    body = {"total": 1, "jobs": [{"name": "db 1", "status": "RUNNING"}]}
    recorder = Recorder(lambda _: httpx.Response(200, json=body))
    async with mock_client(recorder) as api:
        page = await api.list_jobs(filter="db 1 表+x=y&z~", page_size=10, job_type="NORMAL_JOB")
    query = recorder.requests[0].url.query
    # The client always sends jobType (the vector has none); sorted in, like the SDK sorts.
    assert query.replace(b"&jobType=NORMAL_JOB", b"") == sdk_query
    assert (
        query == b"filter=db%201%20%E8%A1%A8%2Bx%3Dy%26z~&jobType=NORMAL_JOB&page_no=1&page_size=10"
    )
    assert recorder.requests[0].url.params["filter"] == "db 1 表+x=y&z~"
    assert page.total == 1
    assert page.jobs[0].status is JobStatus.RUNNING


# --------------------------------------------------------------------------- body cap


class CountingStream(httpx.AsyncByteStream):
    """A response body of ``chunks`` MiB that counts how much of it was pulled."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.pulled += 1
            yield b" " * (1024 * 1024)


@pytest.mark.anyio
async def test_declared_oversized_body_is_refused_unread() -> None:
    stream = CountingStream(9)
    headers = {"Content-Length": str(9 * 1024 * 1024)}
    async with mock_client(lambda _: httpx.Response(200, headers=headers, stream=stream)) as api:
        with pytest.raises(ResponseFormatError, match="exceeds"):
            await api.get_status("j")
    assert stream.pulled == 0


@pytest.mark.anyio
async def test_streamed_oversized_body_is_refused_without_reading_it_whole() -> None:
    stream = CountingStream(1000)  # ~1 GiB if read whole
    async with mock_client(lambda _: httpx.Response(200, stream=stream)) as api:
        with pytest.raises(ResponseFormatError, match="exceeds"):
            await api.get_status("j")
    assert stream.pulled == MAX_BODY_BYTES // (1024 * 1024) + 1


@pytest.mark.anyio
async def test_oversized_error_body_is_refused_too() -> None:
    stream = CountingStream(1000)
    async with mock_client(lambda _: httpx.Response(500, stream=stream)) as api:
        with pytest.raises(ResponseFormatError):
            await api.get_status("j")
    assert stream.pulled <= 9


@pytest.mark.anyio
async def test_a_body_just_under_the_cap_is_read() -> None:
    payload = json.dumps({"submissions": [], "pad": "x" * (MAX_BODY_BYTES - 100)}).encode()
    assert len(payload) <= MAX_BODY_BYTES
    async with mock_client(lambda _: httpx.Response(200, content=payload)) as api:
        assert (await api.get_status("j")).status is JobStatus.NEVER_EXECUTED


# --------------------------------------------------------------------------- redirects


@pytest.mark.anyio
@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_are_not_followed(status: int) -> None:
    recorder = Recorder(
        lambda _: httpx.Response(status, headers={"Location": "https://evil.test/steal"})
    )
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder), follow_redirects=True)
    async with CDMClient(BASE, "p", "c", http_client=http, retry=RetryPolicy.never()) as api:
        with pytest.raises(APIError) as caught:
            await api.get_status("j")
    await http.aclose()
    assert caught.value.status_code == status
    assert caught.value.job_name == "j"
    assert len(recorder.requests) == 1
    assert recorder.requests[0].url.host == "cdm.test"


# --------------------------------------------------------------------------- transport


@pytest.mark.anyio
async def test_network_errors_become_transport_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with mock_client(refuse) as api:
        with pytest.raises(TransportError, match="ConnectError"):
            await api.get_status("j")


# --------------------------------------------------------------------------- from_env

ENV = {
    "CDM_ENDPOINT": "https://cdm.example.test",
    "HUAWEICLOUD_SDK_PROJECT_ID": "proj",
    "CDM_CLUSTER_ID": "clus",
    "CDM_AUTH_TOKEN": "env-token",
}


@pytest.mark.anyio
async def test_from_env_with_a_token() -> None:
    with respx.mock:
        route = respx.get("https://cdm.example.test/v1.1/proj/clusters/clus/cdm/job/j/status").mock(
            return_value=httpx.Response(200, json={"submissions": []})
        )
        async with CDMClient.from_env(ENV, retry=RetryPolicy.never()) as api:
            assert (api.endpoint, api.project_id, api.cluster_id) == (
                "https://cdm.example.test",
                "proj",
                "clus",
            )
            assert isinstance(api._auth, TokenAuth)
            await api.get_status("j")
    assert route.calls.last.request.headers["X-Auth-Token"] == "env-token"


@pytest.mark.anyio
@pytest.mark.parametrize("security_token", [None, "temp-token"])
async def test_from_env_with_ak_sk(security_token: str | None) -> None:
    env = {k: v for k, v in ENV.items() if k != "CDM_AUTH_TOKEN"}
    env |= {"HUAWEICLOUD_SDK_AK": "MYAK", "HUAWEICLOUD_SDK_SK": "MYSK"}
    if security_token:
        env["HUAWEICLOUD_SDK_SECURITY_TOKEN"] = security_token
    with respx.mock:
        route = respx.get(url__startswith="https://cdm.example.test/").mock(
            return_value=httpx.Response(200, json={"submissions": []})
        )
        async with CDMClient.from_env(env) as api:
            assert isinstance(api._auth, AKSKAuth)
            await api.get_status("j")
    headers = route.calls.last.request.headers
    assert headers["Authorization"].startswith("SDK-HMAC-SHA256 Access=MYAK, SignedHeaders=")
    assert headers["X-Project-Id"] == "proj"
    assert headers.get("X-Security-Token") == security_token
    assert "X-Auth-Token" not in headers


def test_from_env_region_builds_the_endpoint() -> None:
    env = {k: v for k, v in ENV.items() if k != "CDM_ENDPOINT"}
    env["HUAWEICLOUD_SDK_REGION"] = "cn-north-4"
    assert CDMClient.from_env(env).endpoint == "https://cdm.cn-north-4.myhuaweicloud.com"
    # An explicit endpoint wins over the region.
    env["CDM_ENDPOINT"] = "http://127.0.0.1:8088"
    assert CDMClient.from_env(env).endpoint == "http://127.0.0.1:8088"


@pytest.mark.parametrize(
    "region", ["evil.test/x", "evil.test#", "a@b", "cn north", "-", "x:1", "cn-nort-4"]
)
def test_from_env_refuses_a_region_that_is_not_in_the_sdk_table(region: str) -> None:
    env = {k: v for k, v in ENV.items() if k != "CDM_ENDPOINT"}
    env["HUAWEICLOUD_SDK_REGION"] = region
    with pytest.raises(ValueError, match=r"unknown region .*known regions: .*cn-north-4"):
        CDMClient.from_env(env)
    # The same check for the keyword argument.
    with pytest.raises(ValueError, match=r"unknown region .*ae-ad-1"):
        CDMClient.from_env({}, region=region, project_id="p", cluster_id="c", auth=None)


def test_from_env_overrides_win() -> None:
    api = CDMClient.from_env(ENV, endpoint="http://127.0.0.1:9", cluster_id="other")
    assert (api.endpoint, api.cluster_id) == ("http://127.0.0.1:9", "other")


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("CDM_ENDPOINT", "CDM_ENDPOINT or HUAWEICLOUD_SDK_REGION"),
        ("HUAWEICLOUD_SDK_PROJECT_ID", "HUAWEICLOUD_SDK_PROJECT_ID"),
        ("CDM_CLUSTER_ID", "CDM_CLUSTER_ID"),
        ("CDM_AUTH_TOKEN", "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK, or CDM_AUTH_TOKEN"),
    ],
)
@pytest.mark.parametrize("blank", [False, True])
def test_from_env_names_the_missing_variable(missing: str, named: str, blank: bool) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    if blank:
        env[missing] = "   "
    with pytest.raises(ValueError, match=named):
        CDMClient.from_env(env)


@pytest.mark.parametrize(("given", "missing"), [("AK", "SK"), ("SK", "AK")])
def test_from_env_ak_and_sk_go_together(given: str, missing: str) -> None:
    env = dict(ENV) | {f"HUAWEICLOUD_SDK_{given}": "x"}
    with pytest.raises(ValueError, match=f"HUAWEICLOUD_SDK_{missing}"):
        CDMClient.from_env(env)


def test_from_env_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_REGION"):
        monkeypatch.delenv(name, raising=False)
    assert CDMClient.from_env().project_id == "proj"


# --------------------------------------------------------------------------- rate limiter


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "pause"), [({}, 3.0), ({"Retry-After": "7"}, 7.0), ({"Retry-After": "1e9"}, 30.0)]
)
async def test_a_429_pauses_the_shared_limiter(headers: dict[str, str], pause: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(120, clock=clock)
    async with mock_client(lambda _: httpx.Response(429, headers=headers), budget=limiter) as api:
        with pytest.raises(RateLimitedError):
            await api.get_status("j")
    assert limiter.pauses == 1
    assert limiter.acquired == 1
    # Every caller sharing the limiter now waits out the pause (capped by the policy).
    assert limiter.next_free(clock.monotonic()) == pytest.approx(pause)


@pytest.mark.anyio
async def test_retries_wait_for_the_shared_limiter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(120, clock=clock)
    answers = iter([httpx.Response(429, headers={"Retry-After": "5"})])
    handler = Recorder(
        lambda _: next(
            answers, httpx.Response(200, json={"submissions": SUBMISSIONS["submissions"]})
        )
    )

    async def no_sleep(_: float) -> None:
        return None

    retry = RetryPolicy(sleep=no_sleep)
    async with (
        clock.autojump(),
        mock_client(handler, retry=retry, clock=clock, budget=limiter) as api,
    ):
        submission = await api.get_status("j")
    assert submission.raw_status == "RUNNING"
    assert limiter.acquired == 2
    assert clock.monotonic() >= 5.0  # the second attempt waited for the paused limiter


# --------------------------------------------------------------------------- secrets

SK = "SK-0123456789-very-secret"
TOKEN = "TOKEN-abcdef-very-secret"
SECURITY_TOKEN = "STS-xyz-very-secret"


def secret_texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error)]
    cause = error.__cause__ or error.__context__
    if cause is not None:
        texts += [str(cause), repr(cause)]
    return texts


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["aksk", "token"])
async def test_no_secret_in_errors_reprs_or_logs(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    authorizations: list[str] = []
    answers = [
        httpx.Response(401, json={"error_code": "APIG.0301", "error_msg": "bad credentials"}),
        httpx.Response(404, json={"errCode": "Cdm.0100", "externalMessage": "no such job"}),
        httpx.Response(503),
        httpx.Response(200, content=b"<html>"),
        httpx.Response(302, headers={"Location": "https://elsewhere.test/"}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        for name in ("Authorization", "X-Auth-Token"):
            if name in request.headers:
                authorizations.append(request.headers[name])
        if not answers:
            raise httpx.ConnectError("refused", request=request)
        return answers.pop(0)

    auth: httpx.Auth = (
        AKSKAuth("AKID", SK, project_id="p", security_token=SECURITY_TOKEN)
        if kind == "aksk"
        else TokenAuth(TOKEN)
    )

    async def no_sleep(_: float) -> None:
        return None

    texts: list[str] = []
    async with mock_client(
        handler, auth=auth, retry=RetryPolicy(max_attempts=2, sleep=no_sleep)
    ) as api:
        texts.append(repr(api))
        for _ in range(6):
            with pytest.raises(CDMError) as caught:
                await api.get_status("j")
            texts += secret_texts(caught.value)
    assert authorizations, "the requests were authenticated"
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    assert any("GET" in record.getMessage() for record in caplog.records)
    secrets = [SK, TOKEN, SECURITY_TOKEN, *authorizations]
    for text in texts:
        for secret in secrets:
            assert secret not in text


@pytest.mark.anyio
async def test_authentication_error_has_no_secret() -> None:
    handler = Recorder(lambda _: httpx.Response(401, json={"error_msg": "nope"}))
    async with mock_client(handler, auth=TokenAuth(TOKEN)) as api:
        with pytest.raises(AuthenticationError) as caught:
            await api.get_status("j")
    assert TOKEN not in str(caught.value) + repr(caught.value)


@pytest.mark.anyio
async def test_a_retry_after_waits_on_the_clients_clock_not_in_real_time() -> None:
    # 503 with Retry-After: 2, then an answer: the retry waits 2 s on the client's clock.
    answers = iter(
        [httpx.Response(503, headers={"Retry-After": "2"}), httpx.Response(200, json=SUBMISSIONS)]
    )
    recorder = Recorder(lambda _: next(answers))
    clock = FakeClock()
    http = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    api = CDMClient(BASE, "p", "c", http_client=http, clock=clock)
    started, wall = clock.monotonic(), time.perf_counter()
    async with api, clock.autojump():
        submission = await api.get_status("j")
    assert submission.raw_status == "RUNNING"
    assert len(recorder.requests) == 2
    assert clock.monotonic() - started == pytest.approx(2.0)
    assert time.perf_counter() - wall < 0.5  # before: 2 s of real time
