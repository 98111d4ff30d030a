"""The simulator's gateway checks tokens and SDK-HMAC-SHA256 signatures like Huawei's."""

from __future__ import annotations

import httpx
import pytest

from cdm_status import AKSKAuth, AuthenticationError, CDMClient, JobStatus, RetryPolicy, TokenAuth
from cdm_status._signer import format_sdk_date, sign
from cdm_status.testing import CDMSimulator, FakeClock, JobPlan, SimulatorAuth
from tests.support.budgets import UNMETERED

pytestmark = pytest.mark.anyio

AK, SK = "QTWAOYTTINDUT2QVKYUC", "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
NAME = "a b/c_ü%"  # the signature must cover a percent-encoded path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim(clock: FakeClock) -> CDMSimulator:
    sim = CDMSimulator(clock=clock, auth=SimulatorAuth(token="tok-123", ak=AK, sk=SK))
    sim.add_job(NAME, plan=JobPlan(5, 50))
    return sim


def client(sim: CDMSimulator, auth: httpx.Auth) -> CDMClient:
    return sim.client(budget=UNMETERED, list_budget=UNMETERED, auth=auth, retry=RetryPolicy.never())


async def refused(sim: CDMSimulator, auth: httpx.Auth) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as raised:
        await client(sim, auth).get_status(NAME)
    error = raised.value
    assert error.status_code == 401
    assert error.error_code == "APIG.0301"
    assert error.error_msg is not None
    assert error.error_msg.startswith("Incorrect IAM authentication information: ")
    assert error.request_id
    return error


async def test_a_good_signature_passes(sim: CDMSimulator, clock: FakeClock) -> None:
    auth = AKSKAuth(AK, SK, project_id=sim.project_id, clock=clock)
    assert (await client(sim, auth).get_status(NAME)).status is JobStatus.BOOTING
    page = await client(sim, auth).list_jobs(filter="a b", page_size=10)  # signed query
    assert page.total == 1


async def test_the_default_client_carries_the_configured_credentials(
    sim: CDMSimulator,
) -> None:
    assert (
        await sim.client(budget=UNMETERED, list_budget=UNMETERED).get_status(NAME)
    ).status is JobStatus.BOOTING
    aksk_only = CDMSimulator(clock=sim.clock, auth=SimulatorAuth(ak=AK, sk=SK))
    aksk_only.add_job("j")
    assert (
        await aksk_only.client(budget=UNMETERED, list_budget=UNMETERED).get_status("j")
    ).status is JobStatus.BOOTING


async def test_a_bad_signature_is_refused(sim: CDMSimulator, clock: FakeClock) -> None:
    error = await refused(sim, AKSKAuth(AK, SK[::-1], clock=clock))
    assert "verify aksk signature fail" in str(error.error_msg)
    await refused(sim, AKSKAuth("UNKNOWNAK", SK, clock=clock))


@pytest.mark.parametrize("skew", [-16 * 60.0, 16 * 60.0])
async def test_a_stale_date_is_refused(sim: CDMSimulator, skew: float) -> None:
    off = FakeClock(start=sim.clock.time() + skew)
    error = await refused(sim, AKSKAuth(AK, SK, clock=off))
    assert "15 minutes" in str(error.error_msg)


async def test_a_date_within_15_minutes_passes(sim: CDMSimulator) -> None:
    off = FakeClock(start=sim.clock.time() - 14 * 60.0)
    assert (await client(sim, AKSKAuth(AK, SK, clock=off)).get_status(NAME)).job_name == NAME


async def test_host_and_date_must_be_signed(sim: CDMSimulator) -> None:
    path = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/x/status"
    date = format_sdk_date(sim.clock.time())
    headers = [("Host", "cdm-simulator.local"), ("X-Sdk-Date", date)]
    signature = sign("GET", path, "", headers, b"", ak=AK, sk=SK, only=["x-sdk-date"])
    async with sim.http_client() as http:
        response = await http.get(
            path, headers={"X-Sdk-Date": date, "Authorization": signature.authorization}
        )
    assert response.status_code == 401
    assert "must include host" in response.json()["error_msg"]


async def test_tampering_after_signing_is_caught(sim: CDMSimulator, clock: FakeClock) -> None:
    auth = AKSKAuth(AK, SK, clock=clock)

    class Tamper(httpx.Auth):
        def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
            auth.sign_request(request)
            request.headers["X-Sdk-Date"] = format_sdk_date(clock.time() + 1)
            yield request

    await refused(sim, Tamper())


async def test_tokens(sim: CDMSimulator) -> None:
    assert (await client(sim, TokenAuth("tok-123")).get_status(NAME)).job_name == NAME
    error = await refused(sim, TokenAuth("tok-456"))
    assert "token" in str(error.error_msg)
    async with sim.http_client() as http:
        path = f"/v1.1/{sim.project_id}/clusters/{sim.cluster_id}/cdm/job/x/status"
        anonymous = await http.get(path)
    assert anonymous.status_code == 401
    assert anonymous.json()["request_id"] == anonymous.headers["x-request-id"]
    assert sim.stats.by_status[401] == 2


async def test_auth_off_accepts_anything(clock: FakeClock) -> None:
    sim = CDMSimulator(clock=clock)
    sim.add_job("j")
    assert (await client(sim, TokenAuth("whatever")).get_status("j")).job_name == "j"


def test_auth_settings_are_checked_and_hidden() -> None:
    with pytest.raises(ValueError, match="together"):
        SimulatorAuth(ak=AK)
    with pytest.raises(ValueError, match="give"):
        SimulatorAuth()
    assert SK not in repr(SimulatorAuth(ak=AK, sk=SK))
    assert "tok-123" not in repr(SimulatorAuth(token="tok-123"))
