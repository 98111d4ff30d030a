"""Reads the definitions of watched jobs whose settings a watch needs, one at a time.

The tracker asks for a job's settings at most once per watch (``Decision.read_settings``),
and only when an answer calls for them and no list row carried them: a failed run (will
CDM retry it?) or a run that says CDM deletes the job after it (after a success only, or
whatever the result?). Each read is one "Querying a Job" request, from the job list's
budget, so the reads of a large watch queue here rather than crowd out its list sweeps.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable

import anyio

from ._definition import JobDefinition, JobSettings

__all__ = ["SettingsReader"]

logger = logging.getLogger("cdm_status")


class SettingsReader:
    """A queue of job names, read one at a time by :meth:`run`.

    ``read`` fetches one definition; ``report`` receives each job's settings, or None
    when its definition could not be read (the client already retried what was worth it).
    ``run`` may be cancelled at any await and run again: a read cut off goes back to the
    front of the queue.
    """

    def __init__(
        self,
        read: Callable[[str], Awaitable[JobDefinition]],
        report: Callable[[str, JobSettings | None], None],
    ) -> None:
        self._read = read
        self._report = report
        self._queue: collections.deque[str] = collections.deque()
        self._ready: anyio.Event | None = None
        self.reads = 0
        """Definitions read (or tried) so far."""

    def want(self, name: str) -> None:
        """Read ``name``'s definition when its turn comes."""
        if name not in self._queue:
            self._queue.append(name)
        if self._ready is not None:
            self._ready.set()

    def discard(self, name: str) -> None:
        """Nobody needs ``name``'s settings any more."""
        if name in self._queue:
            self._queue.remove(name)

    def __len__(self) -> int:
        return len(self._queue)

    async def run(self) -> None:
        """Read the queued definitions, and wait for more, until cancelled."""
        while True:
            while not self._queue:
                self._ready = anyio.Event()
                await self._ready.wait()
            name = self._queue.popleft()
            finished = False
            try:
                settings: JobSettings | None
                try:
                    settings = (await self._read(name)).settings
                except Exception as error:  # the watch decides without them
                    logger.info("the settings of job %r could not be read: %s", name, error)
                    settings = None
                self.reads += 1
                finished = True
            finally:
                if not finished:
                    self._queue.appendleft(name)
            self._report(name, settings)
