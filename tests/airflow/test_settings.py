"""Reading a huaweicloud_cdm connection, the provider metadata, and what import pulls in."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pytest

from cdm_status import AKSKAuth, CDMClient, TokenAuth
from cdm_status._config import REGIONS, resolve_settings
from cdm_status._redis_budget import budget_id_for
from cdm_status.airflow import get_provider_info
from cdm_status.airflow._settings import ConnectionSettings
from cdm_status.cli import build_parser
from cdm_status.cli._common import client_from_args
from tests.airflow.conftest import AK, SK


@dataclass
class Conn:
    login: str | None = AK
    password: str | None = SK
    extra_dejson: dict[str, Any] = field(
        default_factory=lambda: {"region": "cn-north-4", "project_id": "p1", "cluster_id": "c1"}
    )


def test_region_gives_the_endpoint_and_aksk_the_auth() -> None:
    settings = ConnectionSettings.from_connection(Conn())
    assert settings.endpoint == "https://cdm.cn-north-4.myhuaweicloud.com"
    assert (settings.project_id, settings.cluster_id) == ("p1", "c1")
    assert isinstance(settings.auth(), AKSKAuth)
    assert settings.cluster(None) == "c1"
    assert settings.cluster("other") == "other"


def test_an_endpoint_extra_wins_and_a_token_alone_is_enough() -> None:
    conn = Conn(
        login=None,
        password=None,
        extra_dejson={
            "endpoint": "http://127.0.0.1:8088/",
            "project_id": "p",
            "auth_token": "t" * 40,
        },
    )
    settings = ConnectionSettings.from_connection(conn)
    assert settings.endpoint == "http://127.0.0.1:8088"
    assert isinstance(settings.auth(), TokenAuth)
    with pytest.raises(ValueError, match="no cluster_id"):
        settings.cluster(None)


@pytest.mark.parametrize(
    ("conn", "message"),
    [
        (Conn(password=None), "both login"),
        (Conn(login=None, password=None), "no credentials"),
        (Conn(extra_dejson={"project_id": "p"}), "endpoint or region"),
        (Conn(extra_dejson={"region": "cn-north-4"}), "project_id"),
        (Conn(extra_dejson={"region": "evil.example/x", "project_id": "p"}), "unknown region"),
        (Conn(extra_dejson={"region": "r1", "project_id": "p", "sk": SK}), "unknown extras"),
        # A typo is refused at once, as from_env, --region and the environment refuse it:
        # not after minutes of requests to a name that does not resolve.
        (Conn(extra_dejson={"region": "cn-nort-4", "project_id": "p"}), "unknown region"),
    ],
)
def test_a_broken_connection_says_what_is_wrong_without_secrets(conn: Conn, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        ConnectionSettings.from_connection(conn)
    assert SK not in str(raised.value)


def test_no_secret_in_repr_and_the_account_key() -> None:
    conn = Conn(
        extra_dejson={"region": "cn-north-4", "project_id": "p", "security_token": "s" * 30}
    )
    settings = ConnectionSettings.from_connection(conn)
    for text in (repr(settings), repr(settings.account())):
        assert AK not in text
        assert SK not in text
        assert "s" * 30 not in text


def test_the_account_key_separates_credentials_not_clusters() -> None:
    one = ConnectionSettings.from_connection(Conn())
    other_cluster = ConnectionSettings.from_connection(
        Conn(extra_dejson={"region": "cn-north-4", "project_id": "p1", "cluster_id": "c2"})
    )
    other_user = ConnectionSettings.from_connection(Conn(login="AK2"))
    assert one.account() == other_cluster.account()
    assert one.account() != other_user.account()


def test_the_region_table_is_the_one_from_env_reads() -> None:
    for region in REGIONS:
        conn = Conn(extra_dejson={"region": region, "project_id": "p1"})
        settings = ConnectionSettings.from_connection(conn)
        environ = {"HUAWEICLOUD_SDK_REGION": region, "HUAWEICLOUD_SDK_PROJECT_ID": "p1"}
        assert settings.endpoint == resolve_settings(environ, cluster_id="c").endpoint
    with pytest.raises(ValueError, match="unknown region 'cn-nort-4'; known regions: ") as bad:
        ConnectionSettings.from_connection(
            Conn(extra_dejson={"region": "cn-nort-4", "project_id": "p1"})
        )
    with pytest.raises(ValueError, match="unknown region") as from_env:
        CDMClient.from_env({"HUAWEICLOUD_SDK_REGION": "cn-nort-4"})
    assert str(bad.value) == str(from_env.value)


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://cdm.cn-north-4.myhuaweicloud.com",
        "https://cdm.cn-north-4.myhuaweicloud.com/",
        "https://CDM.cn-north-4.myhuaweicloud.com:443",
        "HTTPS://cdm.cn-north-4.myhuaweicloud.com:443/",
    ],
)
def test_the_endpoint_is_normalised_as_the_command_line_does_it(endpoint: str) -> None:
    # One account, written four ways: one endpoint, one account key and one Redis key
    # for the Airflow connection and the command line alike.
    settings = ConnectionSettings.from_connection(
        Conn(extra_dejson={"endpoint": endpoint, "project_id": "p1"})
    )
    regional = ConnectionSettings.from_connection(Conn())
    cli = client_from_args(
        build_parser().parse_args(["status", "job_a", "--endpoint", endpoint]),
        {"HUAWEICLOUD_SDK_PROJECT_ID": "p1", "CDM_CLUSTER_ID": "c1", "CDM_AUTH_TOKEN": "t"},
    )
    assert settings.endpoint == cli.endpoint == regional.endpoint
    assert settings.account() == regional.account()
    assert budget_id_for(settings.endpoint, "p1", AK) == budget_id_for(cli.endpoint, "p1", AK)


def test_provider_metadata_is_found_through_the_entry_point() -> None:
    (point,) = [
        p for p in entry_points(group="apache_airflow_provider") if p.value.startswith("cdm")
    ]
    info = point.load()()
    assert info == get_provider_info()
    assert info["package-name"] == "cdm-status"
    assert info["connection-types"] == [
        {
            "hook-class-name": "cdm_status.airflow.hooks.CDMHook",
            "connection-type": "huaweicloud_cdm",
        }
    ]


def test_the_hook_names_the_connection_type_and_default() -> None:
    from cdm_status.airflow.hooks import CDMHook

    assert CDMHook.conn_type == "huaweicloud_cdm"
    assert CDMHook.default_conn_name == "huaweicloud_default"
    assert CDMHook().conn_id == "huaweicloud_default"


def test_import_cdm_status_never_imports_airflow() -> None:
    code = (
        "import sys, cdm_status, cdm_status.testing; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'airflow' "
        "or m.startswith('cdm_status.airflow')); print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
