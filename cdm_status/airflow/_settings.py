"""An Airflow connection of type ``huaweicloud_cdm``, read into plain settings.

No Airflow import here: anything with ``login``, ``password`` and ``extra_dejson`` (an
Airflow ``Connection``) is read, so the reading is tested without Airflow. The settings
know how to build a :class:`~cdm_status.CDMClient`, and give the key under which every
trigger of a process with the same endpoint, project and credentials shares one waiter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from .._auth import AKSKAuth, TokenAuth
from .._budget import Budget
from .._client import CDMClient
from .._clock import Clock
from .._config import endpoint_for_region, normalise_endpoint
from .._retry import RetryPolicy

__all__ = ["AccountKey", "ConnectionLike", "ConnectionSettings"]

CONN_TYPE = "huaweicloud_cdm"
DEFAULT_CONN_ID = "huaweicloud_default"
EXTRA_FIELDS = (
    "region",
    "project_id",
    "cluster_id",
    "endpoint",
    "security_token",
    "auth_token",
    "budget",
    "user",
)


class ConnectionLike(Protocol):
    """What is read from an Airflow connection."""

    @property
    def login(self) -> str | None: ...

    @property
    def password(self) -> str | None: ...

    @property
    def extra_dejson(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class AccountKey:
    """Who spends a request budget: endpoint, project, and a digest of the credentials
    (never the credentials themselves), plus the shared budget's URL digest if any."""

    endpoint: str
    project_id: str
    credentials: str
    budget: str


def _text(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """The settings of one ``huaweicloud_cdm`` connection; secrets stay out of ``repr``."""

    endpoint: str
    project_id: str
    cluster_id: str | None = None
    ak: str | None = field(default=None, repr=False)
    sk: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    auth_token: str | None = field(default=None, repr=False)
    budget_url: str | None = field(default=None, repr=False)
    user: str | None = None
    """The CDM user (IAM user name) the credentials belong to, if the connection says:
    on an Airflow without a task state store, a retry adopts only runs this user started."""

    def __post_init__(self) -> None:
        if (self.ak is None) != (self.sk is None):
            raise ValueError("the connection needs both login (AK) and password (SK), or neither")
        if self.ak is None and self.auth_token is None:
            raise ValueError(
                "the connection has no credentials: set login (AK) and password (SK), "
                "or the auth_token extra"
            )

    @classmethod
    def from_connection(cls, conn: ConnectionLike) -> ConnectionSettings:
        """Read a connection: login = AK, password = SK, the rest from its extras.

        ``endpoint`` wins over ``region`` (which gives
        ``https://cdm.{region}.myhuaweicloud.com``); ``project_id`` is required.
        Raises ``ValueError`` naming what is missing, never showing a secret.
        """
        extra: Mapping[str, Any] = conn.extra_dejson or {}
        unknown = sorted(set(extra) - set(EXTRA_FIELDS))
        if unknown:
            raise ValueError(f"unknown extras in the connection: {', '.join(unknown)}")
        endpoint = _text(extra.get("endpoint"))
        region = _text(extra.get("region"))
        if endpoint is None and region is not None:
            # The table from_env reads: a typo is refused now, not after minutes of
            # requests to a name that does not resolve.
            endpoint = endpoint_for_region(region)
        if endpoint is None:
            raise ValueError("the connection needs the endpoint or region extra")
        # Written as the client (and the command line) writes it: one account, one key.
        endpoint = normalise_endpoint(endpoint)
        project_id = _text(extra.get("project_id"))
        if project_id is None:
            raise ValueError("the connection needs the project_id extra")
        return cls(
            endpoint=endpoint,
            project_id=project_id,
            cluster_id=_text(extra.get("cluster_id")),
            ak=_text(conn.login),
            sk=_text(conn.password),
            security_token=_text(extra.get("security_token")),
            auth_token=_text(extra.get("auth_token")),
            budget_url=_text(extra.get("budget")),
            user=_text(extra.get("user")),
        )

    def account(self) -> AccountKey:
        """The key of this account's shared budget and waiters."""
        digest = hashlib.sha256()
        for part in (self.ak, self.sk, self.security_token, self.auth_token):
            digest.update((part or "").encode() + b"\0")
        budget = hashlib.sha256((self.budget_url or "").encode()).hexdigest()[:16]
        return AccountKey(self.endpoint, self.project_id, digest.hexdigest()[:32], budget)

    def cluster(self, cluster_id: str | None) -> str:
        """The cluster to use: the one given, else the connection's; ``ValueError`` if none."""
        chosen = _text(cluster_id) or self.cluster_id
        if chosen is None:
            raise ValueError("no cluster_id: pass one, or set the cluster_id extra")
        return chosen

    def auth(self, *, clock: Clock | None = None) -> httpx.Auth:
        """AK/SK (preferred) or the token."""
        if self.ak is not None and self.sk is not None:
            return AKSKAuth(
                self.ak,
                self.sk,
                project_id=self.project_id,
                security_token=self.security_token,
                clock=clock,
            )
        assert self.auth_token is not None  # __post_init__ guarantees one kind
        return TokenAuth(self.auth_token)

    def client(
        self,
        cluster_id: str | None = None,
        *,
        clock: Clock | None = None,
        http_client: httpx.AsyncClient | None = None,
        budget: Budget | None = None,
        list_budget: Budget | None = None,
    ) -> CDMClient:
        """A new :class:`CDMClient` for ``cluster_id`` (default: the connection's), on
        ``budget`` and ``list_budget`` when given (an account's, shared by its clusters)."""
        return CDMClient(
            self.endpoint,
            self.project_id,
            self.cluster(cluster_id),
            auth=self.auth(clock=clock),
            http_client=http_client,
            retry=RetryPolicy(sleep=clock.sleep) if clock is not None else None,
            clock=clock,
            budget=budget,
            list_budget=list_budget,
        )
