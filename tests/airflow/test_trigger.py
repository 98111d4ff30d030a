"""CDMJobTrigger: rebuilt from its kwargs, and run() against the simulator on virtual time."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from airflow.sdk.module_loading import import_string

from cdm_status import JobStatus
from cdm_status.airflow import _shared, triggers
from cdm_status.airflow._compat import (
    TRIGGER_ON_KILL,
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
)
from cdm_status.airflow._results import conclude
from cdm_status.airflow.triggers import CDMJobTrigger, killed_by_user
from cdm_status.testing import JobPlan, JobSetup
from tests.airflow.conftest import AK, SK
from tests.support.airflow_simulated import Cluster, cluster, simulated_cluster

__all__ = ["cluster"]

pytestmark = pytest.mark.anyio


async def run_trigger(cl: Cluster, trigger: CDMJobTrigger) -> dict[str, Any]:
    """The trigger's one event, on the simulator's clock jumping ahead when all is idle."""
    events = []
    async with cl.clock.autojump():
        async for event in trigger.run():
            events.append(event.payload)
    assert len(events) == 1
    # The event crosses the triggerer's database: JSON-native, as it is.
    assert json.loads(json.dumps(events[0])) == events[0]
    return dict(events[0])


def iso_in(cl: Cluster, seconds: float) -> str:
    return datetime.fromtimestamp(cl.clock.time() + seconds, tz=timezone.utc).isoformat()


def test_serialize_rebuild_round_trip_is_json_native_and_secret_free() -> None:
    trigger = CDMJobTrigger(
        job_names=["orders", "customers"],
        conn_id="cdm_prod",
        cluster_id="c-1",
        since="2026-01-01T00:00:00+00:00",
        deadline="2026-01-01T06:00:00+00:00",
        give_up_after=5,
        stop_on_kill=True,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "cdm_status.airflow.triggers.CDMJobTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = import_string(classpath)(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (classpath, kwargs)
    assert AK not in json.dumps(kwargs)
    assert SK not in json.dumps(kwargs)
    database = CDMJobTrigger(parent="nightly", tables=None)
    assert import_string(classpath)(**database.serialize()[1]).serialize() == database.serialize()


def test_a_trigger_without_jobs_or_with_a_bad_date_fails_when_built() -> None:
    with pytest.raises(ValueError, match="job_names"):
        CDMJobTrigger(job_names=[])
    with pytest.raises(ValueError, match="isoformat"):
        CDMJobTrigger(job_names=["a"], since="yesterday")


async def test_success_reports_the_submission(cluster: Cluster) -> None:
    plan = JobPlan(boot_seconds=20, run_seconds=300, rows=4242, bytes=99_000)
    cluster.simulator.add_job("orders", plan=plan)
    event = await run_trigger(cluster, CDMJobTrigger(job_names=["orders"]))
    assert event["result"] == "success"
    job = event["jobs"]["orders"]
    assert job["outcome"] == "succeeded"
    assert job["status"] == "SUCCEEDED"
    assert (job["rows_written"], job["bytes_written"]) == (4242, 99_000)
    assert isinstance(job["submission_id"], int)
    assert conclude(event)["orders"] == job
    assert cluster.clock.monotonic() >= 320


async def test_failed_job_carries_its_error_summary(cluster: Cluster) -> None:
    plan = JobPlan(
        boot_seconds=5,
        run_seconds=60,
        outcome=JobStatus.FAILED,
        error_summary="GENERIC_JDBC_CONNECTOR_0001:Unable to get a connection",
    )
    cluster.simulator.add_job("orders", plan=plan)
    cluster.simulator.add_job("customers", plan=JobPlan(boot_seconds=5, run_seconds=30))
    event = await run_trigger(cluster, CDMJobTrigger(job_names=["orders", "customers"]))
    assert event["result"] == "failed"
    assert event["jobs"]["orders"]["status"] == "FAILED"
    assert event["jobs"]["customers"]["outcome"] == "succeeded"
    with pytest.raises(AirflowFailException, match="orders FAILED: GENERIC_JDBC_CONNECTOR_0001"):
        conclude(event)


async def test_stopped_job_fails_the_task(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=3600))

    async def stop_later() -> None:
        await cluster.clock.sleep(600)
        cluster.simulator.stop_job("orders")

    async with anyio.create_task_group() as group:
        group.start_soon(stop_later)
        event = await run_trigger(cluster, CDMJobTrigger(job_names=["orders"]))
    assert event["result"] == "failed"
    assert event["jobs"]["orders"]["status"] == "STOPPED"
    with pytest.raises(AirflowFailException, match="orders STOPPED"):
        conclude(event)


async def test_refused_credentials_are_a_retryable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    cl = simulated_cluster(monkeypatch, password="not-the-secret-key")
    cl.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=60))
    event = await run_trigger(cl, CDMJobTrigger(job_names=["orders"]))
    assert event["result"] == "error"
    assert event["jobs"]["orders"]["outcome"] == "error"
    assert "AuthenticationError" in event["jobs"]["orders"]["error"]
    assert "not-the-secret-key" not in json.dumps(event)
    with pytest.raises(AirflowException) as raised:
        conclude(event)
    assert not isinstance(raised.value, AirflowFailException)
    assert cl.clock.monotonic() < 60  # ended at once, not at the deadline


async def test_a_503_storm_is_ridden_out_and_logged(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=900))
    cluster.simulator.faults.outage(cluster.clock.time() + 60, 300)
    caplog.set_level(logging.INFO, logger="cdm_status")
    event = await run_trigger(cluster, CDMJobTrigger(job_names=["orders"]))
    assert event["result"] == "success"
    assert cluster.simulator.stats.by_status[503] >= 4
    failures = [r.getMessage() for r in caplog.records if "in a row" in r.getMessage()]
    assert failures
    assert "HTTP 503" in failures[0]
    changes = [r.getMessage() for r in caplog.records]
    assert "job 'orders': RUNNING -> SUCCEEDED" in changes


async def test_an_endless_outage_gives_up_with_a_retryable_error(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=90_000))
    cluster.simulator.faults.outage(cluster.clock.time() + 30, 86_400)
    event = await run_trigger(cluster, CDMJobTrigger(job_names=["orders"], give_up_after=3))
    assert event["result"] == "error"
    assert event["jobs"]["orders"]["outcome"] == "unreachable"
    assert "ServiceUnavailableError" in event["message"]
    with pytest.raises(AirflowException, match="could not be watched"):
        conclude(event)


async def test_the_deadline_ends_the_watch_shortly_before_with_the_progress(
    cluster: Cluster,
) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(boot_seconds=10, run_seconds=7200))
    started = cluster.clock.monotonic()
    trigger = CDMJobTrigger(job_names=["orders"], deadline=iso_in(cluster, 3600))
    event = await run_trigger(cluster, trigger)
    waited = cluster.clock.monotonic() - started
    assert 3600 - 60 <= waited < 3600  # before the scheduler's cut-off, not long before
    assert event["result"] == "timeout"
    assert event["jobs"]["orders"]["status"] == "RUNNING"
    progress = event["jobs"]["orders"]["progress"]
    assert 0 < progress < 100
    assert f"orders still RUNNING at {progress:g}%" in event["message"]
    with pytest.raises(AirflowSensorTimeout, match="still RUNNING at"):
        conclude(event)


async def test_the_triggerers_timeout_after_wins_over_the_deadline_kwarg(
    cluster: Cluster,
) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(boot_seconds=10, run_seconds=7200))
    trigger = CDMJobTrigger(job_names=["orders"], deadline=iso_in(cluster, 3600))
    trigger.timeout_after = datetime.fromtimestamp(cluster.clock.time(), tz=timezone.utc) + (
        timedelta(seconds=600)
    )
    event = await run_trigger(cluster, trigger)
    assert event["result"] == "timeout"
    assert 540 <= cluster.clock.monotonic() < 600


async def test_since_skips_the_previous_run(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=10))
    first = await run_trigger(cluster, CDMJobTrigger(job_names=["orders"]))
    since = iso_in(cluster, 0)
    await cluster.clock.advance(1)  # CDM dates runs to the millisecond
    cluster.simulator.start_job("orders")
    event = await run_trigger(cluster, CDMJobTrigger(job_names=["orders"], since=since))
    new_id = event["jobs"]["orders"]["submission_id"]
    assert new_id != first["jobs"]["orders"]["submission_id"]
    finished_at = cluster.simulator.finished_at("orders")
    assert finished_at is not None
    assert cluster.clock.time() >= finished_at


async def test_a_database_job_without_tables_finds_its_subjobs(cluster: Cluster) -> None:
    names = cluster.simulator.add_database_job(
        "nightly", ["orders", "customers", "invoices"], run_seconds=(30.0, 120.0)
    )
    event = await run_trigger(cluster, CDMJobTrigger(parent="nightly"))
    assert sorted(event["jobs"]) == sorted(names)
    assert event["result"] == "success"
    event = await run_trigger(cluster, CDMJobTrigger(parent="nightly", tables=["orders"]))
    assert list(event["jobs"]) == ["nightly_orders"]


async def test_a_missing_connection_is_a_retryable_error(cluster: Cluster) -> None:
    event = await run_trigger(cluster, CDMJobTrigger(job_names=["orders"], conn_id="nope"))
    assert event["result"] == "error"
    assert "nope" in event["message"]


async def test_fifty_triggers_share_one_waiter_within_the_budget(cluster: Cluster) -> None:
    names = cluster.simulator.add_database_job(
        "big", 100, parallelism=100, run_seconds=(600.0, 1800.0)
    )
    events: list[dict[str, Any]] = []
    peak = 0

    async def one(pair: list[str]) -> None:
        events.append(await run_trigger_plain(CDMJobTrigger(job_names=pair)))

    async def watch_users() -> None:
        nonlocal peak
        while len(events) < 50:
            peak = max(peak, cluster.registry.users(_settings()))
            await cluster.clock.sleep(30)

    async with cluster.clock.autojump(), anyio.create_task_group() as group:
        group.start_soon(watch_users)
        for index in range(50):
            group.start_soon(one, names[2 * index : 2 * index + 2])
    assert [e["result"] for e in events] == ["success"] * 50
    assert cluster.registry.waiters == 1
    assert peak >= 45  # nearly every trigger was on the one waiter at once
    assert cluster.simulator.stats.max_in_window("status", 60.0) <= 120
    assert cluster.simulator.stats.by_status.get(429, 0) == 0


async def test_overlapping_triggers_cost_about_one_watch_of_their_union(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 24 triggers, each watching 3 of 8 jobs (every job wanted by 9 triggers), against one
    # trigger watching the 8: the same simulated runs, about the same requests, since the
    # engine polls a job once for every watch that wants it. (8 jobs: both are polled job
    # by job; a larger union would be swept through the job list, see _place in _engine.)
    def eight(cl: Cluster) -> list[str]:
        for index in range(8):
            plan = JobPlan(boot_seconds=10, run_seconds=300 + 120 * index)
            cl.simulator.add_job(f"load_{index}", plan=plan)
        return [f"load_{index}" for index in range(8)]

    union = simulated_cluster(monkeypatch)
    names = eight(union)
    event = await run_trigger(union, CDMJobTrigger(job_names=names))
    assert event["result"] == "success"
    alone = union.simulator.stats.by_endpoint["status"]
    assert alone >= 8 * 5  # each job looked at several times while it ran

    shared = simulated_cluster(monkeypatch)
    eight(shared)
    events: list[dict[str, Any]] = []

    async def one(index: int) -> None:
        window = [names[(index + k) % 8] for k in range(3)]
        events.append(await run_trigger_plain(CDMJobTrigger(job_names=window)))

    async with shared.clock.autojump(), anyio.create_task_group() as group:
        for index in range(24):
            group.start_soon(one, index)
    assert [e["result"] for e in events] == ["success"] * 24
    together = shared.simulator.stats.by_endpoint["status"]
    assert together <= alone * 1.15, (alone, together)
    assert shared.simulator.stats.by_endpoint["list"] == 0


def test_a_loop_that_ends_closes_its_http_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    # dag.test() runs each trigger in its own asyncio.run: a client left by an ended loop
    # is closed with that loop, and the next loop makes its own.
    cl = simulated_cluster(monkeypatch)
    cl.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=60))
    made: list[Any] = []

    def factory(_: object) -> Any:
        made.append(cl.simulator.http_client())
        return made[-1]

    registry = _shared.SharedWaiters(clock=cl.clock, http_factory=factory)
    monkeypatch.setattr(_shared, "REGISTRY", registry)

    async def first_event() -> dict[str, Any]:
        async with cl.clock.autojump():
            event = await anext(CDMJobTrigger(job_names=["orders"]).run())
        assert not made[-1].is_closed  # kept for the next trigger of this loop
        return dict(event.payload)

    for run in (1, 2):
        assert asyncio.run(first_event())["result"] == "success"
        assert len(made) == run
        assert made[-1].is_closed
        assert registry.waiters == 0


async def run_trigger_plain(trigger: CDMJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("no event")


def _settings() -> Any:
    from cdm_status.airflow.hooks import CDMHook

    return CDMHook().settings()


async def test_on_kill_stops_only_when_asked(cluster: Cluster) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=3600))
    await cluster.clock.advance(60)
    await CDMJobTrigger(job_names=["orders"]).on_kill()
    assert cluster.simulator.status("orders") is JobStatus.RUNNING
    await CDMJobTrigger(job_names=["orders"], stop_on_kill=True).on_kill()
    assert cluster.simulator.status("orders") is JobStatus.STOPPED
    # Already stopped: the "not running" answer is not an error.
    await CDMJobTrigger(job_names=["orders"], stop_on_kill=True).on_kill()


async def test_a_stop_goes_through_when_the_triggerer_cancels_the_trigger_again(
    cluster: Cluster,
) -> None:
    # The triggerer cancels a trigger at each of its loops until the trigger has ended:
    # a kill's stop must not be cut off halfway by the next cancel.
    cluster.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=3600))
    await cluster.clock.advance(60)
    trigger = CDMJobTrigger(job_names=["orders"], stop_on_kill=True)
    killing = asyncio.ensure_future(trigger.on_kill())
    await anyio.lowlevel.checkpoint()  # the stop has begun
    killing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await killing
    await asyncio.gather(*triggers._STOPPING)
    assert cluster.simulator.status("orders") is JobStatus.STOPPED


@pytest.mark.parametrize(
    ("state", "deadline_passed", "killed"),
    [
        ("deferred", False, False),  # the triggerer stopped, or moved the trigger
        ("failed", False, True),  # marked failed
        ("success", False, True),  # marked success
        (None, False, True),  # cleared
        ("scheduled", True, False),  # the scheduler timed it out
        ("failed", True, False),
    ],
)
def test_a_kill_is_told_from_a_move_and_a_timeout(
    state: str | None, deadline_passed: bool, killed: bool
) -> None:
    assert killed_by_user(state, deadline_passed=deadline_passed) is killed


async def test_cleanup_stops_what_a_user_killed_where_airflow_calls_no_on_kill(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    cluster.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=3600))
    await cluster.clock.advance(60)
    asked: list[dict[str, Any]] = []
    state = {"now": "deferred"}

    def task_states(**query: Any) -> dict[str, dict[str, str]]:
        # What the triggerer's supervisor answers: {run_id: {task_id: state}}.
        asked.append(query)
        return {"manual_1": {"run": state["now"]}}

    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(task_states))

    def trigger() -> CDMJobTrigger:
        built = CDMJobTrigger(job_names=["orders"], stop_on_kill=True)
        built.task_instance = SimpleNamespace(  # set by the triggerer
            dag_id="cdm", task_id="run", run_id="manual_1", map_index=-1
        )
        return built

    await trigger().cleanup()  # a triggerer restart: the task is still deferred
    assert cluster.simulator.status("orders") is JobStatus.RUNNING
    state["now"] = "failed"  # marked failed: Airflow 3.1 and 3.2 call only cleanup()
    await trigger().cleanup()
    if TRIGGER_ON_KILL:  # 3.3 and later call on_kill() for that; cleanup() leaves it be
        assert asked == []
        assert cluster.simulator.status("orders") is JobStatus.RUNNING
    else:
        assert asked[-1] == {
            "dag_id": "cdm",
            "task_ids": ["run"],
            "run_ids": ["manual_1"],
            "map_index": -1,
        }
        assert cluster.simulator.status("orders") is JobStatus.STOPPED


async def test_cleanup_after_the_event_or_without_a_task_stops_nothing(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    cluster.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=30))
    done = CDMJobTrigger(job_names=["orders"], stop_on_kill=True)
    await run_trigger(cluster, done)
    await done.cleanup()  # the event was sent: nothing to stop, nothing asked
    cluster.simulator.add_job("tables", plan=JobPlan(boot_seconds=5, run_seconds=3600))
    await cluster.clock.advance(60)
    with caplog.at_level(logging.WARNING, logger="cdm_status.airflow"):
        await CDMJobTrigger(job_names=["tables"], stop_on_kill=True).cleanup()
    assert cluster.simulator.status("tables") is JobStatus.RUNNING
    if not TRIGGER_ON_KILL:
        assert "CDM jobs left running: the task's state is unknown" in caplog.text


async def test_the_budget_extra_shares_the_budget_across_triggerers(
    monkeypatch: pytest.MonkeyPatch, redis_server: Any, request: pytest.FixtureRequest
) -> None:
    # Two triggerer processes (two registries) with a connection naming a Redis budget:
    # they register as two sharers of one budget, so each plans with half of 120 a minute.
    from cdm_status import RedisBudget

    cl = simulated_cluster(monkeypatch, budget=redis_server.url)
    cl.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=60))
    settings = _settings()
    registries = [
        _shared.SharedWaiters(clock=cl.clock, http_factory=lambda _: cl.simulator.http_client())
        for _ in range(2)
    ]
    try:
        for registry in registries:
            async with registry.lease(settings):
                pass
        budgets = [registry.budget(settings) for registry in registries]
        assert all(isinstance(budget, RedisBudget) for budget in budgets)
        await budgets[0].acquire()  # type: ignore[union-attr]  # learns of the second
        assert [budget.per_minute for budget in budgets] == [60, 60]  # type: ignore[union-attr]
        monkeypatch.setattr(_shared, "REGISTRY", registries[0])
        assert (await run_trigger(cl, CDMJobTrigger(job_names=["orders"])))["result"] == "success"
    finally:
        for registry in registries:
            await registry.aclose()
    assert registries[0].budget(settings) is None


async def test_a_budget_extra_on_a_redis_that_is_down_falls_back_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cdm_status import RedisBudget

    caplog.set_level(logging.INFO, logger="cdm_status")
    url = "redis://:hunter2@127.0.0.1:1/0"  # nothing listens on port 1
    cl = simulated_cluster(monkeypatch, budget=url)
    cl.simulator.add_job("orders", plan=JobPlan(boot_seconds=5, run_seconds=60))
    event = await run_trigger(cl, CDMJobTrigger(job_names=["orders"]))
    assert event["result"] == "success"
    budget = cl.registry.budget(_settings())
    assert isinstance(budget, RedisBudget)
    assert "local fallback" in repr(budget)  # counts this process's requests meanwhile
    assert cl.simulator.stats.max_in_window("status", 60.0) <= 120
    assert "hunter2" not in caplog.text
    await cl.registry.aclose()


async def test_a_budget_extra_without_an_access_key_keeps_the_own_budget_and_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, redis_server: Any
) -> None:
    # A token rotates, so it cannot name a budget shared with other processes.
    from cdm_status import RateLimiter

    cl = simulated_cluster(
        monkeypatch, budget=redis_server.url, login="", password="", auth_token="tok-123"
    )
    settings = _settings()
    async with cl.registry.lease(settings):
        pass
    assert isinstance(cl.registry.budget(settings), RateLimiter)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("needs an access key" in m and "counts its own" in m for m in warnings)
    assert "tok-123" not in caplog.text
    await cl.registry.aclose()


async def test_two_triggers_on_one_database_job_each_log_only_their_own_jobs(
    cluster: Cluster,
) -> None:
    # Airflow routes a trigger's log records by its task context. The shared engine runs
    # in a context of its own: none of its records lands in a trigger's, and each
    # trigger's own lines are about its own tables only.
    import contextvars

    trigger_of: contextvars.ContextVar[str | None] = contextvars.ContextVar("t", default=None)
    records: list[tuple[str | None, str, str]] = []

    class ByContext(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append((trigger_of.get(), record.name, record.getMessage()))

    names = cluster.simulator.add_database_job(
        "nightly", 20, parallelism=5, failure_rate=0.0, run_seconds=(60.0, 120.0)
    )
    mine = {"A": names[:10], "B": names[10:]}
    root = logging.getLogger("cdm_status")
    handler, level = ByContext(logging.DEBUG), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    results: dict[str, dict[str, Any]] = {}

    async def trigger(tag: str) -> None:
        trigger_of.set(tag)
        results[tag] = await run_trigger_plain(CDMJobTrigger(job_names=mine[tag]))

    try:
        async with cluster.clock.autojump(), anyio.create_task_group() as group:
            group.start_soon(trigger, "A")
            group.start_soon(trigger, "B")
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        await cluster.registry.aclose()
    assert {tag: result["result"] for tag, result in results.items()} == {
        "A": "success",
        "B": "success",
    }
    engine = [(tag, message) for tag, name, message in records if name == "cdm_status"]
    assert engine  # the engine logged (at DEBUG)...
    assert {tag for tag, _ in engine} == {None}  # ...never in a trigger's context
    for tag, jobs in mine.items():
        others = [name for name in names if name not in jobs]
        lines = [message for seen, _, message in records if seen == tag]
        assert any(job in line for line in lines for job in jobs), tag
        assert not any(other in line for line in lines for other in others), tag


async def test_triggers_through_the_registry_never_abandon_a_booked_slot(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A budget that books its slot before it waits (as a shared one does): triggers that
    # come and go only read events, so no booked slot is ever given up.
    from tests.support.budgets import BookingBudget

    budgets: list[BookingBudget] = []

    def booking(per_minute: float, clock: Any = None) -> BookingBudget:
        budgets.append(BookingBudget(cluster.clock, per_minute))
        return budgets[-1]

    monkeypatch.setattr(_shared, "RateLimiter", booking)
    names = cluster.simulator.add_database_job("db", 12, parallelism=6, run_seconds=(60.0, 300.0))
    results: list[dict[str, Any]] = []

    async def one(part: list[str]) -> None:
        results.append(await run_trigger_plain(CDMJobTrigger(job_names=part)))

    async with cluster.clock.autojump(), anyio.create_task_group() as group:
        for start in range(0, 12, 3):
            group.start_soon(one, names[start : start + 3])
    await cluster.registry.aclose()
    assert [r["result"] for r in results] == ["success"] * 4
    status = budgets[0]
    assert status.booked >= 12
    assert status.abandoned == 0


# ---------------------------------------------------------------------- job settings


async def test_a_job_deleted_after_success_succeeds(cluster: Cluster) -> None:
    setup = JobSetup(disposable="DELETE_AFTER_SUCCEED")
    cluster.simulator.add_job("once", plan=JobPlan(boot_seconds=10, run_seconds=95), setup=setup)
    event = await run_trigger(cluster, CDMJobTrigger(job_names=["once"]))
    assert event["result"] == "success"
    assert event["jobs"]["once"]["outcome"] == "succeeded"
    assert conclude(event)["once"]["deleted"] == event["jobs"]["once"]["inferred"]


async def test_a_job_deleted_whatever_its_result_fails_saying_how_to_keep_it(
    cluster: Cluster,
) -> None:
    plan = JobPlan(boot_seconds=10, run_seconds=95, outcome=JobStatus.FAILED)
    setup = JobSetup(disposable="DELETE", delete_delay=0.0)  # its result is never readable
    cluster.simulator.add_job("gone", plan=plan, setup=setup)
    cluster.simulator.add_job("fine", plan=JobPlan(boot_seconds=10, run_seconds=30))
    event = await run_trigger(cluster, CDMJobTrigger(job_names=["gone", "fine"]))
    assert event["result"] == "failed"
    entry = event["jobs"]["gone"]
    assert (entry["outcome"], entry["deleted"], entry["inferred"]) == ("deleted", True, False)
    assert "JobDeletedError" in entry["error"]
    with pytest.raises(AirflowFailException) as failed:
        conclude(event)
    message = str(failed.value)
    assert "gone was deleted by CDM after its run, before its result was read" in message
    assert "disposableType to NONE or DELETE_AFTER_SUCCEED" in message
    # Told that a deleted job is done, the task succeeds with both entries.
    assert sorted(conclude(event, deleted_ok=True)) == ["fine", "gone"]


async def test_a_job_retried_twice_succeeds_with_its_earlier_failures(cluster: Cluster) -> None:
    bad = JobPlan(boot_seconds=5, run_seconds=60, outcome=JobStatus.FAILED, error_summary="lock")
    setup = JobSetup(retry="RETRY_TRIPLE", retry_plans=(bad, JobPlan(5, 60)))
    cluster.simulator.add_job("flaky", plan=bad, setup=setup)
    event = await run_trigger(cluster, CDMJobTrigger(job_names=["flaky"]))
    assert event["result"] == "success"
    entry = event["jobs"]["flaky"]
    assert (entry["status"], entry["submission_id"]) == ("SUCCEEDED", 3)
    assert entry["attempts"] == ["lock", "lock"]
