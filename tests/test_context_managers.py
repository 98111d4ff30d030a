"""Every public async context manager of the library lets an exception raised inside it
leave exactly as raised: the same object, never wrapped in an ExceptionGroup, so that
``except JobFailedError`` around the README's own recipes matches.

Task groups (anyio's, trio's nurseries, coredis's) wrap whatever leaves them; the
context managers that hold one (the waiter's engine, a shared budget's heartbeat, the
test kit's clock and server) must not hand the block's exception to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from cdm_status import (
    CDMClient,
    JobDone,
    JobFailedError,
    JobStatus,
    JobStatusWaiter,
    RedisBudget,
)
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, serve
from tests.budget.test_redis_budget import BACKENDS, JumpingClock, budget_on, unique
from tests.support.redis_server import RedisServer

pytestmark = pytest.mark.anyio


class Raised(Exception):
    """The application's own exception, raised inside the block."""


def failing_job() -> CDMSimulator:
    """A simulator whose job ``bad`` fails, on a clock where every wait passes at once."""
    simulator = CDMSimulator(clock=JumpingClock(), seed=1)
    simulator.add_job("bad", plan=JobPlan(5, 60, outcome=JobStatus.FAILED))
    return simulator


async def raised_by(block: Callable[[], Awaitable[object]]) -> BaseException:
    """What ``block()`` raised, as it left every context manager around it."""
    with pytest.raises(BaseException) as raised:  # noqa: PT011 - the test checks it exactly
        await block()
    return raised.value


def failed_bad(error: BaseException) -> None:
    """``error`` is the plain JobFailedError of job ``bad``, not a group holding it."""
    assert type(error) is JobFailedError, repr(error)
    assert error.job_name == "bad"
    assert error.submission.status is JobStatus.FAILED


async def test_the_client_lets_a_failed_wait_out_as_raised() -> None:
    simulator = failing_job()

    async def block() -> None:
        async with simulator.client() as client:
            await JobStatusWaiter(client).wait("bad")

    failed_bad(await raised_by(block))


async def test_a_running_waiter_lets_a_failed_wait_out_as_raised() -> None:
    simulator = failing_job()

    async def block() -> None:
        async with simulator.client() as client, JobStatusWaiter(client) as waiter:
            await waiter.wait("bad")

    failed_bad(await raised_by(block))


async def test_a_running_waiter_lets_the_applications_exception_out_as_raised() -> None:
    error = Raised("the application's own")

    async def block() -> None:
        async with CDMSimulator(clock=FakeClock()).client() as client, JobStatusWaiter(client):
            raise error

    assert await raised_by(block) is error


async def test_a_subscription_lets_an_exception_out_as_raised() -> None:
    # The running waiter polls; the exception leaves the subscription and the waiter.
    simulator = failing_job()

    async def block() -> None:
        async with (
            simulator.client() as client,
            JobStatusWaiter(client) as waiter,
            waiter.watch(["bad"]) as subscription,
        ):
            async for event in subscription:
                if isinstance(event, JobDone) and event.outcome.submission is not None:
                    raise JobFailedError(event.outcome.submission)

    failed_bad(await raised_by(block))


@BACKENDS
async def test_a_shared_budget_lets_a_failed_wait_out_as_raised(
    redis_server: RedisServer, library: str, anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    # The README's shared-budget recipe, around a job that fails.
    simulator = failing_job()
    clock = simulator.clock
    assert isinstance(clock, FakeClock)

    async def block() -> None:
        async with budget_on(redis_server, library, clock, budget_id=unique(request)) as budget:
            client = simulator.client(budget=budget, list_budget=budget.list_budget)
            async with client:
                await JobStatusWaiter(client).wait("bad")

    failed_bad(await raised_by(block))


@BACKENDS
async def test_a_shared_budget_lets_the_applications_exception_out_as_raised(
    redis_server: RedisServer, library: str, anyio_backend: str, request: pytest.FixtureRequest
) -> None:
    error = Raised("the application's own")
    budget = RedisBudget.from_url(
        redis_server.url,
        budget_id=unique(request),
        library=library,  # type: ignore[arg-type]
    )

    async def block() -> None:
        async with budget:
            await budget.acquire()
            raise error

    assert await raised_by(block) is error
    assert budget.shared  # Redis answered: nothing else went wrong

    async def interrupted() -> None:
        async with budget:
            raise KeyboardInterrupt  # what Ctrl-C raises in the main task

    assert type(await raised_by(interrupted)) is KeyboardInterrupt


async def test_the_test_kits_clock_and_server_let_an_exception_out_as_raised() -> None:
    error = Raised("the test's own")

    async def jumping() -> None:
        async with FakeClock().autojump():
            raise error

    assert await raised_by(jumping) is error
    simulator = CDMSimulator(clock=FakeClock())

    async def served() -> None:
        async with (
            serve(simulator) as endpoint,
            CDMClient(endpoint, simulator.project_id, simulator.cluster_id),
        ):
            raise error

    assert await raised_by(served) is error
