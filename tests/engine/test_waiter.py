"""JobStatusWaiter against a scripted API on a virtual clock (asyncio and trio)."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import anyio
import pytest

from cdm_status import (
    AuthenticationError,
    CDMClient,
    JobDone,
    JobFailedError,
    JobNotFoundError,
    JobStatus,
    JobStatusWaiter,
    OutcomeKind,
    PollFailed,
    PollPolicy,
    StatusChanged,
    WaitTimeoutError,
)
from cdm_status._events import Event
from cdm_status.testing import FakeClock
from tests.support.scripted import EPOCH_MS, ScriptedCDM
from tests.support.simulated import CLIENT_OPTIONS

pytestmark = pytest.mark.anyio


def transitions(events: list[Event], job: str) -> list[tuple[JobStatus | None, JobStatus]]:
    return [
        (e.previous, e.current)
        for e in events
        if isinstance(e, StatusChanged) and e.job_name == job
    ]


def dones(events: list[Event]) -> dict[str, OutcomeKind]:
    result: dict[str, OutcomeKind] = {}
    for event in events:
        if isinstance(event, JobDone):
            assert event.job_name not in result, f"second JobDone for {event.job_name}"
            result[event.job_name] = event.outcome.kind
    return result


async def watch_all(
    api: ScriptedCDM, names: list[str], **options: object
) -> tuple[list[Event], JobStatusWaiter]:
    client_options = {k: options.pop(k) for k in CLIENT_OPTIONS if k in options}
    waiter_options = {k: options.pop(k) for k in list(options) if k not in ("timeout", "since")}
    waiter_options.setdefault("strategy", "per_job")  # the scripted API has no job list
    async with api.client(**client_options) as client, api.clock.autojump():
        waiter = JobStatusWaiter(client, clock=api.clock, random=random.Random(7), **waiter_options)  # type: ignore[arg-type]
        async with waiter, waiter.watch(names, **options) as stream:  # type: ignore[arg-type]
            events = [event async for event in stream]
    return events, waiter


async def test_reports_each_transition_once_then_the_outcome() -> None:
    api = ScriptedCDM(FakeClock())
    api.job("a", (0, "BOOTING"), (20, "RUNNING"), (300, "SUCCEEDED"))
    events, _ = await watch_all(api, ["a"])
    assert transitions(events, "a") == [
        (None, JobStatus.BOOTING),
        (JobStatus.BOOTING, JobStatus.RUNNING),
        (JobStatus.RUNNING, JobStatus.SUCCEEDED),
    ]
    assert dones(events) == {"a": OutcomeKind.SUCCEEDED}
    assert isinstance(events[-1], JobDone)
    # RUNNING was polled many times, but reported once; the end was seen promptly.
    assert len(api.requests) > 5
    finished = [e for e in events if isinstance(e, StatusChanged)][-1]
    lag = finished.at.timestamp() - (api.clock.time() - api.clock.monotonic() + 300)
    assert 0 <= lag <= PollPolicy().max_interval * 1.1


async def test_terminal_on_first_look_and_skipped_states_are_not_invented() -> None:
    api = ScriptedCDM(FakeClock())
    api.job("done", (0, "FAILED"))
    api.job("jumpy", (0, "NEW"), (7, "SUCCEEDED"))
    events, _ = await watch_all(api, ["done", "jumpy", "done"])
    assert transitions(events, "done") == [(None, JobStatus.FAILED)]
    assert transitions(events, "jumpy") == [
        (None, JobStatus.NEW),
        (JobStatus.NEW, JobStatus.SUCCEEDED),
    ]
    assert dones(events) == {"done": OutcomeKind.FAILED, "jumpy": OutcomeKind.SUCCEEDED}


async def test_unknown_status_strings_are_reported_as_seen_and_not_terminal() -> None:
    api = ScriptedCDM(FakeClock())
    api.job("odd", (0, "WARMING_UP"), (30, "COOLING"), (60, "SUCCEEDED"))
    events, _ = await watch_all(api, ["odd"])
    raw = [e.submission.raw_status for e in events if isinstance(e, StatusChanged)]
    assert raw == ["WARMING_UP", "COOLING", "SUCCEEDED"]
    assert dones(events) == {"odd": OutcomeKind.SUCCEEDED}


async def test_transient_failures_are_ridden_out_with_poll_failed_events() -> None:
    api = ScriptedCDM(FakeClock())
    api.job("a", (0, "RUNNING"), (100, "SUCCEEDED"))
    api.inject("a", "RUNNING", 503, 503, 500, 504)
    events, _ = await watch_all(api, ["a"])
    failed = [e for e in events if isinstance(e, PollFailed)]
    assert [e.consecutive for e in failed] == [1, 2, 3, 4]
    assert dones(events) == {"a": OutcomeKind.SUCCEEDED}
    assert transitions(events, "a") == [
        (None, JobStatus.RUNNING),
        (JobStatus.RUNNING, JobStatus.SUCCEEDED),
    ]


async def test_a_429_pauses_the_whole_budget() -> None:
    api = ScriptedCDM(FakeClock())
    for name in ("a", "b", "c"):
        api.job(name, (0, "RUNNING"), (60, "SUCCEEDED"))
    api.inject("a", 429)
    events, waiter = await watch_all(api, ["a", "b", "c"])
    throttled_at = next(t for t, name in api.requests if name == "a")
    # Requests already on their way when the 429 came back went out at the same moment;
    # after it, nobody sent anything during the pause.
    during_pause = [t for t, _ in api.requests if throttled_at < t < throttled_at + 3.0]
    assert during_pause == []
    assert len(api.requests) > 3
    assert waiter._client.budget.pauses == 1  # type: ignore[attr-defined]
    assert dones(events) == dict.fromkeys("abc", OutcomeKind.SUCCEEDED)


async def test_the_budget_holds_in_every_60_second_window() -> None:
    api = ScriptedCDM(FakeClock())
    names = [f"db_t{i}" for i in range(60)]
    for i, name in enumerate(names):
        api.job(name, (0, "BOOTING"), (10 + i, "RUNNING"), (200 + 7 * i, "SUCCEEDED"))
    events, _ = await watch_all(api, names, requests_per_minute=30)
    assert dones(events) == dict.fromkeys(names, OutcomeKind.SUCCEEDED)
    assert api.max_in_window(60.0) <= 30


async def test_a_job_deleted_mid_run_ends_not_found() -> None:
    api = ScriptedCDM(FakeClock())
    api.job("a", (0, "RUNNING"), (40, "gone"))
    events, _ = await watch_all(api, ["a"])
    done = events[-1]
    assert isinstance(done, JobDone)
    assert done.outcome.kind is OutcomeKind.NOT_FOUND
    assert isinstance(done.outcome.error, JobNotFoundError)
    assert done.outcome.submission is not None
    assert done.outcome.submission.status is JobStatus.RUNNING


async def test_a_job_never_seen_gets_a_grace_period_before_not_found() -> None:
    api = ScriptedCDM(FakeClock())
    api.job("late", (0, "gone"), (3, "BOOTING"), (30, "SUCCEEDED"))
    events, _ = await watch_all(api, ["late", "ghost"])
    assert dones(events) == {"late": OutcomeKind.SUCCEEDED, "ghost": OutcomeKind.NOT_FOUND}
    ghost_polls = [name for _, name in api.requests if name == "ghost"]
    assert len(ghost_polls) == PollPolicy().not_found_grace


async def test_a_permission_refusal_ends_that_job_without_more_polls() -> None:
    api = ScriptedCDM(FakeClock())
    api.job("a", (0, 403))
    api.job("b", (0, "RUNNING"), (30, "SUCCEEDED"))
    events, _ = await watch_all(api, ["a", "b"])
    assert dones(events) == {"a": OutcomeKind.ERROR, "b": OutcomeKind.SUCCEEDED}
    assert [name for _, name in api.requests].count("a") == 1


async def test_since_ignores_the_previous_run() -> None:
    api = ScriptedCDM(FakeClock())
    old = EPOCH_MS - 3_600_000
    new = EPOCH_MS + 30_000
    api.job("a", (0, "SUCCEEDED", old), (30, "BOOTING", new), (90, "SUCCEEDED", new))
    since = datetime.fromtimestamp(EPOCH_MS / 1000, tz=timezone.utc)
    events, _ = await watch_all(api, ["a"], since=since)
    assert transitions(events, "a") == [
        (None, JobStatus.NEVER_EXECUTED),
        (JobStatus.NEVER_EXECUTED, JobStatus.BOOTING),
        (JobStatus.BOOTING, JobStatus.SUCCEEDED),
    ]
    done = events[-1]
    assert isinstance(done, JobDone)
    assert done.outcome.submission is not None
    assert done.outcome.submission.creation_date == datetime.fromtimestamp(
        new / 1000, tz=timezone.utc
    )


async def test_timeout_ends_running_jobs_with_the_last_submission() -> None:
    api = ScriptedCDM(FakeClock())
    api.job("slow", (0, "RUNNING"))
    api.job("quick", (0, "RUNNING"), (20, "SUCCEEDED"))
    events, _ = await watch_all(api, ["slow", "quick"], timeout=100.0)
    assert dones(events) == {"slow": OutcomeKind.TIMED_OUT, "quick": OutcomeKind.SUCCEEDED}
    slow = next(e for e in events if isinstance(e, JobDone) and e.job_name == "slow")
    assert slow.outcome.submission is not None
    assert slow.outcome.submission.status is JobStatus.RUNNING
    assert api.clock.monotonic() == pytest.approx(100.0)


async def test_wait_returns_success_and_raises_typed_errors() -> None:
    clock = FakeClock()
    api = ScriptedCDM(clock)
    api.job("ok", (0, "RUNNING"), (50, "SUCCEEDED"))
    api.job("bad", (0, "RUNNING"), (50, "FAILED"))
    api.job("slow", (0, "RUNNING"))
    api.job("denied", (0, 401))
    async with api.client() as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock, random=random.Random(1))
        submission = await waiter.wait("ok")
        assert submission.status is JobStatus.SUCCEEDED
        with pytest.raises(JobFailedError) as failed:
            await waiter.wait("bad")
        assert failed.value.error_summary == "Connection refused"
        assert failed.value.submission.status is JobStatus.FAILED
        with pytest.raises(WaitTimeoutError) as timed_out:
            await waiter.wait("slow", timeout=30)
        assert timed_out.value.elapsed == pytest.approx(30.0)
        assert timed_out.value.submission is not None
        with pytest.raises(JobNotFoundError):
            await waiter.wait("missing")
        with pytest.raises(AuthenticationError):
            await waiter.wait("denied")


async def test_wait_all_returns_one_outcome_per_distinct_job() -> None:
    clock = FakeClock()
    api = ScriptedCDM(clock)
    api.job("a", (0, "SUCCEEDED"))
    api.job("b", (0, "STOPPED"))
    async with api.client() as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock)
        outcomes = await waiter.wait_all(["a", "b", "a", "missing"])
    assert {k: v.kind for k, v in outcomes.items()} == {
        "a": OutcomeKind.SUCCEEDED,
        "b": OutcomeKind.FAILED,
        "missing": OutcomeKind.NOT_FOUND,
    }


async def test_breaking_out_stops_every_poll() -> None:
    clock = FakeClock()
    api = ScriptedCDM(clock)
    names = [f"j{i}" for i in range(20)]
    for name in names:
        api.job(name, (0, "RUNNING"))
    async with api.client() as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock, strategy="per_job")
        async with waiter, waiter.watch(names) as stream:
            async for event in stream:
                if isinstance(event, StatusChanged):
                    break
        sent = len(api.requests)
        await clock.sleep(3600)
        assert len(api.requests) == sent  # nothing polls any more


async def test_cancelling_the_caller_stops_every_poll() -> None:
    clock = FakeClock()
    api = ScriptedCDM(clock)
    api.job("a", (0, "RUNNING"))
    seen: list[Event] = []

    async def consume(waiter: JobStatusWaiter) -> None:
        async with waiter.watch(["a"]) as stream:
            async for event in stream:
                seen.append(event)

    async with api.client() as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock)
        async with waiter, anyio.create_task_group() as group:
            group.start_soon(consume, waiter)
            await clock.sleep(120)
            group.cancel_scope.cancel()
        sent = len(api.requests)
        await clock.sleep(3600)
        assert len(api.requests) == sent
    assert not any(isinstance(e, JobDone) for e in seen)


async def test_cancel_one_job_ends_it_cancelled() -> None:
    clock = FakeClock()
    api = ScriptedCDM(clock)
    api.job("a", (0, "RUNNING"))
    api.job("b", (0, "RUNNING"), (100, "SUCCEEDED"))
    async with api.client() as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock)
        async with waiter, waiter.watch(["a", "b"]) as stream:
            events = []
            async for event in stream:
                events.append(event)
                if isinstance(event, StatusChanged) and event.job_name == "a":
                    stream.cancel("a")
    assert dones(events) == {"a": OutcomeKind.CANCELLED, "b": OutcomeKind.SUCCEEDED}


async def requests_for_concurrent_waits(count: int) -> int:
    clock = FakeClock()
    api = ScriptedCDM(clock)
    api.job("a", (0, "RUNNING"), (100, "SUCCEEDED"))
    async with api.client() as client, clock.autojump():
        waiter = JobStatusWaiter(client, clock=clock, poll=PollPolicy(jitter=0.0))

        async def one() -> None:
            submission = await waiter.wait("a")
            assert submission.status is JobStatus.SUCCEEDED

        async with waiter, anyio.create_task_group() as group:
            for _ in range(count):
                group.start_soon(one)
    return len(api.requests)


async def test_concurrent_waits_for_one_job_share_each_poll() -> None:
    """Inside ``async with waiter``, waits for one job share its polls."""
    alone = await requests_for_concurrent_waits(1)
    together = await requests_for_concurrent_waits(5)
    assert alone > 3
    assert together == alone  # five waiters, one poll at a time


def test_bad_arguments_are_refused_before_any_request() -> None:
    client = CDMClient("http://127.0.0.1:9", "proj", "clus")  # never sent a request
    with pytest.raises(ValueError, match="max_concurrency"):
        JobStatusWaiter(client, max_concurrency=0)
    with pytest.raises(ValueError, match="both success and failure"):
        JobStatusWaiter(client, success=[JobStatus.FAILED])


def test_the_waiter_takes_the_clients_clock_and_connection_count() -> None:
    clock = FakeClock()
    waiter = JobStatusWaiter(
        CDMClient("http://127.0.0.1:9", "p", "c", max_connections=5, clock=clock)
    )
    assert waiter.max_concurrency == 5
    assert waiter._clock is clock
    own = FakeClock()
    assert JobStatusWaiter(CDMClient("http://127.0.0.1:9", "p", "c"), clock=own)._clock is own


async def test_refused_credentials_end_every_job_at_once() -> None:
    api = ScriptedCDM(FakeClock())
    names = [f"j{i}" for i in range(30)]
    for name in names:
        api.job(name, (0, 401))
    events, _ = await watch_all(api, names, max_concurrency=1)
    assert dones(events) == dict.fromkeys(names, OutcomeKind.ERROR)
    assert len(api.requests) == 1  # not one refused request per job
    done = next(e for e in events if isinstance(e, JobDone))
    assert isinstance(done.outcome.error, AuthenticationError)


class CountingBudget:
    """A Budget of the test's own: the waiter must send through it, pauses included."""

    def __init__(self) -> None:
        self.per_minute = 120.0
        self.acquired = 0
        self.paused: list[float] = []

    async def acquire(self) -> None:
        self.acquired += 1

    def pause(self, seconds: float) -> None:
        self.paused.append(seconds)


async def test_any_budget_implementation_stands_behind_the_waiter() -> None:
    from cdm_status import Budget

    api = ScriptedCDM(FakeClock())
    api.job("a", (0, "RUNNING"), (60, "SUCCEEDED"))
    api.inject("a", 429)
    budget = CountingBudget()
    assert isinstance(budget, Budget)
    events, waiter = await watch_all(api, ["a"], budget=budget)
    assert waiter._client.budget is budget
    assert budget.acquired == len(api.requests) > 1  # every attempt, the retry included
    assert budget.paused == [3.0]
    assert dones(events) == {"a": OutcomeKind.SUCCEEDED}
