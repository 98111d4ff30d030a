"""Budgets of the tests' own."""

from __future__ import annotations


class Unmetered:
    """A budget that never waits: for tests of a server's own limits, which a client
    must be free to overrun (a real client's budget would pace it under them)."""

    per_minute = 1e9

    async def acquire(self) -> None:
        return None

    def pause(self, seconds: float) -> None:
        return None


UNMETERED = Unmetered()
