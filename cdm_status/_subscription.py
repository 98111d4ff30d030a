"""A subscription: one caller's view of some watched jobs, as an async iterator.

A :class:`Subscription` only reads: the engine (``_engine``), run by whoever owns the
waiter, puts each event in the subscription's :class:`Inbox` as soon as it is decided,
and the reader takes them out. The subscription holds nothing that belongs to a task (no
task group, no cancel scope), so it can be iterated inside an async generator that
yields, closed from another task, or dropped without closing (the engine then forgets
it). A reader that stops, slows down or is cancelled never holds anybody else up.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping
from types import TracebackType
from typing import Protocol

import anyio

from ._errors import WaiterClosedError
from ._events import Event, JobDone, JobOutcome

__all__ = ["Hub", "Inbox", "Subscription"]


class Hub(Protocol):
    """What a subscription asks of the engine that feeds it."""

    def unsubscribe(self, key: int) -> None:
        """Forget the subscription: its jobs are no longer polled on its behalf."""
        ...

    def cancel(self, key: int, job_names: tuple[str, ...]) -> None:
        """End these jobs of the subscription with ``CANCELLED`` outcomes."""
        ...


class Inbox:
    """Where the engine leaves one subscription's events (the engine's side of it)."""

    __slots__ = ("_signal", "closed", "events", "outcomes", "stopped")

    def __init__(self) -> None:
        self.events: collections.deque[Event] = collections.deque()
        self.outcomes: dict[str, JobOutcome] = {}
        self.closed = False
        self.stopped: WaiterClosedError | None = None
        """Set when the engine stopped before every job had its outcome."""
        self._signal: anyio.Event | None = None

    def put(self, event: Event) -> None:
        """An event for the reader, in order."""
        if self.closed:
            return
        if isinstance(event, JobDone):
            self.outcomes[event.job_name] = event.outcome
        self.events.append(event)
        self.wake()

    def stop(self, error: WaiterClosedError) -> None:
        """The engine stopped: a reader still waiting gets ``error``."""
        if self.stopped is None:
            self.stopped = error
        self.wake()

    def armed(self) -> anyio.Event:
        """An event set by the next :meth:`wake` (armed before the reader looks again,
        so a wake-up between its look and its wait is not lost)."""
        if self._signal is None or self._signal.is_set():
            self._signal = anyio.Event()
        return self._signal

    def wake(self) -> None:
        if self._signal is not None:
            self._signal.set()


class Subscription:
    """The events of some watched jobs, as an async iterator; ends when every job has
    its outcome (exactly one ``JobDone`` per job) or when closed.

    ``outcomes`` fills in as jobs finish. ``cancel(name)`` stops watching a job: it ends
    with a ``CANCELLED`` outcome. ``aclose()`` (or leaving ``async with``) unsubscribes:
    jobs nobody else watches are no longer polled.

    The waiter that made it runs the engine (``async with JobStatusWaiter(client) as
    waiter:``); the subscription only waits for events. If that block ends while jobs
    still wait for their outcome, iterating raises
    [`WaiterClosedError`][cdm_status.WaiterClosedError].
    """

    def __init__(self, hub: Hub, key: int, job_names: tuple[str, ...], inbox: Inbox) -> None:
        self._hub = hub
        self._key = key
        self._job_names = job_names
        self._inbox = inbox

    def __repr__(self) -> str:
        return (
            f"Subscription(jobs={len(self._job_names)}, ended={len(self._inbox.outcomes)}, "
            f"closed={self._inbox.closed})"
        )

    @property
    def outcomes(self) -> Mapping[str, JobOutcome]:
        """Outcomes of the jobs that have ended so far, by job name."""
        return self._inbox.outcomes

    @property
    def job_names(self) -> tuple[str, ...]:
        """Every watched job (duplicates removed, first-seen order)."""
        return self._job_names

    @property
    def finished(self) -> bool:
        """Closed, or every job has its outcome (events may still wait to be read)."""
        return self._inbox.closed or len(self._inbox.outcomes) == len(self._job_names)

    def cancel(self, *job_names: str) -> None:
        """Stop watching these jobs; each ends with a ``CANCELLED`` outcome."""
        self._hub.cancel(self._key, job_names)

    async def aclose(self) -> None:
        """Unsubscribe. Events not read yet are dropped; jobs without an outcome keep
        none. Never blocks, so it is safe in ``finally`` blocks and generator cleanup."""
        self.close()

    def close(self) -> None:
        """``aclose()`` for synchronous code."""
        inbox = self._inbox
        if inbox.closed:
            return
        inbox.closed = True
        inbox.events.clear()
        self._hub.unsubscribe(self._key)
        inbox.wake()

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
        inbox = self._inbox
        while True:
            if inbox.events:
                return inbox.events.popleft()
            if self.finished:
                raise StopAsyncIteration
            if inbox.stopped is not None:
                raise inbox.stopped
            await inbox.armed().wait()
