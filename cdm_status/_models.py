"""The values the API returns: job statuses, submissions and their counters.

These are frozen, slotted dataclasses. They are built by ``_wire`` from the response dicts;
the table below (:data:`_STATUS_KIND`) is the single place that says which statuses end a
job, and how.

Status semantics (Sqoop 2, on which CDM is built):

* ``SUCCEEDED`` is the only success.
* ``FAILED``, ``FAILURE_ON_SUBMIT`` (could not be submitted) and ``STOPPED`` (the run ended
  without success) are failures.
* ``NEW``, ``PENDING``, ``BOOTING``, ``RUNNING`` are on the way; ``NEVER_EXECUTED`` means no
  submission yet (right after a start request, or before a whole-database job reaches that
  table) and ``UNKNOWN`` means the engine could not tell: neither ends a wait.
* ``OTHER`` stands for any string this library does not know; the raw string is kept in
  ``Submission.raw_status``. It is not terminal: a waiter reports it and asks again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._definition import JobSettings

__all__ = ["Counters", "JobStatus", "JobSummary", "Submission"]


class JobStatus(str, enum.Enum):
    """A CDM job status. ``OTHER`` stands for any string not listed here."""

    NEW = "NEW"
    PENDING = "PENDING"
    BOOTING = "BOOTING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    FAILURE_ON_SUBMIT = "FAILURE_ON_SUBMIT"
    STOPPED = "STOPPED"
    NEVER_EXECUTED = "NEVER_EXECUTED"
    UNKNOWN = "UNKNOWN"
    OTHER = "OTHER"

    @classmethod
    def parse(cls, raw: str) -> JobStatus:
        """The member for a wire string; ``OTHER`` for one we do not know (never raises)."""
        member = cls._value2member_map_.get(raw.strip().upper())
        if member is None or member is cls.OTHER:
            return cls.OTHER
        return member  # type: ignore[return-value]

    @property
    def is_terminal(self) -> bool:
        """True when a job in this status will not change again without a new run."""
        return _STATUS_KIND[self] != _Kind.ACTIVE

    @property
    def is_success(self) -> bool:
        """True only for ``SUCCEEDED``."""
        return _STATUS_KIND[self] == _Kind.SUCCESS

    @property
    def is_failure(self) -> bool:
        """True for ``FAILED``, ``FAILURE_ON_SUBMIT`` and ``STOPPED``."""
        return _STATUS_KIND[self] == _Kind.FAILURE

    def __str__(self) -> str:
        return self.value


class _Kind(enum.Enum):
    ACTIVE = "active"
    SUCCESS = "success"
    FAILURE = "failure"


# The one table that decides what ends a job. A status missing here is a bug: the
# module-level check below keeps it complete.
_STATUS_KIND: Mapping[JobStatus, _Kind] = MappingProxyType(
    {
        JobStatus.NEW: _Kind.ACTIVE,
        JobStatus.PENDING: _Kind.ACTIVE,
        JobStatus.BOOTING: _Kind.ACTIVE,
        JobStatus.RUNNING: _Kind.ACTIVE,
        JobStatus.NEVER_EXECUTED: _Kind.ACTIVE,
        JobStatus.UNKNOWN: _Kind.ACTIVE,
        JobStatus.OTHER: _Kind.ACTIVE,
        JobStatus.SUCCEEDED: _Kind.SUCCESS,
        JobStatus.FAILED: _Kind.FAILURE,
        JobStatus.FAILURE_ON_SUBMIT: _Kind.FAILURE,
        JobStatus.STOPPED: _Kind.FAILURE,
    }
)
assert set(_STATUS_KIND) == set(JobStatus), "every JobStatus needs a kind"


def freeze(value: Any) -> Any:
    """A read-only deep copy of decoded JSON: dicts become mapping proxies, lists tuples."""
    if isinstance(value, dict):
        if not any(isinstance(item, dict | list) for item in value.values()):
            return MappingProxyType(dict(value))  # flat: the common case, and cheap
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return tuple(freeze(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """The plain, picklable JSON that :func:`freeze` was given (tuples stay tuples)."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return tuple(thaw(item) for item in value)
    return value


def _rebuild(cls: type[Any], values: tuple[Any, ...]) -> Any:
    fields = dict(zip(cls.__dataclass_fields__, values, strict=True))
    fields["raw"] = freeze(fields["raw"])
    return cls(**fields)


class _Picklable:
    """Pickle and copy support for a frozen value holding a read-only ``raw`` mapping.

    ``mappingproxy`` refuses to be pickled or deep-copied; the value travels as plain
    data and is frozen again on arrival (outcomes cross processes: task queues, Airflow).
    """

    __slots__ = ()

    def __reduce__(self) -> tuple[Any, ...]:
        names = type(self).__dataclass_fields__  # type: ignore[attr-defined]
        values = tuple(
            thaw(getattr(self, name)) if name == "raw" else getattr(self, name) for name in names
        )
        return (_rebuild, (type(self), values))


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


@dataclass(frozen=True, slots=True)
class Counters(_Picklable):
    """Sqoop counters of a finished run. ``None`` means not reported or not measured (-1)."""

    rows_read: int | None = None
    rows_written: int | None = None
    rows_written_skipped: int | None = None
    bytes_read: int | None = None
    bytes_written: int | None = None
    total_size: int | None = None
    files_read: int | None = None
    files_written: int | None = None
    files_skipped: int | None = None
    total_files: int | None = None
    raw: Mapping[str, int] = field(default_factory=_empty, compare=False, repr=False)
    """Every counter as sent, unknown ones included (-1 kept as sent)."""


@dataclass(frozen=True, slots=True)
class Submission(_Picklable):
    """One run of a job, as ``GET .../job/{job_name}/status`` reports it."""

    job_name: str
    status: JobStatus
    raw_status: str
    creation_date: datetime | None = None
    last_update_date: datetime | None = None
    creation_user: str | None = None
    last_update_user: str | None = None
    is_execute_auto: bool | None = None
    is_delete_job: bool | None = None
    is_incrementing: bool | None = None
    is_stopping_increment: bool | None = None
    external_id: str | None = None
    progress: float | None = None
    submission_id: int | None = None
    counters: Counters | None = None
    error_summary: str | None = None
    error_details: str | None = None
    raw: Mapping[str, Any] = field(default_factory=_empty, compare=False, repr=False)
    """The submission object exactly as received, read-only."""

    @classmethod
    def never_executed(cls, job_name: str) -> Submission:
        """The stand-in for a job with no submission yet (an empty ``submissions`` list)."""
        return cls(
            job_name=job_name,
            status=JobStatus.NEVER_EXECUTED,
            raw_status=JobStatus.NEVER_EXECUTED.value,
        )


@dataclass(frozen=True, slots=True)
class JobSummary(_Picklable):
    """One entry of the job list (``GET .../cdm/job/all``): a name and its last status."""

    name: str
    status: JobStatus
    raw_status: str
    job_type: str | None = None
    raw: Mapping[str, Any] = field(default_factory=_empty, compare=False, repr=False)

    @property
    def settings(self) -> JobSettings | None:
        """The job's settings, when the row carries its ``driver-config-values`` (read
        from ``raw`` when asked: a sweep's hot path never pays for them)."""
        from ._settings import parse_settings  # _settings builds on this module

        return parse_settings(self.raw.get("driver-config-values"))
