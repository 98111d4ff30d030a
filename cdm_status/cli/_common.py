"""What every subcommand shares: exit codes, connection settings, error messages."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio

from .._client import CDMClient
from .._clock import Clock
from .._errors import APIError, AuthenticationError, CDMError, PermissionDeniedError
from .._ratelimit import RateLimiter

_T = TypeVar("_T")

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMEOUT = 3
EXIT_API = 4
EXIT_INTERRUPTED = 130

UNREACHABLE_AFTER = 300.0
"""Seconds of nothing but failed requests after which ``wait`` gives up (before the API's
first answer), and the discovery of ``--subjobs-of`` gives up on a page. An endpoint that
cannot even be connected to (refused, DNS, TLS) before any answer ends either at its first
failed request instead: nothing suggests it is coming back."""


class CommandError(Exception):
    """A failure to report as one line on stderr, with the exit code to end with."""

    def __init__(self, message: str, exit_code: int) -> None:
        # One line, whatever the server put in its error message (it may hold newlines).
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code


def run_main(func: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    """``anyio.run(func, *args)``, where Ctrl-C ends in ``KeyboardInterrupt`` on every Python.

    On Ctrl-C asyncio's runner cancels the main task and, once it has unwound, raises
    ``KeyboardInterrupt`` (Python 3.11 on). On Python 3.10 anyio runs its own copy of that
    runner, which cannot tell a Ctrl-C's cancellation from another there (tasks have no
    ``uncancel``) and lets the main task's ``CancelledError`` out instead: nothing else
    cancels a command's main task, so that is the Ctrl-C.
    """
    try:
        return anyio.run(func, *args)
    except asyncio.CancelledError:
        if sys.version_info >= (3, 11):
            raise
        raise KeyboardInterrupt from None


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The connection flags; each falls back to its environment variable."""
    group = parser.add_argument_group(
        "connection",
        "Each flag falls back to its environment variable. Credentials come only from the "
        "environment (HUAWEICLOUD_SDK_AK + HUAWEICLOUD_SDK_SK [+ "
        "HUAWEICLOUD_SDK_SECURITY_TOKEN], or CDM_AUTH_TOKEN), never from flags that "
        "would show in the process list.",
    )
    group.add_argument("--endpoint", help="CDM base URL [CDM_ENDPOINT]")
    group.add_argument(
        "--region", help="region, for https://cdm.REGION.myhuaweicloud.com [HUAWEICLOUD_SDK_REGION]"
    )
    group.add_argument("--project-id", help="project id [HUAWEICLOUD_SDK_PROJECT_ID]")
    group.add_argument("--cluster-id", help="CDM cluster id [CDM_CLUSTER_ID]")
    group.add_argument(
        "--request-timeout",
        type=positive_number,
        default=30.0,
        help="seconds per HTTP request, its whole answer included (30)",
    )


def positive_number(text: str) -> float:
    """An argparse type: a positive, finite number (``nan``, ``inf``, ``-1`` refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def budget_window(speed: float) -> float:
    """The budgets' window in seconds of a clock ``speed`` times faster than real time:
    CDM's minute plus one real second for requests that reach the server late (the
    network is not sped up). At speed 1, the budgets' own default of 61 s."""
    return 60.0 + speed


def client_from_args(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    *,
    clock: Clock | None = None,
) -> CDMClient:
    """A CDMClient from the flags, then the environment, its retries, deadlines and
    budgets on ``clock`` (real time when None); CommandError(2) if incomplete."""
    per_minute = getattr(args, "requests_per_minute", 120.0)
    list_per_minute = getattr(args, "list_requests_per_minute", 120.0)
    speed: float = getattr(args, "speed", 1.0)
    budget = list_budget = None
    if speed != 1.0:
        window = budget_window(speed)
        budget = RateLimiter(per_minute, window=window, clock=clock)
        list_budget = RateLimiter(list_per_minute, window=window, clock=clock)
    try:
        return CDMClient.from_env(
            os.environ if environ is None else environ,
            endpoint=getattr(args, "endpoint", None) or None,
            region=getattr(args, "region", None) or None,
            project_id=getattr(args, "project_id", None) or None,
            cluster_id=getattr(args, "cluster_id", None) or None,
            request_timeout=args.request_timeout,
            requests_per_minute=per_minute,
            list_requests_per_minute=list_per_minute,
            budget=budget,
            list_budget=list_budget,
            clock=clock,
        )
    except ValueError as error:
        raise CommandError(f"configuration: {error}", EXIT_USAGE) from None


def describe_api_error(error: CDMError) -> CommandError:
    """The one-line message and exit code (4) for an API or network failure."""
    if isinstance(error, AuthenticationError | PermissionDeniedError):
        return CommandError(f"the API refused the credentials: {error}", EXIT_API)
    if isinstance(error, APIError):
        return CommandError(f"the API answered with an error: {error}", EXIT_API)
    return CommandError(f"{type(error).__name__}: {error}", EXIT_API)
