"""A scripted status API for waiter unit tests: per-job timelines on a FakeClock.

Each job has a list of ``(seconds, answer)`` steps: from ``seconds`` (on the clock's
monotonic reading) on, requests for the job get ``answer``: a status string, or an int
HTTP status for an error, or ``"gone"`` for a not-found. One-off answers can be queued
with ``inject``. Every request is logged with its time.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from typing import Any
from urllib.parse import unquote

import httpx

from cdm_status import CDMClient, RetryPolicy
from cdm_status.testing import FakeClock

EPOCH_MS = 1_767_225_600_000
PREFIX = "/v1.1/p/clusters/c/cdm/job/"


class ScriptedCDM:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.timelines: dict[str, list[tuple[float, str | int] | tuple[float, str, int]]] = {}
        self.injected: dict[str, deque[str | int]] = defaultdict(deque)
        self.requests: list[tuple[float, str]] = []
        self.created_ms: dict[str, int] = {}

    def job(
        self,
        name: str,
        *steps: tuple[float, str | int] | tuple[float, str, int],
        created_ms: int = EPOCH_MS,
    ) -> None:
        """Steps are ``(from_seconds, answer)`` or ``(from_seconds, status, created_ms)``."""
        self.timelines[name] = list(steps)
        self.created_ms[name] = created_ms

    def inject(self, name: str, *answers: str | int) -> None:
        self.injected[name].extend(answers)

    def answer_for(self, name: str) -> tuple[str | int, int]:
        created = self.created_ms.get(name, EPOCH_MS)
        if self.injected[name]:
            return self.injected[name].popleft(), created
        steps = self.timelines.get(name)
        if steps is None:
            return "gone", created
        now = self.clock.monotonic()
        current: str | int = "gone"
        for step in steps:
            if step[0] <= now:
                current = step[1]
                created = step[2] if len(step) == 3 else self.created_ms[name]
        return current, created

    def handler(self, request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        assert path.startswith(PREFIX), path
        assert path.endswith("/status"), path
        name = unquote(path[len(PREFIX) : -len("/status")])
        self.requests.append((self.clock.monotonic(), name))
        answer, created = self.answer_for(name)
        if answer == "gone":
            body = {"errCode": "Cdm.0100", "externalMessage": f"Job[{name}] doesn't exist."}
            return httpx.Response(400, json=body)
        if answer == "never":
            return httpx.Response(200, json={"submissions": []})
        if isinstance(answer, int):
            body = {"error_code": "APIG.0308" if answer == 429 else "Cdm.0000", "error_msg": "x"}
            return httpx.Response(answer, json=body)
        submission = {
            "job-name": name,
            "status": answer,
            "creation-date": created,
            "creation-user": "cdm",
        }
        if answer == "FAILED":
            submission["error-summary"] = "Connection refused"
            submission["error-details"] = "java.net.ConnectException: Connection refused"
        return httpx.Response(200, content=json.dumps({"submissions": [submission]}))

    def client(self, retry: RetryPolicy | None = None, **options: Any) -> CDMClient:
        """A client of this API; ``options`` go to ``CDMClient`` (its budgets, say)."""
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        return CDMClient(
            "http://cdm.test",
            "p",
            "c",
            http_client=http,
            retry=retry or RetryPolicy.never(),
            clock=self.clock,
            **options,
        )

    def max_in_window(self, seconds: float = 60.0) -> int:
        times = sorted(t for t, _ in self.requests)
        best, start = 0, 0
        for end, t in enumerate(times):
            while times[start] <= t - seconds:
                start += 1
            best = max(best, end - start + 1)
        return best
