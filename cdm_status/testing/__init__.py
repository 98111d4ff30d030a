"""Test kit: a virtual clock and a CDM simulator, for tests, demos and benchmarks."""

from __future__ import annotations

from ._clocks import FakeClock, ScaledClock

__all__ = ["FakeClock", "ScaledClock"]
