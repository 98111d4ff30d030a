"""Budgets of the tests' own."""

from __future__ import annotations

from cdm_status import RateLimiter
from cdm_status.testing import FakeClock


class Unmetered:
    """A budget that never waits: for tests of a server's own limits, which a client
    must be free to overrun (a real client's budget would pace it under them)."""

    per_minute = 1e9

    async def acquire(self) -> None:
        return None

    def pause(self, seconds: float) -> None:
        return None


UNMETERED = Unmetered()


class BookingBudget:
    """A budget that books a slot, then waits for it (as a shared one does), counting the
    slots booked and those a caller gave up while waiting for them."""

    def __init__(self, clock: FakeClock, per_minute: float = 120.0) -> None:
        self.inner = RateLimiter(per_minute, clock=clock)
        self.clock = clock
        self.booked = 0
        self.abandoned = 0

    @property
    def per_minute(self) -> float:
        return self.inner.per_minute

    def pause(self, seconds: float) -> None:
        self.inner.pause(seconds)

    async def acquire(self) -> None:
        self.booked += 1
        try:
            await self.clock.sleep(0.5)  # the booked slot comes in half a second
            await self.inner.acquire()
        except BaseException:
            self.abandoned += 1
            raise
