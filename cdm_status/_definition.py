"""A job's definition, as "Querying a Job" returns it: its settings, source and destination.

Frozen, slotted values built by ``_settings`` from a job-list row or from
``GET .../cdm/job/{job_name}``. Two settings change what the end of a run looks like to a
waiter, and are typed here (:class:`JobSettings`):

* ``schedulerConfig.disposableType`` (:class:`DisposableType`): ``NONE`` keeps the job;
  ``DELETE_AFTER_SUCCEED`` deletes it after a successful run; ``DELETE`` after any run.
  A deleted job answers ``Cdm.0100`` (does not exist) from then on.
* ``retryJobConfig.retryJobType`` (:class:`RetryType`): ``NONE``, or ``RETRY_TRIPLE``: a
  failed run is run again, up to three times.

A string this library does not know is kept as sent (``raw_disposable``, ``raw_retry``) and
typed ``OTHER``: never an error. Every input of ``driver-config-values`` is kept in
``JobSettings.raw``; the source and destination (:class:`JobEndpoint`) keep theirs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from ._models import JobStatus, _empty, _Picklable

__all__ = ["DisposableType", "JobDefinition", "JobEndpoint", "JobSettings", "RetryType"]


_E = TypeVar("_E", bound="_Parsed")


class _Parsed(str, enum.Enum):
    """A wire enum whose unknown strings are ``OTHER`` (never an error)."""

    @classmethod
    def parse(cls: type[_E], raw: str | None) -> _E | None:
        """The member for a wire string; ``OTHER`` for one we do not know, ``None`` for
        none at all."""
        if raw is None or not raw.strip():
            return None
        member = cls._value2member_map_.get(raw.strip().upper())
        return cast(_E, cls["OTHER"] if member is None else member)

    def __str__(self) -> str:
        return str(self.value)


class DisposableType(_Parsed):
    """``schedulerConfig.disposableType``: whether CDM deletes the job after a run."""

    NONE = "NONE"
    """The job is kept."""
    DELETE_AFTER_SUCCEED = "DELETE_AFTER_SUCCEED"
    """Deleted after a successful run only (meant for many one-time jobs)."""
    DELETE = "DELETE"
    """Deleted after its run, whatever the result."""
    OTHER = "OTHER"
    """A value this library does not know (kept in ``JobSettings.raw_disposable``)."""


class RetryType(_Parsed):
    """``retryJobConfig.retryJobType``: whether CDM runs a failed job again by itself."""

    NONE = "NONE"
    RETRY_TRIPLE = "RETRY_TRIPLE"
    """A failed run is retried automatically, up to three times."""
    OTHER = "OTHER"
    """A value this library does not know (kept in ``JobSettings.raw_retry``)."""


RETRIES: Mapping[RetryType, int] = {RetryType.RETRY_TRIPLE: 3}
"""Automatic retries after a failed run, by retry type (0 for the others)."""


@dataclass(frozen=True, slots=True)
class JobSettings(_Picklable):
    """The job parameters of ``driver-config-values`` that matter to a waiter.

    ``None`` means the definition does not say. ``raw`` holds every input as sent
    (``"schedulerConfig.disposableType": "DELETE"``, ``"throttlingConfig.numExtractors":
    "1"``...), strings as CDM sends them.
    """

    disposable: DisposableType | None = None
    raw_disposable: str | None = None
    retry: RetryType | None = None
    raw_retry: str | None = None
    scheduled: bool | None = None
    """``schedulerConfig.isSchedulerJob``: the job runs on CDM's own schedule."""
    raw: Mapping[str, str] = field(default_factory=_empty, compare=False, repr=False)

    @property
    def deletes_itself(self) -> bool:
        """CDM deletes the job after a run (``DELETE`` or ``DELETE_AFTER_SUCCEED``)."""
        return self.disposable in (DisposableType.DELETE, DisposableType.DELETE_AFTER_SUCCEED)

    @property
    def retries(self) -> int:
        """How many times CDM runs a failed job again by itself (3 for ``RETRY_TRIPLE``)."""
        return 0 if self.retry is None else RETRIES.get(self.retry, 0)


@dataclass(frozen=True, slots=True)
class JobEndpoint(_Picklable):
    """One side of a job (its source, or its destination): the link and what it reads or
    writes. ``raw`` holds every input of ``from-config-values`` (or ``to-``) as sent."""

    link_name: str | None = None
    """``from-link-name`` / ``to-link-name``: the CDM link (connection) used."""
    connector_name: str | None = None
    """``from-connector-name`` / ``to-connector-name``: the link type, e.g.
    ``generic-jdbc-connector``, ``hive-connector``, ``obs-connector``."""
    raw: Mapping[str, str] = field(default_factory=_empty, compare=False, repr=False)

    def value(self, name: str) -> str | None:
        """The input ``name`` without its config prefix (``tableName`` finds
        ``fromJobConfig.tableName``), or None."""
        for key, value in self.raw.items():
            if key == name or key.rpartition(".")[2] == name:
                return value
        return None

    @property
    def database(self) -> str | None:
        """The database or schema read or written (``database``, else ``schemaName``)."""
        return self.value("database") or self.value("schemaName")

    @property
    def table(self) -> str | None:
        """The table read or written (``tableName``, else ``table``)."""
        return self.value("tableName") or self.value("table")


@dataclass(frozen=True, slots=True)
class JobDefinition(_Picklable):
    """A job as "Querying a Job" describes it (``client.get_job(name)``)."""

    name: str
    job_type: str | None = None
    """``NORMAL_JOB``, ``BATCH_JOB`` (whole-database) or ``SCENARIO_JOB``."""
    status: JobStatus | None = None
    """The status of its last run, when the answer says."""
    raw_status: str | None = None
    settings: JobSettings = field(default_factory=JobSettings)
    source: JobEndpoint = field(default_factory=JobEndpoint)
    destination: JobEndpoint = field(default_factory=JobEndpoint)
    creation_date: datetime | None = None
    update_date: datetime | None = None
    creation_user: str | None = None
    update_user: str | None = None
    raw: Mapping[str, Any] = field(default_factory=_empty, compare=False, repr=False)
    """The job object exactly as received, read-only."""
