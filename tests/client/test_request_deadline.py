"""Each request has one overall deadline: an answer trickling in byte by byte ends too.

httpx's timeouts count each read apart, so a body that sends one byte every half second
never times out there. The client bounds the whole attempt on its own clock.
"""

from __future__ import annotations

import io
import random
import subprocess
import time
from collections.abc import AsyncIterator

import anyio
import anyio.abc
import httpx
import pytest

from cdm_status import CDMClient, RetryPolicy, TransportError
from cdm_status.cli._sinks import PlainSink
from cdm_status.cli._wait import WaitOptions, run_wait
from cdm_status.testing import FakeClock
from tests.cli.test_cli_wait_subprocess import COMMAND
from tests.test_security import RawServer, raw_server

pytestmark = pytest.mark.anyio

BODY = b'{"submissions": [{"job-name": "slow", "status": "RUNNING"}]}'

REAL_TRICKLE_INTERVAL = 0.5
"""Wall-clock seconds between the bytes of the real-socket trickle server. Wall time is
right there, and only there: its reader is ``cdm-status`` in another process, on that
process's own system clock, so no virtual clock of this test can reach it. Half a second
keeps bytes coming faster than the command's 1 s request timeout would notice a stall."""


class Trickle(httpx.AsyncByteStream):
    """A 200 body that arrives one byte every ``every`` seconds of ``clock``."""

    def __init__(self, clock: FakeClock, every: float) -> None:
        self.clock = clock
        self.every = every

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for byte in BODY:
            await self.clock.sleep(self.every)
            yield bytes([byte])


def trickling_client(clock: FakeClock, requests: list[float], **options: float) -> CDMClient:
    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(clock.monotonic())
        return httpx.Response(200, stream=Trickle(clock, 0.5))

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return CDMClient(
        "http://cdm.test", "p", "c", http_client=http, clock=clock, retry=RetryPolicy.never(),
        **options,  # type: ignore[arg-type]
    )  # fmt: skip


async def test_a_trickling_answer_ends_at_the_request_timeout() -> None:
    clock = FakeClock()
    requests: list[float] = []
    async with trickling_client(clock, requests, request_timeout=2.0) as client, clock.autojump():
        began = clock.monotonic()
        with pytest.raises(TransportError, match="no complete answer within 2s"):
            await client.get_status("slow")
        assert clock.monotonic() - began == pytest.approx(2.0)
    assert len(requests) == 1


async def test_a_trickling_answer_within_the_timeout_is_read_whole() -> None:
    clock = FakeClock()
    async with trickling_client(clock, [], request_timeout=60.0) as client, clock.autojump():
        submission = await client.get_status("slow")
    assert submission.raw_status == "RUNNING"  # len(BODY) / 2 = 31.5 s < 60 s


async def test_wait_counts_trickling_answers_as_never_answered() -> None:
    clock = FakeClock()
    requests: list[float] = []
    out, err = io.StringIO(), io.StringIO()
    options = WaitOptions(
        clock=clock, random=random.Random(1), stderr=err, unreachable_after=120, timeout=600
    )
    async with trickling_client(clock, requests, request_timeout=2.0) as client, clock.autojump():
        code = await run_wait(client, ["slow"], options, PlainSink(out))
    assert code == 4
    assert err.getvalue().startswith("cdm-status: the API stayed unreachable: GET ")
    assert "no complete answer within 2s" in err.getvalue()
    assert 120 <= clock.monotonic() < 400
    assert len(requests) > 3


async def trickle_forever(stream: anyio.abc.SocketStream, _: bytes) -> None:
    await stream.send(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    while True:  # one byte every REAL_TRICKLE_INTERVAL, for ever
        await stream.send(b"1\r\n \r\n")
        await anyio.sleep(REAL_TRICKLE_INTERVAL)


@pytest.fixture
async def trickling_endpoint() -> AsyncIterator[str]:
    async with raw_server(RawServer(trickle_forever)) as url:
        yield url


async def test_status_on_a_real_socket_ends_with_exit_4(trickling_endpoint: str) -> None:
    env = {
        "CDM_ENDPOINT": trickling_endpoint,
        "HUAWEICLOUD_SDK_PROJECT_ID": "p",
        "CDM_CLUSTER_ID": "c",
        "CDM_AUTH_TOKEN": "t",
        "PATH": "/usr/bin:/bin",
    }
    began = time.monotonic()
    with anyio.fail_after(40):
        result = await anyio.run_process(
            [COMMAND, "status", "slow", "--request-timeout", "1"],
            env=env,
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    # 4 attempts of 1 s each plus the backoff between them, well under a minute.
    assert time.monotonic() - began < 20
    assert result.returncode == 4
    err = result.stderr.decode()
    assert err.count("\n") == 1
    assert "no complete answer within 1s" in err
