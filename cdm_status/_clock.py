"""Time, as the library sees it.

Everything that waits or reads the time takes a :class:`Clock`, so tests run hours of
polling on a virtual clock without sleeping (see ``cdm_status.testing.FakeClock``).
Two readings are kept apart on purpose: ``monotonic()`` orders events and schedules polls
(it never jumps back), ``time()`` is the wall clock in epoch seconds (UTC) that dates what a
user sees.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time as _time
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "LoopClock", "utc_datetime"]


@runtime_checkable
class Clock(Protocol):
    """The two readings and the one wait that the library needs."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch (UTC)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a checkpoint when zero or negative); cancellable."""
        ...


class LoopClock:
    """The real clock, read where the sleeps wait: the running event loop's clock.

    Inside an event loop ``monotonic()`` is ``anyio.current_time()``, the very clock that
    ``sleep`` waits on, so a virtual loop clock (trio's ``MockClock``, asyncio under
    ``looptime``) moves both together. ``time()`` is the wall clock taken once per loop and
    moved on by the loop's clock, so dates and deadlines stay in step under virtual time.
    Outside any loop both fall back to ``time.monotonic()`` and ``time.time()``.
    """

    __slots__ = ("_anchor",)

    def __init__(self) -> None:
        # (loop token, loop time, wall time) at the first wall reading in that loop.
        self._anchor: tuple[object, float, float] | None = None

    def monotonic(self) -> float:
        if _loop_token() is None:
            return _time.monotonic()
        return anyio.current_time()

    def time(self) -> float:
        token = _loop_token()
        if token is None:
            return _time.time()
        now = anyio.current_time()
        anchor = self._anchor
        if anchor is None or anchor[0] is not token:
            anchor = self._anchor = (token, now, _time.time())
        return anchor[2] + (now - anchor[1])

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(whole_microseconds(seconds))

    def __repr__(self) -> str:
        return "LoopClock()"


def whole_microseconds(seconds: float) -> float:
    """``seconds`` (none below zero) rounded up to a whole microsecond, for the loop's timers.

    Under ``looptime`` the asyncio loop's clock moves in whole microseconds, and before
    looptime 0.8 (the last release for Python 3.10 is 0.7) a timer due a fraction of a
    microsecond after a tick never fires: the loop spins at that tick for good. Every wait
    of the library runs on this clock, so a wait that starts on a tick ends on one; it is
    never shorter than asked (a deadline never comes early), at most a microsecond longer.
    """
    if not seconds > 0.0:
        return 0.0
    if math.isinf(seconds):
        return seconds
    ticks = math.ceil(seconds * 1e6)
    if ticks / 1e6 < seconds:  # the product was rounded down
        ticks += 1
    return ticks / 1e6


def _loop_token() -> object | None:
    """An object that stands for the running event loop, or None outside one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        pass
    trio = sys.modules.get("trio")  # never imported here: only a running trio counts
    if trio is not None:
        try:
            token: object = trio.lowlevel.current_trio_token()
        except RuntimeError:
            return None
        return token
    return None


def loop_deadline(seconds: float) -> anyio.CancelScope:
    """A cancel scope that ends its block after ``seconds`` on the event loop's clock (the
    clock ``LoopClock`` reads and waits on): a deadline without a task."""
    return anyio.move_on_after(whole_microseconds(seconds))


def utc_datetime(epoch_seconds: float) -> datetime:
    """An aware UTC ``datetime`` for epoch seconds."""
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
