"""``wait --budget`` and ``run --budget``: which budget the flags and the environment ask
for, the usage errors, and how the outputs say the budget is shared."""

from __future__ import annotations

import importlib
import sys

import pytest

from cdm_status import AKSKAuth, CDMClient, LoopClock, RateLimiter, RedisBudget, TokenAuth
from cdm_status.cli import build_parser
from cdm_status.cli._budget import budget_from_args
from cdm_status.cli._common import CommandError, client_from_args
from cdm_status.cli._sinks import WaitResult, summary_line
from cdm_status.cli._tally import Tally

SIGNED = CDMClient("http://127.0.0.1:9", "p", "c", auth=AKSKAuth("AKID", "secret"))
TOKEN = CDMClient("http://127.0.0.1:9", "p", "c", auth=TokenAuth("token"))


# Both commands that wait take the same flags, with the same meaning.
COMMANDS = pytest.mark.parametrize("command", ["wait", "run"])


def args(*argv: str, command: str = "wait") -> object:
    return build_parser().parse_args([command, "job_a", *argv])


@COMMANDS
def test_no_flag_and_no_variable_keeps_the_local_budget(command: str) -> None:
    assert budget_from_args(args(command=command), SIGNED, environ={}) is None


@COMMANDS
def test_the_flag_or_the_variable_shares_both_budgets(command: str) -> None:
    rates = ["--requests-per-minute", "60", "--list-requests-per-minute", "30"]
    flagged = budget_from_args(
        args("--budget", "redis://h:6379/0", *rates, command=command), SIGNED, environ={}
    )
    assert isinstance(flagged, RedisBudget)
    assert (flagged.limit, flagged.list_budget.limit) == (60.0, 30.0)
    environ = {"CDM_STATUS_BUDGET": "redis://h/0"}
    from_env = budget_from_args(args(command=command), SIGNED, environ=environ)
    assert isinstance(from_env, RedisBudget)
    assert (from_env.limit, from_env.list_budget.limit) == (120.0, 120.0)
    assert from_env.prefix == flagged.prefix  # the same user: the same budget
    named = budget_from_args(
        args("--budget", "unix:///s", "--budget-id", "etl", command=command), TOKEN, {}
    )
    assert isinstance(named, RedisBudget)


@pytest.mark.parametrize(
    ("argv", "client", "message"),
    [
        (["--budget-id", "etl"], SIGNED, "--budget-id needs --budget URL"),
        (["--budget", "http://h:6379"], SIGNED, "--budget must be a URL starting with redis://"),
        (["--budget", "redis://h"], TOKEN, "--budget: a shared budget needs budget_id"),
    ],
)
@COMMANDS
def test_usage_errors_exit_2(
    argv: list[str], client: CDMClient, message: str, command: str
) -> None:
    with pytest.raises(CommandError, match=message) as raised:
        budget_from_args(args(*argv, command=command), client, environ={})
    assert raised.value.exit_code == 2


def test_the_summary_says_the_budget_is_shared() -> None:
    tally = Tally(["job_a"])
    assert "budget" not in summary_line(tally, WaitResult(0, 1.0))
    tally.budget = RedisBudget.from_url("redis://h:6379/0", client=SIGNED)
    assert summary_line(tally, WaitResult(0, 1.0)).endswith("; budget shared by 1 process")


def test_the_live_view_says_the_budget_is_shared_and_when_redis_is_away() -> None:
    from tests.cli.test_live_view import screen

    tally = Tally(["job_a"])
    budget = RedisBudget.from_url("redis://h:6379/0", client=SIGNED)
    tally.budget = budget
    assert "budget shared by 1 process" in screen(tally, 1.0)
    budget._link._failed(ConnectionError("refused"))  # what an unanswered call does
    assert "shared budget unreachable: local limit 120/min" in screen(tally, 1.0)


@COMMANDS
def test_the_client_gets_the_rates_and_the_shared_budget_for_both_apis(command: str) -> None:
    environ = {
        "CDM_ENDPOINT": "https://cdm.example.com",
        "HUAWEICLOUD_SDK_PROJECT_ID": "p",
        "CDM_CLUSTER_ID": "c",
        "HUAWEICLOUD_SDK_AK": "AK",
        "HUAWEICLOUD_SDK_SK": "SK",
    }
    argv = args("--requests-per-minute", "60", "--budget", "redis://h/0", command=command)
    client = client_from_args(argv, environ)
    assert (client.budget.per_minute, client.list_budget.per_minute) == (60.0, 120.0)
    budget = budget_from_args(argv, client, environ={})
    assert budget is not None
    client.share_budget(budget, budget.list_budget)
    assert (client.budget, client.list_budget) == (budget, budget.list_budget)


@COMMANDS
def test_speed_puts_the_client_the_wait_and_the_budget_on_one_sped_up_clock(
    command: str,
) -> None:
    from cdm_status.cli._budget import clock_from_args
    from cdm_status.testing import ScaledClock

    environ = {
        "CDM_ENDPOINT": "http://127.0.0.1:9",
        "HUAWEICLOUD_SDK_PROJECT_ID": "p",
        "CDM_CLUSTER_ID": "c",
        "CDM_AUTH_TOKEN": "t",
    }
    argv = args("--speed", "10", "--budget", "redis://h/0", "--budget-id", "e", command=command)
    clock = clock_from_args(argv)
    assert isinstance(clock, ScaledClock)
    assert clock.speed == 10
    client = client_from_args(argv, environ, clock=clock)
    assert client.clock is clock
    # CDM's 120 a minute in the clock's minute; the window's margin for requests that
    # reach the server late stays one real second (the network is not sped up).
    for own in (client.budget, client.list_budget):
        assert isinstance(own, RateLimiter)
        assert (own.per_minute, own.window, own._clock) == (120.0, 70.0, clock)
    budget = budget_from_args(argv, SIGNED, environ={}, clock=clock)
    assert budget is not None
    # Redis's time is read at the clock's speed.
    assert (budget._link.clock, budget._link.speed, budget.window) == (clock, 10.0, 70.0)
    assert isinstance(clock_from_args(args(command=command)), LoopClock)  # by default
    real = budget_from_args(args("--budget", "redis://h/0", command=command), SIGNED, {})
    assert real is not None
    assert (real._link.speed, real.window) == (1.0, 61.0)
    with pytest.raises(SystemExit) as refused:
        args("--speed", "0", command=command)
    assert refused.value.code == 2


@COMMANDS
def test_a_budget_without_a_redis_client_installed_is_a_usage_error(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    coredis = importlib.import_module("coredis")
    for library in ("redis", "coredis"):
        monkeypatch.setitem(sys.modules, library, None)  # as if not installed
    argv = args("--budget", "redis://h/0", command=command)
    with pytest.raises(CommandError, match=r"pip install 'cdm-status\[redis\]'") as raised:
        budget_from_args(argv, SIGNED, environ={})
    assert raised.value.exit_code == 2
    monkeypatch.setitem(sys.modules, "coredis", coredis)  # either client will do
    assert isinstance(budget_from_args(argv, SIGNED, environ={}), RedisBudget)
