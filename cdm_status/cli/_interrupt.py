"""Ctrl-C during a watch: end it, print the summary of what was seen, exit 130.

Portable on purpose: asyncio has no ``loop.add_signal_handler`` on Windows (and anyio's
signal receiver is built on it), so the handler is installed with ``signal.signal``, which
every platform and both event loops allow in the main thread. A signal handler must not
touch the event loop (it runs between any two bytecodes), so it only sets a flag that a
task looks at a few times a second.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import anyio
import anyio.abc

from .._clock import LoopClock

__all__ = ["cancel_on_ctrl_c"]

CHECK_INTERVAL = 0.1
"""Seconds of wall time between looks at the flag: how long a Ctrl-C may take to act."""

_WALL = LoopClock()


@dataclass(slots=True)
class _Pressed:
    pressed: bool = False


@contextmanager
def _sigint_flag() -> Iterator[_Pressed]:
    flag = _Pressed()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signal handlers can only be set in the main thread: Ctrl-C as usual
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        flag.pressed = True

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        # The event loop's own handler (or Python's) takes over again: a second Ctrl-C
        # while the summary is written interrupts as usual.
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


async def cancel_on_ctrl_c(
    scope: anyio.CancelScope,
    flags: dict[str, bool],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Cancel ``scope`` and set ``flags["interrupted"]`` when Ctrl-C is pressed."""
    with _sigint_flag() as ctrl_c:
        task_status.started()
        while not ctrl_c.pressed:
            await _WALL.sleep(CHECK_INTERVAL)
    flags["interrupted"] = True
    scope.cancel()
