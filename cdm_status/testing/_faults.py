"""Fault injection: what can go wrong between a client and CDM, on demand.

Three sources, asked in this order for every request that passed auth and the rate limit:

1. a script: ``faults.script(["503", "503", None])`` makes the next three requests fail,
   fail, then succeed (``None`` = serve normally);
2. outage windows: every request fails for ``seconds`` from ``start``;
3. probabilities per fault kind, drawn from the simulator's seeded random generator.

All off by default.
"""

from __future__ import annotations

import collections
import enum
import random
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FaultKind", "Faults", "Outage"]


class FaultKind(str, enum.Enum):
    """A fault, by the string a script may use for it."""

    UNAVAILABLE = "503"
    """HTTP 503 without ``Retry-After``."""
    UNAVAILABLE_RETRY_AFTER = "503-retry-after"
    """HTTP 503 with ``Retry-After: <Faults.retry_after>``."""
    SERVER_ERROR = "500"
    """HTTP 500 with CDM's ``Cdm.0000`` system error."""
    GATEWAY_TIMEOUT = "504"
    """HTTP 504 with the gateway's ``APIGW.0201`` backend timeout."""
    THROTTLED = "429"
    """HTTP 429 ``APIG.0308``, whatever the rate limit says."""
    SLOW = "slow"
    """Answers normally after ``Faults.latency`` seconds on the simulator clock."""
    DROP = "drop"
    """The connection closes without a complete answer (a transport error for the client)."""
    TRUNCATE = "truncate"
    """A 200 whose body stops half way, short of its ``Content-Length``."""
    NOT_JSON = "not-json"
    """A 200 with an HTML page from a proxy instead of JSON."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Outage:
    """Every request from ``start`` (epoch seconds, gateway clock) for ``seconds`` fails
    with ``kind``."""

    start: float
    """When it starts, epoch seconds on the simulator's gateway clock."""
    seconds: float
    """How long it lasts."""
    kind: FaultKind = FaultKind.UNAVAILABLE
    """What every request meanwhile gets."""

    def covers(self, now: float) -> bool:
        """Whether a request at ``now`` falls in the outage."""
        return self.start <= now < self.start + self.seconds


class Faults:
    """Which faults to inject, and how often. Mutable: tests script faults as they go.

    Set on a ``CDMSimulator`` (``faults=``, or ``sim.faults``): a script first, then any
    outage, then these probabilities decide each request's fault.

    Args:
        unavailable: Probability of ``FaultKind.UNAVAILABLE`` (503) per request.
        unavailable_retry_after: Probability of a 503 with ``Retry-After``.
        server_error: Probability of a 500 ``Cdm.0000``.
        gateway_timeout: Probability of a 504 ``APIGW.0201``.
        throttled: Probability of a 429 ``APIG.0308``, whatever the limits say.
        slow: Probability of an answer delayed by ``latency``.
        drop: Probability of a connection closed without a complete answer.
        truncate: Probability of a body cut half way.
        not_json: Probability of a proxy's HTML page instead of JSON.
        latency: Seconds (simulator clock) a ``SLOW`` answer is delayed.
        retry_after: Seconds a ``503-retry-after`` asks for.

    Raises:
        ValueError: A probability outside 0..1, probabilities adding up to more than 1,
            or a negative ``latency`` or ``retry_after``.
    """

    def __init__(
        self,
        *,
        unavailable: float = 0.0,
        unavailable_retry_after: float = 0.0,
        server_error: float = 0.0,
        gateway_timeout: float = 0.0,
        throttled: float = 0.0,
        slow: float = 0.0,
        drop: float = 0.0,
        truncate: float = 0.0,
        not_json: float = 0.0,
        latency: float = 2.0,
        retry_after: float = 2.0,
    ) -> None:
        self.rates: dict[FaultKind, float] = {
            FaultKind.UNAVAILABLE: unavailable,
            FaultKind.UNAVAILABLE_RETRY_AFTER: unavailable_retry_after,
            FaultKind.SERVER_ERROR: server_error,
            FaultKind.GATEWAY_TIMEOUT: gateway_timeout,
            FaultKind.THROTTLED: throttled,
            FaultKind.SLOW: slow,
            FaultKind.DROP: drop,
            FaultKind.TRUNCATE: truncate,
            FaultKind.NOT_JSON: not_json,
        }
        if any(not 0.0 <= rate <= 1.0 for rate in self.rates.values()):
            raise ValueError("fault probabilities must be between 0 and 1")
        if sum(self.rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault probabilities must not add up to more than 1")
        if latency < 0 or retry_after < 0:
            raise ValueError("latency and retry_after must be >= 0")
        self.latency = latency
        self.retry_after = retry_after
        self.outages: list[Outage] = []
        """The outage windows (``outage()`` adds one)."""
        self._script: collections.deque[FaultKind | None] = collections.deque()

    def __repr__(self) -> str:
        active = {kind.value: rate for kind, rate in self.rates.items() if rate}
        return f"Faults({active}, scripted={len(self._script)}, outages={len(self.outages)})"

    def script(self, faults: Iterable[FaultKind | str | None]) -> None:
        """Queue faults for the next requests, one each, in order (``None`` = no fault).

        Appends to whatever is still queued.

        Args:
            faults: ``FaultKind`` members or their values (``"503"``, ``"drop"``...).

        Raises:
            ValueError: A string that is no ``FaultKind`` value (the entries before it
                stay queued).
        """
        self._script.extend(None if item is None else FaultKind(item) for item in faults)

    @property
    def scripted(self) -> int:
        """How many scripted entries are still queued."""
        return len(self._script)

    def outage(
        self, start: float, seconds: float, kind: FaultKind | str = FaultKind.UNAVAILABLE
    ) -> Outage:
        """Fail every request from ``start`` for ``seconds``.

        Args:
            start: Epoch seconds on the simulator's gateway clock.
            seconds: How long.
            kind: What every request meanwhile gets (a ``FaultKind`` or its value).

        Returns:
            The outage, also added to ``outages``.

        Raises:
            ValueError: ``seconds`` is not positive, or ``kind`` is no ``FaultKind``.
        """
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        window = Outage(start, seconds, FaultKind(kind))
        self.outages.append(window)
        return window

    def clear(self) -> None:
        """Switch every fault off."""
        for kind in self.rates:
            self.rates[kind] = 0.0
        self.outages.clear()
        self._script.clear()

    def draw(self, rng: random.Random, now: float) -> FaultKind | None:
        """The fault for one request at ``now``, or None."""
        if self._script:
            return self._script.popleft()
        for window in self.outages:
            if window.covers(now):
                return window.kind
        total = sum(self.rates.values())
        if total <= 0:
            return None  # draw nothing: enabling faults must not shift other random draws
        point = rng.random()
        for kind, rate in self.rates.items():
            if point < rate:
                return kind
            point -= rate
        return None
