"""Time, as the library sees it.

Everything that waits or reads the time takes a :class:`Clock`, so tests run hours of
polling on a virtual clock without sleeping (see ``cdm_status.testing.FakeClock``).
Two readings are kept apart on purpose: ``monotonic()`` orders events and schedules polls
(it never jumps back), ``time()`` is the wall clock in epoch seconds (UTC) that dates what a
user sees.
"""

from __future__ import annotations

import time as _time
from datetime import datetime, timezone
from typing import Protocol, runtime_checkable

import anyio

__all__ = ["Clock", "SystemClock", "utc_datetime"]


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


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.time`` and ``anyio.sleep``."""

    __slots__ = ()

    def monotonic(self) -> float:
        return _time.monotonic()

    def time(self) -> float:
        return _time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


def utc_datetime(epoch_seconds: float) -> datetime:
    """An aware UTC ``datetime`` for epoch seconds."""
    return datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
