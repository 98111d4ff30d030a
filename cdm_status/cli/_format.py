"""Shared renderings of library values for the terminal and for JSON lines."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from .._models import Submission


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items() if key != "raw"}
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return value


def submission_to_json(submission: Submission) -> dict[str, Any]:
    """The parsed submission as a JSON-ready dict (dates ISO-8601, no raw copy)."""
    data: dict[str, Any] = _jsonable(asdict(submission))
    return data


def format_bytes(count: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
