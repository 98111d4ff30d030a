"""Hostile input, secrets, TLS, redirects and oversized answers, tried on real sockets.

A tiny TCP server on 127.0.0.1 records the raw bytes each request puts on the wire, so a
job name is checked where it matters: in the request line a gateway parses.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import ssl
import subprocess
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import anyio.abc
import anyio.from_thread
import httpx
import pytest
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener

from cdm_status import (
    AKSKAuth,
    APIError,
    CDMClient,
    JobStatusWaiter,
    ResponseFormatError,
    RetryPolicy,
    TokenAuth,
    TransportError,
)
from cdm_status._wire import MAX_BODY_BYTES
from cdm_status.cli import main
from cdm_status.testing import (
    CDMSimulator,
    FakeClock,
    RateLimits,
    ScaledClock,
    SimulatorAuth,
    serve,
)
from tests.support.netfaults import CountingTransport
from tests.support.storm import storm_faults

pytestmark = pytest.mark.anyio

OK_BODY = b'{"submissions": []}'
PREFIX = b"/v1.1/p/clusters/c/cdm/job/"
EXPECTED_HEADERS = {"host", "accept", "accept-encoding", "connection", "user-agent"}

# --------------------------------------------------------------------------- raw server

Answer = Callable[[anyio.abc.SocketStream, bytes], Awaitable[None]]


async def canned_ok(stream: anyio.abc.SocketStream, _: bytes) -> None:
    await stream.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(OK_BODY)).encode() + b"\r\n\r\n" + OK_BODY
    )


class RawServer:
    """Records each request head as received (bytes) and answers it with ``answer``."""

    def __init__(self, answer: Answer = canned_ok) -> None:
        self.answer = answer
        self.heads: list[bytes] = []
        self.connections = 0

    async def handle(self, stream: anyio.abc.ByteStream) -> None:
        self.connections += 1
        async with stream:
            received = b""
            try:
                while b"\r\n\r\n" not in received:
                    received += await stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError, ssl.SSLError, OSError):
                return
            self.heads.append(received)
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                await self.answer(stream, received)  # type: ignore[arg-type]


@asynccontextmanager
async def raw_server(server: RawServer, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """Serve on a free port of 127.0.0.1; yields the base URL."""
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = tcp.extra(SocketAttribute.local_port)
    listener: anyio.abc.Listener[Any] = tcp
    scheme = "http"
    if tls is not None:
        listener = TLSListener(tcp, tls, standard_compatible=False)
        scheme = "https"
    async with tcp, anyio.create_task_group() as group:
        group.start_soon(listener.serve, server.handle)
        try:
            yield f"{scheme}://127.0.0.1:{port}"
        finally:
            group.cancel_scope.cancel()


def head_lines(head: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    """The request line and the header fields of a recorded request head."""
    assert head.endswith(b"\r\n\r\n"), head
    assert head.count(b"\r\n\r\n") == 1, head
    request_line, *fields = head[:-4].split(b"\r\n")
    headers = []
    for field in fields:
        assert b"\n" not in field
        assert b"\r" not in field
        name, _, value = field.decode("latin-1").partition(":")
        headers.append((name.lower(), value.strip()))
    return request_line, headers


# --------------------------------------------------------------------------- hostile names

HOSTILE = [
    "../x",
    "a/b",
    "%2e%2e%2f",
    "?q=1",
    "#f",
    "\uff0e\uff0e\uff0fx",  # fullwidth full stops and solidus: look like ../x
    "\u2044etc\u2044passwd",  # fraction slash
    "\u2215x",  # division slash
    "..%2f..%2fadmin",
    "x HTTP/1.1\\r\\nX-Injected: 1",  # escaped: plain text, not a line break
    "a b+c&d=e;f",
    "\u202eevil",  # right-to-left override
    "x" * 1024,
]
REFUSED = ["x" * 10 * 1024, "a\0b", "a\rb", "a\nb", "x\r\nX-Injected: 1", "..", ".", "\x85"]


async def test_hostile_names_on_the_wire_change_neither_path_nor_headers() -> None:
    server = RawServer()
    async with raw_server(server) as endpoint:
        auth = TokenAuth("wire-token")
        async with CDMClient(endpoint, "p", "c", auth=auth, retry=RetryPolicy.never()) as api:
            for name in HOSTILE:
                submission = await api.get_status(name)
                assert submission.job_name == name
            for name in REFUSED:
                with pytest.raises(ValueError, match="job name"):
                    await api.get_status(name)
    assert len(server.heads) == len(HOSTILE)  # the refused names sent nothing at all
    for name, head in zip(HOSTILE, server.heads, strict=True):
        request_line, headers = head_lines(head)
        expected = b"GET " + PREFIX + quote(name, safe="").encode("ascii") + b"/status HTTP/1.1"
        assert request_line == expected, name
        assert request_line.count(b" ") == 2
        path = request_line.split(b" ")[1]
        assert path.count(b"/") == PREFIX.count(b"/") + 1
        assert all(0x21 <= byte < 0x7F for byte in path)  # only printable ASCII
        assert b"?" not in path
        assert b"#" not in path
        assert {key for key, _ in headers} == EXPECTED_HEADERS | {"x-auth-token"}
        assert len(headers) == len(EXPECTED_HEADERS) + 1
        assert dict(headers)["x-auth-token"] == "wire-token"


async def test_a_hostile_list_filter_stays_inside_its_query_value() -> None:
    empty_list = b'{"total":0,"jobs":[]}'
    server = RawServer(
        lambda stream, _: stream.send(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(empty_list)
            + empty_list
        )
    )
    hostile = "x&page_no=99#y ?z=/../%0d%0a"
    async with (
        raw_server(server) as endpoint,
        CDMClient(endpoint, "p", "c", retry=RetryPolicy.never()) as api,
    ):
        await api.list_jobs(filter=hostile)
        with pytest.raises(ValueError, match="control"):
            await api.list_jobs(filter="a\r\nX-Injected: 1")
    [head] = server.heads
    request_line, headers = head_lines(head)
    method, target, version = request_line.split(b" ")
    path, _, query = target.partition(b"?")
    assert (method, path, version) == (b"GET", b"/v1.1/p/clusters/c/cdm/job/all", b"HTTP/1.1")
    pairs = dict(item.split(b"=") for item in query.split(b"&"))
    assert pairs == {
        b"filter": quote(hostile, safe="~").encode(),
        b"jobType": b"NORMAL_JOB",
        b"page_no": b"1",
        b"page_size": b"100",
    }
    assert {key for key, _ in headers} == EXPECTED_HEADERS


# --------------------------------------------------------------------------- secrets

AK = "AKIDCHAOS0123456789"
SK = "SK-chaos-0123456789-do-not-log"
TOKEN = "TOKEN-chaos-abcdef-do-not-log"


class HeaderRecorder(CountingTransport):
    """Also keeps every credential value the client put on a request."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        super().__init__(inner)
        self.credentials: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for name in ("Authorization", "X-Auth-Token", "X-Security-Token"):
            if name in request.headers:
                self.credentials.add(request.headers[name])
                if name == "Authorization":  # and the signature alone
                    self.credentials.add(request.headers[name].rsplit("Signature=", 1)[-1])
        return await super().handle_async_request(request)


def texts_of(value: object, depth: int = 0) -> list[str]:
    """str and repr of a value, and of the errors and outcomes it carries."""
    texts = [str(value), repr(value)]
    if depth > 4:
        return texts
    for attribute in ("error", "outcome", "submission", "__cause__", "__context__", "request"):
        inner = getattr(value, attribute, None)
        if inner is not None and inner is not value:
            texts += texts_of(inner, depth + 1)
    return texts


def log_texts(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts = []
    for record in records:
        texts.append(formatter.format(record))  # the message, and any traceback
        texts.append(repr(record.args))
    return texts


def assert_no_secret(texts: list[str], secrets: set[str]) -> None:
    assert secrets
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret in: {text[:200]}"


@pytest.mark.parametrize("kind", ["aksk", "token"])
async def test_a_stormy_watch_never_shows_a_secret(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="cdm_status")
    clock = FakeClock()
    accepted = SimulatorAuth(ak=AK, sk=SK) if kind == "aksk" else SimulatorAuth(token=TOKEN)
    sim = CDMSimulator(
        clock=clock, seed=3, auth=accepted, limits=RateLimits.cdm_defaults(), faults=storm_faults()
    )
    names = sim.add_database_job("vault", 150, parallelism=50, run_seconds=(30.0, 120.0))
    names.append("vault_missing_table")  # ends NOT_FOUND: its error is reported too
    texts: list[str] = [repr(sim)]

    async def watch(auth: httpx.Auth | None) -> HeaderRecorder:
        recorder = HeaderRecorder(sim.transport())
        async with httpx.AsyncClient(transport=recorder, base_url=sim.endpoint) as http:
            options: dict[str, Any] = {"http_client": http}
            if auth is not None:
                options["auth"] = auth
            async with sim.client(**options) as client, clock.autojump():
                waiter = JobStatusWaiter(client, clock=clock, random=random.Random(1))
                texts.extend([repr(client), repr(waiter), repr(client._auth)])
                async with waiter, waiter.watch(names) as stream:
                    async for event in stream:
                        texts.extend(texts_of(event))
                for outcome in stream.outcomes.values():
                    texts.extend(texts_of(outcome))
        return recorder

    good = await watch(None)
    # Wrong credentials too: every job ends with an authentication error.
    wrong: httpx.Auth = (
        AKSKAuth(AK, SK[::-1], project_id=sim.project_id, clock=clock)
        if kind == "aksk"
        else TokenAuth(TOKEN[::-1])
    )
    bad = await watch(wrong)
    assert sim.stats.by_status[401] > 0
    assert sim.stats.by_status[200] > 0
    assert sim.stats.faults
    secrets = {SK, TOKEN, SK[::-1], TOKEN[::-1]} | good.credentials | bad.credentials
    assert len(good.credentials) > (1 if kind == "aksk" else 0)  # one signature each
    texts += log_texts(caplog.records)
    assert any(record.levelno == logging.DEBUG for record in caplog.records)
    assert_no_secret(texts, secrets)


def cli_simulator(auth: SimulatorAuth) -> CDMSimulator:
    # Jobs play a million times faster; signatures are dated by the real clock.
    from cdm_status import LoopClock

    sim = CDMSimulator(clock=ScaledClock(1e6), gateway_clock=LoopClock(), auth=auth)
    for index in range(3):
        sim.add_job(f"cli_job_{index}")
    return sim


@pytest.mark.parametrize("kind", ["aksk", "token"])
def test_the_command_line_never_shows_a_secret(
    kind: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    accepted = SimulatorAuth(ak=AK, sk=SK) if kind == "aksk" else SimulatorAuth(token=TOKEN)
    sim = cli_simulator(accepted)
    for variable in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "CDM_AUTH_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("HUAWEICLOUD_SDK_REGION", raising=False)
    monkeypatch.setenv("HUAWEICLOUD_SDK_PROJECT_ID", sim.project_id)
    monkeypatch.setenv("CDM_CLUSTER_ID", sim.cluster_id)

    def credentials(right: bool) -> None:
        if kind == "aksk":
            monkeypatch.setenv("HUAWEICLOUD_SDK_AK", AK)
            monkeypatch.setenv("HUAWEICLOUD_SDK_SK", SK if right else SK[::-1])
        else:
            monkeypatch.setenv("CDM_AUTH_TOKEN", TOKEN if right else TOKEN[::-1])

    codes = []
    names = [f"cli_job_{index}" for index in range(3)]
    with (
        anyio.from_thread.start_blocking_portal() as portal,
        portal.wrap_async_context_manager(serve(sim)) as endpoint,
    ):
        monkeypatch.setenv("CDM_ENDPOINT", endpoint)
        credentials(right=True)
        codes.append(main(["wait", *names, "--json"]))
        codes.append(main(["wait", *names]))
        codes.append(main(["status", "cli_job_0", "--json"]))
        codes.append(main(["status", "no_such_job"]))
        credentials(right=False)
        codes.append(main(["status", "cli_job_0"]))
        codes.append(main(["wait", "cli_job_0", "--json"]))
    out, err = capsys.readouterr()
    assert codes[:3] == [0, 0, 0]
    assert codes[3:] == [1, 4, 4], codes  # not found (as from wait); refused twice
    assert "no_such_job" in err
    assert "cli_job_0" in out
    assert "refused the credentials" in err
    texts = [out, err, *log_texts(caplog.records)]
    assert_no_secret(texts, {SK, TOKEN, SK[::-1], TOKEN[::-1]})


# --------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the TLS tests need the openssl command to make a certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def chain(error: BaseException | None) -> list[str]:
    """repr of an error and of every error behind it."""
    texts = []
    while error is not None:
        texts.append(repr(error))
        error = error.__cause__ or error.__context__
    return texts


async def test_a_self_signed_server_is_refused_unless_the_user_trusts_it(
    self_signed: tuple[Path, Path],
) -> None:
    cert, key = self_signed
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    server = RawServer()
    with anyio.fail_after(30):
        async with raw_server(server, tls=server_side) as endpoint:
            auth = TokenAuth(TOKEN)
            async with CDMClient(endpoint, "p", "c", auth=auth, retry=RetryPolicy.never()) as api:
                with pytest.raises(TransportError) as refused:
                    await api.get_status("j")
            assert "CERTIFICATE_VERIFY_FAILED" in " ".join(chain(refused.value))
            assert server.heads == []  # the token never left the client
            # The user's own client, trusting this certificate, gets through.
            trusted = ssl.create_default_context(cafile=str(cert))
            async with httpx.AsyncClient(verify=trusted) as http:
                api = CDMClient(endpoint, "p", "c", auth=auth, http_client=http)
                assert (await api.get_status("j")).job_name == "j"
    assert len(server.heads) == 1


# --------------------------------------------------------------------------- redirects


@pytest.mark.parametrize("kind", ["aksk", "token"])
@pytest.mark.parametrize("follow", [False, True])
async def test_a_redirect_is_an_error_and_credentials_stay_home(kind: str, follow: bool) -> None:
    elsewhere = RawServer()
    async with raw_server(elsewhere) as other:

        async def redirect(stream: anyio.abc.SocketStream, _: bytes) -> None:
            await stream.send(
                b"HTTP/1.1 307 Temporary Redirect\r\nLocation: " + other.encode()
                + b"/steal\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )  # fmt: skip

        home = RawServer(redirect)
        async with raw_server(home) as endpoint:
            auth: httpx.Auth = (
                AKSKAuth(AK, SK, project_id="p") if kind == "aksk" else TokenAuth(TOKEN)
            )
            # Even a user's client that follows redirects does not follow this one.
            async with httpx.AsyncClient(follow_redirects=follow) as http:
                api = CDMClient(
                    endpoint, "p", "c", auth=auth, http_client=http, retry=RetryPolicy.never()
                )
                with pytest.raises(APIError) as caught:
                    await api.get_status("j")
    assert caught.value.status_code == 307
    assert "redirect" in str(caught.value)
    assert len(home.heads) == 1
    assert elsewhere.connections == 0
    assert_no_secret(texts_of(caught.value), {SK, TOKEN})


# --------------------------------------------------------------------------- big answers


async def endless_body(stream: anyio.abc.SocketStream, _: bytes) -> None:
    """A 200 whose chunked body never ends."""
    await stream.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b" " * 65536
    framed = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    while True:
        await stream.send(framed)


async def deep_body(stream: anyio.abc.SocketStream, _: bytes) -> None:
    depth = 1_000_000  # 2 MB of brackets: under the size cap, far past any sane depth
    body = b'{"submissions": [{"status": "RUNNING", "x": ' + b"[" * depth + b"]" * depth + b"}]}"
    await stream.send(
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )


async def huge_declared(stream: anyio.abc.SocketStream, _: bytes) -> None:
    await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 107374182400\r\n\r\n{")


@pytest.mark.parametrize(
    "answer", [endless_body, deep_body, huge_declared], ids=["endless", "deep", "declared-100GB"]
)
async def test_oversized_and_deeply_nested_answers_are_refused_in_bounded_memory(
    answer: Answer,
) -> None:
    server = RawServer(answer)
    with anyio.fail_after(30):
        async with (
            raw_server(server) as endpoint,
            CDMClient(endpoint, "p", "c", retry=RetryPolicy.never()) as api,
        ):
            tracemalloc.start()
            try:
                with pytest.raises(ResponseFormatError):
                    await api.get_status("j")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert peak < 4 * MAX_BODY_BYTES, f"peak {peak / 2**20:.0f} MiB"
