"""The simulator's job API, driven through CDMClient: every response shape and error body."""

from __future__ import annotations

import json

import httpx
import pytest

from cdm_status import CDMClient, JobNotFoundError, JobStatus, RetryPolicy
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan
from tests.support.budgets import UNMETERED

pytestmark = pytest.mark.anyio

PLAN = JobPlan(boot_seconds=10, run_seconds=100, rows=5000, bytes=80_000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> CDMSimulator:
    return CDMSimulator(clock=clock)


@pytest.fixture
def client(sim: CDMSimulator) -> CDMClient:
    return sim.client(budget=UNMETERED, list_budget=UNMETERED, retry=RetryPolicy.never())


async def raw_status(sim: CDMSimulator, name: str) -> dict[str, object]:
    async with sim.http_client() as http:
        path = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/{name}/status"
        response = await http.get(path)
    assert response.status_code == 200
    body = response.json()
    assert isinstance(body, dict)
    [submission] = body["submissions"]
    assert isinstance(submission, dict)
    return submission


async def test_booting_is_sparse(sim: CDMSimulator, client: CDMClient) -> None:
    sim.add_job("jdbc2hive", plan=PLAN)
    raw = await raw_status(sim, "jdbc2hive")
    assert set(raw) == {
        "job-name",
        "status",
        "creation-date",
        "creation-user",
        "progress",
        "submission-id",
    }
    assert raw["creation-date"] == int(sim.clock.time() * 1000)
    submission = await client.get_status("jdbc2hive")
    assert submission.status is JobStatus.BOOTING
    assert submission.creation_date is not None
    assert submission.counters is None


async def test_running_shows_rising_progress_without_counters(
    sim: CDMSimulator, clock: FakeClock, client: CDMClient
) -> None:
    sim.add_job("jdbc2hive", plan=PLAN)
    await clock.advance(30)
    first = await client.get_status("jdbc2hive")
    await clock.advance(50)
    second = await client.get_status("jdbc2hive")
    assert first.status is second.status is JobStatus.RUNNING
    assert first.progress == 20.0
    assert second.progress == 70.0
    assert first.counters is None
    assert first.raw["write_rows"] == 1000
    assert first.raw["isStopingIncrement"] == ""
    assert first.last_update_user == "cdm"
    assert "last-udpate-user" in first.raw
    assert "error-summary" not in first.raw


async def test_succeeded_has_all_ten_counters(
    sim: CDMSimulator, clock: FakeClock, client: CDMClient
) -> None:
    sim.add_job("jdbc2hive", plan=PLAN)
    await clock.advance(200)
    done = await client.get_status("jdbc2hive")
    assert done.status is JobStatus.SUCCEEDED
    assert done.progress == 100.0
    assert done.counters is not None
    assert len(done.counters.raw) == 10
    assert (done.counters.rows_read, done.counters.rows_written) == (5000, 5000)
    assert done.counters.bytes_read == 80_000
    assert done.counters.raw["TOTAL_FILES"] == -1
    assert done.counters.total_files is None  # -1 means "not measured"
    assert done.last_update_date is not None
    assert done.last_update_date.timestamp() == sim.clock.time() - 90  # ended at +110
    assert "error-summary" not in done.raw


async def test_failed_has_error_summary_and_details_only(
    sim: CDMSimulator, clock: FakeClock, client: CDMClient
) -> None:
    plan = JobPlan(5, 20, outcome=JobStatus.FAILED, error_summary="Cdm.0003: table not found")
    sim.add_job("bad", plan=plan)
    await clock.advance(60)
    failed = await client.get_status("bad")
    assert failed.status is JobStatus.FAILED
    assert failed.error_summary == "Cdm.0003: table not found"
    assert failed.error_details
    assert failed.counters is None
    assert failed.progress is None  # -1 on the wire
    assert sim.final_status("bad") is JobStatus.FAILED


async def test_never_started_job_has_no_submission(sim: CDMSimulator, client: CDMClient) -> None:
    sim.add_job("idle", started=False)
    async with sim.http_client() as http:
        path = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/idle/status"
        assert (await http.get(path)).json() == {"submissions": []}
    assert (await client.get_status("idle")).status is JobStatus.NEVER_EXECUTED
    assert sim.final_status("idle") is None


async def test_the_other_spelling_of_last_update_user(clock: FakeClock) -> None:
    sim = CDMSimulator(clock=clock, user_key="last-update-user")
    sim.add_job("j", plan=PLAN)
    await clock.advance(20)
    submission = await sim.client(budget=UNMETERED, list_budget=UNMETERED).get_status("j")
    assert "last-update-user" in submission.raw
    assert "last-udpate-user" not in submission.raw
    assert submission.last_update_user == "cdm"


@pytest.mark.parametrize("name", ["a b", "x/y", "zürich_表", "100%_done", "a+b?c#d"])
async def test_names_round_trip_as_one_path_segment(
    sim: CDMSimulator, client: CDMClient, name: str
) -> None:
    sim.add_job(name, plan=PLAN)
    submission = await client.get_status(name)
    assert submission.job_name == name
    assert submission.status is JobStatus.BOOTING


@pytest.mark.parametrize("http_status", [400, 500])
async def test_unknown_job_answers_cdm_0100(clock: FakeClock, http_status: int) -> None:
    sim = CDMSimulator(clock=clock, not_found_status=http_status)
    async with sim.http_client() as http:
        path = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/ghost/status"
        response = await http.get(path)
    assert response.status_code == http_status
    assert response.json() == {
        "errCode": "Cdm.0100",
        "externalMessage": "Job[ghost] doesn't exist.",
    }
    assert len(response.headers["X-Request-Id"]) == 32
    with pytest.raises(JobNotFoundError) as raised:
        await sim.client(
            budget=UNMETERED, list_budget=UNMETERED, retry=RetryPolicy.never()
        ).get_status("ghost")
    assert raised.value.error_code == "Cdm.0100"
    assert raised.value.request_id


@pytest.mark.parametrize("which", ["project", "cluster"])
async def test_wrong_project_or_cluster_is_404(sim: CDMSimulator, which: str) -> None:
    sim.add_job("j", plan=PLAN)
    ids = {"project_id": sim.project_id, "cluster_id": sim.cluster_id, which + "_id": "other"}
    client = CDMClient(
        sim.endpoint, http_client=sim.http_client(), retry=RetryPolicy.never(), **ids
    )
    with pytest.raises(JobNotFoundError) as raised:
        await client.get_status("j")
    assert raised.value.status_code == 404
    assert raised.value.error_code == "Cdm.0001"


async def test_unknown_route_and_method(sim: CDMSimulator) -> None:
    base = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm"
    async with sim.http_client() as http:
        missing = await http.get(f"{base}/nothing/here")
        wrong_method = await http.delete(f"{base}/job/x/status")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "APIG.0101"
    assert missing.json()["request_id"] == missing.headers["X-Request-Id"]
    assert wrong_method.status_code == 405
    assert sim.stats.by_endpoint["other"] == 1


async def test_start_and_stop_over_http(sim: CDMSimulator, clock: FakeClock) -> None:
    sim.add_job("j", plan=PLAN, started=False)
    base = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/j"
    async with sim.http_client() as http:
        started = await http.put(f"{base}/start", json={"variables": {}})
        assert started.status_code == 200
        [submission] = started.json()["submissions"]
        assert (submission["status"], submission["progress"]) == ("BOOTING", 0.0)
        assert submission["submission-id"] == 1
        again = await http.put(f"{base}/start")
        assert again.status_code == 400
        assert again.json() == {"errCode": "Cdm.0052", "externalMessage": "Job[j] is running."}
        await clock.advance(20)
        stopped = await http.put(f"{base}/stop")
        assert stopped.json()["submissions"][0]["status"] == "STOPPED"
        not_running = await http.put(f"{base}/stop")
        assert not_running.json()["errCode"] == "Cdm.0053"
        restarted = await http.put(f"{base}/start")
        assert restarted.json()["submissions"][0]["submission-id"] == 2
    assert sim.stats.by_endpoint["start"] == 3
    assert sim.stats.by_endpoint_status["stop", 400] == 1
    statuses = [step.status for step in sim.transitions("j")]
    assert statuses == [
        JobStatus.NEVER_EXECUTED,
        JobStatus.BOOTING,
        JobStatus.RUNNING,
        JobStatus.STOPPED,
        JobStatus.BOOTING,
    ]


async def test_start_stop_delete_as_methods(
    sim: CDMSimulator, clock: FakeClock, client: CDMClient
) -> None:
    sim.add_job("j", plan=PLAN, started=False)
    sim.start_job("j")
    with pytest.raises(RuntimeError, match="running"):
        sim.start_job("j")
    await clock.advance(15)
    sim.stop_job("j")
    assert sim.status("j") is JobStatus.STOPPED
    sim.delete_job("j")
    with pytest.raises(JobNotFoundError):
        await client.get_status("j")
    with pytest.raises(KeyError):
        sim.start_job("j")
    assert "j" in sim.jobs()  # ground truth survives deletion


async def test_a_job_can_vanish_mid_run(
    sim: CDMSimulator, clock: FakeClock, client: CDMClient
) -> None:
    sim.add_job("j", plan=JobPlan(5, 100, vanish_after=65))
    sim.add_job("k", plan=PLAN)
    sim.delete_job("k", at=clock.time() + 30)
    await clock.advance(29)
    assert (await client.get_status("j")).status is JobStatus.RUNNING
    assert (await client.get_status("k")).status is JobStatus.RUNNING
    await clock.advance(30)
    with pytest.raises(JobNotFoundError):
        await client.get_status("k")
    assert (await client.get_status("j")).status is JobStatus.RUNNING
    await clock.advance(10)
    with pytest.raises(JobNotFoundError):
        await client.get_status("j")
    assert sim.transitions("j")[-1].status is JobStatus.RUNNING  # it never finished


async def test_job_list_pages_filters_and_types(sim: CDMSimulator, client: CDMClient) -> None:
    for index in range(25):
        sim.add_job(f"Orders_{index:02d}", plan=PLAN, started=index % 2 == 0)
    sim.add_job("customers", plan=PLAN)
    sim.add_database_job("db", 3)
    first = await client.list_jobs(filter="orders", page_size=10)
    assert first.total == 25
    assert [job.name for job in first.jobs] == [f"Orders_{i:02d}" for i in range(10)]
    assert first.jobs[0].raw_status == "BOOTING"
    assert first.jobs[1].raw_status == "NEW"  # never executed
    assert first.jobs[0].job_type == "NORMAL_JOB"
    assert "counters" not in first.jobs[0].raw
    last = await client.list_jobs(filter="ORDERS", page_no=3, page_size=10)
    assert len(last.jobs) == 5
    batch = await client.list_jobs(job_type="BATCH_JOB")
    assert [job.name for job in batch.jobs] == [
        "db",
        "db_table_0001",
        "db_table_0002",
        "db_table_0003",
    ]
    assert (await client.list_jobs(job_type="SCENARIO_JOB")).total == 0


async def test_job_list_refuses_bad_page_sizes(sim: CDMSimulator) -> None:
    base = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/all"
    async with sim.http_client() as http:
        for params in ({"page_size": "5"}, {"page_size": "101"}, {"page_no": "0"}):
            response = await http.get(base, params=params)
            assert response.status_code == 400
            assert set(response.json()) == {"errCode", "externalMessage"}
        unknown = await http.get(base, params={"jobType": "NOPE"})
        assert unknown.status_code == 400
        default = await http.get(base)
    assert default.json() == {"total": 0, "jobs": [], "page_no": 1, "page_size": 10}


async def test_bodies_are_json_with_request_ids(sim: CDMSimulator) -> None:
    sim.add_job("j", plan=PLAN)
    async with sim.http_client() as http:
        path = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/j/status"
        responses = [await http.get(path) for _ in range(3)]
    ids = {response.headers["x-request-id"] for response in responses}
    assert len(ids) == 3
    for response in responses:
        assert response.headers["content-type"].startswith("application/json")
        json.loads(response.content)


async def test_same_seed_same_answers(clock: FakeClock) -> None:
    def build() -> CDMSimulator:
        sim = CDMSimulator(clock=clock, seed=42)
        sim.add_database_job("db", 20, failure_rate=0.3)
        return sim

    one, two = build(), build()
    for name in one.jobs():
        assert one.transitions(name, upcoming=True) == two.transitions(name, upcoming=True)
    other = CDMSimulator(clock=clock, seed=43)
    other.add_database_job("db", 20, failure_rate=0.3)
    assert [one.final_status(n) for n in one.jobs()] != [other.final_status(n) for n in one.jobs()]


def test_in_process_client_defaults(sim: CDMSimulator) -> None:
    client = sim.client(budget=UNMETERED, list_budget=UNMETERED)
    assert client.endpoint == CDMSimulator.endpoint == "http://cdm-simulator.local"
    assert (client.project_id, client.cluster_id) == (sim.project_id, sim.cluster_id)
    assert isinstance(sim.http_client(), httpx.AsyncClient)
