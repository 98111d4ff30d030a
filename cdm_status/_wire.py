"""The wire format: paths to request, and bodies to parse. Pure: no I/O.

Everything here is a function of its arguments, so the whole protocol is tested without an
event loop. The client (``_client``) only sends what this module builds and hands the bytes
it got back to it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import quote

from ._definition import JobDefinition, JobSettings
from ._errors import JobNotFoundError, ResponseFormatError
from ._models import Counters, JobStatus, JobSummary, Submission, freeze
from ._settings import endpoint, parse_settings

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_NAME_LENGTH",
    "cluster_path",
    "job_definition_path",
    "job_list_path",
    "job_path",
    "parse_job_definition",
    "parse_job_list",
    "parse_submission",
    "parse_submissions",
    "path_segment",
    "subjob_name",
    "validate_name",
]

MAX_BODY_BYTES = 8 * 1024 * 1024
"""Largest response body read; a bigger one is refused with ResponseFormatError."""

MAX_NAME_LENGTH = 1024
MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in a body (the documented shape has 4)."""

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
COUNTERS_GROUP = "org.apache.sqoop.submission.counter.SqoopCounters"

_T = TypeVar("_T")


# --------------------------------------------------------------------------- names / paths


def validate_name(value: object, what: str) -> str:
    """``value`` if it can be one path segment, else ``ValueError`` naming ``what``.

    Refused: non-strings, empty strings, more than 1,024 characters, control characters
    (NUL, CR, LF and the rest of C0/C1), and the dot-segments ``.`` and ``..`` that URL
    normalisation would swallow. Everything else is allowed and percent-encoded.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"{what} is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}")
    for position, char in enumerate(value):
        if ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            raise ValueError(
                f"{what} contains the control character U+{ord(char):04X} at position {position}"
            )
        if 0xD800 <= ord(char) <= 0xDFFF:  # a lone surrogate cannot be encoded as UTF-8
            raise ValueError(f"{what} contains a lone surrogate at position {position}")
    if value in {".", ".."}:
        raise ValueError(f"{what} must not be {value!r}: it is a path dot-segment")
    return value


def path_segment(value: str, what: str) -> str:
    """``value`` validated and percent-encoded as exactly one path segment."""
    return quote(validate_name(value, what), safe="")


def cluster_path(project_id: str, cluster_id: str) -> str:
    """``/v1.1/{project_id}/clusters/{cluster_id}/cdm``, validated and encoded."""
    return (
        f"/v1.1/{path_segment(project_id, 'project_id')}"
        f"/clusters/{path_segment(cluster_id, 'cluster_id')}/cdm"
    )


def job_path(cluster: str, job_name: str, action: str) -> str:
    """``{cluster}/job/{job_name}/{action}``: the job name as one encoded segment."""
    return f"{cluster}/job/{path_segment(job_name, 'job name')}/{action}"


def job_list_path(cluster: str) -> str:
    """``{cluster}/job/all``: the job list."""
    return f"{cluster}/job/all"


def job_definition_path(cluster: str, job_name: str) -> str:
    """``{cluster}/job/{job_name}``: one job's definition ("Querying a Job").

    ``all`` is refused: that name asks for the job list, not a job called "all".
    """
    if job_name == "all":
        raise ValueError("'all' cannot be read as one job: that name asks for the job list")
    return f"{cluster}/job/{path_segment(job_name, 'job name')}"


def subjob_name(parent: str, table: str) -> str:
    """The name CDM gives the subjob of a whole-database job: ``<parent>_<table>``."""
    validate_name(parent, "parent job name")
    validate_name(table, "table name")
    return validate_name(f"{parent}_{table}", "subjob name")


# --------------------------------------------------------------------------- decoding


def _reject_constant(name: str) -> Any:
    # Python's json module accepts NaN and Infinity by default; JSON does not.
    raise ResponseFormatError(f"response body is not JSON: {name} is not a JSON value")


def _finite_float(text: str) -> float:
    # "1e400" decodes to inf without complaint: refuse it like NaN.
    number = float(text)
    if not math.isfinite(number):
        raise ResponseFormatError(f"response body holds a number out of range: {text[:40]}")
    return number


_ESCAPE = re.compile(rb"\\.")
_NOT_BRACKETS = bytes(code for code in range(256) if code not in b"[]{}")
_AS_PARENTHESES = bytes.maketrans(b"[]{}", b"()()")


def _check_depth(body: bytes) -> None:
    """ResponseFormatError if arrays/objects nest deeper than MAX_DEPTH.

    json.loads may accept nesting close to the recursion limit, and everything that walks
    the result afterwards (freeze, the repr of raw) recurses too: refuse such bodies here,
    once, rather than let a RecursionError escape from somewhere further down. Measured on
    the bytes of a body json.loads accepted, in C loops: escapes dropped, every other
    piece between quotes (the strings) dropped, the brackets kept, as parentheses (json
    already matched them), then the innermost pairs removed, one level a pass, until none
    is left. A page of the job list carries thousands of brackets (each job's parameters)
    nested a few levels deep: walking them one by one, or its decoded objects, cost more
    than decoding them.
    """
    unescaped = _ESCAPE.sub(b"", body) if b"\\" in body else body
    brackets = b"".join(unescaped.split(b'"')[::2]).translate(_AS_PARENTHESES, _NOT_BRACKETS)
    for _ in range(MAX_DEPTH):
        # replace() never looks again at what it just joined: it removes the pairs that
        # hold no other, exactly one level.
        brackets = brackets.replace(b"()", b"")
        if not brackets:
            return
    raise ResponseFormatError(f"response body nests deeper than {MAX_DEPTH} levels")


def decode_json(body: bytes) -> Any:
    """Decoded JSON, or ResponseFormatError for anything that is not strict JSON."""
    if len(body) > MAX_BODY_BYTES:
        raise ResponseFormatError(f"response body of {len(body)} bytes exceeds the limit")
    try:
        decoded = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ResponseFormatError("response body is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many int digits
        raise ResponseFormatError(f"response body is not JSON: {exc}") from None
    # Nesting never exceeds the number of opening brackets (those inside strings only
    # add to the count): a body with few of them cannot be too deep, so skip the walk.
    if body.count(b"{") + body.count(b"[") > MAX_DEPTH:
        _check_depth(body)
    return decoded


class _Fields:
    """Typed reads from one wire object; every mismatch is a ResponseFormatError."""

    __slots__ = ("_data", "_where")

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        self._data = data
        self._where = where

    def _get(self, key: str, convert: Callable[[Any], _T | None], expected: str) -> _T | None:
        value = self._data.get(key)
        if value is None:
            return None
        converted = convert(value)
        if converted is None and not _is_blank(value):
            raise ResponseFormatError(
                f"{self._where}: field {key!r} should be {expected}, got {_describe(value)}"
            )
        return converted

    def text(self, *keys: str) -> str | None:
        for key in keys:
            value = self._get(key, _as_text, "a string")
            if value is not None:
                return value
        return None

    def boolean(self, key: str) -> bool | None:
        return self._get(key, _as_bool, "a boolean")

    def integer(self, key: str) -> int | None:
        return self._get(key, _as_int, "an integer")

    def number(self, key: str) -> float | None:
        return self._get(key, _as_float, "a number")

    def epoch_ms(self, key: str) -> datetime | None:
        millis = self._get(key, _as_float, "epoch milliseconds")
        if millis is None or millis < 0:
            return None
        try:
            return datetime.fromtimestamp(millis / 1000.0, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ResponseFormatError(
                f"{self._where}: field {key!r} is not a usable timestamp: {millis!r}"
            ) from None


def _is_blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60]}"


def _as_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _as_bool(value: Any) -> bool | None:
    # Documented Boolean, but the sample sends "" for isStopingIncrement: "" reads as None.
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.strip().lower())
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            return None
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _as_int(value: Any) -> int | None:
    # Integers are taken as they are: going through float would round byte counters above
    # 2**53. Anything outside a signed 64-bit range is not a plausible counter or id.
    if isinstance(value, bool):
        return None
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text.startswith("-") else text
        if digits.isascii() and digits.isdigit():
            number = int(text)
    if number is None:
        as_float = _as_float(value)
        if as_float is None or not as_float.is_integer():
            return None
        number = int(as_float)
    return number if _INT_MIN <= number <= _INT_MAX else None


# --------------------------------------------------------------------------- submissions

_COUNTER_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "ROWS_READ": "rows_read",
        "ROWS_WRITTEN": "rows_written",
        "ROWS_WRITTEN_SKIPPED": "rows_written_skipped",
        "BYTES_READ": "bytes_read",
        "BYTES_WRITTEN": "bytes_written",
        "TOTAL_SIZE": "total_size",
        "FILES_READ": "files_read",
        "FILES_WRITTEN": "files_written",
        "FILES_SKIPPED": "files_skipped",
        "TOTAL_FILES": "total_files",
    }
)


def parse_counters(value: Any, where: str) -> Counters | None:
    """Counters from the ``counters`` object; -1 ("not measured") and absent are None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ResponseFormatError(f"{where}: 'counters' should be an object")
    group = value.get(COUNTERS_GROUP)
    if group is None:
        return None
    if not isinstance(group, dict):
        raise ResponseFormatError(f"{where}: {COUNTERS_GROUP!r} should be an object")
    fields = _Fields(group, f"{where} counters")
    raw: dict[str, int] = {}
    known: dict[str, int | None] = {}
    for key in group:
        if not isinstance(key, str):  # pragma: no cover - JSON keys are always strings
            continue
        number = fields.integer(key)
        if number is None:
            continue
        raw[key] = number
        attribute = _COUNTER_FIELDS.get(key)
        if attribute is not None:
            known[attribute] = None if number < 0 else number
    return Counters(**known, raw=MappingProxyType(raw))


def parse_submission(data: Any, *, job_name: str | None = None) -> Submission:
    """One submission object. ``job_name`` stands in when the object lacks ``job-name``."""
    if not isinstance(data, dict):
        raise ResponseFormatError(f"a submission should be an object, got {_describe(data)}")
    where = f"submission of {job_name!r}" if job_name else "submission"
    fields = _Fields(data, where)
    raw_status = fields.text("status")
    if raw_status is None or not raw_status.strip():
        raise ResponseFormatError(f"{where}: 'status' is missing")
    name = fields.text("job-name") or job_name
    if name is None:
        raise ResponseFormatError(f"{where}: 'job-name' is missing")
    progress = fields.number("progress")
    return Submission(
        job_name=name,
        status=JobStatus.parse(raw_status),
        raw_status=raw_status,
        creation_date=fields.epoch_ms("creation-date"),
        last_update_date=fields.epoch_ms("last-update-date"),
        creation_user=fields.text("creation-user"),
        # Sqoop 2 spells it "last-udpate-user"; newer pages fix the typo. Read both.
        last_update_user=fields.text("last-udpate-user", "last-update-user"),
        is_execute_auto=fields.boolean("is-execute-auto"),
        is_delete_job=fields.boolean("isDeleteJob"),
        is_incrementing=fields.boolean("isIncrementing"),
        is_stopping_increment=fields.boolean("isStopingIncrement"),
        external_id=fields.text("external-id"),
        progress=None if progress is None or progress < 0 else progress,
        submission_id=fields.integer("submission-id"),
        counters=parse_counters(data.get("counters"), where),
        error_summary=fields.text("error-summary"),
        error_details=fields.text("error-details"),
        raw=freeze(data),
    )


def _newest_first_key(submission: Submission) -> float:
    return submission.creation_date.timestamp() if submission.creation_date else -math.inf


def parse_submissions(body: bytes, *, job_name: str | None = None) -> list[Submission]:
    """Every submission of a status body, newest (largest ``creation-date``) first."""
    decoded = decode_json(body)
    if not isinstance(decoded, dict):
        raise ResponseFormatError(f"status body should be an object, got {_describe(decoded)}")
    items = decoded.get("submissions")
    if not isinstance(items, list):
        raise ResponseFormatError("status body has no 'submissions' list")
    submissions = [parse_submission(item, job_name=job_name) for item in items]
    # sorted() is stable: equal dates keep the server's order.
    return sorted(submissions, key=_newest_first_key, reverse=True)


# --------------------------------------------------------------------------- job list


def parse_job_list(body: bytes) -> tuple[int, list[JobSummary]]:
    """``(total, jobs)`` from a job-list body (``GET .../cdm/job/all``)."""
    decoded = decode_json(body)
    if not isinstance(decoded, dict):
        raise ResponseFormatError(f"job list should be an object, got {_describe(decoded)}")
    jobs = decoded.get("jobs")
    if not isinstance(jobs, list):
        raise ResponseFormatError("job list has no 'jobs' list")
    total = _Fields(decoded, "job list").integer("total")
    # The hot path of batched polling (100 entries a page, page after page): read the
    # three fields directly rather than through _Fields, and keep `raw` as a shallow
    # read-only view (freeze() copies nested values; list entries rarely have any).
    summaries: list[JobSummary] = []
    for item in jobs:
        if not isinstance(item, dict):
            raise ResponseFormatError(
                f"a job list entry should be an object, got {_describe(item)}"
            )
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ResponseFormatError("job list entry has no 'name'")
        raw_status = item.get("status")
        if raw_status is None or raw_status == "":
            raw_status = JobStatus.NEVER_EXECUTED.value
        elif not isinstance(raw_status, str):
            raise ResponseFormatError(
                f"job list entry {name!r}: 'status' should be a string, got {_describe(raw_status)}"
            )
        job_type = item.get("job_type", item.get("jobType"))
        summaries.append(
            JobSummary(
                name=name,
                status=JobStatus.parse(raw_status),
                raw_status=raw_status,
                job_type=job_type if isinstance(job_type, str) else None,
                raw=MappingProxyType(item),
            )
        )
    return (len(summaries) if total is None else total), summaries


# --------------------------------------------------------------------------- one job


def parse_job_definition(body: bytes, *, job_name: str) -> JobDefinition:
    """The definition of ``job_name`` from a "Querying a Job" body.

    The answer has the job list's shape (``{"total", "jobs": [...]}``) with the one job;
    a bare job object is read too. A body without that job raises ``JobNotFoundError``.
    """
    decoded = decode_json(body)
    if not isinstance(decoded, dict):
        raise ResponseFormatError(f"job body should be an object, got {_describe(decoded)}")
    jobs = decoded.get("jobs")
    if jobs is None and "name" in decoded:
        jobs = [decoded]
    if not isinstance(jobs, list):
        raise ResponseFormatError("job body has no 'jobs' list")
    items = [item for item in jobs if isinstance(item, dict)]
    if len(items) != len(jobs):
        raise ResponseFormatError("a job entry should be an object")
    named = [item for item in items if item.get("name") == job_name]
    if not named and len(items) == 1 and not isinstance(items[0].get("name"), str):
        named = items  # one job, its name left out: the one asked for
    if not named:
        message = f"the answer holds no job named {job_name!r}"
        raise JobNotFoundError(message, status_code=200, job_name=job_name)
    return definition_from(named[0], job_name=job_name)


def definition_from(item: dict[str, Any], *, job_name: str) -> JobDefinition:
    """A :class:`JobDefinition` from one job object (a list row or the answer for one
    job). Dates and names of the wrong type raise ``ResponseFormatError``; the parameters
    are read leniently (see ``_settings``)."""
    where = f"job {job_name!r}"
    fields = _Fields(item, where)
    raw_status = fields.text("status")
    job_type = fields.text("job_type", "jobType", "type")
    settings = parse_settings(item.get("driver-config-values"))
    return JobDefinition(
        name=fields.text("name") or job_name,
        job_type=job_type,
        status=JobStatus.parse(raw_status) if raw_status and raw_status.strip() else None,
        raw_status=raw_status or None,
        settings=settings if settings is not None else JobSettings(),
        source=endpoint(item, "from"),
        destination=endpoint(item, "to"),
        creation_date=fields.epoch_ms("creation-date"),
        update_date=fields.epoch_ms("update-date"),
        creation_user=fields.text("creation-user"),
        update_user=fields.text("update-user"),
        raw=freeze(item),
    )
