"""Settings: the SDK's region table, typed overrides, the endpoint escape hatch."""

from __future__ import annotations

import pytest

from cdm_status import CDMClient, TokenAuth
from cdm_status._config import REGIONS, endpoint_for_region, resolve_settings

ENV = {"HUAWEICLOUD_SDK_PROJECT_ID": "proj", "CDM_CLUSTER_ID": "clus", "CDM_AUTH_TOKEN": "t"}

# The regions of huaweicloudsdkcdm 3.1.219 (CdmRegion.static_fields), in its order.
SDK_3_1_219 = [
    "cn-north-4",
    "cn-north-1",
    "cn-east-2",
    "cn-east-3",
    "cn-south-1",
    "ap-southeast-2",
    "ap-southeast-1",
    "cn-southwest-2",
    "sa-brazil-1",
    "af-south-1",
    "cn-south-2",
    "la-south-2",
    "cn-north-9",
    "cn-north-2",
    "na-mexico-1",
    "la-north-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "tr-west-1",
    "ae-ad-1",
]


def test_the_region_table_is_the_sdks() -> None:
    assert tuple(SDK_3_1_219) == REGIONS
    assert len(REGIONS) == 20
    for region in REGIONS:
        assert endpoint_for_region(region) == f"https://cdm.{region}.myhuaweicloud.com"


def test_from_env_takes_the_region_as_a_keyword() -> None:
    client = CDMClient.from_env(ENV, region="ap-southeast-3")
    assert client.endpoint == "https://cdm.ap-southeast-3.myhuaweicloud.com"
    assert (client.project_id, client.cluster_id) == ("proj", "clus")


def test_a_keyword_wins_over_every_variable() -> None:
    env = {**ENV, "CDM_ENDPOINT": "http://127.0.0.1:9", "HUAWEICLOUD_SDK_REGION": "cn-east-3"}
    client = CDMClient.from_env(
        env, region="cn-north-4", project_id="p2", cluster_id="c2", auth=TokenAuth("k")
    )
    assert client.endpoint == "https://cdm.cn-north-4.myhuaweicloud.com"
    assert (client.project_id, client.cluster_id) == ("p2", "c2")


def test_an_endpoint_is_the_escape_hatch_for_a_region_not_in_the_table() -> None:
    client = CDMClient.from_env(ENV, endpoint="https://cdm.xx-new-1.example.com")
    assert client.endpoint == "https://cdm.xx-new-1.example.com"
    # CDM_ENDPOINT wins over an unknown region in the environment: it is never checked.
    env = {**ENV, "CDM_ENDPOINT": "http://127.0.0.1:9", "HUAWEICLOUD_SDK_REGION": "xx-new-1"}
    assert CDMClient.from_env(env).endpoint == "http://127.0.0.1:9"


def test_a_misspelt_keyword_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        CDMClient.from_env(ENV, endpont="http://127.0.0.1:9")  # type: ignore[call-arg]


def test_client_settings_pass_through_from_env() -> None:
    client = CDMClient.from_env(ENV, region="cn-north-4", max_connections=5, request_timeout=7)
    assert client.max_connections == 5


@pytest.mark.parametrize(
    ("missing", "variable"),
    [
        ("HUAWEICLOUD_SDK_PROJECT_ID", "HUAWEICLOUD_SDK_PROJECT_ID"),
        ("CDM_CLUSTER_ID", "CDM_CLUSTER_ID"),
    ],
)
def test_a_missing_setting_names_its_variable(missing: str, variable: str) -> None:
    env = {k: v for k, v in ENV.items() if k != missing}
    with pytest.raises(ValueError, match=variable):
        resolve_settings(env, region="cn-north-4")
    with pytest.raises(ValueError, match="CDM_ENDPOINT or HUAWEICLOUD_SDK_REGION"):
        resolve_settings(ENV)
