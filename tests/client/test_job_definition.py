"""A job's definition ("Querying a Job"): its settings, source and destination, read from
a list row or from ``GET .../cdm/job/{job_name}``; unknown values kept, never an error."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import pytest

from cdm_status import (
    DisposableType,
    JobDefinition,
    JobNotFoundError,
    JobSettings,
    JobStatus,
    RateLimitedError,
    ResponseFormatError,
    RetryType,
)
from cdm_status._settings import config_inputs, parse_settings
from cdm_status._wire import job_definition_path, parse_job_definition, parse_job_list
from cdm_status.testing import CDMSimulator, FakeClock, JobSetup, RateLimits

# The shape of the documented sample answer of "Querying a Job" (one job of the list).
SAMPLE: dict[str, Any] = {
    "name": "oracle2hive",
    "job_type": "NORMAL_JOB",
    "creation-user": "cdm",
    "creation-date": 1514880878504,
    "update-date": 1514880878083,
    "update-user": "cdm",
    "status": "NEW",
    "from-link-name": "oraclelink",
    "from-connector-name": "generic-jdbc-connector",
    "to-link-name": "hivelink",
    "to-connector-name": "hive-connector",
    "from-config-values": {
        "configs": [
            {
                "name": "fromJobConfig",
                "inputs": [
                    {"name": "fromJobConfig.useSql", "value": "false"},
                    {"name": "fromJobConfig.schemaName", "value": "rf_database"},
                    {"name": "fromJobConfig.tableName", "value": "rf_from"},
                ],
            }
        ]
    },
    "to-config-values": {
        "configs": [
            {
                "name": "toJobConfig",
                "inputs": [
                    {"name": "toJobConfig.database", "value": "rf_warehouse"},
                    {"name": "toJobConfig.table", "value": "rf_to"},
                ],
            }
        ]
    },
    "driver-config-values": {
        "configs": [
            {
                "name": "throttlingConfig",
                "inputs": [{"name": "throttlingConfig.numExtractors", "value": "1"}],
            },
            {"name": "jarConfig", "inputs": []},
            {
                "name": "schedulerConfig",
                "inputs": [
                    {"name": "schedulerConfig.isSchedulerJob", "value": "false"},
                    {"name": "schedulerConfig.disposableType", "value": "DELETE_AFTER_SUCCEED"},
                ],
            },
            {
                "name": "retryJobConfig",
                "inputs": [{"name": "retryJobConfig.retryJobType", "value": "RETRY_TRIPLE"}],
            },
        ]
    },
}


def answer(*jobs: dict[str, Any]) -> bytes:
    return json.dumps({"total": len(jobs), "jobs": list(jobs), "page_no": 1}).encode()


def test_the_documented_sample_reads_in_full() -> None:
    definition = parse_job_definition(answer(SAMPLE), job_name="oracle2hive")
    assert definition.name == "oracle2hive"
    assert (definition.job_type, definition.status) == ("NORMAL_JOB", JobStatus.NEW)
    settings = definition.settings
    assert settings.disposable is DisposableType.DELETE_AFTER_SUCCEED
    assert settings.retry is RetryType.RETRY_TRIPLE
    assert settings.retries == 3
    assert settings.scheduled is False
    assert settings.deletes_itself
    assert settings.raw["throttlingConfig.numExtractors"] == "1"
    source, destination = definition.source, definition.destination
    assert (source.link_name, source.connector_name) == ("oraclelink", "generic-jdbc-connector")
    assert (source.database, source.table) == ("rf_database", "rf_from")
    assert (destination.link_name, destination.connector_name) == ("hivelink", "hive-connector")
    assert (destination.database, destination.table) == ("rf_warehouse", "rf_to")
    assert destination.raw == {"toJobConfig.database": "rf_warehouse", "toJobConfig.table": "rf_to"}
    assert definition.creation_date is not None
    assert definition.creation_date.year == 2018
    assert definition.raw["from-link-name"] == "oraclelink"


def test_a_definition_survives_pickle_and_copy() -> None:
    definition = parse_job_definition(answer(SAMPLE), job_name="oracle2hive")
    for clone in (pickle.loads(pickle.dumps(definition)), copy.deepcopy(definition)):
        assert clone == definition
        assert clone.settings.raw == definition.settings.raw
        assert clone.source.table == "rf_from"


def test_unknown_values_are_kept_as_sent() -> None:
    settings = parse_settings(
        {
            "configs": [
                {
                    "name": "schedulerConfig",
                    "inputs": [{"name": "disposableType", "value": "delete_later"}],
                },
                {"name": "retryJobConfig", "inputs": [{"name": "retryJobType", "value": "x5"}]},
            ]
        }
    )
    assert settings is not None
    # An input named without its config's prefix gets it.
    assert settings.disposable is DisposableType.OTHER
    assert settings.raw_disposable == "delete_later"
    assert settings.retry is RetryType.OTHER
    assert settings.retries == 0
    assert not settings.deletes_itself
    assert str(DisposableType.parse("delete")) == "DELETE"  # case is not significant


@pytest.mark.parametrize(
    "odd",
    [
        {"configs": "none"},
        {"configs": [1, None, {"name": "x", "inputs": "no"}]},
        {"configs": [{"name": "x", "inputs": [1, {"value": "v"}, {"name": "", "value": "v"}]}]},
        [],
        "text",
        {},
    ],
)
def test_odd_shapes_are_skipped_not_errors(odd: Any) -> None:
    settings = parse_settings(odd)
    assert settings == JobSettings(raw={})
    assert settings is not None
    assert settings.disposable is None
    assert settings.retries == 0


def test_values_that_are_not_strings_are_read_as_cdm_would_write_them() -> None:
    inputs = config_inputs(
        {
            "configs": [
                {
                    "name": "c",
                    "inputs": [
                        {"name": "c.flag", "value": True},
                        {"name": "c.count", "value": 3},
                        {"name": "c.nested", "value": {"a": 1}},
                    ],
                }
            ]
        }
    )
    assert dict(inputs) == {"c.flag": "true", "c.count": "3"}


def test_a_list_row_carries_settings_only_when_it_has_them() -> None:
    bare = {key: SAMPLE[key] for key in ("name", "job_type", "status")}
    total, [with_settings, without] = parse_job_list(answer(SAMPLE, {**bare, "name": "b"}))
    assert total == 2
    assert with_settings.settings is not None
    assert with_settings.settings.disposable is DisposableType.DELETE_AFTER_SUCCEED
    assert without.settings is None


def test_an_answer_without_the_job_is_not_found() -> None:
    with pytest.raises(JobNotFoundError, match="no job named 'other'"):
        parse_job_definition(answer(SAMPLE), job_name="other")
    with pytest.raises(JobNotFoundError):
        parse_job_definition(answer(), job_name="other")
    # A bare job object, or one job without its name, is the job asked for.
    assert parse_job_definition(json.dumps(SAMPLE).encode(), job_name="oracle2hive").name
    nameless = {key: value for key, value in SAMPLE.items() if key != "name"}
    assert parse_job_definition(answer(nameless), job_name="x").name == "x"
    with pytest.raises(ResponseFormatError):
        parse_job_definition(b'{"jobs": [1]}', job_name="x")
    with pytest.raises(ResponseFormatError):
        parse_job_definition(answer({**SAMPLE, "creation-date": "soon"}), job_name="oracle2hive")


def test_the_path_is_one_segment_and_never_the_list() -> None:
    assert job_definition_path("/c", "a b/c") == "/c/job/a%20b%2Fc"
    with pytest.raises(ValueError, match="job list"):
        job_definition_path("/c", "all")


@pytest.mark.anyio
async def test_get_job_reads_the_definition_from_the_list_budget() -> None:
    clock = FakeClock()
    sim = CDMSimulator(clock=clock, limits=RateLimits(list=2))
    setup = JobSetup(disposable="DELETE", retry="RETRY_TRIPLE")
    sim.add_job("nightly", setup=setup)
    async with sim.client() as client, clock.autojump():
        definition = await client.get_job("nightly")
        assert isinstance(definition, JobDefinition)
        assert definition.settings.disposable is DisposableType.DELETE
        assert definition.settings.retry is RetryType.RETRY_TRIPLE
        assert definition.source.table == "nightly"
        assert definition.destination.connector_name == "hive-connector"
        await client.list_jobs()
        # One API, one budget: the third request of the minute is throttled.
        with pytest.raises(RateLimitedError):
            await client.get_job("nightly")
        await clock.advance(60)
        with pytest.raises(JobNotFoundError):
            await client.get_job("missing")
    assert sim.stats.by_endpoint_status["job", 200] == 1
    assert sim.stats.by_endpoint_status["job", 429] >= 1
    assert sim.stats.by_endpoint_status["job", 400] == 1
