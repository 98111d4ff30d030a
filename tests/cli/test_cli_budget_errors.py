"""``--budget`` when something goes wrong: every path ends in one line on stderr and the
documented exit code, whether Redis is up or down; a URL that cannot be used, or a Redis
that refuses the budget (wrong password, an ACL without EVALSHA, a database that does not
exist), exits 2 before anything runs, naming the setting and never the password; a Redis
that does not answer keeps the local fallback, and ``--json`` says which it was.

The real command in a subprocess, against the simulator of ``test_cli_run`` on a
loopback socket, and real Redis servers.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

import pytest

from cdm_status import CDMClient, RedisBudget, TokenAuth
from cdm_status.cli import build_parser
from cdm_status.cli._budget import budget_from_args
from cdm_status.cli._common import CommandError
from tests.cli.test_cli_run import Served, one_line, served
from tests.support.redis_server import RedisServer, free_port

__all__ = ["served"]  # the fixture, used by name

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The command under test runs in a subprocess, on its own loop: the backend of the
    test's side (serving the simulator) changes nothing the command sees, so one will do."""
    return "asyncio"


PASSWORD = "s3cret-Pw-7"
"""Put in every URL here: no message may show it."""


def budget_url(state: str, redis_server: RedisServer) -> str:
    if state == "up":
        return redis_server.url
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


REDIS_STATES = pytest.mark.parametrize("redis", ["up", "down"])


@REDIS_STATES
@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["run", "other"], 4, "Cdm.0052"),  # already running
        (["run", "no_such_job"], 4, "no_such_job"),
        (["wait", "--subjobs-of", "nope"], 2, "--subjobs-of nope: the job list shows no job"),
    ],
    ids=["run-a-running-job", "run-a-missing-job", "wait-subjobs-of-nothing"],
)
async def test_every_path_with_a_budget_ends_in_one_line_and_its_exit_code(
    served: Served,
    redis_server: RedisServer,
    redis: str,
    argv: list[str],
    code: int,
    message: str,
) -> None:
    served.sim.start_job("other")
    url = budget_url(redis, redis_server)
    budget_id = f"etl-{secrets.token_hex(4)}"
    result = await served.cli(*argv, "--budget", url, "--budget-id", budget_id)
    assert result.returncode == code, result.stderr
    line = one_line(result.stderr)
    assert line.startswith("cdm-status: ")
    assert message in line


# ---------------------------------------------------------------------- the URL

TOKEN = CDMClient("http://127.0.0.1:9", "p", "c", auth=TokenAuth("token"))
BAD_URLS = {
    "port-not-a-number": (f"redis://:{PASSWORD}@127.0.0.1:notaport/0", "port"),
    "port-out-of-range": (f"redis://:{PASSWORD}@127.0.0.1:70000/0", "port"),
    "port-zero": (f"redis://:{PASSWORD}@127.0.0.1:0/0", "port"),
    "unclosed-bracket": (f"redis://:{PASSWORD}@[::1:6379/0", "IPv6"),
    "unknown-option": (f"redis://:{PASSWORD}@127.0.0.1:6379/0?sockettimeout=1", "option"),
    "option-not-name-value": (f"redis://:{PASSWORD}@127.0.0.1:6379/0?{PASSWORD}", "options"),
    "db-not-a-number": (f"redis://:{PASSWORD}@127.0.0.1:6379/zero", "database"),
    "db-option-not-a-number": (f"redis://:{PASSWORD}@127.0.0.1/?db=x{PASSWORD}", "database"),
    "no-host": (f"redis://:{PASSWORD}@:6379/0", "host"),
    "tls-option-without-tls": (f"redis://:{PASSWORD}@h/0?ssl_cert_reqs=none", "option"),
    "unix-without-path": (f"unix://{PASSWORD}@host", "socket path"),
}


def parsed(*argv: str, command: str = "run") -> object:
    return build_parser().parse_args([command, "job_a", *argv])


@pytest.mark.parametrize(("url", "problem"), BAD_URLS.values(), ids=BAD_URLS.keys())
@pytest.mark.parametrize("command", ["wait", "run"])
def test_a_url_that_cannot_be_used_exits_2_naming_the_setting(
    url: str, problem: str, command: str
) -> None:
    for argv, environ, setting in [
        (["--budget", url], {}, "--budget"),
        ([], {"CDM_STATUS_BUDGET": url}, "CDM_STATUS_BUDGET"),
    ]:
        with pytest.raises(CommandError) as raised:
            budget_from_args(parsed(*argv, "--budget-id", "etl", command=command), TOKEN, environ)
        assert raised.value.exit_code == 2
        message = str(raised.value)
        assert message.startswith(f"{setting}: ")
        assert problem in message
        assert PASSWORD not in message


def test_urls_both_clients_read_alike_are_taken() -> None:
    for url in [
        f"redis://:{PASSWORD}@127.0.0.1:6379/0",
        "redis://user:pw@redis.internal/15?client_name=etl",
        "redis://[::1]:6380",
        "rediss://h:6379/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem",
        "redis://h?db=3",
        "unix:///var/run/redis.sock?db=1",
    ]:
        budget = budget_from_args(parsed("--budget", url, "--budget-id", "etl"), TOKEN, {})
        assert isinstance(budget, RedisBudget), url


async def test_a_url_that_cannot_be_used_ends_the_run_before_the_start(served: Served) -> None:
    url = BAD_URLS["port-not-a-number"][0]
    result = await served.cli("run", "good", "--budget", url, "--budget-id", "etl")
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert line.startswith("cdm-status: --budget: the URL's port must be a number")
    assert PASSWORD not in line
    assert result.stdout == ""
    assert served.counter.starts == 0


# ---------------------------------------------------------------------- a Redis that refuses


@dataclass
class GuardedRedis:
    """A Redis with a password for its default user, and a user without EVALSHA."""

    server: RedisServer

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"


@pytest.fixture
def guarded_redis(own_redis_server: RedisServer) -> GuardedRedis:
    import redis

    admin = redis.Redis.from_url(own_redis_server.url, socket_timeout=2.0)
    admin.execute_command(
        "ACL", "SETUSER", "noeval", "on", f">{PASSWORD}", "~*", "+@all", "-evalsha", "-eval"
    )
    admin.execute_command("ACL", "SETUSER", "default", "on", f">{PASSWORD}")
    admin.close()
    return GuardedRedis(own_redis_server)


REFUSALS = {
    "wrong-password": (":wrong-{PASSWORD}@{address}/0", "authentication failed"),
    "no-password": ("{address}/0", "authentication failed"),
    "acl-without-evalsha": ("noeval:{PASSWORD}@{address}/0", "permission denied"),
    "database-99": (":{PASSWORD}@{address}/99", "bad database"),
}


@pytest.mark.parametrize(("where", "cause"), REFUSALS.values(), ids=REFUSALS.keys())
async def test_a_redis_that_refuses_the_budget_exits_2_with_its_cause_before_the_start(
    served: Served, guarded_redis: GuardedRedis, where: str, cause: str
) -> None:
    url = "redis://" + where.format(PASSWORD=PASSWORD, address=guarded_redis.address)
    result = await served.cli("run", "good", "--json", "--budget", url, "--budget-id", "etl")
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert line.startswith(f"cdm-status: --budget: Redis refused the shared budget: {cause}")
    assert PASSWORD not in line
    assert result.stdout == ""
    assert served.counter.starts == 0
    waited = await served.cli(
        "wait", "good", "--budget", url, "--budget-id", "etl", "--timeout", "30"
    )
    assert waited.returncode == 2
    assert cause in one_line(waited.stderr)


async def test_the_right_password_shares_the_budget(
    served: Served, guarded_redis: GuardedRedis
) -> None:
    url = f"redis://:{PASSWORD}@{guarded_redis.address}/0"
    result = await served.cli("run", "good", "--json", "--budget", url, "--budget-id", "etl")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["budget_shared"] is True
    assert summary["budget_fallback_reason"] is None
    assert (summary["budget_sharers"], summary["budget_outages"]) == (1, 0)


async def test_json_says_the_budget_was_not_shared_and_why(served: Served) -> None:
    away = f"redis://127.0.0.1:{free_port()}/0"
    result = await served.cli("run", "good", "--json", "--budget", away, "--budget-id", "etl")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # an unreachable Redis keeps today's local fallback
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["budget_shared"] is False
    assert summary["budget_fallback_reason"].startswith("unreachable: ")
    assert summary["budget_outages"] == 1
    alone = await served.cli("run", "good", "--json")
    summary = json.loads(alone.stdout.splitlines()[-1])
    assert (summary["budget_shared"], summary["budget_fallback_reason"]) == (None, None)
