"""CDMHook: a ``huaweicloud_cdm`` connection turned into a :class:`~cdm_status.CDMClient`."""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from .._client import CDMClient
from ._settings import CONN_TYPE, DEFAULT_CONN_ID, ConnectionSettings

__all__ = ["CDMHook"]


class CDMHook(BaseHook):
    """Reads a ``huaweicloud_cdm`` connection: login = AK, password = SK; extras
    ``region`` or ``endpoint``, ``project_id``, ``cluster_id``, ``security_token``,
    ``auth_token`` (instead of AK/SK), ``budget`` (a shared budget's URL) and ``user`` (the
    IAM user name of the credentials: on an Airflow without a task state store, a retry
    adopts only runs this user started).

    In a trigger use the ``a``-methods: they read the connection without blocking the
    triggerer's event loop (``BaseHook.aget_connection``).

    Args:
        conn_id: The connection (default ``huaweicloud_default``).
        **kwargs: ``BaseHook``'s arguments.
    """

    conn_name_attr = "conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Huawei Cloud CDM"

    def __init__(self, conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    def settings(self) -> ConnectionSettings:
        """The connection's settings (blocking read: on a worker).

        Returns:
            The endpoint, project, cluster and credentials the connection holds (its
            ``repr`` shows no secret).

        Raises:
            AirflowNotFoundException: No connection has that id (raised by Airflow).
            ValueError: The connection cannot be used: an unknown extra, no ``endpoint``
                or ``region`` (or an unknown region, or an endpoint that is not a URL), no
                ``project_id``, or no credentials (login and password, or ``auth_token``).
                The message names what is wrong, never a secret.
        """
        return ConnectionSettings.from_connection(self.get_connection(self.conn_id))

    async def asettings(self) -> ConnectionSettings:
        """The connection's settings, read without blocking the event loop.

        Raises:
            AirflowNotFoundException: No connection has that id (raised by Airflow).
            ValueError: The connection cannot be used, as for ``settings()``.
        """
        return ConnectionSettings.from_connection(await self.aget_connection(self.conn_id))

    def get_conn(self) -> CDMClient:
        """A new client for the connection's cluster; close it (``async with``) when done.

        Returns:
            A ``CDMClient`` on the connection's endpoint, project, cluster and
            credentials.

        Raises:
            AirflowNotFoundException: No connection has that id (raised by Airflow).
            ValueError: The connection cannot be used (as for ``settings()``), or it has
                no ``cluster_id`` extra.
        """
        return self.settings().client()

    async def aget_conn(self, cluster_id: str | None = None) -> CDMClient:
        """A new client, from a connection read without blocking.

        Args:
            cluster_id: The cluster; the connection's ``cluster_id`` extra when None.

        Returns:
            A ``CDMClient``; close it (``async with``) when done.

        Raises:
            AirflowNotFoundException: No connection has that id (raised by Airflow).
            ValueError: The connection cannot be used (as for ``settings()``), or no
                cluster is given or set in the connection.
        """
        return (await self.asettings()).client(cluster_id)

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How the connection form reads: the AK/SK in login/password, the rest as extras."""
        return {
            "hidden_fields": ["host", "schema", "port"],
            "relabeling": {"login": "Access key (AK)", "password": "Secret key (SK)"},
            "placeholders": {
                "extra": (
                    '{"region": "cn-north-4", "project_id": "...", "cluster_id": "...", '
                    '"budget": "redis://..."}'
                )
            },
        }
