"""ScaledClock: the real clock sped up, for tests and demos over real sockets."""

from __future__ import annotations

import pytest

from cdm_status.testing import ScaledClock


def test_it_reads_the_real_clock_sped_up_and_jumps_on_when_told() -> None:
    clock = ScaledClock(10.0)
    before, wall = clock.monotonic(), clock.time()
    clock.jump(3600.0)
    # An hour at once, plus the instant that passed between the readings (times 10; a
    # loaded machine may take most of a second).
    assert 3600.0 <= clock.monotonic() - before < 3610.0
    assert 3600.0 <= clock.time() - wall < 3610.0
    # Both readings moved together: time() is still the start's date plus monotonic().
    assert clock.time() - clock.monotonic() == pytest.approx(wall - before, abs=1.0)


def test_it_never_jumps_back() -> None:
    clock = ScaledClock(10.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.jump(-1.0)
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0.0)
