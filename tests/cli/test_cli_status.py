"""``cdm-status status JOB``, run in-process with the API mocked."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest
import respx

from cdm_status.cli import main

ENDPOINT = "https://cdm.cli.test"
STATUS_URL = f"{ENDPOINT}/v1.1/proj/clusters/clus/cdm/job/jdbc2hive/status"
SUCCEEDED = {
    "submissions": [
        {
            "job-name": "jdbc2hive",
            "status": "SUCCEEDED",
            "creation-date": 1536906582997,
            "creation-user": "cdm",
            "isStopingIncrement": "",
            "last-update-date": 1536916580005,
            "last-udpate-user": "cdm",
            "external-id": "job_local1127970451_0009",
            "counters": {
                "org.apache.sqoop.submission.counter.SqoopCounters": {
                    "BYTES_WRITTEN": 0,
                    "BYTES_READ": 1536,
                    "ROWS_WRITTEN": 80,
                    "ROWS_READ": 80,
                    "TOTAL_FILES": -1,
                }
            },
        }
    ]
}
FAILED = {
    "submissions": [
        {
            "job-name": "jdbc2hive",
            "status": "FAILED",
            "creation-date": 1000,
            "error-summary": "Connection refused",
            "error-details": "java.net.ConnectException\n\tat ...",
        }
    ]
}
SETTINGS = {
    "CDM_ENDPOINT": ENDPOINT,
    "HUAWEICLOUD_SDK_PROJECT_ID": "proj",
    "CDM_CLUSTER_ID": "clus",
    "CDM_AUTH_TOKEN": "cli-secret-token",
}
UNSET = ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK", "HUAWEICLOUD_SDK_REGION")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*UNSET, "HUAWEICLOUD_SDK_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in SETTINGS.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


@pytest.fixture
def no_wall_clock_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The command line retries transient failures with anyio.sleep: record, do not wait."""
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(anyio, "sleep", fake_sleep)
    return slept


def test_human_output(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with respx.mock:
        route = respx.get(STATUS_URL).mock(return_value=httpx.Response(200, json=SUCCEEDED))
        assert main(["status", "jdbc2hive"]) == 0
    assert route.calls.last.request.headers["X-Auth-Token"] == "cli-secret-token"
    out, err = capsys.readouterr()
    assert err == ""
    lines = {
        line.split(":", 1)[0].strip(): line.split(":", 1)[1].strip() for line in out.splitlines()
    }
    assert lines["job"] == "jdbc2hive"
    assert lines["status"] == "SUCCEEDED"
    assert lines["created"] == "2018-09-14T06:29:42.997000+00:00"
    assert lines["updated by"] == "cdm"
    assert lines["rows read"] == "80"
    assert lines["bytes read"] == "1.5 KiB"
    assert lines["bytes written"] == "0 B"  # a real zero, not "not measured"
    assert "total files" not in lines  # -1: not measured


def test_human_output_of_a_failure_shows_the_error(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with respx.mock:
        respx.get(STATUS_URL).mock(return_value=httpx.Response(200, json=FAILED))
        # The lookup worked: exit 0 whatever the job's own status.
        assert main(["status", "jdbc2hive"]) == 0
    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "error: Connection refused" in out


def test_json_output(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with respx.mock:
        respx.get(STATUS_URL).mock(return_value=httpx.Response(200, json=SUCCEEDED))
        assert main(["status", "jdbc2hive", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.count("\n") == 1
    data = json.loads(out)
    assert data["job_name"] == "jdbc2hive"
    assert data["status"] == "SUCCEEDED"
    assert data["raw_status"] == "SUCCEEDED"
    assert data["creation_date"] == "2018-09-14T06:29:42.997000+00:00"
    assert data["last_update_user"] == "cdm"
    assert data["is_stopping_increment"] is None
    assert data["counters"]["rows_read"] == 80
    assert data["counters"]["bytes_written"] == 0
    assert data["counters"]["total_files"] is None
    assert "raw" not in data
    assert "raw" not in data["counters"]


def test_json_output_of_a_job_that_never_ran(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with respx.mock:
        respx.get(STATUS_URL).mock(return_value=httpx.Response(200, json={"submissions": []}))
        assert main(["status", "jdbc2hive", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"] == "NEVER_EXECUTED"
    assert data["counters"] is None


def test_flags_win_over_the_environment(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.delenv("CDM_CLUSTER_ID")
    with respx.mock:
        route = respx.get(f"{ENDPOINT}/v1.1/proj/clusters/flagged/cdm/job/jdbc2hive/status").mock(
            return_value=httpx.Response(200, json=SUCCEEDED)
        )
        assert main(["status", "jdbc2hive", "--cluster-id", "flagged"]) == 0
    assert route.called


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("cdm-status: ")
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("missing", list(SETTINGS))
def test_missing_configuration_exits_2(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], missing: str
) -> None:
    env.delenv(missing)
    with respx.mock:  # nothing may be sent
        assert main(["status", "jdbc2hive"]) == 2
    err = one_line_error(capsys)
    assert "configuration" in err
    assert missing in err


@pytest.mark.parametrize("name", ["", "a\nb", "x" * 1025])
def test_unusable_job_name_exits_2(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    with respx.mock:  # nothing may be sent
        assert main(["status", name]) == 2
    assert "job name" in one_line_error(capsys)


def test_usage_error_exits_2(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status"]) == 2
    assert "usage" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (
            httpx.Response(
                401,
                json={"error_code": "APIG.0301", "error_msg": "token\nexpires"},
                headers={"X-Request-Id": "rid-1"},
            ),
            "refused the credentials",
        ),
        (httpx.Response(200, content=b"<html>"), "ResponseFormatError"),
    ],
    ids=["401", "bad-body"],
)
def test_api_errors_exit_4_with_one_line(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    response: httpx.Response,
    expected: str,
) -> None:
    with respx.mock:
        respx.get(STATUS_URL).mock(return_value=response)
        assert main(["status", "jdbc2hive"]) == 4
    err = one_line_error(capsys)
    assert expected in err
    assert "cli-secret-token" not in err


def test_unreachable_exits_4(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], no_wall_clock_sleep: list[float]
) -> None:
    with respx.mock:
        route = respx.get(STATUS_URL).mock(side_effect=httpx.ConnectError("connection refused"))
        assert main(["status", "jdbc2hive"]) == 4
    assert route.call_count > 1  # retried first
    assert len(no_wall_clock_sleep) == route.call_count - 1
    err = one_line_error(capsys)
    assert "TransportError" in err
    assert "connection refused" in err
