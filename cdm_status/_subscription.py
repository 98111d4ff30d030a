"""A subscription: one caller's view of some watched jobs, as an async iterator.

A :class:`Subscription` holds its own events (in order) and outcomes, and nothing that
belongs to a task: no task group, no cancel scope. So it can be iterated inside an async
generator that yields, closed from another task, or dropped without closing (the engine
then forgets it). Where the polling happens is the engine's business (``_engine``): the
subscription only asks its :class:`Hub` to make progress when it has nothing to return.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from types import TracebackType
from typing import Protocol

import anyio

from ._events import Event, JobDone, JobOutcome

__all__ = ["Hub", "Subscription"]


class Hub(Protocol):
    """What a subscription needs from the engine that feeds it."""

    def needs_driver(self) -> bool:
        """True when nobody runs the engine right now: the caller must."""
        ...

    async def drive(self, subscription: Subscription) -> None:
        """Run the engine until ``subscription`` has an event or has finished."""
        ...

    def unsubscribe(self, key: int) -> None:
        """Forget the subscription: its jobs are no longer polled on its behalf."""
        ...

    def cancel(self, key: int, job_names: tuple[str, ...]) -> None:
        """End these jobs of the subscription with ``CANCELLED`` outcomes."""
        ...


class Subscription:
    """The events of some watched jobs, as an async iterator; ends when every job has
    its outcome (exactly one ``JobDone`` per job) or when closed.

    ``outcomes`` fills in as jobs finish. ``cancel(name)`` stops watching a job: it ends
    with a ``CANCELLED`` outcome. ``aclose()`` (or leaving ``async with``) unsubscribes:
    jobs nobody else watches are no longer polled.

    With ``async with waiter:`` around it, a task of the waiter polls and the
    subscription only waits for its events. Without, whichever subscription is waiting
    for an event runs the engine inside its own ``__anext__`` call, until it has one.
    """

    def __init__(self, hub: Hub, key: int, job_names: tuple[str, ...]) -> None:
        self._hub = hub
        self._key = key
        self._job_names = job_names
        self._events: collections.deque[Event] = collections.deque()
        self._outcomes: dict[str, JobOutcome] = {}
        self._closed = False
        self._signal: anyio.Event | None = None

    def __repr__(self) -> str:
        return (
            f"Subscription(jobs={len(self._job_names)}, ended={len(self._outcomes)}, "
            f"closed={self._closed})"
        )

    # ------------------------------------------------------------------ public API

    @property
    def outcomes(self) -> Mapping[str, JobOutcome]:
        """Outcomes of the jobs that have ended so far, by job name."""
        return self._outcomes

    @property
    def job_names(self) -> tuple[str, ...]:
        """Every watched job (duplicates removed, first-seen order)."""
        return self._job_names

    @property
    def finished(self) -> bool:
        """Closed, or every job has its outcome (events may still wait to be read)."""
        return self._closed or len(self._outcomes) == len(self._job_names)

    def cancel(self, *job_names: str) -> None:
        """Stop watching these jobs; each ends with a ``CANCELLED`` outcome."""
        self._hub.cancel(self._key, job_names)

    async def aclose(self) -> None:
        """Unsubscribe. Events not read yet are dropped; jobs without an outcome keep
        none. Never blocks, so it is safe in ``finally`` blocks and generator cleanup."""
        self.close()

    def close(self) -> None:
        """``aclose()`` for synchronous code."""
        if self._closed:
            return
        self._closed = True
        self._events.clear()
        self._hub.unsubscribe(self._key)
        self._wake()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while True:
            if self._events:
                return self._events.popleft()
            if self.finished:
                raise StopAsyncIteration
            # Armed before asking, so a wake-up between the two is not lost.
            if self._signal is None or self._signal.is_set():
                self._signal = anyio.Event()
            if self._hub.needs_driver():
                await self._hub.drive(self)
            else:
                await self._signal.wait()

    # ------------------------------------------------------------------ engine side

    @property
    def has_events(self) -> bool:
        return bool(self._events)

    def push(self, event: Event) -> None:
        """An event for this subscription (from the engine)."""
        if self._closed:
            return
        if isinstance(event, JobDone):
            self._outcomes[event.job_name] = event.outcome
        self._events.append(event)
        self._wake()

    def _wake(self) -> None:
        if self._signal is not None:
            self._signal.set()

    def wake(self) -> None:
        """Something changed (the engine lost or found its driver): look again."""
        self._wake()
