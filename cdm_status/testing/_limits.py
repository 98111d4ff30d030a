"""The gateway's per-user rate limits, and the simulator's record of what it served.

CDM counts requests per user per API over any 60-second window (not per calendar
minute), so both the limiter and :meth:`ServerStats.max_in_window` work on sliding windows.
"""

from __future__ import annotations

import bisect
import collections
import math
from collections import Counter
from dataclasses import dataclass, field

__all__ = ["ENDPOINTS", "RateLimits", "ServerStats"]

ENDPOINTS = ("status", "list", "job", "start", "stop")
"""The APIs the simulator serves, as named in stats and limits ("other" for the rest);
``job`` is one job's definition ("Querying a Job" by name), counted in the list's budget."""


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Requests allowed per ``window`` seconds, per API; ``None`` means unlimited.

    Counted over a sliding window, as CDM's gateway counts them; a request over the limit
    is answered 429 ``APIG.0308``. ``RateLimits.cdm_defaults()`` gives CDM's.

    Raises:
        ValueError: A limit under 1, or a ``window`` that is not positive.
    """

    status: int | None = None
    """Status requests (``GET .../{job}/status``)."""
    list: int | None = None
    """Job list and job definition requests ("Querying a Job")."""
    start_stop: int | None = None
    """Start and stop requests: one budget for both."""
    window: float = 60.0
    """The sliding window, seconds (on the simulator's gateway clock)."""
    retry_after: bool = False
    """Send a ``Retry-After`` header (seconds until a slot frees) with each 429; CDM's
    gateway promises none, so it is off by default."""

    def __post_init__(self) -> None:
        for name in ("status", "list", "start_stop"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (or None for no limit)")
        if self.window <= 0:
            raise ValueError("window must be positive")

    @classmethod
    def cdm_defaults(cls, *, retry_after: bool = False) -> RateLimits:
        """CDM's documented limits: status 120, list 120, start/stop 1,200 per minute."""
        return cls(status=120, list=120, start_stop=1200, retry_after=retry_after)

    def budget(self, endpoint: str) -> tuple[str, int | None]:
        """The shared budget an endpoint draws from, and its size.

        Args:
            endpoint: ``status``, ``list``, ``job``, ``start`` or ``stop``.

        Returns:
            The budget's name (``status``, ``list`` or ``start_stop``; any other endpoint
            its own) and its limit (None: unlimited).
        """
        if endpoint in ("start", "stop"):
            return "start_stop", self.start_stop
        if endpoint == "status":
            return "status", self.status
        if endpoint in ("list", "job"):  # one API, "Querying a Job"
            return "list", self.list
        return endpoint, None


class SlidingWindow:
    """Admits at most ``limit`` events in any ``window`` seconds."""

    __slots__ = ("_times", "limit", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._times: collections.deque[float] = collections.deque()

    def admit(self, now: float) -> float | None:
        """None if admitted (and counted); else seconds until a slot frees."""
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        if len(self._times) < self.limit:
            self._times.append(now)
            return None
        return max(0.0, self._times[0] + self.window - now)


@dataclass(slots=True)
class ServerStats:
    """What the simulator served: counts per endpoint, per HTTP status, per fault.

    ``times[endpoint]`` lists the (gateway clock) arrival time of every request, rejected
    ones included, so a test can check a client's pacing with ``max_in_window()``.
    Dropped connections count under status ``0``.
    """

    by_endpoint: Counter[str] = field(default_factory=Counter)
    """Requests per API: ``status``, ``list``, ``job``, ``start``, ``stop``, ``other``."""
    by_status: Counter[int] = field(default_factory=Counter)
    """Requests per HTTP status of the answer (0: the connection was dropped)."""
    by_endpoint_status: Counter[tuple[str, int]] = field(default_factory=Counter)
    """Requests per ``(API, HTTP status)``: ``stats.by_endpoint_status["status", 429]``."""
    faults: Counter[str] = field(default_factory=Counter)
    """Faults injected, per ``FaultKind`` value."""
    times: dict[str, list[float]] = field(default_factory=dict)
    """Arrival times per API (gateway clock, epoch seconds), rejected requests included."""

    def record(self, endpoint: str, status: int, at: float) -> None:
        """Count one request (the simulator calls this for each)."""
        self.by_endpoint[endpoint] += 1
        self.by_status[status] += 1
        self.by_endpoint_status[endpoint, status] += 1
        self.times.setdefault(endpoint, []).append(at)

    @property
    def total(self) -> int:
        """Every request received."""
        return sum(self.by_endpoint.values())

    def max_in_window(self, endpoint: str, seconds: float = 60.0) -> int:
        """The most requests to ``endpoint`` that arrived within any ``seconds`` window
        (a window is half-open: ``[t, t + seconds)``).

        Args:
            endpoint: ``status``, ``list``, ``job``, ``start``, ``stop`` or ``other``.
            seconds: The window's length.

        Returns:
            The peak count: at most the limit for a client that paces itself right.
        """
        times = sorted(self.times.get(endpoint, ()))
        best = 0
        for index, start in enumerate(times):
            end = bisect.bisect_left(times, start + seconds, lo=index)
            best = max(best, end - index)
        return best

    def reset(self) -> None:
        """Forget everything counted so far."""
        self.by_endpoint.clear()
        self.by_status.clear()
        self.by_endpoint_status.clear()
        self.faults.clear()
        self.times.clear()


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up, never 0."""
    return str(max(1, math.ceil(seconds)))
