"""What every benchmark reports besides its figures: the machine, and the JSON file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine_info() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions: dict[str, str | None] = {}
    for package in (
        "cdm-status",
        "httpx",
        "httpcore",
        "h11",
        "anyio",
        "tenacity",
        "uvicorn",
        "huaweicloudsdkcdm",
        "huaweicloudsdkcore",
        "requests",
        "urllib3",
    ):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": versions,
    }


def save(name: str, rows: list[dict[str, Any]], **extra: Any) -> Path:
    """Write ``{"machine", "rows", ...extra}`` to ``benchmarks/results/<name>.json``."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {"machine": machine_info(), "rows": rows, **extra}
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path
