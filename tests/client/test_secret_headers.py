"""Credentials that are not legal header values never reach the user's screen or logs.

An HTTP library that meets such a value quotes the whole header in its error; the token,
AK/SK and security token are checked before any request (the error names the setting) and
any transport error text that could carry a header value is scrubbed. Tried on a real
socket, where h11 writes the request, through the public API and the command line.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import AsyncIterator, Generator, Iterator

import httpx
import pytest

from cdm_status import (
    AKSKAuth,
    CDMClient,
    JobStatusWaiter,
    OutcomeKind,
    TokenAuth,
    TransportError,
)
from cdm_status.testing import (
    DEFAULT_CLUSTER_ID,
    DEFAULT_PROJECT_ID,
    CDMSimulator,
    SimulatorAuth,
    serve,
)
from tests.cli.test_cli_wait_subprocess import COMMAND, TIMEOUT, Simulator, start_simulator
from tests.test_security import chain, log_texts, texts_of

pytestmark = pytest.mark.anyio

TOKEN = "TOKEN-hardening-abcdef-do-not-log"
AK = "AKIDHARDENING0123456789"
SK = "SK-hardening-0123456789-do-not-log"
SECURITY_TOKEN = "STS-hardening-token-do-not-log"


def pieces(secret: str) -> set[str]:
    """The parts of a secret around its bad character: none of them may show."""
    return {part for part in secret.replace("\x0b", "\n").split("\n") if part}


def assert_hidden(texts: list[str], secrets: set[str]) -> None:
    assert secrets
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret in: {text[:300]}"


@pytest.fixture
async def endpoint() -> AsyncIterator[str]:
    sim = CDMSimulator(auth=SimulatorAuth(token=TOKEN))
    sim.add_job("secret_job")
    async with serve(sim) as url:
        yield url


def client(endpoint: str, auth: httpx.Auth) -> CDMClient:
    return CDMClient(endpoint, DEFAULT_PROJECT_ID, DEFAULT_CLUSTER_ID, auth=auth)


async def test_a_token_file_with_its_newline_works(endpoint: str) -> None:
    async def from_file() -> str:
        return TOKEN + "\n"  # what reading a token file gives

    async with client(endpoint, TokenAuth(from_file)) as api:
        submission = await api.get_status("secret_job")
    assert submission.job_name == "secret_job"


async def test_a_provider_token_with_a_control_character_is_refused_unseen(
    endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = TOKEN + "\x0bsecond-half-of-the-token"

    async def provider() -> str:
        return bad

    texts: list[str] = []
    async with client(endpoint, TokenAuth(provider)) as api:
        with pytest.raises(ValueError, match="token provider") as caught:
            await api.get_status("secret_job")
        texts += [*texts_of(caught.value), *chain(caught.value)]
        waiter = JobStatusWaiter(api)
        outcome = (await waiter.wait_all(["secret_job"], timeout=30))["secret_job"]
    assert outcome.kind is OutcomeKind.ERROR
    texts += texts_of(outcome)
    texts += log_texts(caplog.records)
    assert caplog.records
    assert_hidden(texts, pieces(bad))


@pytest.mark.parametrize("setting", ["ak", "sk", "security_token", "project_id"])
def test_aksk_settings_with_a_control_character_are_refused_unseen(setting: str) -> None:
    values = {"ak": AK, "sk": SK, "security_token": SECURITY_TOKEN, "project_id": "0a1b2c3d4e5f"}
    values[setting] += "\x0bmore-secret-text"
    with pytest.raises(ValueError, match=setting) as caught:
        AKSKAuth(
            values["ak"],
            values["sk"],
            project_id=values["project_id"],
            security_token=values["security_token"],
        )
    assert_hidden([*texts_of(caught.value), *chain(caught.value)], pieces(values[setting]))


@pytest.mark.parametrize("header", ["X-Auth-Token", "Authorization", "X-Security-Token"])
async def test_a_transport_error_never_quotes_a_secret_header(
    endpoint: str, header: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Any httpx.Auth may set headers: one that slips a bad value past every check. (The
    # HTTP library's own debug trace, logger "httpcore", is beyond this library's reach.)
    caplog.set_level(logging.DEBUG, logger="cdm_status")
    secret = "SECRET-header-value\x0bwith-a-second-part"

    class Careless(httpx.Auth):
        def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
            request.headers[header] = secret
            yield request

    async with client(endpoint, Careless()) as api:
        with pytest.raises(TransportError) as caught:
            await api.get_status("secret_job")
    assert "LocalProtocolError" in str(caught.value)
    records = [record for record in caplog.records if record.name.startswith("cdm_status")]
    assert records
    texts = [*texts_of(caught.value), *chain(caught.value), *log_texts(records)]
    assert_hidden(texts, pieces(secret))


# ------------------------------------------------------------------ the command line


@pytest.fixture(scope="module")
def simulator() -> Iterator[Simulator]:
    yield from start_simulator(["--jobs", "1", "--speed", "1000000"])


CASES = {
    "token": {"CDM_AUTH_TOKEN": TOKEN + "\x0bmore-token-text"},
    "ak": {"HUAWEICLOUD_SDK_AK": AK + "\x0bmore-ak-text", "HUAWEICLOUD_SDK_SK": SK},
    "sk": {"HUAWEICLOUD_SDK_AK": AK, "HUAWEICLOUD_SDK_SK": SK + "\x0bmore-sk-text"},
    "security token": {
        "HUAWEICLOUD_SDK_AK": AK,
        "HUAWEICLOUD_SDK_SK": SK,
        "HUAWEICLOUD_SDK_SECURITY_TOKEN": SECURITY_TOKEN + "\x0bmore-sts-text",
    },
}


@pytest.mark.parametrize("command", [["status", "job_001"], ["wait", "job_001"]])
@pytest.mark.parametrize("case", sorted(CASES))
def test_the_command_line_names_the_bad_setting_and_never_shows_it(
    simulator: Simulator, command: list[str], case: str
) -> None:
    env = {key: value for key, value in simulator.env().items() if key != "CDM_AUTH_TOKEN"}
    env.update(CASES[case])
    result = subprocess.run(
        [COMMAND, *command], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 2, result.stderr
    (variable,) = (name for name, value in CASES[case].items() if "\x0b" in value)
    assert result.stderr.startswith(f"cdm-status: configuration: {variable} contains")
    assert result.stderr.count("\n") == 1
    secrets = set().union(*(pieces(value) for value in CASES[case].values()))
    assert_hidden([result.stdout, result.stderr], secrets)


def test_a_non_ascii_project_id_is_a_configuration_error(simulator: Simulator) -> None:
    env = dict(simulator.env(), HUAWEICLOUD_SDK_PROJECT_ID="projé")
    env.update(HUAWEICLOUD_SDK_AK=AK, HUAWEICLOUD_SDK_SK=SK)
    result = subprocess.run(
        [COMMAND, "status", "job_001"], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode == 2, result.stderr
    assert "HUAWEICLOUD_SDK_PROJECT_ID contains a non-ASCII character" in result.stderr
    assert os.environ.get("PYTEST_CURRENT_TEST")  # ran inside pytest, on the real command
