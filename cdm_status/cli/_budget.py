"""The request budget of ``wait`` and ``run``: ``--requests-per-minute`` and
``--list-requests-per-minute``, ``--budget`` to share it with other processes through
Redis, and ``--speed``, the clock they are counted on."""

from __future__ import annotations

import argparse
import importlib.util
import os
from collections.abc import Mapping

from .._client import CDMClient
from .._clock import Clock, LoopClock
from .._redis_budget import RedisBudget
from ._common import EXIT_USAGE, CommandError, budget_window, positive_number

__all__ = [
    "add_budget_arguments",
    "add_rate_arguments",
    "budget_fields",
    "budget_from_args",
    "budget_phrase",
    "budget_setting",
    "check_joined",
    "clock_from_args",
]

SCHEMES = ("redis://", "rediss://", "unix://")
CLIENT_LIBRARIES = ("redis", "coredis")
"""Either serves the command line's asyncio loop (``RedisBudget.from_url``)."""


def add_rate_arguments(parser: argparse.ArgumentParser) -> None:
    """``--requests-per-minute`` and ``--list-requests-per-minute``: this process's limits,
    or with ``--budget`` the limits of the shared budget."""
    parser.add_argument(
        "--requests-per-minute",
        type=positive_number,
        default=120.0,
        metavar="N",
        help="status requests per minute, shared by all jobs (CDM allows 120 per user)",
    )
    parser.add_argument(
        "--list-requests-per-minute",
        type=positive_number,
        default=120.0,
        metavar="N",
        help="job-list requests per minute, when jobs are followed through the job list "
        "(CDM allows 120)",
    )
    parser.add_argument(
        "--speed",
        type=positive_number,
        default=1.0,
        metavar="X",
        help="run this command's clock X times faster than real time, so the timeouts, "
        "the request rates and a --budget count its sped-up seconds: only against a "
        "simulator that plays jobs and rate limits X times faster (default 1)",
    )


def clock_from_args(args: argparse.Namespace) -> Clock:
    """The clock of the command's client, wait and budget: real time, or ``--speed``."""
    speed: float = getattr(args, "speed", 1.0)
    if speed == 1.0:
        return LoopClock()
    from ..testing import ScaledClock  # the test kit is loaded only when sped up

    return ScaledClock(speed)


def add_budget_arguments(parser: argparse.ArgumentParser) -> None:
    """``--budget`` and ``--budget-id``."""
    group = parser.add_argument_group(
        "shared budget",
        "CDM's limits are per user: processes that share a budget in Redis stay under "
        "them together (needs: pip install 'cdm-status[redis]').",
    )
    group.add_argument(
        "--budget",
        metavar="URL",
        help="share the request budget through the Redis at URL, e.g. redis://host:6379/0 "
        "[CDM_STATUS_BUDGET]; a Redis that refuses it (password, ACL) exits 2, one that "
        "does not answer leaves a local limit",
    )
    group.add_argument(
        "--budget-id",
        metavar="ID",
        help="name of the shared budget; needed with token auth (default: a hash of the "
        "endpoint, project and access key)",
    )


ENVIRONMENT = "CDM_STATUS_BUDGET"


def budget_setting(args: argparse.Namespace) -> str:
    """The setting that asked for the shared budget, as error messages name it."""
    return "--budget" if args.budget else ENVIRONMENT


def budget_from_args(
    args: argparse.Namespace,
    client: CDMClient,
    environ: Mapping[str, str] | None = None,
    *,
    clock: Clock | None = None,
) -> RedisBudget | None:
    """The shared budget the flags (or ``CDM_STATUS_BUDGET``) ask for, its URL checked
    before anything runs, on ``clock`` (the command's, at ``--speed``); CommandError(2)
    naming the setting, never quoting the URL."""
    url = args.budget or (os.environ if environ is None else environ).get(ENVIRONMENT)
    if not url:
        if args.budget_id:
            raise CommandError("--budget-id needs --budget URL", EXIT_USAGE)
        return None
    setting = budget_setting(args)
    if not url.startswith(SCHEMES):
        # Only the scheme: the URL may carry a password.
        raise CommandError(
            f"{setting} must be a URL starting with {', '.join(SCHEMES)}", EXIT_USAGE
        )
    if not any(importlib.util.find_spec(name) for name in CLIENT_LIBRARIES):
        # Said now, not as a traceback when the budget is entered (for run: after the start).
        raise CommandError(
            f"{setting} needs a Redis client: pip install 'cdm-status[redis]'", EXIT_USAGE
        )
    try:
        return RedisBudget.from_url(  # checks the URL (RedisBudget's check_url)
            url,
            client=client,
            budget_id=args.budget_id,
            per_minute=args.requests_per_minute,
            list_per_minute=args.list_requests_per_minute,
            clock=clock,
            window=budget_window(getattr(args, "speed", 1.0)),
            speed=getattr(args, "speed", 1.0),
        )
    except ValueError as error:
        raise CommandError(f"{setting}: {error}", EXIT_USAGE) from None


def check_joined(budget: RedisBudget | None, setting: str) -> None:
    """Just entered: CommandError(2) when Redis refuses the budget for a reason retrying
    will not fix (a wrong password, an ACL). The user asked for a shared budget: going on
    alone would silently overspend the other processes' share. A Redis that does not
    answer is no such reason: the command goes on under a local limit."""
    if budget is not None and budget.refused:
        reason = (budget.fallback_reason or "").removeprefix("refused: ")
        raise CommandError(f"{setting}: Redis refused the shared budget: {reason}", EXIT_USAGE)


def budget_phrase(budget: object) -> str | None:
    """``budget shared by 4 processes``, or what happens while Redis does not answer (or
    refuses it)."""
    if not isinstance(budget, RedisBudget):
        return None
    if not budget.shared:
        if budget.refused:
            cause = (budget.fallback_reason or "").removeprefix("refused: ").partition(":")[0]
            return f"shared budget refused ({cause}): local limit {budget.per_minute:g}/min"
        return f"shared budget unreachable: local limit {budget.per_minute:g}/min"
    processes = "1 process" if budget.sharers == 1 else f"{budget.sharers} processes"
    return f"budget shared by {processes}"


def budget_fields(budget: object) -> dict[str, object]:
    """The JSON summary's fields on the budget: how many processes share it, whether it
    was shared at the end and why not (null without ``--budget``)."""
    if not isinstance(budget, RedisBudget):
        return {
            "budget_sharers": None,
            "budget_shared": None,
            "budget_fallback_reason": None,
            "budget_outages": None,
        }
    return {
        "budget_sharers": budget.sharers,
        "budget_shared": budget.shared,
        "budget_fallback_reason": budget.fallback_reason,
        "budget_outages": budget.outages,
    }
