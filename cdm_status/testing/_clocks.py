"""Clocks for tests and demos: a virtual clock that jumps, and a sped-up real one.

:class:`FakeClock` never waits on the wall clock. Time moves only when a test calls
:meth:`FakeClock.advance`, or, inside ``async with clock.autojump():``, when every task has
gone quiet: then the clock jumps straight to the earliest pending ``sleep`` deadline. That is
how hours of polling against the simulator run in well under a second.

"Quiet" is judged by checkpoints: the jumper yields to the event loop until ``settle_rounds``
consecutive rounds pass in which no task touched the clock. In-process HTTP (httpx's
``ASGITransport`` and the simulator) completes within a few checkpoints, so no jump happens
while a request is on its way. Do not autojump while tasks wait on real sockets: use
:class:`ScaledClock` there.
"""

from __future__ import annotations

import heapq
import itertools
import time as _time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel

from .._tasks import BackgroundTasks

__all__ = ["FakeClock", "ScaledClock"]

DEFAULT_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class _Sleeper:
    __slots__ = ("deadline", "event", "live")

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.event = anyio.Event()
        self.live = True


class FakeClock:
    """A virtual clock implementing the ``Clock`` protocol.

    ``time()`` starts at ``start`` (epoch seconds, 2026-01-01 UTC by default) and
    ``monotonic()`` at 0; both advance together and only when told to: by ``advance()``,
    or inside ``async with clock.autojump():`` whenever every task waits on it.

    Args:
        start: ``time()`` at creation, epoch seconds.
        settle_rounds: Event-loop rounds without any task touching the clock after which
            every task counts as idle (before ``advance()`` moves on, and before an
            autojump). Raise it when a task takes more checkpoints between two sleeps than
            in-process HTTP does.
    """

    def __init__(self, start: float = DEFAULT_START, *, settle_rounds: int = 16) -> None:
        self._start = start
        self._elapsed = 0.0
        self._sleepers: list[tuple[float, int, _Sleeper]] = []
        self._order = itertools.count()
        self._activity = 0
        self._settle_rounds = settle_rounds
        self._registered = anyio.Event()
        self.jumps = 0
        """How many times ``autojump()`` moved the clock on."""

    def __repr__(self) -> str:
        return f"FakeClock(elapsed={self._elapsed:.3f})"

    def monotonic(self) -> float:
        """Seconds since the clock was created, as far as it has been moved."""
        return self._elapsed

    def time(self) -> float:
        """Epoch seconds: ``start`` plus ``monotonic()``."""
        return self._start + self._elapsed

    @property
    def pending(self) -> int:
        """How many sleeps are waiting on this clock."""
        return sum(1 for _, _, sleeper in self._sleepers if sleeper.live)

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been moved ``seconds`` on (a checkpoint for 0 or less)."""
        self._activity += 1
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        sleeper = _Sleeper(self._elapsed + seconds)
        heapq.heappush(self._sleepers, (sleeper.deadline, next(self._order), sleeper))
        self._registered.set()
        try:
            await sleeper.event.wait()
        finally:
            sleeper.live = False
            self._activity += 1

    def _wake_due(self) -> int:
        woken = 0
        while self._sleepers and self._sleepers[0][0] <= self._elapsed:
            _, _, sleeper = heapq.heappop(self._sleepers)
            if sleeper.live:
                sleeper.event.set()
                woken += 1
        return woken

    def _next_deadline(self) -> float | None:
        while self._sleepers and not self._sleepers[0][2].live:
            heapq.heappop(self._sleepers)
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleep that falls due on the way,
        in deadline order, and letting each woken task run before time moves on.

        Args:
            seconds: How far; 0 only lets the tasks settle.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("time does not go backwards")
        target = self._elapsed + seconds
        while True:
            deadline = self._next_deadline()
            if deadline is None or deadline > target:
                break
            self._elapsed = max(self._elapsed, deadline)
            self._wake_due()
            await self._settle()
        self._elapsed = target
        await self._settle()

    async def _settle(self) -> None:
        """Yield until ``settle_rounds`` rounds pass with no task touching the clock."""
        quiet = 0
        while quiet < self._settle_rounds:
            seen = self._activity
            await anyio.lowlevel.checkpoint()
            quiet = quiet + 1 if self._activity == seen else 0

    async def _jump_forever(self) -> None:
        while True:
            await self._settle()
            deadline = self._next_deadline()
            if deadline is None:
                self._registered = anyio.Event()
                await self._registered.wait()
                continue
            if deadline > self._elapsed:
                self._elapsed = deadline
                self.jumps += 1
            self._wake_due()

    @asynccontextmanager
    async def autojump(self) -> AsyncIterator[FakeClock]:
        """While inside, jump to the next deadline whenever every task is idle.

        ``async with clock.autojump():`` around the code under test: hours of polling run
        at once. Do not autojump while tasks wait on real sockets (use ``ScaledClock``).

        Returns:
            An async context manager yielding this clock.
        """
        # An exception of the block leaves it as raised, never wrapped by the task group.
        async with BackgroundTasks() as group:
            group.start_soon(self._jump_forever)
            yield self


class ScaledClock:
    """The real clock running ``speed`` times faster: for demos over real sockets.

    ``time()`` starts at the real time of creation; ``sleep(s)`` waits ``s / speed`` real
    seconds; ``jump()`` moves it on at once.

    Args:
        speed: How many times faster than real time.

    Raises:
        ValueError: ``speed`` is not positive.
    """

    def __init__(self, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin_wall = _time.time()
        self._origin_mono = _time.monotonic()

    def __repr__(self) -> str:
        return f"ScaledClock(speed={self.speed})"

    def monotonic(self) -> float:
        """Scaled seconds since creation (jumps included)."""
        return (_time.monotonic() - self._origin_mono) * self.speed

    def time(self) -> float:
        """Epoch seconds: the real time of creation plus ``monotonic()``."""
        return self._origin_wall + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock: ``seconds / speed`` real seconds."""
        await anyio.sleep(max(0.0, seconds) / self.speed)

    def jump(self, seconds: float) -> None:
        """Move the clock on by ``seconds`` at once: a test over real sockets skips the rest
        of a long run once what it kept the run going for is done. Sleeps already under way
        are not shortened.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._origin_mono -= seconds / self.speed
