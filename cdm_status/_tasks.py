"""Tasks that serve a block and end with it, without touching what the block raises.

anyio's task groups (and trio's nurseries) wrap whatever leaves them in an
``ExceptionGroup``, the block's own exception included: ``except JobFailedError`` around
``async with waiter:`` would never match. :class:`BackgroundTasks` is the task group of
the library's context managers (the waiter's engine, a shared budget's heartbeat, the
test kit's clock): the block's exception is never handed to the group, so it leaves the
block exactly as raised. A task's own failure (a bug: the tasks catch what they expect)
is raised by itself when it is the only one.
"""

from __future__ import annotations

import sys
from types import TracebackType

import anyio
import anyio.abc

if sys.version_info < (3, 11):  # pragma: no cover - the builtin from 3.11 on
    from exceptiongroup import BaseExceptionGroup

__all__ = ["BackgroundTasks", "alone"]


def alone(error: BaseException) -> BaseException:
    """The one exception inside a group (however deeply nested); else ``error`` itself
    (a group of several, or no group at all)."""
    inner = error
    while isinstance(inner, BaseExceptionGroup) and len(inner.exceptions) == 1:
        inner = inner.exceptions[0]
    return error if isinstance(inner, BaseExceptionGroup) else inner


class BackgroundTasks:
    """``async with BackgroundTasks() as group:``: a task group for tasks that serve the
    block. Leaving the block cancels them (``cancel=False``: waits for them to end), and
    whatever the block raised leaves it as raised, never wrapped."""

    __slots__ = ("_cancel", "_group")

    def __init__(self, *, cancel: bool = True) -> None:
        self._cancel = cancel
        self._group: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> anyio.abc.TaskGroup:
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        return group

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        group, self._group = self._group, None
        assert group is not None, "BackgroundTasks entered once, left once"
        if self._cancel or exc is not None:
            group.cancel_scope.cancel()
        failure: BaseException | None = None
        try:
            # As if the block had ended normally: the group gets nothing to wrap.
            await group.__aexit__(None, None, None)
        except BaseExceptionGroup as failed:
            failure = alone(failed)
        if failure is not None:
            raise failure
