"""One request budget shared by many callers: a token bucket plus a sliding window.

CDM counts requests per user over any 60-second window. A plain token bucket lets
``burst + rate * 60`` requests into a window, which is more than the API allows, so the
bucket here is backed by a log of the last ``per_minute`` send times: a request goes only
when the bucket has a token AND fewer than ``per_minute`` requests went out in the last
``window`` seconds. A 429 (or any ``Retry-After``) pauses the whole budget.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

import anyio

from ._clock import Clock, LoopClock

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``per_minute`` acquisitions in any window, in bursts of at most ``burst``.

    ``window`` defaults to 60 s plus a small margin, so that requests that reach the server
    a little late (network delay) still fit the server's own 60-second count.
    """

    def __init__(
        self,
        per_minute: float,
        *,
        burst: int = 4,
        window: float = 61.0,
        clock: Clock | None = None,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self.per_minute = per_minute
        self.burst = min(burst, max(1, int(per_minute)))
        self.window = window
        self._clock = clock or LoopClock()
        self._interval = 60.0 / per_minute
        self._tokens = float(self.burst)
        self._refilled_at: float | None = None
        self._sent: collections.deque[float] = collections.deque()
        self._paused_until = -float("inf")
        self._lock = anyio.Lock()
        self.acquired = 0
        self.pauses = 0

    def __repr__(self) -> str:
        return f"RateLimiter(per_minute={self.per_minute}, burst={self.burst})"

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` from now (a 429 or ``Retry-After`` was seen)."""
        until = self._clock.monotonic() + max(0.0, seconds)
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1

    def record(self, times: Iterable[float]) -> None:
        """Count requests already sent at ``times`` (monotonic seconds, in order) through
        another budget: a limiter taking over from it (a shared budget whose Redis went
        quiet) then spends only what they left of the window and of the burst."""
        for at in times:
            self._refill(at)
            self._tokens = max(0.0, self._tokens - 1.0)
            self._sent.append(at)

    def next_free(self, now: float) -> float:
        """When the next acquisition could go, by the clock; pure bookkeeping, no wait."""
        self._refill(now)
        at = max(now, self._paused_until)
        if self._tokens < 1.0:
            at = max(at, now + (1.0 - self._tokens) * self._interval)
        capacity = max(1, int(self.per_minute))
        if len(self._sent) >= capacity:
            at = max(at, self._sent[-capacity] + self.window)
        return at

    def _refill(self, now: float) -> None:
        if self._refilled_at is None:
            self._refilled_at = now
            return
        elapsed = now - self._refilled_at
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed / self._interval)
            self._refilled_at = now
        horizon = now - self.window
        while self._sent and self._sent[0] <= horizon:
            self._sent.popleft()

    async def acquire(self) -> None:
        """Wait for a slot, then take it. Callers are served first come, first served."""
        async with self._lock:
            # A sleep to ``at`` that ended means ``at`` came, even on a clock that reads
            # coarser than it sleeps (looptime, Windows): going by the reading alone would
            # sleep the hair it reads short again and again, without time moving on.
            slept_until = float("-inf")
            while True:
                now = max(self._clock.monotonic(), slept_until)
                at = self.next_free(now)
                if at <= now:
                    break
                await self._clock.sleep(at - now)
                slept_until = at
            self._tokens -= 1.0
            self._sent.append(now)
            self.acquired += 1
