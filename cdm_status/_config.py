"""Where a client's settings come from: arguments first, then the environment.

The region table is the official SDK's (``huaweicloudsdkcdm`` 3.1.219, ``CdmRegion``): a
region outside it is refused with the list of known ones, because a typo such as
``cn-nort-4`` would otherwise surface only as a DNS failure minutes later. A region the
table does not know yet is reached with an explicit ``endpoint``, the escape hatch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

__all__ = ["REGIONS", "Settings", "endpoint_for_region", "normalise_endpoint", "resolve_settings"]

REGIONS: tuple[str, ...] = (
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
)
"""Every region CDM serves, as the official SDK lists them."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Where to send requests: the base URL and the ids that every path carries."""

    endpoint: str
    project_id: str
    cluster_id: str


DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_endpoint(endpoint: str) -> str:
    """``endpoint`` checked and written one way (scheme and host in lower case, no default
    port, no trailing slash), so that one account has one endpoint wherever it is read
    from: the client (and so the command line), the Airflow connection, a budget's key.
    ``ValueError`` when it is not an http(s) URL with a host and nothing else."""
    try:
        url = httpx.URL(endpoint.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"endpoint is not a URL: {exc}") from None
    if url.scheme not in DEFAULT_PORTS or not url.host:
        raise ValueError("endpoint must be an http:// or https:// URL with a host")
    if url.query or url.fragment or url.userinfo:
        raise ValueError("endpoint must not carry a query, fragment or credentials")
    if url.port is not None and not 0 < url.port <= 65535:
        raise ValueError(f"endpoint port must be between 1 and 65535, not {url.port}")
    if url.port == DEFAULT_PORTS[url.scheme]:
        url = url.copy_with(port=None)
    return str(url).rstrip("/")


def endpoint_for_region(region: str) -> str:
    """CDM's public endpoint in ``region``; ``ValueError`` naming the known regions."""
    if region not in REGIONS:
        known = ", ".join(sorted(REGIONS))
        raise ValueError(
            f"unknown region {region!r}; known regions: {known} "
            "(for another one, give its endpoint)"
        )
    return f"https://cdm.{region}.myhuaweicloud.com"


def _env(name: str, environ: Mapping[str, str]) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def resolve_settings(
    environ: Mapping[str, str] | None = None,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    project_id: str | None = None,
    cluster_id: str | None = None,
) -> Settings:
    """The settings from the arguments, each falling back to its environment variable.

    ``endpoint`` (``CDM_ENDPOINT``) wins over ``region`` (``HUAWEICLOUD_SDK_REGION``); an
    argument wins over every variable. A missing setting is a ``ValueError`` naming the
    variable that would give it.
    """
    env = os.environ if environ is None else environ
    if endpoint is None and region is None:
        endpoint = _env("CDM_ENDPOINT", env)
        if endpoint is None:
            region = _env("HUAWEICLOUD_SDK_REGION", env)
    if endpoint is None:
        if region is None:
            raise ValueError("set CDM_ENDPOINT or HUAWEICLOUD_SDK_REGION")
        endpoint = endpoint_for_region(region)
    project_id = project_id or _env("HUAWEICLOUD_SDK_PROJECT_ID", env)
    if project_id is None:
        raise ValueError("set HUAWEICLOUD_SDK_PROJECT_ID")
    cluster_id = cluster_id or _env("CDM_CLUSTER_ID", env)
    if cluster_id is None:
        raise ValueError("set CDM_CLUSTER_ID")
    return Settings(endpoint=endpoint, project_id=project_id, cluster_id=cluster_id)
