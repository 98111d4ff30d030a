"""How ONE request is retried: transient failures only, with backoff (built on tenacity).

Retrying a request is not polling a job: this policy decides what happens between the
attempts of a single call. How often a job is polled lives in ``_schedule``, and how long a
whole wait may last is the waiter's deadline.

Retried: 429 / ``APIG.0308``, 502, 503, 504 and transport errors (connection, timeout).
Never retried: other 4xx, 500 (CDM's "system error" is a real answer), malformed bodies.
"""

from __future__ import annotations

import random as _random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import tenacity

from ._clock import Clock, LoopClock
from ._errors import APIError, RateLimitedError, TransportError

__all__ = ["RetryPolicy", "backoff_delay", "is_retryable", "was_not_acted_on"]

_T = TypeVar("_T")
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


class RandomSource(Protocol):
    """What the policy needs of a random generator (``random.Random`` has it)."""

    def random(self) -> float: ...


def is_retryable(error: BaseException) -> bool:
    """True for the failures that a second attempt may cure."""
    if isinstance(error, TransportError | RateLimitedError):
        return True
    return isinstance(error, APIError) and error.status_code in RETRYABLE_STATUS


def was_not_acted_on(error: BaseException) -> bool:
    """True when the request surely did nothing: throttled by the gateway, or never
    connected. Only these are retried for a request that changes something (start, stop).
    """
    if isinstance(error, RateLimitedError):
        return True
    return isinstance(error, TransportError) and not error.connected


def backoff_delay(attempt: int, *, base: float, cap: float, draw: float) -> float:
    """Full-jitter exponential backoff: uniform in ``[0, min(cap, base * 2**(attempt-1)))``.

    ``attempt`` counts failed attempts so far (1 after the first); ``draw`` is a uniform
    number in ``[0, 1)``.
    """
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    return ceiling * draw


def server_delay(error: BaseException) -> float | None:
    """The wait the server asked for (``Retry-After``), if any."""
    return error.retry_after if isinstance(error, APIError) else None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry settings for one request.

    A call stops after ``max_attempts`` attempts or when the next wait would take the total
    time spent waiting past ``max_wait``, whichever comes first; then the last typed error
    is raised. A server's ``Retry-After`` (seconds or HTTP date) replaces the backoff for
    that wait, capped at ``max_retry_after``.

    The waits run on the caller's clock (a ``CDMClient`` passes its own), so a virtual clock
    moves them; ``sleep`` replaces that wait when given (tests record the delays with it).
    ``random`` draws the jitter: seed it for repeatable delays.
    """

    max_attempts: int = 4
    max_wait: float = 30.0
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    random: RandomSource = field(default_factory=_random.Random, compare=False, repr=False)
    sleep: Callable[[float], Awaitable[None]] | None = field(
        default=None, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        for name in ("max_wait", "base_delay", "max_delay", "max_retry_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")

    @classmethod
    def never(cls) -> RetryPolicy:
        """One attempt, no retry."""
        return cls(max_attempts=1)

    def delay_for(self, error: BaseException, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed attempt that raised ``error``."""
        asked = server_delay(error)
        if asked is not None:
            return min(asked, self.max_retry_after)
        return backoff_delay(
            failures, base=self.base_delay, cap=self.max_delay, draw=self.random.random()
        )

    async def call(
        self,
        attempt: Callable[[], Awaitable[_T]],
        *,
        on_retry: Callable[[BaseException, float], None] | None = None,
        retry_if: Callable[[BaseException], bool] = is_retryable,
        clock: Clock | None = None,
    ) -> _T:
        """Run ``attempt`` until it succeeds or the policy gives up (then re-raise).

        ``on_retry(error, delay)`` is told about each wait before it starts. ``retry_if``
        narrows what is retried (a request that changes something must not be sent twice
        unless the first one certainly did nothing). The waits sleep on ``clock`` (the
        system clock when None) unless the policy has its own ``sleep``.
        """
        planned: dict[int, float] = {}

        def plan(state: tenacity.RetryCallState) -> float:
            # tenacity asks wait() and stop() in an order that changed between versions;
            # planning each wait once, here, works under both and draws the random number
            # exactly once per failed attempt.
            number = state.attempt_number
            if number not in planned:
                error = state.outcome.exception() if state.outcome else None
                assert error is not None
                planned[number] = self.delay_for(error, number)
            return planned[number]

        def stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= self.max_attempts:
                return True
            return state.idle_for + plan(state) > self.max_wait

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if on_retry is not None and state.outcome is not None:
                error = state.outcome.exception()
                assert error is not None
                on_retry(error, plan(state))

        retrying = tenacity.AsyncRetrying(
            sleep=self.sleep or (clock or LoopClock()).sleep,
            stop=stop,
            wait=plan,
            retry=tenacity.retry_if_exception(retry_if),
            before_sleep=before_sleep,
            reraise=True,
        )
        return await retrying(attempt)
