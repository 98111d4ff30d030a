"""Client overhead: CPU per status poll, polls per second, errors and peak RSS.

What it measures
    The cost, on the CLIENT side, of one CDM status poll (``GET .../job/{name}/status`` and
    reading its answer) at 1, 8, 100 and 1,000 requests in flight, for:

    - ``cdm-status``: ``CDMClient.get_status`` with the project's defaults (token auth,
      ``max_connections=2``), the same with ``max_connections=10``, and the same signing
      every request with AK/SK (as the official SDK always does); and the defaults
      three ways for the cost of telemetry: without the OpenTelemetry API
      (``cdm-no-otel``: its import refused, only the plain tallies behind ``stats()``),
      with the API and no SDK (``cdm``: OpenTelemetry's no-ops), and with the SDK
      (``cdm-otel``: a ``MeterProvider`` with an in-memory reader, a ``TracerProvider``
      whose ``SimpleSpanProcessor`` hands every span to an exporter that drops it);
    - ``httpx``: a bare ``httpx.AsyncClient`` GET + ``json.loads``, with httpx's default
      limits (every request handed to httpx at once), and tuned: a pool of 2, keep-alive
      limit = connection limit, no pool timeout, and an ``asyncio.Semaphore(2)`` capping
      requests in flight outside httpx (2 was the cheapest pool size on loopback);
    - ``sdk``: the official SDK (``huaweicloudsdkcdm`` ``CdmClient.show_job_status``) in
      min(in flight, 32) threads sharing one client, pointed at the local server with
      ``with_endpoint("http://127.0.0.1:PORT")`` (an ``http://`` endpoint is kept as it is)
      and ``BasicCredentials(ak, sk, project_id)`` with a fake AK/SK: it signs every
      request, the server checks nothing, and with a project id and no region it never
      calls IAM. Its urllib3 pool is raised to one connection per thread;
    - ``raw``: a minimal asyncio-streams HTTP/1.1 client (4 keep-alive connections,
      Content-Length framing only) + ``json.loads``: the floor.

    Every cell (one client at one concurrency) runs in a fresh subprocess, so CPU time and
    peak RSS belong to it alone. It makes 20 polls one at a time (imports, first
    connection), then starts the clock for ``--requests`` polls from ``concurrency``
    tasks (threads for the SDK). CPU per poll = process CPU time of all its threads
    (``time.process_time``) / polls completed; the least of ``--repeat`` runs is kept,
    since other load on the machine only adds to it. Peak RSS is ``ru_maxrss`` (imports
    included). The server's CPU time during each cell is read from ``/proc``: ``srv %`` =
    server CPU / cell wall time shows whether the server was the bottleneck.

The server (a separate process on 127.0.0.1, exits when its stdin closes)
    ``--server fixed`` (the default): a tiny asyncio HTTP/1.1 server answering each job's
    status path with the bytes the bundled CDM simulator renders for it (a SUCCEEDED job
    with counters, 645 bytes). About 10-20 us per request, so it is never the bottleneck.
    ``--server simulator``: the real ``CDMSimulator`` under uvicorn (limits, faults and
    auth off), about 150 us per request: it is not the bottleneck for httpx-based clients,
    but a slower server means fewer answers per event-loop wake-up, so every client's CPU
    per poll is higher than against the fixed server.

How to run
    ``make bench``, or ``.venv/bin/python benchmarks/overhead.py`` after
    ``pip install -e '.[bench]'``. Options: ``--requests N`` per cell (2,000), ``--cap S``
    seconds per cell (10; a cell that hits it is cancelled and marked), ``--repeat R``
    (2), ``--clients`` and ``--concurrency`` for a subset, ``--server``, ``--json PATH``.
    Prints a markdown table and the ratios; writes ``benchmarks/results/overhead.json``.
    Network only on 127.0.0.1, every loop bounded; about 90 s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _report import machine_info  # type: ignore[import-not-found]

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "overhead.json"
HOST = "127.0.0.1"
PROJECT_ID = "1551c7f6c808414d8e9f3c514a170f2e"
CLUSTER_ID = "6ec9a0a4-76be-4262-8697-e7af1fac7920"
JOBS = tuple(f"job_{index:03d}" for index in range(1, 9))
TOKEN = "bench-token"
FAKE_AK, FAKE_SK = "BENCHAKFAKE0000000000", "bench-secret-key-fake"

CONCURRENCY = (1, 8, 100, 1000)
TUNED_CONNECTIONS = 2
"""Pool size of the tuned bare-httpx client (the best configuration found)."""
LARGE_POOL = 10
"""A larger pool for the cdm-status variant: httpcore scans its pool on every request."""
"""Pool size of the tuned httpx and cdm-status variants: the cheapest on loopback (1-2)."""
RAW_CONNECTIONS = 4
"""Keep-alive connections of the raw client."""
SDK_THREADS = 32
"""Threads of the SDK's pool: min(in flight, 32); more requests in flight queue for them."""
WARMUP = 20
"""Polls each cell makes one at a time before its clock starts (imports, first connection)."""
SERVER_LIFETIME = 900.0
"""The server exits by itself after this many seconds (or when its stdin closes)."""


@dataclass(frozen=True, slots=True)
class ClientSpec:
    key: str
    label: str
    family: str  # "cdm-status", "httpx", "sdk" or "raw": what ratios compare
    note: str


CLIENTS: dict[str, ClientSpec] = {
    spec.key: spec
    for spec in (
        ClientSpec(
            "cdm",
            "cdm-status (defaults)",
            "cdm-status",
            "CDMClient.get_status, TokenAuth, max_connections=2 (the default)",
        ),
        ClientSpec(
            "cdm-tuned",
            f"cdm-status (max_connections={LARGE_POOL})",
            "cdm-status-variant",
            f"CDMClient.get_status, TokenAuth, max_connections={LARGE_POOL}",
        ),
        ClientSpec(
            "cdm-aksk",
            "cdm-status (AK/SK)",
            "cdm-status-variant",
            "CDMClient.get_status, AKSKAuth (signs every request, like the SDK), defaults",
        ),
        ClientSpec(
            "cdm-no-otel",
            "cdm-status (no OpenTelemetry)",
            "cdm-status-variant",
            "defaults, the OpenTelemetry API not importable: plain tallies only",
        ),
        ClientSpec(
            "cdm-otel",
            "cdm-status (OpenTelemetry SDK)",
            "cdm-status-variant",
            "defaults, SDK MeterProvider (in-memory reader) + TracerProvider "
            "(SimpleSpanProcessor, an exporter that drops spans)",
        ),
        ClientSpec(
            "httpx-default",
            "httpx (default limits)",
            "httpx",
            "httpx.AsyncClient() GET + json.loads; all tasks gathered at once",
        ),
        ClientSpec(
            "httpx-tuned",
            f"httpx (pool {TUNED_CONNECTIONS} + semaphore)",
            "httpx",
            f"Limits({TUNED_CONNECTIONS}, keepalive {TUNED_CONNECTIONS}), no pool timeout, "
            f"asyncio.Semaphore({TUNED_CONNECTIONS}) outside httpx",
        ),
        ClientSpec(
            "sdk",
            "official SDK (threads)",
            "sdk",
            f"huaweicloudsdkcdm show_job_status in min(in flight, {SDK_THREADS}) threads, "
            "pool_maxsize = max(threads, 10), BasicCredentials (AK/SK signing)",
        ),
        ClientSpec(
            "raw",
            f"raw asyncio ({RAW_CONNECTIONS} conns)",
            "raw",
            f"asyncio streams, {RAW_CONNECTIONS} keep-alive connections, "
            "Content-Length only, json.loads",
        ),
    )
}


# =========================================================================== servers


def _capture_bodies() -> dict[str, tuple[int, list[tuple[str, str]], bytes]]:
    """Each job's status answer as the simulator renders it once the job has SUCCEEDED."""

    async def capture() -> dict[str, tuple[int, list[tuple[str, str]], bytes]]:
        simulator = _bench_simulator()
        answers: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {}
        async with simulator.http_client() as http:
            for name in JOBS:
                path = _status_path(name)
                response = await http.get(path)
                headers = [
                    (key, value)
                    for key, value in response.headers.items()
                    if key.lower() in {"content-type", "x-request-id"}
                ]
                answers[path] = (response.status_code, headers, response.content)
        return answers

    return asyncio.run(capture())


def _bench_simulator() -> Any:
    """A simulator (limits, faults and auth off) whose jobs have all SUCCEEDED."""
    from cdm_status._clock import LoopClock
    from cdm_status.testing import CDMSimulator, ScaledClock

    # 10**6 x real time: every job (boot + run, an hour at most) is done within 4 ms.
    simulator = CDMSimulator(clock=ScaledClock(1e6), gateway_clock=LoopClock(), seed=0)
    for name in JOBS:
        simulator.add_job(name, failure_rate=0.0)
    time.sleep(0.05)
    return simulator


def _status_path(job_name: str) -> str:
    return f"/v1.1/{PROJECT_ID}/clusters/{CLUSTER_ID}/cdm/job/{job_name}/status"


class _FixedHTTP(asyncio.Protocol):
    """HTTP/1.1 keep-alive server for GETs without a body; answers from a fixed table."""

    def __init__(self, answers: dict[bytes, bytes], not_found: bytes) -> None:
        self._answers = answers
        self._not_found = not_found
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        buffer = self._buffer + data
        out: list[bytes] = []
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end]
            buffer = buffer[end + 4 :]
            line_end = head.find(b"\r\n")
            request_line = head if line_end < 0 else head[:line_end]
            parts = request_line.split(b" ")
            target = parts[1] if len(parts) == 3 else b""
            out.append(self._answers.get(target.split(b"?", 1)[0], self._not_found))
        self._buffer = buffer
        if out:
            self._transport.write(b"".join(out))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


def _render(status: int, headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    reason = {200: "OK", 404: "Not Found"}.get(status, "OK")
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{key}: {value}" for key, value in headers]
    lines += [f"content-length: {len(body)}", "server: bench-fixed", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


async def _stop_when_orphaned(lifetime: float) -> None:
    """Returns when stdin closes (the parent went away) or after ``lifetime`` seconds."""
    import anyio
    import anyio.to_thread

    def drain() -> None:
        while os.read(sys.stdin.fileno(), 4096):
            pass

    with anyio.move_on_after(lifetime):
        await anyio.to_thread.run_sync(drain, abandon_on_cancel=True)


def run_server(kind: str, lifetime: float) -> int:
    """Serve on 127.0.0.1 (a free port); print ``ENDPOINT <url>``; stop when told."""
    import anyio

    if kind == "fixed":
        answers = {
            path.encode("ascii"): _render(status, headers, body)
            for path, (status, headers, body) in _capture_bodies().items()
        }
        not_found = _render(404, [("content-type", "application/json")], b'{"error":"no"}')

        async def main_fixed() -> None:
            loop = asyncio.get_running_loop()
            server = await loop.create_server(
                lambda: _FixedHTTP(answers, not_found), HOST, 0, backlog=4096
            )
            port = server.sockets[0].getsockname()[1]
            print(f"ENDPOINT http://{HOST}:{port}", flush=True)
            async with server:
                await _stop_when_orphaned(lifetime)

        anyio.run(main_fixed)
        return 0

    import socket

    import uvicorn

    simulator = _bench_simulator()
    # Not cdm_status.testing.serve(): it binds with protocol 0, so asyncio leaves Nagle on
    # for the accepted connections, and uvicorn's two writes per answer (head, then body)
    # then wait for the client's delayed ACK: about 40 ms per request on a kept-alive
    # connection. A socket made with IPPROTO_TCP gets TCP_NODELAY from asyncio.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    config = uvicorn.Config(
        simulator, lifespan="on", log_config=None, log_level="warning", access_log=False
    )

    async def main_simulator() -> None:
        started = anyio.Event()

        class Server(uvicorn.Server):
            async def startup(self, sockets: list[socket.socket] | None = None) -> None:
                await super().startup(sockets)
                started.set()

        server = Server(config)
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: server.serve(sockets=[sock]))
            with anyio.fail_after(30):
                await started.wait()
            print(f"ENDPOINT http://{HOST}:{sock.getsockname()[1]}", flush=True)
            await _stop_when_orphaned(lifetime)
            server.should_exit = True

    anyio.run(main_simulator)
    return 0


class ServerProcess:
    """The server in a child process; its CPU time is read from /proc."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("ENDPOINT "):
            self.close()
            raise RuntimeError(f"the {kind} server did not start: {line!r}")
        self.endpoint = line.split(" ", 1)[1]
        self.port = int(self.endpoint.rsplit(":", 1)[1])

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used by the server so far."""
        with open(f"/proc/{self._process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def close(self) -> None:
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)


# =========================================================================== one cell


@dataclass(slots=True)
class Tally:
    total: int
    started: int = 0
    ok: int = 0
    errors: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def take(self) -> bool:
        if self.started >= self.total:
            return False
        self.started += 1
        return True

    def failed(self, error: BaseException) -> None:
        self.errors += 1
        self.kinds[type(error).__name__] += 1


PollFactory = Callable[[str, int], Awaitable[tuple[Callable[[str], Awaitable[None]], Any]]]


async def _drive(
    poll: Callable[[str], Awaitable[None]], concurrency: int, tally: Tally, cap: float
) -> bool:
    """``concurrency`` tasks polling until ``tally.total`` polls started; True if capped."""
    import anyio

    async def worker(offset: int) -> None:
        index = offset
        while tally.take():
            try:
                await poll(JOBS[index % len(JOBS)])
            except Exception as error:
                tally.failed(error)
            else:
                tally.ok += 1
            index += 1

    with anyio.move_on_after(cap) as scope:
        async with anyio.create_task_group() as group:
            for offset in range(concurrency):
                group.start_soon(worker, offset)
    return scope.cancelled_caught


def _check(decoded: Any) -> None:
    if not decoded["submissions"][0]["status"]:
        raise ValueError("no status in the answer")


async def _cdm_client(endpoint: str, key: str) -> tuple[Callable[[str], Awaitable[None]], Any]:
    from cdm_status import AKSKAuth, CDMClient, TokenAuth

    auth: Any = TokenAuth(TOKEN)
    settings: dict[str, Any] = {}
    if key == "cdm-aksk":
        auth = AKSKAuth(FAKE_AK, FAKE_SK, project_id=PROJECT_ID)
    if key == "cdm-tuned":
        settings["max_connections"] = LARGE_POOL
    if key == "cdm-no-otel":
        from cdm_status import _telemetry

        _telemetry._OTEL[:] = [None]  # as if the API were not installed
    if key == "cdm-otel":
        settings.update(_otel_providers())
    client = CDMClient(endpoint, PROJECT_ID, CLUSTER_ID, auth=auth, **settings)

    async def poll(job: str) -> None:
        submission = await client.get_status(job)
        if submission.status is None:
            raise ValueError("no status")

    return poll, client


def _otel_providers() -> dict[str, Any]:
    """An SDK meter provider and tracer provider, as an application would install them
    (minus the network: metrics are collected in memory, finished spans are dropped)."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Drop(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracers = TracerProvider()
    tracers.add_span_processor(SimpleSpanProcessor(Drop()))
    return {
        "meter_provider": MeterProvider(metric_readers=[InMemoryMetricReader()]),
        "tracer_provider": tracers,
    }


async def _httpx_client(
    endpoint: str, key: str, concurrency: int
) -> tuple[Callable[[str], Awaitable[None]], Any]:
    import httpx

    if key == "httpx-default":
        client = httpx.AsyncClient(base_url=endpoint, headers={"X-Auth-Token": TOKEN})

        async def poll(job: str) -> None:
            response = await client.get(_status_path(job))
            response.raise_for_status()
            _check(json.loads(response.content))

        return poll, client

    size = min(concurrency, TUNED_CONNECTIONS)
    tuned = httpx.AsyncClient(
        base_url=endpoint,
        headers={"X-Auth-Token": TOKEN},
        limits=httpx.Limits(max_connections=size, max_keepalive_connections=size),
        timeout=httpx.Timeout(30.0, pool=None),
    )
    gate = asyncio.Semaphore(size)

    async def poll_tuned(job: str) -> None:
        async with gate:
            response = await tuned.get(_status_path(job))
        response.raise_for_status()
        _check(json.loads(response.content))

    return poll_tuned, tuned


class RawPool:
    """The floor: HTTP/1.1 over asyncio streams, keep-alive, ``size`` connections."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self._host = host
        self._port = port
        self._size = size
        self._opened = 0
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._prefix = f"Host: {host}:{port}\r\nX-Auth-Token: {TOKEN}\r\n\r\n".encode("ascii")

    async def _acquire(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if not self._idle.empty():
            return self._idle.get_nowait()
        if self._opened < self._size:
            self._opened += 1
            try:
                return await asyncio.open_connection(self._host, self._port)
            except BaseException:
                self._opened -= 1
                raise
        return await self._idle.get()

    async def get(self, path: str) -> bytes:
        reader, writer = await self._acquire()
        try:
            writer.write(b"GET " + path.encode("ascii") + b" HTTP/1.1\r\n" + self._prefix)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200 "):
                raise ValueError(head.split(b"\r\n", 1)[0].decode("latin-1"))
            start = head.lower().find(b"\r\ncontent-length:")
            if start < 0:
                raise ValueError("no Content-Length")
            end = head.find(b"\r\n", start + 2)
            body = await reader.readexactly(int(head[start + 17 : end]))
        except BaseException:
            writer.close()
            self._opened -= 1
            raise
        self._idle.put_nowait((reader, writer))
        return body

    async def aclose(self) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()


def _sdk_poller(endpoint: str, threads: int) -> Callable[[int], None]:
    """One SDK client (shared by the threads, as the SDK intends); polls job ``index``."""
    from huaweicloudsdkcdm.v1 import CdmClient, ShowJobStatusRequest
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig

    config = HttpConfig.get_default_config()
    # The default pool keeps 10 connections: with more threads, urllib3 would open and
    # throw away a connection per request. One per thread is the SDK at its best.
    config.pool_maxsize = max(threads, 10)
    config.timeout = (10, 30)
    client = (
        CdmClient.new_builder()
        .with_credentials(BasicCredentials(FAKE_AK, FAKE_SK, PROJECT_ID))
        .with_endpoint(endpoint)
        .with_http_config(config)
        .build()
    )

    def poll(index: int) -> None:
        request = ShowJobStatusRequest(cluster_id=CLUSTER_ID, job_name=JOBS[index % len(JOBS)])
        response = client.show_job_status(request)
        if not response.submissions or not response.submissions[0].status:
            raise ValueError("no status in the answer")

    return poll


def _sdk_run(poll: Callable[[int], None], threads: int, total: int, cap: float) -> Tally:
    """``total`` polls through a pool of ``threads`` threads; none starts after ``cap`` s."""
    from concurrent.futures import ThreadPoolExecutor

    tally = Tally(total)
    lock = threading.Lock()
    deadline = time.monotonic() + cap

    def one(index: int) -> None:
        if time.monotonic() > deadline:
            return
        with lock:
            tally.started += 1
        try:
            poll(index)
        except Exception as error:
            with lock:
                tally.failed(error)
        else:
            with lock:
                tally.ok += 1

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(total)))
    return tally


def run_cell(key: str, endpoint: str, concurrency: int, total: int, cap: float) -> dict[str, Any]:
    """One client at one concurrency, in this process; returns its measurements.

    Before the clock starts: imports, client set-up and ``WARMUP`` polls one at a time, so
    lazy imports are not charged to the cell; the pool's growth to ``concurrency`` is.
    """
    import anyio

    warmup = Tally(WARMUP)
    if key == "sdk":
        threads = min(concurrency, SDK_THREADS)
        sdk_poll = _sdk_poller(endpoint, threads)
        warmup = _sdk_run(sdk_poll, 1, WARMUP, cap)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        tally = _sdk_run(sdk_poll, threads, total, cap)
        cpu1, wall1 = time.process_time(), time.perf_counter()
        capped = tally.started < total
    else:

        async def main() -> tuple[Tally, bool, float, float, float, float]:
            host, port = endpoint.rsplit("//", 1)[1].rsplit(":", 1)
            closer: Any
            if key.startswith("cdm"):
                poll, closer = await _cdm_client(endpoint, key)
            elif key.startswith("httpx"):
                poll, closer = await _httpx_client(endpoint, key, concurrency)
            else:
                raw = RawPool(host, int(port), min(concurrency, RAW_CONNECTIONS))

                async def poll(job: str) -> None:
                    _check(json.loads(await raw.get(_status_path(job))))

                closer = raw
            await _drive(poll, 1, warmup, cap)
            tally = Tally(total)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            capped = await _drive(poll, concurrency, tally, cap)
            cpu1, wall1 = time.process_time(), time.perf_counter()
            with anyio.move_on_after(5):
                await closer.aclose()
            return tally, capped, cpu0, wall0, cpu1, wall1

        tally, capped, cpu0, wall0, cpu1, wall1 = anyio.run(main)
    cpu, wall = cpu1 - cpu0, wall1 - wall0
    return {
        "client": key,
        "concurrency": concurrency,
        "requests": total,
        "started": tally.started,
        "ok": tally.ok,
        "errors": tally.errors,
        "error_kinds": dict(tally.kinds),
        "capped": capped,
        "cpu_s": round(cpu, 4),
        "wall_s": round(wall, 4),
        "cpu_us_per_poll": round(cpu / tally.ok * 1e6, 1) if tally.ok else None,
        "polls_per_s": round(tally.ok / wall, 1) if wall > 0 else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "warmup_errors": warmup.errors,
    }


# =========================================================================== the run


def _spawn_cell(
    key: str, server: ServerProcess, concurrency: int, total: int, cap: float
) -> dict[str, Any]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--cell",
        key,
        server.endpoint,
        str(concurrency),
        str(total),
        str(cap),
    ]
    server_cpu0 = server.cpu_seconds()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=cap + 60, check=False
        )
    except subprocess.TimeoutExpired:
        return {"client": key, "concurrency": concurrency, "failed": "cell timed out"}
    server_cpu = server.cpu_seconds() - server_cpu0
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"client": key, "concurrency": concurrency, "failed": " | ".join(tail)}
    cell: dict[str, Any] = json.loads(lines[-1])
    cell["server_cpu_s"] = round(server_cpu, 4)
    cell["server_busy"] = round(server_cpu / cell["wall_s"], 3) if cell["wall_s"] else None
    return cell


def _best_of(
    repeat: int, key: str, server: ServerProcess, concurrency: int, total: int, cap: float
) -> dict[str, Any]:
    """The run with the least CPU per poll out of ``repeat``: other load on the machine
    only ever adds to it. A run with errors, a cap hit or a failure is not repeated."""
    runs: list[dict[str, Any]] = []
    for _ in range(repeat):
        load = os.getloadavg()[0]
        cell = _spawn_cell(key, server, concurrency, total, cap)
        cell["load_1m_before"] = round(load, 2)
        runs.append(cell)
        if "failed" in cell or cell["errors"] or cell["capped"]:
            break
    measured = [run for run in runs if "failed" not in run and run["cpu_us_per_poll"]]
    best = min(measured, key=lambda run: run["cpu_us_per_poll"]) if measured else runs[-1]
    best["cpu_us_per_poll_runs"] = [run.get("cpu_us_per_poll") for run in runs]
    return best


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table(cells: list[dict[str, Any]]) -> str:
    rows = [
        "| client | in flight | CPU µs/poll | polls/s | errors | peak RSS MB | srv % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in cells:
        label = CLIENTS[cell["client"]].label
        if "failed" in cell:
            rows.append(f"| {label} | {cell['concurrency']:,} | failed: {cell['failed']} |||||")
            continue
        errors = _fmt(cell["errors"])
        if cell["error_kinds"]:
            errors += " (" + ", ".join(f"{k} {v}" for k, v in cell["error_kinds"].items()) + ")"
        if cell["capped"]:
            errors += f" [capped: {cell['ok'] + cell['errors']:,}/{cell['requests']:,} done]"
        busy = cell.get("server_busy")
        rows.append(
            f"| {label} | {cell['concurrency']:,} | {_fmt(cell['cpu_us_per_poll'])} "
            f"| {_fmt(cell['polls_per_s'])} | {errors} | {_fmt(cell['peak_rss_mb'], 1)} "
            f"| {'-' if busy is None else f'{busy * 100:.0f}'} |"
        )
    return "\n".join(rows)


def _cpu(cells: list[dict[str, Any]], key: str, concurrency: int) -> float | None:
    for cell in cells:
        if cell["client"] == key and cell["concurrency"] == concurrency and "failed" not in cell:
            value = cell["cpu_us_per_poll"]
            return float(value) if value is not None else None
    return None


def _error_free(cells: list[dict[str, Any]], key: str, concurrency: int) -> bool:
    return any(
        cell["client"] == key
        and cell["concurrency"] == concurrency
        and "failed" not in cell
        and cell["errors"] == 0
        and not cell["capped"]
        for cell in cells
    )


def ratios(cells: list[dict[str, Any]], concurrencies: Sequence[int]) -> list[dict[str, Any]]:
    """cdm-status's CPU per poll against the SDK, the best bare httpx and the raw floor."""
    out: list[dict[str, Any]] = []
    httpx_keys = [spec.key for spec in CLIENTS.values() if spec.family == "httpx"]
    for concurrency in concurrencies:
        candidates = [
            (value, key)
            for key in httpx_keys
            if _error_free(cells, key, concurrency)
            and (value := _cpu(cells, key, concurrency)) is not None
        ]
        best_httpx = min(candidates) if candidates else None
        sdk = _cpu(cells, "sdk", concurrency)
        raw = _cpu(cells, "raw", concurrency)
        for key in ("cdm", "cdm-tuned", "cdm-aksk"):
            mine = _cpu(cells, key, concurrency)
            if mine is None:
                continue
            errors = next(
                (
                    cell["errors"]
                    for cell in cells
                    if cell["client"] == key
                    and cell["concurrency"] == concurrency
                    and "failed" not in cell
                ),
                None,
            )
            out.append(
                {
                    "client": key,
                    "concurrency": concurrency,
                    "errors": errors,
                    "vs_sdk": round(mine / sdk, 2) if sdk else None,
                    "vs_best_httpx": round(mine / best_httpx[0], 2) if best_httpx else None,
                    "best_httpx": best_httpx[1] if best_httpx else None,
                    "vs_raw": round(mine / raw, 2) if raw else None,
                }
            )
    return out


def hook_cost(polls: int = 20_000, repeat: int = 5) -> dict[str, float]:
    """CPU µs per poll of the telemetry hooks alone, as the client calls them for one
    answered status request (span, budget wait, attempt, sending), without the network:
    no API, the API without an SDK, and the SDK (the least of ``repeat`` runs each)."""
    from cdm_status import _telemetry
    from cdm_status._clock import LoopClock

    endpoint = "http://127.0.0.1:8080"
    path = _status_path(JOBS[0])
    _telemetry._OTEL[:] = [None]
    recorders = {"no_api": _telemetry.Telemetry(LoopClock(), endpoint=endpoint)}
    _telemetry._OTEL.clear()
    recorders["api"] = _telemetry.Telemetry(LoopClock(), endpoint=endpoint)
    recorders["sdk"] = _telemetry.Telemetry(LoopClock(), endpoint=endpoint, **_otel_providers())

    def run(recorder: Any, count: int) -> None:
        for _ in range(count):
            call = recorder.call("GET", path, JOBS[0])
            with call:
                with call.budget_wait():
                    pass
                with call.attempt():
                    recorder.sending()

    out: dict[str, float] = {}
    for name, recorder in recorders.items():
        run(recorder, 1_000)
        best = float("inf")
        for _ in range(repeat):
            started = time.process_time()
            run(recorder, polls)
            best = min(best, time.process_time() - started)
        out[name] = round(best / polls * 1e6, 2)
    return out


def telemetry_overhead(
    cells: list[dict[str, Any]], concurrencies: Sequence[int]
) -> list[dict[str, Any]]:
    """CPU per poll added by telemetry: the API's no-ops and the SDK, over no API at all."""
    out: list[dict[str, Any]] = []
    for concurrency in concurrencies:
        base = _cpu(cells, "cdm-no-otel", concurrency)
        api = _cpu(cells, "cdm", concurrency)
        sdk = _cpu(cells, "cdm-otel", concurrency)
        if base is None or sdk is None:
            continue
        out.append(
            {
                "concurrency": concurrency,
                "no_api_us": base,
                "api_us": api,
                "sdk_us": sdk,
                "api_added_us": None if api is None else round(api - base, 1),
                "sdk_added_us": round(sdk - base, 1),
            }
        )
    return out


def telemetry_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| in flight | no API µs/poll | API, no SDK | SDK (metrics + spans) | added by the SDK |",
        "|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['concurrency']:,} | {_fmt(row['no_api_us'])} | {_fmt(row['api_us'])} "
            f"| {_fmt(row['sdk_us'])} | {row['sdk_added_us']:+.1f} µs "
            f"({row['sdk_added_us'] / row['no_api_us'] * 100:+.0f}%) |"
        )
    return "\n".join(lines)


def ratio_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| client | in flight | vs SDK (target ≤ 0.5) | vs best bare httpx (≤ 1.2) "
        "| vs raw floor | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:

        def mark(value: float | None, limit: float | None) -> str:
            if value is None:
                return "-"
            if limit is None:
                return f"{value:.2f}x"
            return f"{value:.2f}x {'ok' if value <= limit else 'MISS'}"

        lines.append(
            f"| {CLIENTS[row['client']].label} | {row['concurrency']:,} "
            f"| {mark(row['vs_sdk'], 0.5)} "
            f"| {mark(row['vs_best_httpx'], 1.2)} "
            f"({CLIENTS[row['best_httpx']].label if row['best_httpx'] else '-'}) "
            f"| {mark(row['vs_raw'], None)} | {_fmt(row['errors'])} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--requests", type=int, default=2000, help="polls per cell (2,000)")
    parser.add_argument("--cap", type=float, default=10.0, help="seconds per cell at most (10)")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated keys")
    parser.add_argument(
        "--concurrency", default=",".join(map(str, CONCURRENCY)), help="requests in flight"
    )
    parser.add_argument(
        "--repeat", type=int, default=2, help="runs per cell; the least CPU/poll is kept (2)"
    )
    parser.add_argument("--server", choices=("fixed", "simulator"), default="fixed")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument("--serve", choices=("fixed", "simulator"), help=argparse.SUPPRESS)
    parser.add_argument("--cell", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        return run_server(args.serve, SERVER_LIFETIME)
    if args.cell:
        key, endpoint, concurrency, total, cap = args.cell
        result = run_cell(key, endpoint, int(concurrency), int(total), float(cap))
        print(json.dumps(result), flush=True)
        return 0

    keys = [key.strip() for key in args.clients.split(",") if key.strip()]
    unknown = [key for key in keys if key not in CLIENTS]
    if unknown:
        parser.error(f"unknown clients: {', '.join(unknown)} (known: {', '.join(CLIENTS)})")
    concurrencies = [int(value) for value in args.concurrency.split(",")]
    if min(args.requests, args.repeat, *concurrencies) < 1 or args.cap <= 0:
        parser.error("--requests, --repeat, --cap and --concurrency must be positive")

    machine = machine_info()
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    server = ServerProcess(args.server)
    cells: list[dict[str, Any]] = []
    try:
        for key in keys:
            for concurrency in concurrencies:
                cell = _best_of(args.repeat, key, server, concurrency, args.requests, args.cap)
                cells.append(cell)
                brief = cell.get("failed") or (
                    f"{_fmt(cell['cpu_us_per_poll'])} µs/poll, "
                    f"{_fmt(cell['polls_per_s'])} polls/s, {cell['errors']} errors"
                )
                print(f"  {CLIENTS[key].label} @ {concurrency}: {brief}", file=sys.stderr)
    finally:
        server.close()
    elapsed = time.perf_counter() - started
    compared = ratios(cells, concurrencies)
    telemetry = telemetry_overhead(cells, concurrencies)
    hooks = hook_cost() if "cdm-otel" in keys else None

    print(
        f"## Client overhead ({args.requests:,} polls per cell, {args.server} server, "
        f"{machine['nproc']} cores, {machine['cpu_model']}, Python {machine['python']})\n"
    )
    print(table(cells))
    print()
    print(ratio_table(compared))
    print()
    if telemetry:
        print("Telemetry (the same run):\n")
        print(telemetry_table(telemetry))
        print()
    if hooks:
        print(
            "Telemetry hooks alone, CPU per poll (no network; the least of 5 runs of "
            f"20,000): no API {hooks['no_api']} µs, the API without an SDK {hooks['api']} µs, "
            f"the SDK (metrics + spans) {hooks['sdk']} µs.\n"
        )
    for key in keys:
        print(f"- {CLIENTS[key].label}: {CLIENTS[key].note}")
    print(
        f"\nCPU/poll: the least of {args.repeat} runs per cell. Load average (1 min): "
        f"{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, on "
        f"{machine['nproc']} cores. Total time: {elapsed:.0f} s."
    )

    report = {
        "benchmark": "overhead",
        "command": "python benchmarks/overhead.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine,
        "load_1m": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "settings": {
            "requests_per_cell": args.requests,
            "repeat": args.repeat,
            "warmup_polls": WARMUP,
            "cap_s": args.cap,
            "server": args.server,
            "tuned_connections": TUNED_CONNECTIONS,
            "sdk_threads": SDK_THREADS,
            "jobs": len(JOBS),
        },
        "clients": {key: asdict(CLIENTS[key]) for key in keys},
        "cells": cells,
        "ratios": compared,
        "telemetry": telemetry,
        "telemetry_hooks_us_per_poll": hooks,
        "targets": {"vs_sdk": 0.5, "vs_best_httpx": 1.2, "errors_at_1000": 0},
        "elapsed_s": round(elapsed, 1),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
