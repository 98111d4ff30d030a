"""Shared renderings of library values for the terminal and for JSON lines."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any

from .._models import Submission


def _jsonable(value: Any) -> Any:
    # Not dataclasses.asdict(): it deep-copies every field first, and the read-only
    # ``raw`` mappings (MappingProxyType) cannot be copied. ``raw`` is left out anyway.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            item.name: _jsonable(getattr(value, item.name))
            for item in dataclasses.fields(value)
            if item.name != "raw"
        }
    return value


def submission_to_json(submission: Submission) -> dict[str, Any]:
    """The parsed submission as a JSON-ready dict (dates ISO-8601, no raw copy)."""
    data: dict[str, Any] = _jsonable(submission)
    return data


def format_bytes(count: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
